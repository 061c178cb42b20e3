// LayerNorm over the last dimension (eps 1e-5, biased variance, as torch.nn.LayerNorm).
//   forward   y = (x − μ)·r·w + b with r = 1/√(σ² + eps); μ and r are kept for the backward
//   backward  dx += r·(dn − mean(dn) − n·mean(dn·n)) with n = (x − μ)·r, dn = w·dy
//             dw += Σ_rows n·dy, db += Σ_rows dy — split over column ranges (fixed order)
#include <algorithm>
#include <cmath>

#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {

constexpr double kLnEps = 1e-5;

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C,
                       int threads) {
  parallel_for(threads, N, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* x = inp + i * C;
      T s = 0;
      for (int64_t c = 0; c < C; ++c) s += x[c];
      const T m = s / static_cast<T>(C);
      T v = 0;
      for (int64_t c = 0; c < C; ++c) {
        const T d = x[c] - m;
        v += d * d;
      }
      v /= static_cast<T>(C);
      const T r = static_cast<T>(1.0 / std::sqrt(static_cast<double>(v) + kLnEps));
      T* y = out + i * C;
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r * w[c] + b[c];
      mean[i] = m;
      rstd[i] = r;
    }
  });
}

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C, int threads) {
  parallel_for(threads, N, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* x = inp + i * C;
      const T* dy = dout + i * C;
      const T m = mean[i], r = rstd[i];
      T s1 = 0, s2 = 0;
      for (int64_t c = 0; c < C; ++c) {
        const T n = (x[c] - m) * r;
        const T dn = w[c] * dy[c];
        s1 += dn;
        s2 += dn * n;
      }
      s1 /= static_cast<T>(C);
      s2 /= static_cast<T>(C);
      T* dx = dinp + i * C;
      for (int64_t c = 0; c < C; ++c) {
        const T n = (x[c] - m) * r;
        dx[c] += (w[c] * dy[c] - s1 - n * s2) * r;
      }
    }
  });
  constexpr int64_t kCols = 32;
  parallel_for(threads, (C + kCols - 1) / kCols, 1, [&](int64_t b0, int64_t b1, int) {
    T aw[kCols], ab[kCols];
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * kCols, cn = std::min(kCols, C - c0);
      for (int64_t c = 0; c < cn; ++c) aw[c] = ab[c] = 0;
      for (int64_t i = 0; i < N; ++i) {
        const T* x = inp + i * C + c0;
        const T* dy = dout + i * C + c0;
        const T m = mean[i], r = rstd[i];
        for (int64_t c = 0; c < cn; ++c) {
          aw[c] += (x[c] - m) * r * dy[c];
          ab[c] += dy[c];
        }
      }
      for (int64_t c = 0; c < cn; ++c) {
        dw[c0 + c] += aw[c];
        db[c0 + c] += ab[c];
      }
    }
  });
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int64_t,
                                       int64_t, int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*, const double*,
                                        int64_t, int64_t, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, int64_t, int64_t, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, int64_t, int64_t, int);

}  // namespace calib::model
