// RMSNorm over the last dimension (Hugging Face's LlamaRMSNorm; Gemma's scales by 1 + w):
//   forward   y = n·w' with n = x·r, r = 1/√(mean(x²) + eps), w' = w or 1 + w; r is kept for the
//             backward; y is written or added to the output (a post-norm onto the residual stream)
//   backward  dx += r·(dn − n·mean(dn·n)) with dn = w'·dy
//             dw += Σ_rows n·dy — split over column ranges, rows in order
// The row statistics (mean(x²), mean(dn·n)) are accumulated in float64 on both paths.
#include <cmath>

#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {
namespace {
template <typename T>
inline T weight(const T* w, int64_t c, bool plus_one) {
  return plus_one ? T(1) + w[c] : w[c];
}
}  // namespace

template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, bool plus_one, double eps, int64_t N, int64_t C,
                     bool accumulate, int threads) {
  parallel_for(threads, N, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* x = inp + i * C;
      double ss = 0;
      for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(x[c]) * x[c];
      const T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(C) + eps));
      T* y = out + i * C;
      if (accumulate) {
        for (int64_t c = 0; c < C; ++c) y[c] += x[c] * r * weight(w, c, plus_one);
      } else {
        for (int64_t c = 0; c < C; ++c) y[c] = x[c] * r * weight(w, c, plus_one);
      }
      rstd[i] = r;
    }
  });
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, bool plus_one, int64_t N,
                      int64_t C, int threads) {
  parallel_for(threads, N, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* x = inp + i * C;
      const T* dy = dout + i * C;
      const T r = rstd[i];
      double acc = 0;
      for (int64_t c = 0; c < C; ++c) acc += static_cast<double>(weight(w, c, plus_one) * dy[c]) * (x[c] * r);
      const T s = static_cast<T>(acc / static_cast<double>(C));
      T* dx = dinp + i * C;
      for (int64_t c = 0; c < C; ++c) dx[c] += (weight(w, c, plus_one) * dy[c] - x[c] * r * s) * r;
    }
  });
  // dw: each thread owns a range of columns and walks the rows in order
  parallel_for(threads, C, 32, [&](int64_t c0, int64_t c1, int) {
    for (int64_t i = 0; i < N; ++i) {
      const T* x = inp + i * C;
      const T* dy = dout + i * C;
      for (int64_t c = c0; c < c1; ++c) dw[c] += x[c] * rstd[i] * dy[c];
    }
  });
}

#define CALIB_RMSNORM(T)                                                                                          \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, bool, double, int64_t, int64_t, bool, int);       \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, bool, int64_t, int64_t, int);
CALIB_RMSNORM(float)
CALIB_RMSNORM(double)
#undef CALIB_RMSNORM

}  // namespace calib::model
