// GELU with the tanh approximation (GPT-2's MLP); the formulas are in activation.h.
// float runs SIMD lanes (vtanh, a few ulp) with a scalar tail, double std::tanh.
#include "../common/parallel.h"
#include "activation.h"
#include "kernels.h"

namespace calib::model {
namespace {
constexpr int64_t kGrain = 8192;
}  // namespace

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, int threads) {
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      for (; i + kLanes <= end; i += kLanes) vstore(out + i, act::gelu<float>(vload(inp + i)));
    }
    for (; i < end; ++i) out[i] = act::gelu<T>(inp[i]);
  });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, int threads) {
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      for (; i + kLanes <= end; i += kLanes) vstore(dinp + i, act::gelu_grad<float>(vload(inp + i)) * vload(dout + i));
    }
    for (; i < end; ++i) dinp[i] = act::gelu_grad<T>(inp[i]) * dout[i];
  });
}

template void gelu_forward<float>(float*, const float*, int64_t, int);
template void gelu_forward<double>(double*, const double*, int64_t, int);
template void gelu_backward<float>(float*, const float*, const float*, int64_t, int);
template void gelu_backward<double>(double*, const double*, const double*, int64_t, int);

}  // namespace calib::model
