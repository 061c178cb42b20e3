// CUDA runtime helpers and the device-memory part of the C API (calib.h, CUDA section).
#include <cstring>

#include "runtime.cuh"

namespace calib::cu {

calib_status cuda_fail(char* err, cudaError_t code, const char* what) {
  std::snprintf(err, CALIB_ERRLEN, "%s: %s (%s)", what, cudaGetErrorString(code), cudaGetErrorName(code));
  return CALIB_ERR_RUNTIME;
}

calib_status device_info(DeviceInfo& out, char* err) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::snprintf(err, CALIB_ERRLEN, "no CUDA device: %s",
                  e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
    return CALIB_ERR_DEVICE;
  }
  int dev = 0;
  if ((e = cudaGetDevice(&dev)) != cudaSuccess) return cuda_fail(err, e, "cudaGetDevice");
  static DeviceInfo cached[64];
  if (dev >= 0 && dev < 64 && cached[dev].device == dev) {
    out = cached[dev];
    return CALIB_OK;
  }
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, dev)) != cudaSuccess) return cuda_fail(err, e, "cudaGetDeviceProperties");
  if (p.major < 8) {
    std::snprintf(err, CALIB_ERRLEN, "CUDA device %d (%s, compute capability %d.%d) is too old: sm_80 or newer is needed",
                  dev, p.name, p.major, p.minor);
    return CALIB_ERR_DEVICE;
  }
  out.device = dev;
  out.sms = p.multiProcessorCount;
  out.smem_optin = static_cast<int>(p.sharedMemPerBlockOptin);
  out.cc_major = p.major;
  out.cc_minor = p.minor;
  if (dev < 64) cached[dev] = out;
  return CALIB_OK;
}

std::mutex& engine_mutex() {
  static std::mutex m;
  return m;
}

namespace {
char* g_base = nullptr;
size_t g_cap = 0;
calib_cuda_stats g_stats{};
}  // namespace

calib_status scratch(size_t bytes, char** out, char* err) {
  bytes = (bytes + (size_t(1) << 20) - 1) & ~((size_t(1) << 20) - 1);  // whole MiB
  if (bytes > g_cap) {
    if (g_base) {
      cudaError_t e = cudaFree(g_base);
      g_base = nullptr;
      g_cap = 0;
      if (e != cudaSuccess) return cuda_fail(err, e, "cudaFree (scratch)");
    }
    if (bytes > 0) {
      cudaError_t e = cudaMalloc(&g_base, bytes);
      if (e != cudaSuccess) {
        g_base = nullptr;
        cudaGetLastError();
        std::snprintf(err, CALIB_ERRLEN, "cannot allocate %.1f MiB of device scratch: %s", bytes / 1048576.0,
                      cudaGetErrorString(e));
        return CALIB_ERR_RUNTIME;
      }
      g_cap = bytes;
    }
  }
  g_stats.scratch_capacity_bytes = static_cast<int64_t>(g_cap);
  *out = g_base;
  return CALIB_OK;
}

calib_status scratch_keep(size_t bytes, size_t keep, char** out, char* err) {
  if (bytes <= g_cap || keep == 0 || !g_base) return scratch(bytes, out, err);
  bytes = (bytes + (size_t(1) << 20) - 1) & ~((size_t(1) << 20) - 1);
  char* fresh = nullptr;
  cudaError_t e = cudaMalloc(&fresh, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    std::snprintf(err, CALIB_ERRLEN, "cannot allocate %.1f MiB of device scratch: %s", bytes / 1048576.0,
                  cudaGetErrorString(e));
    return CALIB_ERR_RUNTIME;
  }
  if ((e = cudaMemcpy(fresh, g_base, keep, cudaMemcpyDeviceToDevice)) != cudaSuccess) {
    cudaFree(fresh);
    return cuda_fail(err, e, "cudaMemcpy (scratch)");
  }
  cudaFree(g_base);
  g_base = fresh;
  g_cap = bytes;
  g_stats.scratch_capacity_bytes = static_cast<int64_t>(g_cap);
  *out = g_base;
  return CALIB_OK;
}

calib_cuda_stats& stats() { return g_stats; }

}  // namespace calib::cu

using namespace calib::cu;

extern "C" calib_status calib_cuda_malloc(void** ptr, size_t bytes, char* err) {
  err[0] = '\0';
  if (!ptr) {
    std::snprintf(err, CALIB_ERRLEN, "no output pointer");
    return CALIB_ERR_TYPE;
  }
  *ptr = nullptr;
  DeviceInfo d;
  if (calib_status st = device_info(d, err)) return st;
  if (bytes == 0) return CALIB_OK;
  cudaError_t e = cudaMalloc(ptr, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    std::snprintf(err, CALIB_ERRLEN, "cannot allocate %.1f MiB on the GPU (%.1f MiB free of %.1f MiB): %s",
                  bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0, cudaGetErrorString(e));
    *ptr = nullptr;
    return CALIB_ERR_RUNTIME;
  }
  return CALIB_OK;
}

extern "C" calib_status calib_cuda_free(void* ptr, char* err) {
  err[0] = '\0';
  if (!ptr) return CALIB_OK;
  cudaError_t e = cudaFree(ptr);
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaFree");
}

extern "C" calib_status calib_cuda_memcpy(void* dst, const void* src, size_t bytes, calib_copy_kind kind, char* err) {
  err[0] = '\0';
  if (bytes == 0) return CALIB_OK;
  if (!dst || !src) {
    std::snprintf(err, CALIB_ERRLEN, "copy with a null pointer");
    return CALIB_ERR_TYPE;
  }
  cudaMemcpyKind k = kind == CALIB_COPY_H2D ? cudaMemcpyHostToDevice
                     : kind == CALIB_COPY_D2H ? cudaMemcpyDeviceToHost
                                              : cudaMemcpyDeviceToDevice;
  cudaError_t e = cudaMemcpy(dst, src, bytes, k);
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaMemcpy");
}

extern "C" calib_status calib_cuda_memset(void* ptr, int value, size_t bytes, char* err) {
  err[0] = '\0';
  if (bytes == 0) return CALIB_OK;
  cudaError_t e = cudaMemset(ptr, value, bytes);
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaMemset");
}

extern "C" calib_status calib_cuda_synchronize(char* err) {
  err[0] = '\0';
  cudaError_t e = cudaDeviceSynchronize();
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaDeviceSynchronize");
}

extern "C" calib_status calib_cuda_mem_info(size_t* free_bytes, size_t* total_bytes, char* err) {
  err[0] = '\0';
  DeviceInfo d;
  if (calib_status st = device_info(d, err)) return st;
  cudaError_t e = cudaMemGetInfo(free_bytes, total_bytes);
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaMemGetInfo");
}

extern "C" void calib_cuda_get_stats(calib_cuda_stats* out) {
  std::lock_guard<std::mutex> lock(engine_mutex());
  *out = g_stats;
}

extern "C" calib_status calib_cuda_release_scratch(char* err) {
  err[0] = '\0';
  std::lock_guard<std::mutex> lock(engine_mutex());
  if (!g_base) return CALIB_OK;
  cudaError_t e = cudaFree(g_base);
  g_base = nullptr;
  g_cap = 0;
  g_stats.scratch_capacity_bytes = 0;
  return e == cudaSuccess ? CALIB_OK : cuda_fail(err, e, "cudaFree (scratch)");
}
