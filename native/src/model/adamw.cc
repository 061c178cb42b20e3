// Gradient norm and the AdamW update (PyTorch's torch.optim.AdamW formula, foreach=False):
//   g = grad·grad_scale
//   p ← p·(1 − lr·wd)                       (only tensors with decay)
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// The norm is summed in float64 over fixed chunks (not over threads) and the chunk sums are
// added in order, so it is the same for every thread count.
#include <cmath>
#include <vector>

#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {

template <typename T>
double sum_squares(const T* g, const Chunk* chunks, int64_t n_chunks, double* per_tensor, int32_t n_tensors,
                   int threads) {
  std::vector<double> part(n_chunks, 0.0);
  parallel_for(threads, n_chunks, 1, [&](int64_t c0, int64_t c1, int) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) s += static_cast<double>(g[i]) * g[i];
      part[c] = s;
    }
  });
  std::vector<double> tensors(n_tensors, 0.0);
  for (int64_t c = 0; c < n_chunks; ++c) tensors[chunks[c].tensor] += part[c];
  double total = 0;
  for (int32_t t = 0; t < n_tensors; ++t) {
    total += tensors[t];
    if (per_tensor) per_tensor[t] = std::sqrt(tensors[t]);
  }
  return total;
}

template <typename T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t begin, int64_t end, const calib_adamw_args& a, bool decay,
                  int threads) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
  const T step_size = static_cast<T>(a.lr / bc1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T b1 = a.beta1, b2 = a.beta2, eps = a.eps, gs = a.grad_scale;
  const T shrink = decay ? static_cast<T>(1.0 - static_cast<double>(a.lr) * a.weight_decay) : T(1);
  parallel_for(threads, end - begin, 1 << 15, [&](int64_t b, int64_t e, int) {
    for (int64_t i = begin + b; i < begin + e; ++i) {
      const T grad = g[i] * gs;
      const T mi = b1 * m[i] + (T(1) - b1) * grad;
      const T vi = b2 * v[i] + (T(1) - b2) * grad * grad;
      m[i] = mi;
      v[i] = vi;
      const T denom = std::sqrt(vi) / bc2_sqrt + eps;
      p[i] = p[i] * shrink - step_size * mi / denom;
    }
  });
}

template double sum_squares<float>(const float*, const Chunk*, int64_t, double*, int32_t, int);
template double sum_squares<double>(const double*, const Chunk*, int64_t, double*, int32_t, int);
template void adamw_update<float>(float*, const float*, float*, float*, int64_t, int64_t, const calib_adamw_args&,
                                  bool, int);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t, int64_t,
                                   const calib_adamw_args&, bool, int);

}  // namespace calib::model
