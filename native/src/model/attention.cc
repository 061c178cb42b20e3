// Causal grouped-query self-attention (GPT-2's multi-head attention is the case KV = H). Query head h
// reads key/value head h / (H/KV) (Hugging Face's repeat_kv order); q, k, v, y are row-major token
// rows with their own strides (GPT-2: views into the packed qkv, head h at columns h·hd of each
// part). The forward runs one task per (batch, query head), the backward one per (batch, key/value
// head), which walks its H/KV query heads in order:
//   forward   U = q·kᵀ in row blocks (a block of rows only needs keys from its first row's window
//             start to its last row), s = scale·U, or c·tanh(scale·U/c) with a soft-cap c; softmax
//             over the keys j ≤ t (and j > t − window with a sliding window) in place, every other
//             entry 0; y = P·v
//   backward  dP = dy·vᵀ, dv += Pᵀ·dy, dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale (· (1 − (s/c)²) with
//             the cap, for which U is recomputed), dq = dS·k, dk += dSᵀ·q
// The probabilities P (B, H, T, T) are kept from the forward. Every product is a gemm on strided
// views, with a per-thread scratch for kᵀ / vᵀ (hd × T), dP (T × T) and, with a cap, kᵀ and a block of U.
// dk and dv sum over the query heads of their group in head order: results do not depend on the
// thread count.
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

// The first key query t sees, and the first key a block of rows starting at r0 needs.
inline int64_t first_key(const AttnShape& s, int64_t t) { return s.window > 0 ? std::max<int64_t>(0, t - s.window + 1) : 0; }
// One past the last query that sees a key before r1.
inline int64_t last_query(const AttnShape& s, int64_t r1) { return s.window > 0 ? std::min(s.Tn, r1 + s.window - 1) : s.Tn; }

// Row t of P: logits U[0..Tn) in, probabilities out (0 outside the keys t sees).
template <typename T>
void softmax_row(const AttnShape& s, T* row, int64_t t, T scale, T cap) {
  const int64_t lo = first_key(s, t);
  if (cap > 0) {
    for (int64_t j = lo; j <= t; ++j) row[j] = cap * std::tanh(row[j] * scale / cap);
    causal_softmax(row + lo, t + 1 - lo, s.Tn - lo, T(1));
  } else {
    causal_softmax(row + lo, t + 1 - lo, s.Tn - lo, scale);
  }
  for (int64_t j = 0; j < lo; ++j) row[j] = 0;
}

template <typename T>
void transpose_rows(T* dst, const T* src, int64_t rs, int64_t Tn, int64_t hd) {
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t d = 0; d < hd; ++d) dst[d * Tn + t] = src[t * rs + d];
}

}  // namespace

int64_t attention_scratch(int64_t Tn, int64_t hd, bool softcap) {
  return hd * Tn + Tn * Tn + (softcap ? hd * Tn + kBlock * Tn : 0);
}

template <typename T>
void attention_forward(const AttnShape& s, T* y, T* att, const T* q, const T* k, const T* v, T* scratch,
                       int threads) {
  const int64_t Tn = s.Tn, hd = s.hd, rep = s.H / s.KV;
  const T scale = static_cast<T>(s.scale), cap = static_cast<T>(s.softcap);
  const int64_t per = attention_scratch(Tn, hd, s.softcap > 0);
  parallel_for(threads, s.B * s.H, 1, [&](int64_t t0, int64_t t1, int tid) {
    T* kt = scratch + tid * per;  // hd × Tn
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / s.H, h = bh % s.H, g = h / rep;
      const T* qh = q + b * Tn * s.q_rs + h * hd;
      const T* kg = k + b * Tn * s.kv_rs + g * hd;
      const T* vg = v + b * Tn * s.kv_rs + g * hd;
      T* P = att + bh * Tn * Tn;
      T* yh = y + b * Tn * s.y_rs + h * hd;
      transpose_rows(kt, kg, s.kv_rs, Tn, hd);
      for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
        const int64_t r1 = std::min(Tn, r0 + kBlock), k0 = first_key(s, r0);
        gemm<T>(r1 - r0, r1 - k0, hd, qh + r0 * s.q_rs, s.q_rs, 1, kt + k0, Tn, P + r0 * Tn + k0, Tn, false);
        for (int64_t t = r0; t < r1; ++t) softmax_row(s, P + t * Tn, t, scale, cap);
        gemm<T>(r1 - r0, hd, r1 - k0, P + r0 * Tn + k0, Tn, 1, vg + k0 * s.kv_rs, s.kv_rs, yh + r0 * s.y_rs, s.y_rs,
                false);
      }
    }
  });
}

template <typename T>
void attention_backward(const AttnShape& s, T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v,
                        const T* att, T* scratch, int threads) {
  const int64_t Tn = s.Tn, hd = s.hd, rep = s.H / s.KV;
  const T scale = static_cast<T>(s.scale), cap = static_cast<T>(s.softcap);
  const int64_t per = attention_scratch(Tn, hd, s.softcap > 0);
  parallel_for(threads, s.B * s.KV, 1, [&](int64_t t0, int64_t t1, int tid) {
    T* vt = scratch + tid * per;  // hd × Tn
    T* dS = vt + hd * Tn;         // Tn × Tn
    T* kt = dS + Tn * Tn;         // hd × Tn (cap only)
    T* U = kt + hd * Tn;          // kBlock × Tn (cap only)
    for (int64_t bg = t0; bg < t1; ++bg) {
      const int64_t b = bg / s.KV, g = bg % s.KV;
      const T* kg = k + b * Tn * s.kv_rs + g * hd;
      const T* vg = v + b * Tn * s.kv_rs + g * hd;
      T* dkg = dk + b * Tn * s.kv_rs + g * hd;
      T* dvg = dv + b * Tn * s.kv_rs + g * hd;
      transpose_rows(vt, vg, s.kv_rs, Tn, hd);
      if (cap > 0) transpose_rows(kt, kg, s.kv_rs, Tn, hd);
      for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
        const bool acc = h > g * rep;  // dk, dv: the group's first head writes, the others add
        const T* qh = q + b * Tn * s.q_rs + h * hd;
        T* dqh = dq + b * Tn * s.q_rs + h * hd;
        const T* P = att + (b * s.H + h) * Tn * Tn;
        const T* dyh = dy + b * Tn * s.y_rs + h * hd;
        for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
          const int64_t r1 = std::min(Tn, r0 + kBlock), rn = r1 - r0, k0 = first_key(s, r0);
          // dP rows r0..r1 (keys k0..r1), then dS in place
          gemm<T>(rn, r1 - k0, hd, dyh + r0 * s.y_rs, s.y_rs, 1, vt + k0, Tn, dS + r0 * Tn + k0, Tn, false);
          if (cap > 0) gemm<T>(rn, r1 - k0, hd, qh + r0 * s.q_rs, s.q_rs, 1, kt + k0, Tn, U + k0, Tn, false);
          for (int64_t t = r0; t < r1; ++t) {
            const int64_t lo = first_key(s, t);
            const T* p = P + t * Tn;
            T* ds = dS + t * Tn;
            T sum = 0;
            for (int64_t j = lo; j <= t; ++j) sum += p[j] * ds[j];
            if (cap > 0) {
              const T* u = U + (t - r0) * Tn;
              for (int64_t j = lo; j <= t; ++j) {
                const T th = std::tanh(u[j] * scale / cap);
                ds[j] = p[j] * (ds[j] - sum) * scale * (T(1) - th * th);
              }
            } else {
              for (int64_t j = lo; j <= t; ++j) ds[j] = p[j] * (ds[j] - sum) * scale;
            }
            for (int64_t j = 0; j < lo; ++j) ds[j] = 0;
            for (int64_t j = t + 1; j < Tn; ++j) ds[j] = 0;
          }
          // dv for key rows r0..r1 sums over the query rows t ≥ r0 that see them
          gemm<T>(rn, hd, last_query(s, r1) - r0, P + r0 * Tn + r0, 1, Tn, dyh + r0 * s.y_rs, s.y_rs,
                  dvg + r0 * s.kv_rs, s.kv_rs, acc);
        }
        for (int64_t r0 = 0; r0 < Tn; r0 += kBlock) {
          const int64_t r1 = std::min(Tn, r0 + kBlock), rn = r1 - r0, k0 = first_key(s, r0);
          gemm<T>(rn, hd, r1 - k0, dS + r0 * Tn + k0, Tn, 1, kg + k0 * s.kv_rs, s.kv_rs, dqh + r0 * s.q_rs, s.q_rs,
                  false);
          gemm<T>(rn, hd, last_query(s, r1) - r0, dS + r0 * Tn + r0, 1, Tn, qh + r0 * s.q_rs, s.q_rs,
                  dkg + r0 * s.kv_rs, s.kv_rs, acc);
        }
      }
    }
  });
}

#define CALIB_ATTENTION(T)                                                                                       \
  template void attention_forward<T>(const AttnShape&, T*, T*, const T*, const T*, const T*, T*, int);          \
  template void attention_backward<T>(const AttnShape&, T*, T*, T*, const T*, const T*, const T*, const T*,     \
                                      const T*, T*, int);
CALIB_ATTENTION(float)
CALIB_ATTENTION(double)
#undef CALIB_ATTENTION

}  // namespace calib::model
