// Causal multi-head attention on the GPU, the parts that are not matrix products (attention.cc on
// the CPU; the products S = q·kᵀ, y = P·v and their gradients are cuBLAS strided-batched GEMMs
// over the B·NH heads, see gpt_cuda.cu):
//   permutes between qkv (B,T,3C) / x (B,T,C) and per-head (B,NH,T,hs) layouts; the qkv bias is
//   added while permuting (the qkv matmul stores its product without it)
//   causal softmax forward (warp per row, scores in the activation type, fp32 arithmetic,
//   probabilities out, zeros after the row up to the end of its query block) and backward
//   dS = P ⊙ (dP − Σ P⊙dP)·scale in place over dP
#include <cfloat>

#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

constexpr int kWarps = 8;

// One block per token row (b, t), threads over its C = NH·hs columns: the row of qkv / x is read
// contiguously and each head's hs values land contiguously in (B, NH, T, hs); 32-bit index math.
template <typename A>
__global__ void permute_qkv_kernel(A* q, A* k, A* v, const A* qkv, const float* bias, int T, int NH, int hs,
                                   int rows) {
  const int C = NH * hs;
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const int b = row / T, t = row - b * T;
    const A* src = qkv + int64_t(row) * 3 * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const int h = c / hs, d = c - h * hs;
      const int64_t i = ((int64_t(b) * NH + h) * T + t) * hs + d;
      q[i] = from_f<A>(to_f(src[c]) + (bias ? bias[c] : 0.f));
      k[i] = from_f<A>(to_f(src[C + c]) + (bias ? bias[C + c] : 0.f));
      v[i] = from_f<A>(to_f(src[2 * C + c]) + (bias ? bias[2 * C + c] : 0.f));
    }
  }
}

template <typename A>
__global__ void unpermute_qkv_kernel(A* dqkv, const A* dq, const A* dk, const A* dv, int T, int NH, int hs, int rows) {
  const int C = NH * hs;
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const int b = row / T, t = row - b * T;
    A* dst = dqkv + int64_t(row) * 3 * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const int h = c / hs, d = c - h * hs;
      const int64_t i = ((int64_t(b) * NH + h) * T + t) * hs + d;
      dst[c] = dq[i];
      dst[C + c] = dk[i];
      dst[2 * C + c] = dv[i];
    }
  }
}

// dqkv (N, 3C) ← dq | dk | dv (N, C each) over the rows of chunk blockIdx.y, one thread per column of dqkv, with the
// column sums into partial[chunk, column] (colsum_add's chunks and order)
template <typename A>
__global__ void join_qkv_colsum_kernel(A* dqkv, const A* dq, const A* dk, const A* dv, int N, int C, float* partial) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y;
  if (j >= 3 * C) return;
  const A* src = j < C ? dq : j < 2 * C ? dk : dv;
  const int c = j < C ? j : j < 2 * C ? j - C : j - 2 * C;
  const int r0 = k * kColRows, r1 = min(N, r0 + kColRows);
  float s = 0.f;
  for (int r = r0; r < r1; ++r) {
    const A x = src[int64_t(r) * C + c];
    dqkv[int64_t(r) * 3 * C + j] = x;
    s += to_f(x);
  }
  partial[int64_t(k) * 3 * C + j] = s;
}

// toHeads: y (B,NH,T,hs) ← x (B,T,C); else x ← y
template <typename A, bool kToHeads>
__global__ void permute_heads_kernel(A* y, A* x, int T, int NH, int hs, int rows) {
  const int C = NH * hs;
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const int b = row / T, t = row - b * T;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const int h = c / hs, d = c - h * hs;
      const int64_t i = ((int64_t(b) * NH + h) * T + t) * hs + d;
      const int64_t xi = int64_t(row) * C + c;
      if (kToHeads) y[i] = x[xi];
      else x[xi] = y[i];
    }
  }
}

inline int row_threads(int C) { return C >= 256 ? 256 : ((C + 31) / 32) * 32; }
inline unsigned row_grid(int rows) { return static_cast<unsigned>(rows < 1048576 ? rows : 1048576); }

// One warp per row (bh, t): P[j] = exp(S[j] − max)/Σ for j ≤ t, 0 for t < j < the end of the row's
// query block (the blocked products never read further).
__device__ __forceinline__ int block_end(int t, int T, int blk) { return min(T, (t / blk + 1) * blk); }

template <typename A>
__global__ void softmax_forward_kernel(A* P, const A* S, int64_t rows, int T, int blk) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  const A* s = S + row * T;
  A* p = P + row * T;
  float m = -FLT_MAX;
  for (int j = lane; j <= t; j += 32) m = fmaxf(m, to_f(s[j]));
  m = warp_max(m);
  float sum = 0.f;
  for (int j = lane; j <= t; j += 32) sum += expf(to_f(s[j]) - m);
  const float inv = 1.f / warp_sum(sum);
  const int end = block_end(t, T, blk);
  for (int j = lane; j < end; j += 32) p[j] = from_f<A>(j <= t ? expf(to_f(s[j]) - m) * inv : 0.f);
}

// dS = P ⊙ (dP − Σ P⊙dP)·scale, in place over dP (each entry is read, then written, by one lane)
template <typename A>
__global__ void softmax_backward_kernel(A* dPS, const A* P, int64_t rows, int T, int blk, float scale) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  A* d = dPS + row * T;
  const A* p = P + row * T;
  float s = 0.f;
  for (int j = lane; j <= t; j += 32) s += to_f(p[j]) * to_f(d[j]);
  s = warp_sum(s);
  const int end = block_end(t, T, blk);
  for (int j = lane; j < end; j += 32) d[j] = from_f<A>(j <= t ? to_f(p[j]) * (to_f(d[j]) - s) * scale : 0.f);
}

}  // namespace

template <typename A>
cudaError_t permute_qkv(A* q, A* k, A* v, const A* qkv, const float* bias, int B, int T, int NH, int hs) {
  const int rows = B * T;
  permute_qkv_kernel<A><<<row_grid(rows), row_threads(NH * hs)>>>(q, k, v, qkv, bias, T, NH, hs, rows);
  return cudaGetLastError();
}

template <typename A>
cudaError_t unpermute_qkv(A* dqkv, const A* dq, const A* dk, const A* dv, int B, int T, int NH, int hs) {
  const int rows = B * T;
  unpermute_qkv_kernel<A><<<row_grid(rows), row_threads(NH * hs)>>>(dqkv, dq, dk, dv, T, NH, hs, rows);
  return cudaGetLastError();
}

template <typename A>
cudaError_t join_qkv_bias_grad(A* dqkv, const A* dq, const A* dk, const A* dv, int N, int C, float* dbias,
                               float* partial) {
  const int chunks = static_cast<int>(col_chunks(N));
  join_qkv_colsum_kernel<A><<<dim3((3 * C + 127) / 128, chunks), 128>>>(dqkv, dq, dk, dv, N, C, partial);
  if (cudaError_t e = cudaGetLastError()) return e;
  return colsum_final(dbias, nullptr, 3 * C, partial, chunks, 3 * C);
}

template <typename A>
cudaError_t permute_heads(A* y, const A* x, int B, int T, int NH, int hs) {
  const int rows = B * T;
  permute_heads_kernel<A, true><<<row_grid(rows), row_threads(NH * hs)>>>(y, const_cast<A*>(x), T, NH, hs, rows);
  return cudaGetLastError();
}

template <typename A>
cudaError_t unpermute_heads(A* x, const A* y, int B, int T, int NH, int hs) {
  const int rows = B * T;
  permute_heads_kernel<A, false><<<row_grid(rows), row_threads(NH * hs)>>>(const_cast<A*>(y), x, T, NH, hs, rows);
  return cudaGetLastError();
}

template <typename A>
cudaError_t softmax_forward(A* P, const A* S, int BH, int T, int blk) {
  const int64_t rows = int64_t(BH) * T;
  softmax_forward_kernel<A><<<grid_for(rows, kWarps, int64_t(1) << 30), kWarps * 32>>>(P, S, rows, T, blk);
  return cudaGetLastError();
}

template <typename A>
cudaError_t softmax_backward(A* dPS, const A* P, int BH, int T, int blk, float scale) {
  const int64_t rows = int64_t(BH) * T;
  softmax_backward_kernel<A><<<grid_for(rows, kWarps, int64_t(1) << 30), kWarps * 32>>>(dPS, P, rows, T, blk, scale);
  return cudaGetLastError();
}

#define CALIB_ATT(A)                                                                                           \
  template cudaError_t permute_qkv<A>(A*, A*, A*, const A*, const float*, int, int, int, int);                \
  template cudaError_t unpermute_qkv<A>(A*, const A*, const A*, const A*, int, int, int, int);                \
  template cudaError_t join_qkv_bias_grad<A>(A*, const A*, const A*, const A*, int, int, float*, float*);      \
  template cudaError_t permute_heads<A>(A*, const A*, int, int, int, int);                                    \
  template cudaError_t unpermute_heads<A>(A*, const A*, int, int, int, int);                                  \
  template cudaError_t softmax_forward<A>(A*, const A*, int, int, int);                                      \
  template cudaError_t softmax_backward<A>(A*, const A*, int, int, int, float);
CALIB_ATT(float)
CALIB_ATT(bf16)
#undef CALIB_ATT

}  // namespace calib::model::cuda
