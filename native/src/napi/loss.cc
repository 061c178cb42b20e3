// linearCrossEntropy(options): the binding of calib_linear_cross_entropy for host arrays.
#include <napi.h>

#include "args.h"
#include "calib.h"

namespace calib::napi {

Napi::Value LinearCrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = options(info, "linearCrossEntropy");
  const int64_t kMax = int64_t(1) << 40;
  calib_lce_args a{};
  a.n = integer(o, "n", -1, 0, kMax);
  a.d = integer(o, "d", -1, 1, kMax);
  a.v = integer(o, "v", -1, 1, INT32_MAX);
  if (a.n < 0 || a.d < 0 || a.v < 0) type_error(env, "n, d and v are required");
  if (a.n > kMax / a.d || a.v > kMax / a.d) range_error(env, "n·d or v·d is too large");
  a.dtype = static_cast<calib_dtype>(choice(o, "dtype", {"float32", "bfloat16"}, 0));
  const napi_typedarray_type kind = a.dtype == CALIB_BF16 ? napi_uint16_array : napi_float32_array;
  a.device = static_cast<calib_device>(choice(o, "device", {"cpu", "cuda"}, 0));
  a.memory = CALIB_MEM_HOST;
  a.e = typed(o, "e", kind, a.n * a.d, true);
  a.c = typed(o, "c", kind, a.v * a.d, true);
  a.targets = static_cast<const int32_t*>(typed(o, "targets", napi_int32_array, a.n, true));
  a.bias = static_cast<const float*>(typed(o, "bias", napi_float32_array, a.v, false));
  loss_options(o, a);
  a.impl = static_cast<calib_impl>(choice(o, "impl", {"fused", "naive"}, 0));
  a.threads = static_cast<int32_t>(integer(o, "threads", 0, 0, 1024));
  const bool grad = boolean(o, "grad", false);

  Napi::Float32Array grad_output;
  if (has(o, "gradOutput")) {
    Napi::Value g = o.Get("gradOutput");
    if (a.reduction == CALIB_REDUCE_NONE) {
      a.grad_output = static_cast<const float*>(typed(o, "gradOutput", napi_float32_array, a.n, true));
    } else {
      if (!g.IsNumber()) type_error(env, "gradOutput must be a number for reduction 'mean' or 'sum'");
      grad_output = Napi::Float32Array::New(env, 1);
      grad_output[0] = g.As<Napi::Number>().FloatValue();
      a.grad_output = grad_output.Data();
    }
  }

  const int64_t loss_len = a.reduction == CALIB_REDUCE_NONE ? a.n : 1;
  Napi::Float32Array loss = Napi::Float32Array::New(env, loss_len);
  Napi::Float32Array lse = Napi::Float32Array::New(env, a.n);
  a.loss = loss.Data();
  a.lse = lse.Data();
  Napi::Float32Array de, dc, db;
  if (grad) {
    de = Napi::Float32Array::New(env, a.n * a.d);
    dc = Napi::Float32Array::New(env, a.v * a.d);
    a.grad_e = de.Data();
    a.grad_c = dc.Data();
    if (a.bias) {
      db = Napi::Float32Array::New(env, a.v);
      a.grad_bias = db.Data();
    }
  }

  char err[CALIB_ERRLEN];
  check(env, calib_linear_cross_entropy(&a, err), err);

  Napi::Object out = Napi::Object::New(env);
  if (a.reduction == CALIB_REDUCE_NONE) out.Set("loss", loss);
  else out.Set("loss", Napi::Number::New(env, loss[0]));
  out.Set("lse", lse);
  out.Set("validCount", Napi::Number::New(env, static_cast<double>(a.valid_count)));
  if (grad) {
    out.Set("dE", de);
    out.Set("dC", dc);
    if (a.bias) out.Set("dBias", db);
  }
  return out;
}

}  // namespace calib::napi
