// GELU with the tanh approximation (GPT-2; torch's gelu(approximate='tanh')):
//   y  = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//   dy/dx = ½·(1 + tanh(u)) + ½·x·(1 − tanh²(u))·√(2/π)·(1 + 3·0.044715·x²)
// float uses the SIMD tanh (a few ulp), double std::tanh.
#include <cmath>

#include "../common/parallel.h"
#include "../common/simd.h"
#include "kernels.h"

namespace calib::model {
namespace {
constexpr double kS = 0.7978845608028654;  // √(2/π)
constexpr double kA = 0.044715;
constexpr int64_t kGrain = 8192;
}  // namespace

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, int threads) {
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      for (; i + kLanes <= end; i += kLanes) {
        const vfloat x = vload(inp + i);
        const vfloat t = vtanh(static_cast<float>(kS) * (x + static_cast<float>(kA) * x * x * x));
        vstore(out + i, 0.5f * x * (1.f + t));
      }
    }
    for (; i < end; ++i) {
      const T x = inp[i];
      const T t = std::tanh(static_cast<T>(kS) * (x + static_cast<T>(kA) * x * x * x));
      out[i] = T(0.5) * x * (T(1) + t);
    }
  });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, int threads) {
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      const float s = static_cast<float>(kS), a = static_cast<float>(kA);
      for (; i + kLanes <= end; i += kLanes) {
        const vfloat x = vload(inp + i);
        const vfloat t = vtanh(s * (x + a * x * x * x));
        const vfloat g = 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * s * (1.f + 3.f * a * x * x);
        vstore(dinp + i, g * vload(dout + i));
      }
    }
    for (; i < end; ++i) {
      const T x = inp[i];
      const T s = static_cast<T>(kS), a = static_cast<T>(kA);
      const T t = std::tanh(s * (x + a * x * x * x));
      const T g = T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * s * (T(1) + T(3) * a * x * x);
      dinp[i] = g * dout[i];
    }
  });
}

template void gelu_forward<float>(float*, const float*, int64_t, int);
template void gelu_forward<double>(double*, const double*, int64_t, int);
template void gelu_backward<float>(float*, const float*, const float*, int64_t, int);
template void gelu_backward<double>(double*, const double*, const double*, int64_t, int);

}  // namespace calib::model
