// Causal multi-head self-attention over qkv (B, T, 3C) = [q | k | v], head h using columns
// h·hs … (h+1)·hs of each part (nanoGPT/llm.c layout). One task per (batch, head):
//   forward   S = q·kᵀ/√hs in row blocks (a block of rows only needs keys up to its last
//             row), causal softmax in place (entries after the row are 0), y = P·v
//   backward  dP = dy·vᵀ, dv = Pᵀ·dy, dS = P ⊙ (dP − rowsum(P ⊙ dP))/√hs, dq = dS·k, dk = dSᵀ·q
// The probabilities P (B, NH, T, T) are kept from the forward. Every product is a gemm on
// strided views, with a per-thread scratch for kᵀ / vᵀ (hs × T) and dP (T × T).
#include <algorithm>
#include <cmath>

#include "../common/parallel.h"
#include "../common/simd.h"
#include "kernels.h"

namespace calib::model {
namespace {

constexpr int64_t kBlock = 24;  // query rows per block (a multiple of gemm_acc's 6)

// row[0..n) ← softmax(row·scale), row[n..width) ← 0
template <typename T>
void causal_softmax(T* row, int64_t n, int64_t width, T scale) {
  T m = row[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, row[j]);
  m *= scale;
  T sum = 0;
  int64_t j = 0;
  if constexpr (std::is_same_v<T, float>) {
    vfloat acc{};
    for (; j + kLanes <= n; j += kLanes) {
      vfloat e = vexp(vload(row + j) * scale - m);
      vstore(row + j, e);
      acc += e;
    }
    sum = hsum(acc);
  }
  for (; j < n; ++j) {
    row[j] = std::exp(row[j] * scale - m);
    sum += row[j];
  }
  const T inv = T(1) / sum;
  for (j = 0; j < n; ++j) row[j] *= inv;
  for (j = n; j < width; ++j) row[j] = 0;
}

}  // namespace

int64_t attention_scratch(int64_t Tn, int64_t hs) { return hs * Tn + Tn * Tn; }

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int64_t B, int64_t Tn, int64_t C, int64_t NH, T* scratch,
                       int threads) {
  const int64_t hs = C / NH, C3 = 3 * C;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int64_t per = attention_scratch(Tn, hs);
  parallel_for(threads, B * NH, 1, [&](int64_t t0, int64_t t1, int tid) {
    T* kt = scratch + tid * per;  // hs × Tn
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / NH, h = bh % NH;
      const T* q = qkv + b * Tn * C3 + h * hs;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* P = att + bh * Tn * Tn;
      T* y = out + b * Tn * C + h * hs;
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t d = 0; d < hs; ++d) kt[d * Tn + t] = k[t * C3 + d];
      for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
        const int64_t r1 = std::min(Tn, r0 + kBlock);
        gemm<T>(r1 - r0, r1, hs, q + r0 * C3, C3, 1, kt, Tn, P + r0 * Tn, Tn, false);
        for (int64_t t = r0; t < r1; ++t) causal_softmax(P + t * Tn, t + 1, Tn, scale);
        gemm<T>(r1 - r0, hs, r1, P + r0 * Tn, Tn, 1, v, C3, y + r0 * C, C, false);
      }
    }
  });
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int64_t B, int64_t Tn, int64_t C,
                        int64_t NH, T* scratch, int threads) {
  const int64_t hs = C / NH, C3 = 3 * C;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int64_t per = attention_scratch(Tn, hs);
  parallel_for(threads, B * NH, 1, [&](int64_t t0, int64_t t1, int tid) {
    T* vt = scratch + tid * per;  // hs × Tn
    T* dS = vt + hs * Tn;         // Tn × Tn
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / NH, h = bh % NH;
      const T* q = qkv + b * Tn * C3 + h * hs;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* dq = dqkv + b * Tn * C3 + h * hs;
      T* dk = dq + C;
      T* dv = dq + 2 * C;
      const T* P = att + bh * Tn * Tn;
      const T* dy = dout + b * Tn * C + h * hs;
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t d = 0; d < hs; ++d) vt[d * Tn + t] = v[t * C3 + d];
      for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
        const int64_t r1 = std::min(Tn, r0 + kBlock), rn = r1 - r0;
        // dP rows r0..r1 (keys up to r1), then dS in place
        gemm<T>(rn, r1, hs, dy + r0 * C, C, 1, vt, Tn, dS + r0 * Tn, Tn, false);
        for (int64_t t = r0; t < r1; ++t) {
          const T* p = P + t * Tn;
          T* ds = dS + t * Tn;
          T s = 0;
          for (int64_t j = 0; j <= t; ++j) s += p[j] * ds[j];
          for (int64_t j = 0; j <= t; ++j) ds[j] = p[j] * (ds[j] - s) * scale;
          for (int64_t j = t + 1; j < Tn; ++j) ds[j] = 0;
        }
        // dv and dk for key rows r0..r1 sum over query rows t ≥ r0
        gemm<T>(rn, hs, Tn - r0, P + r0 * Tn + r0, 1, Tn, dy + r0 * C, C, dv + r0 * C3, C3, false);
      }
      for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
        const int64_t r1 = std::min(Tn, r0 + kBlock), rn = r1 - r0;
        gemm<T>(rn, hs, r1, dS + r0 * Tn, Tn, 1, k, C3, dq + r0 * C3, C3, false);
        gemm<T>(rn, hs, Tn - r0, dS + r0 * Tn + r0, 1, Tn, q + r0 * C3, C3, dk + r0 * C3, C3, false);
      }
    }
  });
}

#define CALIB_ATTENTION(T)                                                                                       \
  template void attention_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t, T*, int);            \
  template void attention_backward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, T*, \
                                      int);
CALIB_ATTENTION(float)
CALIB_ATTENTION(double)
#undef CALIB_ATTENTION

}  // namespace calib::model
