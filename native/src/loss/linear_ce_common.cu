// The common kernels of the CUDA loss (declared, with their launchers, in linear_ce_common.cuh).
#include <algorithm>

#include "linear_ce_common.cuh"
#include "linear_ce_plan.h"

namespace calib::lce {
namespace {

__global__ void merge_kernel(const MergeParams p) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p.nrows) return;
  int64_t at = j, gj = p.row0 + j;  // partials / tgt index, valid-row index
  if (p.inv) {
    const int k = p.inv[p.row0 + j];
    if (k < 0) return;
    at = gj = k;
  }
  float M = neg_inf();
  for (int s = 0; s < p.splits; ++s) M = fmaxf(M, p.part_m[s * p.ldp + at]);
  double L = 0, SS = 0;
  for (int s = 0; s < p.splits; ++s) {
    const float ls = p.part_l[s * p.ldp + at];
    if (ls > 0.f) L += double(ls) * exp(double(p.part_m[s * p.ldp + at]) - double(M));
    if (p.dense) SS += p.part_s[s * p.ldp + at];
  }
  const double lse = double(M) + log(L);
  const double ssum = p.dense ? SS : (p.s_rank1 ? p.s_rank1[gj] : 0.0);
  double loss = lse - (1.0 - p.eps) * double(p.tgt[at]);
  if (p.eps > 0) loss -= p.eps / p.V * ssum;
  p.row_loss[gj] = p.T * loss;
  p.lse_valid[gj] = static_cast<float>(lse);
  if (p.lse_out) p.lse_out[p.rows[gj]] = static_cast<float>(lse);
}

// Column sums of a gradient block (the bias gradient): part[q][j] = Σ_{r ∈ q} G[r][j].
template <int PLANES>
__global__ void gsum_partial_kernel(const void* G, int64_t ldG, int64_t nrows, int64_t ncols, int64_t rows_per,
                                    float* part) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= ncols) return;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per, r1 = r0 + rows_per < nrows ? r0 + rows_per : nrows;
  float s = 0.f;
  for (int64_t r = r0; r < r1; ++r) s += load_elem<PLANES == 1 ? kSrcBf16 : kSrcF32>(G, r * ldG + j);
  part[int64_t(blockIdx.y) * ncols + j] = s;
}

// dbias[j] = (init ? init_term : dbias[j]) + Σ_q part[q][j], init_term = −ε/V·Σ_i w_i.
__global__ void gsum_final_kernel(const float* part, int nparts, int64_t ncols, float* dbias, int init,
                                  const double* wsum, double eta) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= ncols) return;
  float s = init ? (wsum ? static_cast<float>(-eta * *wsum) : 0.f) : dbias[j];
  for (int q = 0; q < nparts; ++q) s += part[q * ncols + j];
  dbias[j] = s;
}

// Device-memory calls: the ascending list of valid rows, their count, and the first
// out-of-range target (one block).
__global__ void prep_kernel(const int32_t* targets, int64_t n, int32_t ignore, int64_t V, int32_t* rows,
                            long long* count, unsigned long long* bad) {
  __shared__ int wsum[32];
  __shared__ long long base;
  if (threadIdx.x == 0) base = 0;
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  for (int64_t c0 = 0; c0 < n; c0 += blockDim.x) {
    const int64_t i = c0 + threadIdx.x;
    const int32_t t = i < n ? targets[i] : ignore;
    const bool valid = i < n && t != ignore;
    if (valid && (t < 0 || t >= V)) atomicMin(bad, static_cast<unsigned long long>(i));
    const unsigned bal = __ballot_sync(0xffffffffu, valid);
    if (lane == 0) wsum[warp] = __popc(bal);
    __syncthreads();
    int off = 0, total = 0;
    for (int w = 0; w < nwarps; ++w) {
      off += w < warp ? wsum[w] : 0;
      total += wsum[w];
    }
    if (valid) rows[base + off + __popc(bal & ((1u << lane) - 1u))] = static_cast<int32_t>(i);
    __syncthreads();
    if (threadIdx.x == 0) base += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) *count = base;
}

// w[j] = d(reduced loss)/d(loss_j) · upstream gradient (device-memory calls).
__global__ void weights_kernel(const int32_t* rows, int64_t count, const float* grad_output, int per_token,
                               int mean, float* w) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= count) return;
  float g = 1.f;
  if (grad_output) g = per_token ? grad_output[rows[j]] : grad_output[0];
  if (mean) g = static_cast<float>(double(g) / double(count));
  w[j] = g;
}

// First index of a NaN/Inf element (atomicMin into *bad).
__global__ void finite_kernel(const void* x, int bf16, int64_t count, unsigned long long* bad) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    bool nf;
    if (bf16) nf = (static_cast<const uint16_t*>(x)[i] & 0x7f80u) == 0x7f80u;
    else nf = (__float_as_uint(static_cast<const float*>(x)[i]) & 0x7f800000u) == 0x7f800000u;
    if (nf) atomicMin(bad, static_cast<unsigned long long>(i));
  }
}

// loss = Σ row_loss (sum) or its mean (NaN with no valid token), one block, float64.
__global__ void loss_reduce_kernel(const double* row_loss, int64_t count, int mean, float* loss) {
  double t = block_sum_f64(row_loss, count);
  if (threadIdx.x == 0) {
    if (mean) t = count > 0 ? t / double(count) : __longlong_as_double(0x7ff8000000000000ll);
    *loss = static_cast<float>(t);
  }
}

__global__ void scatter_loss_kernel(const double* row_loss, const int32_t* rows, int64_t count, float* loss) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < count) loss[rows[j]] = static_cast<float>(row_loss[j]);
}

__global__ void fill_kernel(float* x, int64_t n, float value) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = value;
}


}  // namespace

void launch_merge(const MergeParams& p, cudaStream_t s) {
  merge_kernel<<<static_cast<unsigned>(ceil_div(p.nrows, 256)), 256, 0, s>>>(p);
}

void launch_bias_grad(const void* G, int planes, int64_t ldG, int64_t nrows, int64_t ncols, int64_t rows_per,
                      float* part, float* dbias, bool init, const double* wsum, double eta, cudaStream_t s) {
  const int nparts = static_cast<int>(ceil_div(nrows, rows_per));
  const dim3 grid(static_cast<unsigned>(ceil_div(ncols, 256)), static_cast<unsigned>(nparts));
  if (planes == 1) gsum_partial_kernel<1><<<grid, 256, 0, s>>>(G, ldG, nrows, ncols, rows_per, part);
  else gsum_partial_kernel<3><<<grid, 256, 0, s>>>(G, ldG, nrows, ncols, rows_per, part);
  gsum_final_kernel<<<static_cast<unsigned>(ceil_div(ncols, 256)), 256, 0, s>>>(part, nparts, ncols, dbias, init ? 1 : 0,
                                                                               wsum, eta);
}

void launch_prep(const int32_t* targets, int64_t n, int32_t ignore, int64_t V, int32_t* rows, long long* count,
                 unsigned long long* bad, cudaStream_t s) {
  prep_kernel<<<1, 1024, 0, s>>>(targets, n, ignore, V, rows, count, bad);
}

void launch_finite(const void* x, bool bf16, int64_t count, int max_blocks, unsigned long long* bad, cudaStream_t s) {
  const int64_t blocks = std::min<int64_t>(ceil_div(count, 256), max_blocks);
  finite_kernel<<<static_cast<unsigned>(blocks), 256, 0, s>>>(x, bf16 ? 1 : 0, count, bad);
}

void launch_weights(const int32_t* rows, int64_t count, const float* grad_output, bool per_token, bool mean, float* w,
                    cudaStream_t s) {
  weights_kernel<<<static_cast<unsigned>(ceil_div(count, 256)), 256, 0, s>>>(rows, count, grad_output, per_token ? 1 : 0,
                                                                             mean ? 1 : 0, w);
}

void launch_loss_reduce(const double* row_loss, int64_t count, bool mean, float* loss, cudaStream_t s) {
  loss_reduce_kernel<<<1, 1024, 0, s>>>(row_loss, count, mean ? 1 : 0, loss);
}

void launch_scatter_loss(const double* row_loss, const int32_t* rows, int64_t count, float* loss, cudaStream_t s) {
  scatter_loss_kernel<<<static_cast<unsigned>(ceil_div(count, 256)), 256, 0, s>>>(row_loss, rows, count, loss);
}

void launch_fill(float* x, int64_t n, float value, cudaStream_t s) {
  fill_kernel<<<static_cast<unsigned>(std::min<int64_t>(ceil_div(n, 256), 4096)), 256, 0, s>>>(x, n, value);
}

}  // namespace calib::lce
