// Reading and checking JavaScript arguments for the binding. Every problem becomes a
// TypeError or RangeError that names the field, before any kernel sees the memory.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "calib.h"

namespace calib::napi {

[[noreturn]] inline void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void range_error(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// Turns a C API status into the matching JavaScript exception.
inline void check(Napi::Env env, calib_status st, const char* err) {
  switch (st) {
    case CALIB_OK: return;
    case CALIB_ERR_TYPE: type_error(env, err);
    case CALIB_ERR_RANGE: range_error(env, err);
    default: throw Napi::Error::New(env, err);
  }
}

inline Napi::Object options(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray())
    type_error(info.Env(), std::string(fn) + " expects one options object");
  return info[0].As<Napi::Object>();
}

inline bool has(const Napi::Object& o, const char* key) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

inline double number(const Napi::Object& o, const char* key, double fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) type_error(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t integer(const Napi::Object& o, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  if (!has(o, key)) return fallback;
  double d = number(o, key, 0);
  if (!std::isfinite(d) || d != std::floor(d)) type_error(o.Env(), std::string(key) + " must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    range_error(o.Env(), std::string(key) + " = " + std::to_string(static_cast<long long>(d)) + " is out of range [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

inline bool boolean(const Napi::Object& o, const char* key, bool fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) type_error(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// One of a fixed set of strings, returned as its index.
inline int choice(const Napi::Object& o, const char* key, std::initializer_list<const char*> names, int fallback) {
  if (!has(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  std::string all;
  int i = 0;
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    for (const char* n : names) {
      if (s == n) return i;
      ++i;
    }
  }
  for (const char* n : names) all += (all.empty() ? "'" : ", '") + std::string(n) + "'";
  type_error(o.Env(), std::string(key) + " must be one of " + all);
}

inline const char* typed_name(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "Float32Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_float64_array: return "Float64Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_int8_array: return "Int8Array";
    case napi_int16_array: return "Int16Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_bigint64_array: return "BigInt64Array";
    default: return "another typed array";
  }
}

// A typed array of an expected kind and exact length; nullptr when optional and absent.
inline void* typed(const Napi::Object& o, const char* key, napi_typedarray_type kind, int64_t length, bool required) {
  Napi::Env env = o.Env();
  if (!has(o, key)) {
    if (required) type_error(env, std::string(key) + " is required");
    return nullptr;
  }
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray()) type_error(env, std::string(key) + " must be a " + typed_name(kind));
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != kind)
    type_error(env, std::string(key) + " must be a " + typed_name(kind) + ", got " + typed_name(t.TypedArrayType()));
  if (static_cast<int64_t>(t.ElementLength()) != length)
    type_error(env, std::string(key) + " has " + std::to_string(t.ElementLength()) + " elements, expected " +
                        std::to_string(length));
  uint8_t* base = static_cast<uint8_t*>(t.ArrayBuffer().Data());
  return length == 0 ? static_cast<void*>(base) : static_cast<void*>(base + t.ByteOffset());
}

// The label-smoothed loss's options, read the same way by the host (linearCrossEntropy) and
// device (linearCrossEntropyDevice) bindings; the kernel validates their ranges.
inline void loss_options(const Napi::Object& o, calib_lce_args& a) {
  a.label_smoothing = static_cast<float>(number(o, "labelSmoothing", 0.0));
  a.ignore_index = static_cast<int32_t>(integer(o, "ignoreIndex", -100, INT32_MIN, INT32_MAX));
  a.reduction = static_cast<calib_reduction>(choice(o, "reduction", {"mean", "sum", "none"}, 0));
  a.temperature = static_cast<float>(number(o, "temperature", 1.0));
  a.softcap = static_cast<float>(number(o, "softcap", 0.0));
  a.workspace_bytes = integer(o, "workspaceBytes", 0, 0, int64_t(1) << 50);
  a.deterministic = boolean(o, "deterministic", false);
  a.check_finite = boolean(o, "checkFinite", true);
}

}  // namespace calib::napi
