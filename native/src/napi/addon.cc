// Module entry: registers each binding. One file per op under napi/.
#include <napi.h>

#include "calib.h"

namespace calib::napi {
Napi::Value LinearCrossEntropy(const Napi::CallbackInfo& info);
void RegisterCuda(Napi::Env env, Napi::Object exports);  // cuda.cc
void RegisterAttention(Napi::Env env, Napi::Object exports);  // attention.cc
Napi::Function ModelClass(Napi::Env env);

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  calib_info ci;
  calib_get_info(&ci);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaBuilt", Napi::Boolean::New(env, ci.cuda_built != 0));
  out.Set("cudaDevices", Napi::Number::New(env, ci.cuda_devices));
  out.Set("cudaMessage", Napi::String::New(env, ci.cuda_message));
  out.Set("cpuThreads", Napi::Number::New(env, ci.cpu_threads));
  return out;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setThreads expects a number");
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0 && n <= 1024) || n != static_cast<int>(n))
    throw Napi::RangeError::New(info.Env(), "threads must be an integer in [0, 1024]");
  calib_set_threads(static_cast<int32_t>(n));
  return info.Env().Undefined();
}

// ncclStatus(): {available, path, version, message} (native/src/dist/nccl.cc).
static Napi::Value NcclStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char path[1024], message[1024];
  int32_t version = 0;
  const bool ok = calib_nccl_status(path, sizeof path, &version, message, sizeof message) != 0;
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, ok));
  out.Set("path", Napi::String::New(env, path));
  out.Set("version", Napi::Number::New(env, version));
  out.Set("message", Napi::String::New(env, message));
  return out;
}
}  // namespace calib::napi

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace calib::napi;
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("ncclStatus", Napi::Function::New(env, NcclStatus));
  exports.Set("linearCrossEntropy", Napi::Function::New(env, LinearCrossEntropy));
  RegisterCuda(env, exports);
  RegisterAttention(env, exports);
  exports.Set("Model", ModelClass(env));
  return exports;
}

NODE_API_MODULE(calib, Init)
