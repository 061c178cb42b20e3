// Kernels of the cuBLAS engine's fp32-slab plan (linear_ce_blas.cu; bf16 inputs off Hopper, with D
// not a multiple of 8 or misaligned inputs, and softcapped chunks). cuBLAS writes a block of raw logits X = E·Cᵀ (fp32) into a slab; these kernels turn the slab into
// logsumexp statistics, and then, in place, into the bf16 gradient block G that the next two
// cuBLAS GEMMs read. One warp per slab row, fixed reduction orders: deterministic.
#pragma once
#include "linear_ce_common.cuh"

namespace calib::lce {

struct SlabParams {
  float* X;              // slab row r holds token row r0 + r; ldX floats per row (a multiple of 256)
  int64_t ldX;
  int64_t r0, nrows;     // token rows of the block
  int64_t v0, ncols, V;  // vocabulary columns of the block
  const int32_t* inv;    // token row → valid index, or −1 for an ignored token
  const int32_t* targets;
  const float* bias;
  float inv_t, cap;
  // logsumexp state of each valid row, carried across the vocabulary blocks
  float* run_m;
  float* run_l;
  double* run_s;  // Σ_v s (dense smoothing term only)
  float* tgt;     // the target's final logit
  int first, last, dense;
  // outputs of the last block
  const double* s_rank1;  // Σ_v s in rank-1 form, or null
  float* lse_valid;
  double* row_loss;
  float* lse_out;  // per token, or null
  double T, eps;
  // gradient
  const float* w;
  float q_target, q_dense;
};

// A row of the slab is handled by WPR warps: one warp for short rows (a vocabulary block, 8 rows per
// 256-thread CTA), a whole CTA for long ones (a chunk of whole rows: V columns). Each thread takes 8
// consecutive columns of a segment of 256·WPR columns (the slab is padded to whole segments).
template <int WPR>
struct RowGroup {
  static constexpr int kThreads = 32 * WPR, kSeg = 8 * kThreads;
  int64_t row;  // slab row
  int t;        // thread in the group
  __device__ RowGroup() : row(int64_t(blockIdx.x) * (256 / kThreads) + threadIdx.x / kThreads), t(threadIdx.x % kThreads) {}
  __device__ static void sync() {
    if constexpr (WPR == 1) __syncwarp();
    else __syncthreads();
  }
};

__device__ __forceinline__ void load8(const float* x, float (&s)[8]) {
  const float4 a0 = *reinterpret_cast<const float4*>(x);
  const float4 a1 = *reinterpret_cast<const float4*>(x + 4);
  s[0] = a0.x, s[1] = a0.y, s[2] = a0.z, s[3] = a0.w, s[4] = a1.x, s[5] = a1.y, s[6] = a1.z, s[7] = a1.w;
}

// Row statistics of one block: online (max, Σexp) per thread, merged over the row's threads in a
// fixed order and then into the row's running state; the last block writes lse, the row's loss
// and lse_out. Launch: 256 threads, nrows·WPR/8 CTAs.
template <int WPR>
__global__ void __launch_bounds__(256) slab_stats_kernel(const SlabParams p) {
  using G = RowGroup<WPR>;
  const G grp;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const bool live = grp.row < p.nrows;
  const int64_t n = p.r0 + grp.row;
  const int k = live ? __ldg(p.inv + n) : -1;
  if (WPR == 1 && k < 0) return;  // (with a CTA per row, every thread reaches the barrier)
  const int64_t y = k >= 0 ? int64_t(__ldg(p.targets + n)) - p.v0 : -1;
  const float* x = p.X + grp.row * p.ldX;
  const float* b = p.bias ? p.bias + p.v0 : nullptr;
  float m = neg_inf(), l = 0.f, sy = 0.f;
  double ss = 0.0;
  bool found = false;
  const int64_t ncols = k >= 0 ? p.ncols : 0;
  // two segments per step, both loaded before either is used (more bytes in flight per thread)
  auto fold = [&](float (&s)[8], int64_t c) {
    float mx = neg_inf();
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      if (c + e < ncols) {
        s[e] = transform(s[e], b ? __ldg(b + c + e) : 0.f, p.inv_t, p.cap);
        mx = fmaxf(mx, s[e]);
        if (c + e == y) sy = s[e], found = true;
        if (p.dense) ss += s[e];
      }
    }
    if (mx > m) {
      l = m == neg_inf() ? 0.f : l * __expf(m - mx);
      m = mx;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (c + e < ncols) l += __expf(s[e] - m);
  };
  for (int64_t c0 = 0; c0 < ncols; c0 += 2 * G::kSeg) {
    const int64_t c = c0 + grp.t * 8, c2 = c + G::kSeg;
    if (c >= ncols) break;
    float s[8], s2[8];
    load8(x + c, s);
    if (c2 < ncols) load8(x + c2, s2);
    fold(s, c);
    if (c2 < ncols) fold(s2, c2);
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
    const float l2 = __shfl_xor_sync(0xffffffffu, l, off);
    lse_combine(m, l, m2, l2);
    if (p.dense) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  }
  unsigned who = __ballot_sync(0xffffffffu, found);
  if (who) sy = __shfl_sync(0xffffffffu, sy, __ffs(who) - 1);
  if constexpr (WPR > 1) {  // then over the CTA's warps, in warp order
    __shared__ float sm[WPR], sl[WPR], st[WPR];
    __shared__ double sd[WPR];
    __shared__ int sf[WPR];
    if (lane == 0) sm[warp] = m, sl[warp] = l, sd[warp] = ss, st[warp] = sy, sf[warp] = who != 0;
    __syncthreads();
    if (threadIdx.x != 0) return;
    m = sm[0], l = sl[0], ss = sd[0], sy = st[0], who = sf[0];
    for (int w = 1; w < WPR; ++w) {
      lse_combine(m, l, sm[w], sl[w]);
      ss += sd[w];
      if (sf[w]) sy = st[w], who = 1;
    }
    if (k < 0) return;
  } else if (lane != 0) {
    return;
  }
  float M = m, L = l;
  double S = ss;
  if (!p.first) {
    M = p.run_m[k], L = p.run_l[k];
    lse_combine(M, L, m, l);
    if (p.dense) S += p.run_s[k];
  }
  if (who) p.tgt[k] = sy;
  if (!p.last) {
    p.run_m[k] = M, p.run_l[k] = L;
    if (p.dense) p.run_s[k] = S;
    return;
  }
  const double lse = double(M) + log(double(L));
  const double t = who ? double(sy) : double(p.tgt[k]);
  const double ssum = p.dense ? S : (p.s_rank1 ? p.s_rank1[k] : 0.0);
  double loss = lse - (1.0 - p.eps) * t;
  if (p.eps > 0) loss -= p.eps / double(p.V) * ssum;
  p.row_loss[k] = p.T * loss;
  p.lse_valid[k] = static_cast<float>(lse);
  if (p.lse_out) p.lse_out[n] = static_cast<float>(lse);
}

// The slab's logits become G = w·(softmax − q)·κ in place, as bf16: row r of G starts where slab
// row r starts (leading dimension 2·ldX bf16). The group walks its row one segment of S columns at
// a time; segment j's bf16 output covers fp32 columns [jS/2, (j+1)S/2), which belong to segments
// ≤ j already read (j = 0: read before the barrier). Rows of ignored tokens become 0.
// 8 CTAs per SM (≤ 32 registers, no spills): one wave for 8192 rows; measured 5.2 → 4.3 ms per call
// at the headline shape (the statistics kernel spills at that bound and is left at 4 CTAs).
template <int WPR>
__global__ void __launch_bounds__(256, 8) slab_grad_kernel(const SlabParams p) {
  using G = RowGroup<WPR>;
  const G grp;
  if (grp.row >= p.nrows) return;  // with a CTA per row, the whole CTA: no barrier is left half-reached
  const auto [k, lse, w, y] = grad_row(p.inv, p.targets, p.lse_valid, p.w, p.r0 + grp.row, p.v0);
  float* x = p.X + grp.row * p.ldX;
  uint16_t* g = reinterpret_cast<uint16_t*>(x);
  const float* b = p.bias ? p.bias + p.v0 : nullptr;
  for (int64_t c0 = 0; c0 < p.ncols; c0 += G::kSeg) {
    const int64_t c = c0 + grp.t * 8;
    float s[8];
    if (k >= 0 && c < p.ncols) load8(x + c, s);
    G::sync();
    if (c >= p.ncols) continue;
    uint16_t h[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float gv = 0.f;
      if (k >= 0 && c + e < p.ncols) {
        const float sv = transform(s[e], b ? __ldg(b + c + e) : 0.f, p.inv_t, p.cap);
        gv = logit_grad(sv, lse, c + e == y, p.q_dense, p.q_target, p.cap) * w;
      }
      h[e] = bf16_bits(gv);
    }
    *reinterpret_cast<uint4*>(g + c) = make_uint4(pack2(h[0], h[1]), pack2(h[2], h[3]), pack2(h[4], h[5]), pack2(h[6], h[7]));
  }
}

// inv[n] = valid index of token row n, or −1.
__global__ void inverse_rows_kernel(const int32_t* rows, int64_t count, int64_t n, int32_t* inv) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t i0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = i0; i < n; i += stride) inv[i] = -1;
  __syncthreads();  // one block: every −1 is written before the scatter
  for (int64_t j = i0; j < count; j += stride) inv[rows[j]] = static_cast<int32_t>(j);
}

}  // namespace calib::lce
