// attentionForward(options) / attentionBackward(options): the bindings of calib_attention_forward / _backward
// for host arrays (tests and tools; the trainers do not call them). Elements are Float32Array (dtype
// 'float32', CPU only) or Uint16Array bfloat16 bits (dtype 'bfloat16'); lse is a Float32Array [b, hq, t].
#include <napi.h>

#include "args.h"
#include "calib.h"

namespace calib::napi {
namespace {

struct Attention {
  calib_attention_args a{};
  napi_typedarray_type kind = napi_float32_array;
  int64_t nq = 0, nkv = 0, nl = 0;
};

Attention read(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Object o = options(info, fn);
  Attention r;
  calib_attention_args& a = r.a;
  const int64_t kMax = int64_t(1) << 30;
  a.b = integer(o, "b", 0, 1, 65535);
  a.t = integer(o, "t", 0, 1, kMax);
  a.hq = integer(o, "hq", 0, 1, 65535);
  a.hkv = integer(o, "hkv", 0, 1, 65535);
  a.head_dim = integer(o, "headDim", 0, 1, 65536);
  if (!a.b || !a.t || !a.hq || !a.hkv || !a.head_dim) type_error(info.Env(), "b, t, hq, hkv and headDim are required");
  if (a.b * a.t > (int64_t(1) << 40) / a.hq / a.head_dim) range_error(info.Env(), "b·t·hq·headDim is too large");
  a.dtype = static_cast<calib_dtype>(choice(o, "dtype", {"float32", "bfloat16"}, 0));
  a.device = static_cast<calib_device>(choice(o, "device", {"cpu", "cuda"}, 0));
  a.memory = CALIB_MEM_HOST;
  if (!has(o, "scale")) type_error(info.Env(), "scale is required");
  a.scale = static_cast<float>(number(o, "scale", 0));
  a.softcap = static_cast<float>(number(o, "softcap", 0));
  a.window = integer(o, "window", 0, 0, kMax);
  a.threads = static_cast<int32_t>(integer(o, "threads", 0, 0, 1024));
  r.kind = a.dtype == CALIB_BF16 ? napi_uint16_array : napi_float32_array;
  r.nq = a.b * a.t * a.hq * a.head_dim;
  r.nkv = a.b * a.t * a.hkv * a.head_dim;
  r.nl = a.b * a.hq * a.t;
  a.q = typed(o, "q", r.kind, r.nq, true);
  a.k = typed(o, "k", r.kind, r.nkv, true);
  a.v = typed(o, "v", r.kind, r.nkv, true);
  return r;
}

Napi::TypedArray make(Napi::Env env, napi_typedarray_type kind, int64_t n, void** data) {
  if (kind == napi_uint16_array) {
    Napi::Uint16Array x = Napi::Uint16Array::New(env, static_cast<size_t>(n));
    *data = x.Data();
    return x;
  }
  Napi::Float32Array x = Napi::Float32Array::New(env, static_cast<size_t>(n));
  *data = x.Data();
  return x;
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attention r = read(info, "attentionForward");
  void *o, *lse;
  Napi::TypedArray out = make(env, r.kind, r.nq, &o);
  Napi::TypedArray l = make(env, napi_float32_array, r.nl, &lse);
  r.a.o = o;
  r.a.lse = static_cast<float*>(lse);
  char err[CALIB_ERRLEN];
  check(env, calib_attention_forward(&r.a, err), err);
  Napi::Object res = Napi::Object::New(env);
  res.Set("o", out);
  res.Set("lse", l);
  return res;
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attention r = read(info, "attentionBackward");
  Napi::Object o = info[0].As<Napi::Object>();
  r.a.o = typed(o, "o", r.kind, r.nq, true);
  r.a.lse = static_cast<float*>(typed(o, "lse", napi_float32_array, r.nl, true));
  r.a.grad_o = typed(o, "dO", r.kind, r.nq, true);
  void *dq, *dk, *dv;
  Napi::TypedArray gq = make(env, r.kind, r.nq, &dq), gk = make(env, r.kind, r.nkv, &dk), gv = make(env, r.kind, r.nkv, &dv);
  r.a.grad_q = dq;
  r.a.grad_k = dk;
  r.a.grad_v = dv;
  char err[CALIB_ERRLEN];
  check(env, calib_attention_backward(&r.a, err), err);
  Napi::Object res = Napi::Object::New(env);
  res.Set("dq", gq);
  res.Set("dk", gk);
  res.Set("dv", gv);
  return res;
}

}  // namespace

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, Forward));
  exports.Set("attentionBackward", Napi::Function::New(env, Backward));
}

}  // namespace calib::napi
