// cuBLAS loaded with dlopen (see cublas.cuh): prototypes declared by hand, every status checked.
#include <dlfcn.h>
#include <glob.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cublas.cuh"

namespace calib::blas {
namespace {

typedef int Status;  // cublasStatus_t
typedef Status (*CreateFn)(Handle*);
typedef Status (*DestroyFn)(Handle);
typedef Status (*SetStreamFn)(Handle, cudaStream_t);
typedef Status (*SetMathModeFn)(Handle, int);
typedef Status (*GetVersionFn)(Handle, int*);
typedef Status (*SetWorkspaceFn)(Handle, void*, size_t);
typedef Status (*GemmExFn)(Handle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                           const void*, void*, int, int, int, int);
typedef Status (*GemmStridedBatchedExFn)(Handle, int, int, int, int, int, const void*, const void*, int, int,
                                         long long, const void*, int, int, long long, const void*, void*, int, int,
                                         long long, int, int, int);

constexpr int kDefaultMath = 0;   // CUBLAS_DEFAULT_MATH: no TF32 for fp32 inputs
constexpr int kGemmDefault = -1;  // CUBLAS_GEMM_DEFAULT

struct Api {
  bool tried = false;
  void* lib = nullptr;
  std::string path, error;
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn set_stream = nullptr;
  SetMathModeFn set_math = nullptr;
  GetVersionFn version = nullptr;
  SetWorkspaceFn set_workspace = nullptr;
  GemmExFn gemm = nullptr;
  GemmStridedBatchedExFn gemm_batched = nullptr;
};

Api g_api;
std::mutex g_mutex;

const char* status_name(Status s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}

std::string dir_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? std::string(".") : p.substr(0, s);
}

// Opens `file` (a path with a '/', or a soname for the loader's search). For a path, the
// libcublasLt beside it is opened first so that its dependency resolves.
void* try_open(const std::string& file, std::vector<std::string>& tried) {
  if (file.find('/') != std::string::npos) {
    const std::string dir = dir_of(file);
    for (const char* lt : {"/libcublasLt.so.13", "/libcublasLt.so.12", "/libcublasLt.so"}) {
      const std::string p = dir + lt;
      if (FILE* f = std::fopen(p.c_str(), "rb")) {
        std::fclose(f);
        dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL);
        break;
      }
    }
  }
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    // name only when the file is not there; the loader's reason when it is there but fails
    const char* e = dlerror();
    const bool absent = !e || std::strstr(e, "No such file") != nullptr;
    tried.push_back(absent ? file : file + " (" + e + ")");
  }
  return h;
}

std::vector<std::string> glob_all(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

bool load_locked() {
  if (g_api.tried) return g_api.lib != nullptr;
  g_api.tried = true;
  std::vector<std::string> tried;
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CALIB_CUBLAS_PATH"); env && *env) {
    std::string p = env;
    if (p.size() > 3 && p.find(".so") != std::string::npos) candidates.push_back(p);
    else
      for (const char* n : {"/libcublas.so.13", "/libcublas.so.12", "/libcublas.so"}) candidates.push_back(p + n);
  } else {
    for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) candidates.emplace_back(n);
    for (const char* d : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                          "/usr/lib/x86_64-linux-gnu"})
      for (const char* n : {"/libcublas.so.13", "/libcublas.so.12"}) candidates.push_back(std::string(d) + n);
    for (const char* root : {"/opt/torch/.venv/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
                             "/usr/local/lib/python3*/site-packages", "/usr/lib/python3/dist-packages"})
      for (const char* sub : {"/nvidia/cu13/lib/libcublas.so.1*", "/nvidia/cublas/lib/libcublas.so.1*"})
        for (const std::string& p : glob_all(std::string(root) + sub)) candidates.push_back(p);
  }
  for (const std::string& c : candidates) {
    void* h = try_open(c, tried);
    if (!h) continue;
    Api a;
    a.lib = h;
    a.path = c;
    a.create = reinterpret_cast<CreateFn>(dlsym(h, "cublasCreate_v2"));
    a.destroy = reinterpret_cast<DestroyFn>(dlsym(h, "cublasDestroy_v2"));
    a.set_stream = reinterpret_cast<SetStreamFn>(dlsym(h, "cublasSetStream_v2"));
    a.set_math = reinterpret_cast<SetMathModeFn>(dlsym(h, "cublasSetMathMode"));
    a.version = reinterpret_cast<GetVersionFn>(dlsym(h, "cublasGetVersion_v2"));
    a.set_workspace = reinterpret_cast<SetWorkspaceFn>(dlsym(h, "cublasSetWorkspace_v2"));
    a.gemm = reinterpret_cast<GemmExFn>(dlsym(h, "cublasGemmEx"));
    a.gemm_batched = reinterpret_cast<GemmStridedBatchedExFn>(dlsym(h, "cublasGemmStridedBatchedEx"));
    if (!a.create || !a.destroy || !a.set_stream || !a.set_math || !a.gemm || !a.gemm_batched) {
      tried.push_back(c + " (missing cublasCreate_v2/cublasGemmEx/... symbols)");
      dlclose(h);
      continue;
    }
    a.tried = true;
    g_api = a;
    return true;
  }
  std::string msg = "cuBLAS could not be loaded (set CALIB_CUBLAS_PATH to libcublas.so or its folder); tried: ";
  for (size_t i = 0; i < tried.size() && msg.size() < 400; ++i) msg += (i ? ", " : "") + tried[i];
  if (msg.size() > 480) msg = msg.substr(0, 477) + "...";
  g_api.error = msg;
  return false;
}

calib_status blas_fail(char* err, Status s, const char* what) {
  std::snprintf(err, CALIB_ERRLEN, "%s: %s (%d)", what, status_name(s), s);
  return CALIB_ERR_RUNTIME;
}

}  // namespace

calib_status load(char* err) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (load_locked()) return CALIB_OK;
  std::snprintf(err, CALIB_ERRLEN, "%s", g_api.error.c_str());
  return CALIB_ERR_DEVICE;
}

const char* loaded_path() { return g_api.lib ? g_api.path.c_str() : ""; }

calib_status create(Handle* out, char* err) {
  *out = nullptr;
  if (calib_status st = load(err)) return st;
  Handle h = nullptr;
  if (Status s = g_api.create(&h)) return blas_fail(err, s, "cublasCreate");
  if (Status s = g_api.set_stream(h, nullptr)) {
    g_api.destroy(h);
    return blas_fail(err, s, "cublasSetStream");
  }
  if (Status s = g_api.set_math(h, kDefaultMath)) {
    g_api.destroy(h);
    return blas_fail(err, s, "cublasSetMathMode");
  }
  *out = h;
  return CALIB_OK;
}

calib_status set_stream(Handle h, cudaStream_t stream, char* err) {
  if (Status s = g_api.set_stream(h, stream)) return blas_fail(err, s, "cublasSetStream");
  return CALIB_OK;
}

calib_status set_workspace(Handle h, void* ptr, size_t bytes, char* err) {
  if (!g_api.set_workspace) return CALIB_OK;
  if (Status s = g_api.set_workspace(h, ptr, bytes)) return blas_fail(err, s, "cublasSetWorkspace");
  return CALIB_OK;
}

void destroy(Handle h) {
  if (h && g_api.destroy) g_api.destroy(h);
}

calib_status gemm(Handle h, Op ta, Op tb, int m, int n, int k, float alpha, const void* A, Dt at, int lda,
                  const void* B, Dt bt, int ldb, float beta, void* C, Dt ct, int ldc, char* err) {
  if (m == 0 || n == 0) return CALIB_OK;
  const Status s = g_api.gemm(h, ta, tb, m, n, k, &alpha, A, at, lda, B, bt, ldb, &beta, C, ct, ldc, kCompute32F,
                              kGemmDefault);
  if (s) {
    std::snprintf(err, CALIB_ERRLEN, "cublasGemmEx (m %d, n %d, k %d, lda %d, ldb %d, ldc %d, types %d/%d/%d): %s (%d)",
                  m, n, k, lda, ldb, ldc, int(at), int(bt), int(ct), status_name(s), s);
    return CALIB_ERR_RUNTIME;
  }
  return CALIB_OK;
}

calib_status gemm_batched(Handle h, Op ta, Op tb, int m, int n, int k, float alpha, const void* A, Dt at, int lda,
                          long long sa, const void* B, Dt bt, int ldb, long long sb, float beta, void* C, Dt ct,
                          int ldc, long long sc, int batch, char* err) {
  if (m == 0 || n == 0 || batch == 0) return CALIB_OK;
  const Status s = g_api.gemm_batched(h, ta, tb, m, n, k, &alpha, A, at, lda, sa, B, bt, ldb, sb, &beta, C, ct, ldc,
                                      sc, batch, kCompute32F, kGemmDefault);
  if (s) {
    std::snprintf(err, CALIB_ERRLEN, "cublasGemmStridedBatchedEx (m %d, n %d, k %d, batch %d): %s (%d)", m, n, k,
                  batch, status_name(s), s);
    return CALIB_ERR_RUNTIME;
  }
  return CALIB_OK;
}

}  // namespace calib::blas
