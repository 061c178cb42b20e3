// The CUDA part of the binding: device buffers (allocate, copy, free; pointers travel to
// JavaScript as BigInt addresses) and the fused loss on device pointers. backend/engine/
// cuda.ts wraps these in typed DeviceArray objects. Without CUDA every function throws, except
// lossPlanCuda (the loss's plan for a described device: pure arithmetic).
#include <napi.h>

#include <string>

#include "args.h"
#include "calib.h"

namespace calib::napi {
namespace {

#if CALIB_WITH_CUDA
void* pointer(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsBigInt()) type_error(env, std::string(name) + " must be a device pointer (bigint)");
  bool lossless = false;
  uint64_t p = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) range_error(env, std::string(name) + " is not a valid device pointer");
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}

void* pointer_opt(const Napi::Object& o, const char* key) {
  if (!has(o, key)) return nullptr;
  return pointer(o.Env(), o.Get(key), key);
}

void* pointer_req(const Napi::Object& o, const char* key) {
  if (!has(o, key)) type_error(o.Env(), std::string(key) + " is required");
  return pointer(o.Env(), o.Get(key), key);
}

size_t byte_count(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) type_error(env, std::string(name) + " must be a number of bytes");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.007199254740991e15)
    range_error(env, std::string(name) + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

// (typed array data, its byte length) of argument i.
std::pair<uint8_t*, size_t> host_view(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray()) type_error(info.Env(), std::string(name) + " must be a typed array");
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  return {base, t.ByteLength()};
}

Napi::Value Malloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) type_error(env, "cudaMalloc expects a byte count");
  size_t bytes = byte_count(env, info[0], "bytes");
  void* p = nullptr;
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_malloc(&p, bytes, err), err);
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) type_error(env, "cudaFree expects a device pointer");
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_free(pointer(env, info[0], "pointer"), err), err);
  return env.Undefined();
}

// cudaUpload(ptr, typedArray, byteOffset = 0): host → device.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) type_error(env, "cudaUpload expects (pointer, typedArray[, byteOffset])");
  char* dst = static_cast<char*>(pointer(env, info[0], "pointer"));
  auto [src, bytes] = host_view(info, 1, "source");
  size_t off = info.Length() > 2 ? byte_count(env, info[2], "byteOffset") : 0;
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_memcpy(dst + off, src, bytes, CALIB_COPY_H2D, err), err);
  return env.Undefined();
}

// cudaDownload(ptr, typedArray, byteOffset = 0): device → host, filling the whole array.
Napi::Value Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) type_error(env, "cudaDownload expects (pointer, typedArray[, byteOffset])");
  const char* src = static_cast<const char*>(pointer(env, info[0], "pointer"));
  auto [dst, bytes] = host_view(info, 1, "destination");
  size_t off = info.Length() > 2 ? byte_count(env, info[2], "byteOffset") : 0;
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_memcpy(dst, src + off, bytes, CALIB_COPY_D2H, err), err);
  return env.Undefined();
}

// cudaCopy(dst, src, bytes): device → device.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) type_error(env, "cudaCopy expects (dst, src, bytes)");
  void* dst = pointer(env, info[0], "dst");
  const void* src = pointer(env, info[1], "src");
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_memcpy(dst, src, byte_count(env, info[2], "bytes"), CALIB_COPY_D2D, err), err);
  return env.Undefined();
}

Napi::Value Memset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsNumber()) type_error(env, "cudaMemset expects (pointer, byteValue, bytes)");
  int value = info[1].As<Napi::Number>().Int32Value();
  if (value < 0 || value > 255) range_error(env, "byteValue must be in [0, 255]");
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_memset(pointer(env, info[0], "pointer"), value, byte_count(env, info[2], "bytes"), err), err);
  return env.Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  char err[CALIB_ERRLEN];
  check(info.Env(), calib_cuda_synchronize(err), err);
  return info.Env().Undefined();
}

Napi::Value MemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t free_b = 0, total_b = 0;
  char err[CALIB_ERRLEN];
  check(env, calib_cuda_mem_info(&free_b, &total_b, err), err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("free", Napi::Number::New(env, static_cast<double>(free_b)));
  out.Set("total", Napi::Number::New(env, static_cast<double>(total_b)));
  return out;
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  calib_cuda_stats s;
  calib_cuda_get_stats(&s);
  static const char* modes[] = {"forward", "streamed", "chunked"};
  Napi::Object out = Napi::Object::New(env);
  out.Set("scratchCapacityBytes", Napi::Number::New(env, static_cast<double>(s.scratch_capacity_bytes)));
  out.Set("scratchPeakBytes", Napi::Number::New(env, static_cast<double>(s.scratch_peak_bytes)));
  out.Set("lastScratchBytes", Napi::Number::New(env, static_cast<double>(s.last_scratch_bytes)));
  out.Set("lastMode", Napi::String::New(env, modes[s.last_mode >= 0 && s.last_mode <= 2 ? s.last_mode : 0]));
  out.Set("lastSplits", Napi::Number::New(env, s.last_splits));
  out.Set("lastBlockRows", Napi::Number::New(env, static_cast<double>(s.last_block_rows)));
  out.Set("lastBlockCols", Napi::Number::New(env, static_cast<double>(s.last_block_cols)));
  out.Set("lastTiles", Napi::Number::New(env, static_cast<double>(s.last_tiles)));
  out.Set("lastTilesSkipped", Napi::Number::New(env, static_cast<double>(s.last_tiles_skipped)));
  out.Set("lastGemm", Napi::String::New(env, s.last_gemm == 2 ? "cublas" : s.last_gemm ? "wgmma" : "mma.sync"));
  return out;
}

Napi::Value ReleaseScratch(const Napi::CallbackInfo& info) {
  char err[CALIB_ERRLEN];
  check(info.Env(), calib_cuda_release_scratch(err), err);
  return info.Env().Undefined();
}

// linearCrossEntropyDevice(options): every buffer is a device pointer (bigint); shapes,
// dtype and options as in linearCrossEntropy. gradOutput: a number (mean/sum) or a device
// pointer to N floats (none). Outputs are written into the given buffers.
Napi::Value LinearCrossEntropyDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "linearCrossEntropyDevice");
  const int64_t kMax = int64_t(1) << 40;
  calib_lce_args a{};
  a.n = integer(o, "n", -1, 0, INT32_MAX);
  a.d = integer(o, "d", -1, 1, kMax);
  a.v = integer(o, "v", -1, 1, INT32_MAX);
  if (a.n < 0 || a.d < 0 || a.v < 0) type_error(env, "n, d and v are required");
  a.dtype = static_cast<calib_dtype>(choice(o, "dtype", {"float32", "bfloat16"}, 0));
  a.device = CALIB_DEVICE_CUDA;
  a.memory = CALIB_MEM_DEVICE;
  a.e = pointer_req(o, "e");
  a.c = pointer_req(o, "c");
  a.targets = static_cast<const int32_t*>(pointer_req(o, "targets"));
  a.bias = static_cast<const float*>(pointer_opt(o, "bias"));
  loss_options(o, a);
  a.impl = CALIB_IMPL_FUSED;
  a.loss = static_cast<float*>(pointer_req(o, "loss"));
  a.lse = static_cast<float*>(pointer_opt(o, "lse"));
  a.grad_e = static_cast<float*>(pointer_opt(o, "gradE"));
  a.grad_c = static_cast<float*>(pointer_opt(o, "gradC"));
  a.grad_bias = static_cast<float*>(pointer_opt(o, "gradBias"));
  calib_lce_cuda_options copt{};
  copt.skip_threshold = static_cast<float>(number(o, "skipThreshold", 0.0));
  copt.gemm_impl = static_cast<int32_t>(choice(o, "impl", {"auto", "fused", "cublas"}, CALIB_LCE_GEMM_AUTO));

  // A scalar upstream gradient goes through a small device slot kept by the binding.
  static float* slot = nullptr;
  char err[CALIB_ERRLEN];
  if (has(o, "gradOutput")) {
    Napi::Value g = o.Get("gradOutput");
    if (a.reduction == CALIB_REDUCE_NONE) {
      a.grad_output = static_cast<const float*>(pointer(env, g, "gradOutput"));
    } else {
      if (!g.IsNumber()) type_error(env, "gradOutput must be a number for reduction 'mean' or 'sum'");
      float value = g.As<Napi::Number>().FloatValue();
      if (!slot) {
        void* p = nullptr;
        check(env, calib_cuda_malloc(&p, sizeof(float), err), err);
        slot = static_cast<float*>(p);
      }
      check(env, calib_cuda_memcpy(slot, &value, sizeof value, CALIB_COPY_H2D, err), err);
      a.grad_output = slot;
    }
  }
  check(env, calib_linear_cross_entropy_cuda(&a, &copt, err), err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("validCount", Napi::Number::New(env, static_cast<double>(a.valid_count)));
  return out;
}
#else
Napi::Value NoCuda(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(), "this build of the engine has no CUDA path (rebuild with nvcc present)");
}
#endif

// lossPlanCuda(options): the plan the CUDA loss would run (calib_lce_cuda_describe) — in every build.
// options: the shapes and loss options of linearCrossEntropyDevice (no buffers; grad, bias, gradBias as
// booleans), impl, skipThreshold, validCount (default n), device {sms, ccMajor, blasAvailable}.
Napi::Value LossPlanCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "lossPlanCuda");
  calib_lce_args a{};
  a.n = integer(o, "n", -1, 0, INT32_MAX);
  a.d = integer(o, "d", -1, 1, int64_t(1) << 40);
  a.v = integer(o, "v", -1, 1, INT32_MAX);
  if (a.n < 0 || a.d < 0 || a.v < 0) type_error(env, "n, d and v are required");
  a.dtype = static_cast<calib_dtype>(choice(o, "dtype", {"float32", "bfloat16"}, 0));
  a.device = CALIB_DEVICE_CUDA;
  a.memory = CALIB_MEM_DEVICE;
  loss_options(o, a);
  // only the presence of these buffers changes the plan
  static float marker[4] alignas(16);
  if (boolean(o, "grad", false)) a.grad_e = a.grad_c = marker;
  if (boolean(o, "bias", false)) a.bias = marker;
  if (boolean(o, "gradBias", false)) {
    if (!a.bias || !a.grad_e) type_error(env, "gradBias needs grad and bias");
    a.grad_bias = marker;
  }
  calib_lce_cuda_options copt{};
  copt.skip_threshold = static_cast<float>(number(o, "skipThreshold", 0.0));
  copt.gemm_impl = static_cast<int32_t>(choice(o, "impl", {"auto", "fused", "cublas"}, CALIB_LCE_GEMM_AUTO));
  const int64_t valid = integer(o, "validCount", a.n, 0, INT32_MAX);
  if (!has(o, "device") || !o.Get("device").IsObject()) type_error(env, "device must be an object {sms, ccMajor, blasAvailable}");
  Napi::Object d = o.Get("device").As<Napi::Object>();
  calib_cuda_device_desc dev{};
  dev.sms = static_cast<int32_t>(integer(d, "sms", -1, 1, 100000));
  dev.cc_major = static_cast<int32_t>(integer(d, "ccMajor", -1, 1, 100));
  if (dev.sms < 0 || dev.cc_major < 0) type_error(env, "device.sms and device.ccMajor are required");
  dev.blas_available = boolean(d, "blasAvailable", true) ? 1 : 0;
  if (!boolean(o, "aligned", true)) {  // misaligned E and C bases (as a device call with offset views would have)
    static char bytes[32] alignas(16);
    a.e = a.c = bytes + 2;
  }
  calib_lce_cuda_plan r{};
  char err[CALIB_ERRLEN];
  check(env, calib_lce_cuda_describe(&a, &copt, &dev, valid, &r, err), err);
  static const char* modes[] = {"forward", "streamed", "chunked"};
  static const char* logits[] = {"slab", "registers", "packed"};
  Napi::Object out = Napi::Object::New(env);
  out.Set("engine", Napi::String::New(env, r.engine == 1 ? "cublas" : "fused"));
  out.Set("mode", Napi::String::New(env, modes[r.mode]));
  out.Set("logits", Napi::String::New(env, logits[r.logits]));
  out.Set("gemm", Napi::String::New(env, r.engine == 1 ? "cublas" : r.wgmma ? "wgmma" : "mma.sync"));
  out.Set("splits", Napi::Number::New(env, r.splits));
  out.Set("gradSplits", Napi::Number::New(env, r.grad_splits));
  out.Set("blockRows", Napi::Number::New(env, static_cast<double>(r.block_rows)));
  out.Set("blockCols", Napi::Number::New(env, static_cast<double>(r.block_cols)));
  out.Set("scratchBytes", Napi::Number::New(env, static_cast<double>(r.scratch_bytes)));
  out.Set("workspaceBound", Napi::Number::New(env, static_cast<double>(r.workspace_bound)));
  return out;
}

}  // namespace

void RegisterCuda(Napi::Env env, Napi::Object exports) {
#if CALIB_WITH_CUDA
  exports.Set("cudaMalloc", Napi::Function::New(env, Malloc));
  exports.Set("cudaFree", Napi::Function::New(env, Free));
  exports.Set("cudaUpload", Napi::Function::New(env, Upload));
  exports.Set("cudaDownload", Napi::Function::New(env, Download));
  exports.Set("cudaCopy", Napi::Function::New(env, Copy));
  exports.Set("cudaMemset", Napi::Function::New(env, Memset));
  exports.Set("cudaSynchronize", Napi::Function::New(env, Synchronize));
  exports.Set("cudaMemInfo", Napi::Function::New(env, MemInfo));
  exports.Set("cudaStats", Napi::Function::New(env, Stats));
  exports.Set("cudaReleaseScratch", Napi::Function::New(env, ReleaseScratch));
  exports.Set("linearCrossEntropyDevice", Napi::Function::New(env, LinearCrossEntropyDevice));
#else
  for (const char* name : {"cudaMalloc", "cudaFree", "cudaUpload", "cudaDownload", "cudaCopy", "cudaMemset",
                           "cudaSynchronize", "cudaMemInfo", "cudaStats", "cudaReleaseScratch",
                           "linearCrossEntropyDevice"})
    exports.Set(name, Napi::Function::New(env, NoCuda, name));
#endif
  exports.Set("lossPlanCuda", Napi::Function::New(env, LossPlanCuda));
}

}  // namespace calib::napi
