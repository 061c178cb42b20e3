// Evaluation statistics of the next-token distribution p = softmax(s), s = softcap(h·Hᵀ/T),
// for chosen rows of the final hidden states. Rows go in groups of kR: the group's logits
// are computed transposed, zᵀ (V × kR) = H · hᵀ, so that one gemm streams the head once per
// group and every statistic is a pass over contiguous memory with the rows in SIMD lanes:
//   pass 1  transform, max / argmax (first index on ties), top-k
//   pass 2  Σ exp(s − m) and Σ exp(s − m)·s  → lse, entropy = lse − E_p[s]
// Sums are kept in float64 (per 1024-entry blocks for the float path).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../common/parallel.h"
#include "../common/simd.h"
#include "kernels.h"

namespace calib::model {
namespace {
constexpr int64_t kR = 32;  // rows per group: a whole number of SIMD vectors at every width
constexpr int kMaxK = 16;
static_assert(kR % kLanes == 0, "rows per group must fill SIMD vectors");
}  // namespace

template <typename T>
void eval_head(const calib_model_eval_args& a, const T* h, const T* H, int64_t C, int64_t V, int threads) {
  const int64_t n = a.rows ? a.n_rows : static_cast<int64_t>(a.b) * a.t;
  const int64_t groups = (n + kR - 1) / kR;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, groups)));
  std::vector<T> scratch(static_cast<size_t>(nt) * (C * kR + V * kR));
  const T inv_t = static_cast<T>(1.0 / a.temperature), cap = static_cast<T>(a.softcap);
  const int k = a.top_k;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  parallel_for(nt, groups, 1, [&](int64_t g0, int64_t g1, int tid) {
    T* xt = scratch.data() + static_cast<size_t>(tid) * (C * kR + V * kR);
    T* zt = xt + C * kR;
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t i0 = g * kR, rn = std::min(kR, n - i0);
      int64_t row[kR];
      for (int64_t r = 0; r < kR; ++r) row[r] = r < rn ? (a.rows ? a.rows[i0 + r] : i0 + r) : -1;
      for (int64_t r = 0; r < kR; ++r)
        for (int64_t c = 0; c < C; ++c) xt[c * kR + r] = r < rn ? h[row[r] * C + c] : T(0);
      gemm<T>(V, kR, C, H, C, 1, xt, kR, zt, kR, false);

      // pass 1: transform, max, argmax, top-k
      T m[kR];
      int32_t am[kR];
      T topv[kR][kMaxK];
      int32_t topi[kR][kMaxK];
      for (int64_t r = 0; r < kR; ++r) {
        m[r] = -std::numeric_limits<T>::infinity();
        am[r] = 0;
        for (int j = 0; j < kMaxK; ++j) {
          topv[r][j] = -std::numeric_limits<T>::infinity();
          topi[r][j] = -1;
        }
      }
      for (int64_t v = 0; v < V; ++v) {
        T* zr = zt + v * kR;
        if constexpr (std::is_same_v<T, float>) {
          for (int64_t r = 0; r < kR; r += kLanes) {
            vfloat s = vload(zr + r) * inv_t;
            if (cap > 0) s = cap * vtanh(s * (1.f / cap));
            vstore(zr + r, s);
          }
        } else {
          for (int64_t r = 0; r < kR; ++r) {
            T s = zr[r] * inv_t;
            if (cap > 0) s = cap * std::tanh(s / cap);
            zr[r] = s;
          }
        }
        for (int64_t r = 0; r < rn; ++r) {
          const T s = zr[r];
          if (s > m[r]) {
            m[r] = s;
            am[r] = static_cast<int32_t>(v);
          }
          if (k > 0 && s > topv[r][k - 1]) {
            int j = k - 1;
            while (j > 0 && s > topv[r][j - 1]) {
              topv[r][j] = topv[r][j - 1];
              topi[r][j] = topi[r][j - 1];
              --j;
            }
            topv[r][j] = s;
            topi[r][j] = static_cast<int32_t>(v);
          }
        }
      }
      for (int64_t r = rn; r < kR; ++r) m[r] = 0;

      // pass 2: Σ exp(s − m), Σ exp(s − m)·s
      double se[kR] = {}, ss[kR] = {};
      if constexpr (std::is_same_v<T, float>) {
        constexpr int64_t kBlk = 1024;
        for (int64_t v0 = 0; v0 < V; v0 += kBlk) {
          const int64_t v1 = std::min(V, v0 + kBlk);
          for (int64_t r = 0; r < kR; r += kLanes) {
            const vfloat mv = vload(m + r);
            vfloat ae{}, as{};
            for (int64_t v = v0; v < v1; ++v) {
              const vfloat s = vload(zt + v * kR + r);
              const vfloat e = vexp(s - mv);
              ae += e;
              as += e * s;
            }
            for (int l = 0; l < kLanes; ++l) {
              se[r + l] += ae[l];
              ss[r + l] += as[l];
            }
          }
        }
      } else {
        for (int64_t v = 0; v < V; ++v)
          for (int64_t r = 0; r < kR; ++r) {
            const double s = zt[v * kR + r], e = std::exp(s - static_cast<double>(m[r]));
            se[r] += e;
            ss[r] += e * s;
          }
      }

      for (int64_t r = 0; r < rn; ++r) {
        const int64_t i = i0 + r;
        const double lse = static_cast<double>(m[r]) + std::log(se[r]);
        if (a.lse) a.lse[i] = static_cast<float>(lse);
        if (a.argmax) a.argmax[i] = am[r];
        if (a.p_max) a.p_max[i] = static_cast<float>(std::exp(static_cast<double>(m[r]) - lse));
        if (a.entropy) a.entropy[i] = static_cast<float>(std::max(0.0, lse - ss[r] / se[r]));
        if (a.p_target || a.nll) {
          const int32_t y = a.targets ? a.targets[row[r]] : a.ignore_index;
          const bool ok = a.targets && y != a.ignore_index;
          const double lp = ok ? static_cast<double>(zt[static_cast<int64_t>(y) * kR + r]) - lse : 0.0;
          if (a.p_target) a.p_target[i] = ok ? static_cast<float>(std::exp(lp)) : nan;
          if (a.nll) a.nll[i] = ok ? static_cast<float>(-lp) : nan;
        }
        for (int j = 0; j < k; ++j) {
          if (a.top_ids) a.top_ids[i * k + j] = topi[r][j];
          if (a.top_p) a.top_p[i * k + j] = static_cast<float>(std::exp(static_cast<double>(topv[r][j]) - lse));
        }
        if (a.option_logits)
          for (int32_t o = 0; o < a.n_options; ++o)
            a.option_logits[i * a.n_options + o] = static_cast<float>(zt[static_cast<int64_t>(a.option_ids[o]) * kR + r]);
      }
    }
  });
}

template void eval_head<float>(const calib_model_eval_args&, const float*, const float*, int64_t, int64_t, int);
template void eval_head<double>(const calib_model_eval_args&, const double*, const double*, int64_t, int64_t, int);

}  // namespace calib::model
