// What the two engines of the CUDA loss share (linear_ce_cuda.cu plans a call, then
// linear_ce_fused.cu or linear_ce_blas.cu runs it): the device arithmetic of a logit — transform,
// softcap, its gradient, the online logsumexp — and the common kernels, defined once in
// linear_ce_common.cu and launched through the functions below: the merge of statistics partials,
// the bias gradient's column sums, and the call's prologue and epilogue (valid rows, input checks,
// gradient weights, loss reduction). Every kernel is deterministic: no floating-point atomics,
// fixed reduction orders.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../cuda/mma.cuh"

namespace calib::lce {

using namespace calib::cu;

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

// c·tanh(u/c), accurate near 0 (expm1) and without overflow for large |u|.
__device__ __forceinline__ float softcap_apply(float u, float cap) {
  const float x = u / cap;
  const float em = expm1f(-2.f * fabsf(x));
  return cap * copysignf(-em / (2.f + em), x);
}

__device__ __forceinline__ float transform(float z, float b, float inv_t, float cap) {
  const float u = (z + b) * inv_t;
  return cap > 0.f ? softcap_apply(u, cap) : u;
}

// ∂loss/∂s of one final logit, before the token's weight: (softmax − q_dense)·κ − q_target·κ·[target],
// κ = 1 − tanh² the softcap derivative (1 without a softcap). One definition for every gradient kernel.
__device__ __forceinline__ float logit_grad(float s, float lse, bool is_target, float q_dense, float q_target, float cap) {
  float kap = 1.f;
  if (cap > 0.f) {
    const float t = s / cap;
    kap = 1.f - t * t;
  }
  float gv = (__expf(s - lse) - q_dense) * kap;
  if (is_target) gv -= q_target * kap;
  return gv;
}

// What a row kernel of the gradient needs of token row n: its valid index k (−1: ignored; the
// caller writes its G row as 0 outright, since exp(s − 0) may overflow and inf · 0 would be NaN),
// lse, weight, and the target's column relative to v0 (−1 when ignored).
struct GradRow {
  int k = -1;
  float lse = 0.f, w = 0.f;
  int64_t y = -1;
};
__device__ __forceinline__ GradRow grad_row(const int32_t* inv, const int32_t* targets, const float* lse_valid,
                                            const float* w, int64_t n, int64_t v0) {
  GradRow r;
  r.k = __ldg(inv + n);
  if (r.k >= 0) {
    r.lse = __ldg(lse_valid + r.k);
    r.w = __ldg(w + r.k);
    r.y = int64_t(__ldg(targets + n)) - v0;
  }
  return r;
}

// (m, l) ⊕ (m2, l2) for an online logsumexp: m the max, l = Σ exp(s − m).
__device__ __forceinline__ void lse_combine(float& m, float& l, float m2, float l2) {
  const float mn = fmaxf(m, m2);
  if (mn == neg_inf()) return;
  l = (m == neg_inf() ? 0.f : l * __expf(m - mn)) + (m2 == neg_inf() ? 0.f : l2 * __expf(m2 - mn));
  m = mn;
}

// Σ x[i] for i < n over one block of up to 1024 threads, in float64, in a fixed order (per-thread
// strided sums, then a shared-memory tree); the result in thread 0. Every thread must call it.
template <class X>
__device__ __forceinline__ double block_sum_f64(const X* x, int64_t n) {
  __shared__ double sh[1024];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  return sh[0];
}

template <int SRC>
__device__ __forceinline__ float load_elem(const void* base, int64_t i) {
  if constexpr (SRC == kSrcBf16) return bf16_float(__ldg(static_cast<const uint16_t*>(base) + i));
  else return __ldg(static_cast<const float*>(base) + i);
}

// Merges the split partials of each row: logsumexp, the row's loss, the lse outputs.
struct MergeParams {
  const float* part_m;
  const float* part_l;
  const double* part_s;
  int64_t ldp;
  int splits;
  int64_t row0, nrows;
  const float* tgt;
  const double* s_rank1;  // Σ_v s per valid row (rank-1 form), or null
  const int32_t* rows;
  float* lse_valid;  // per valid row
  double* row_loss;  // per valid row
  float* lse_out;    // per token, or null
  double T, eps, V;
  int dense;
  // With inv (token row → valid index or −1), j runs over token rows row0 + j, and the partials,
  // tgt and outputs are indexed by the valid index (a chunk of token rows).
  const int32_t* inv;
};

// ---------------------------------------------------------------------------------------
// Launchers of the common kernels (linear_ce_common.cu), on stream s; the caller checks the launch.

// merge_kernel: one thread per row of [row0, row0 + nrows).
void launch_merge(const MergeParams& p, cudaStream_t s);
// The bias gradient of a gradient block G (nrows × ncols, ldG elements a row, bf16 when planes = 1
// else fp32): column sums per part of `rows_per` rows into part, then
// dbias[j] = (init ? −eta·Σw (wsum, or 0 when null) : dbias[j]) + Σ_q part[q][j].
void launch_bias_grad(const void* G, int planes, int64_t ldG, int64_t nrows, int64_t ncols, int64_t rows_per,
                      float* part, float* dbias, bool init, const double* wsum, double eta, cudaStream_t s);
// The ascending list of valid rows, their count, and the first out-of-range target (bad[0]).
void launch_prep(const int32_t* targets, int64_t n, int32_t ignore, int64_t V, int32_t* rows, long long* count,
                 unsigned long long* bad, cudaStream_t s);
// The first index of a NaN/Inf element of x (float32, or bf16 bits) into *bad (atomicMin).
void launch_finite(const void* x, bool bf16, int64_t count, int max_blocks, unsigned long long* bad, cudaStream_t s);
// w[j] = d(reduced loss)/d(loss_j) · upstream gradient.
void launch_weights(const int32_t* rows, int64_t count, const float* grad_output, bool per_token, bool mean, float* w,
                    cudaStream_t s);
// loss = Σ row_loss or its mean (NaN with no valid token), float64.
void launch_loss_reduce(const double* row_loss, int64_t count, bool mean, float* loss, cudaStream_t s);
// loss[rows[j]] = row_loss[j] (reduction none).
void launch_scatter_loss(const double* row_loss, const int32_t* rows, int64_t count, float* loss, cudaStream_t s);
void launch_fill(float* x, int64_t n, float value, cudaStream_t s);

}  // namespace calib::lce
