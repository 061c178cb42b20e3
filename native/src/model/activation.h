// The elementwise activations of the MLPs and their derivatives, written once for float64,
// float32 and SIMD float32 lanes (V = double, float or vfloat; S its scalar type):
//   GELU, tanh approximation (GPT-2; torch's gelu(approximate='tanh')):
//     y  = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//     y' = ½·(1 + tanh(u)) + ½·x·(1 − tanh²(u))·√(2/π)·(1 + 3·0.044715·x²)
//   SiLU (torch's silu): y = x·σ(x) = x / (1 + e^(−x)),  y' = σ(x)·(1 + x·(1 − σ(x)))
// The SIMD lanes use vexp / vtanh (a few ulp), the scalars std::exp / std::tanh.
#pragma once
#include <cmath>

#include "../common/simd.h"

namespace calib::model::act {

inline vfloat exp_of(vfloat x) { return vexp(x); }
inline float exp_of(float x) { return std::exp(x); }
inline double exp_of(double x) { return std::exp(x); }
inline vfloat tanh_of(vfloat x) { return vtanh(x); }
inline float tanh_of(float x) { return std::tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }

constexpr double kGeluS = 0.7978845608028654;  // √(2/π)
constexpr double kGeluA = 0.044715;

template <typename S, typename V>
inline V gelu(V x) {
  const S s = static_cast<S>(kGeluS), a = static_cast<S>(kGeluA);
  const V t = tanh_of(s * (x + a * x * x * x));
  return S(0.5) * x * (S(1) + t);
}

template <typename S, typename V>
inline V gelu_grad(V x) {
  const S s = static_cast<S>(kGeluS), a = static_cast<S>(kGeluA);
  const V t = tanh_of(s * (x + a * x * x * x));
  return S(0.5) * (S(1) + t) + S(0.5) * x * (S(1) - t * t) * s * (S(1) + S(3) * a * x * x);
}

template <typename S, typename V>
inline V silu(V x) {
  return x / (S(1) + exp_of(-x));
}

template <typename S, typename V>
inline V silu_grad(V x) {
  const V sg = S(1) / (S(1) + exp_of(-x));
  return sg * (S(1) + x * (S(1) - sg));
}

}  // namespace calib::model::act
