// The CUDA kernels of the GPT model (issue 9), one concern per file, forward and backward side by
// side, mirroring kernels.h on the CPU:
//   encoder_cuda.cu    x0 = wte[tok] + wpe[pos]; deterministic embedding gradients
//   layernorm_cuda.cu  fused LayerNorm forward / backward (warp per row), parameter gradients
//   gelu_cuda.cu       GELU (tanh) with the fc bias folded in, forward / backward
//   attention_cuda.cu  head permutes, causal softmax forward / backward (the products are cuBLAS)
//   reduce_cuda.cu     column sums (bias gradients), residual + bias, casts, fills, adds
//   adamw_cuda.cu      AdamW with fp32 master weights (+ the compute copy), gradient sum of squares
//   eval_cuda.cu       evaluation statistics of softmax(softcap(z/T)) per row
// Templates on the activation type A: float (fp32 mode) or __nv_bfloat16 (bf16 mixed precision).
// Every reduction has a fixed order (no floating-point atomics): results are reproducible.
// Launchers return the launch's cudaError_t (cudaGetLastError); the caller checks it.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace calib::model::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <typename A>
__device__ __forceinline__ A from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

// Warp-wide sum / max by butterfly shuffles (every lane gets the result, in a fixed order).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Tree reduction over a block's shared slots [0, N) (N a power of two, N = blockDim.x): after a barrier,
// merge(i, j) folds slot j into slot i for i < w, w = N/2 … 1, a barrier after each level; the result is
// in slot 0. Fixed order, so deterministic.
template <int N, class Merge>
__device__ __forceinline__ void block_tree(Merge merge) {
  const int tid = threadIdx.x;
  __syncthreads();
  for (int w = N / 2; w > 0; w >>= 1) {
    if (tid < w) merge(tid, tid + w);
    __syncthreads();
  }
}

// s = softcap(z/T) = c·tanh(z/(T·c)) when a cap c > 0 is set, else z/T (inv_cap = 1/c).
__device__ __forceinline__ float softcap_logit(float z, float inv_t, float cap, float inv_cap) {
  const float s = z * inv_t;
  return cap > 0.f ? cap * tanhf(s * inv_cap) : s;
}

inline unsigned grid_for(int64_t n, int threads, int64_t cap = int64_t(1) << 20) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b < cap ? b : cap);
}

// Rows per partial sum of the column reductions (bias / LayerNorm parameter gradients).
constexpr int kColRows = 32;
inline int64_t col_chunks(int64_t N) { return (N + kColRows - 1) / kColRows; }

// ---- encoder_cuda.cu
cudaError_t encoder_forward(float* x, const int32_t* inp, const float* wte, const float* wpe, int B, int T, int C);
// dwpe[t] += Σ_b dres[b, t];  dwte[tok] += Σ over the positions of tok (host-built buckets:
// uniq[u] a token, pos[offs[u] .. offs[u+1]) its positions in increasing order).
cudaError_t encoder_backward(float* dwte, float* dwpe, const float* dres, const int32_t* uniq, const int32_t* offs,
                             const int32_t* pos, int n_uniq, int B, int T, int C);

// ---- layernorm_cuda.cu (eps 1e-5, biased variance)
template <typename A>
cudaError_t layernorm_forward(A* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                              int N, int C);
// dinp += dx; dinp_a (may be null) receives a copy of the updated dinp in A.
template <typename A>
cudaError_t layernorm_backward(float* dinp, A* dinp_a, const float* dout, const float* inp, const float* w,
                               const float* mean, const float* rstd, int N, int C);
// dw += Σ_rows dout·x̂, db += Σ_rows dout; partial: col_chunks(N) × 2C floats.
cudaError_t layernorm_param_grads(float* dw, float* db, const float* dout, const float* inp, const float* mean,
                                  const float* rstd, int N, int C, float* partial);

// ---- gelu_cuda.cu: out = gelu(inp + bias[col]) over N rows of OC columns
template <typename A>
cudaError_t gelu_forward(A* out, const A* inp, const float* bias, int64_t N, int OC);
// dinp = dout · gelu'(inp + bias) (dinp may alias dout)
template <typename A>
cudaError_t gelu_backward(A* dinp, const A* inp, const float* bias, const A* dout, int64_t N, int OC);

// ---- attention_cuda.cu: qkv (B,T,3C) ↔ q,k,v (B,NH,T,hs)
template <typename A>
cudaError_t permute_qkv(A* q, A* k, A* v, const A* qkv, const float* bias, int B, int T, int NH, int hs);
template <typename A>
cudaError_t unpermute_qkv(A* dqkv, const A* dq, const A* dk, const A* dv, int B, int T, int NH, int hs);
// x (B,T,C) → y (B,NH,T,hs) and back
template <typename A>
cudaError_t permute_heads(A* y, const A* x, int B, int T, int NH, int hs);
template <typename A>
cudaError_t unpermute_heads(A* x, const A* y, int B, int T, int NH, int hs);
// P = causal softmax of the rows of S (BH blocks of T×T, already scaled); entries after the row are 0
// up to the end of the row's query block of blk rows (what the blocked products read)
template <typename A>
cudaError_t softmax_forward(A* P, const A* S, int BH, int T, int blk);
// dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, in place over dP (0 after the row, up to the block's end)
template <typename A>
cudaError_t softmax_backward(A* dPS, const A* P, int BH, int T, int blk, float scale);

// ---- reduce_cuda.cu
// out[c] += Σ_i x[i, c]; partial: col_chunks(N) × C floats
template <typename T>
cudaError_t colsum_add(float* out, const T* x, int N, int C, float* partial);
// Second stage of the column reductions: for j < ld, Σ_k partial[k·ld + j] (k in order) is added
// to out0[j] (j < split) or out1[j − split].
cudaError_t colsum_final(float* out0, float* out1, int split, const float* partial, int n_chunks, int ld);
// out[i, c] = res[i, c] + bias[c]
cudaError_t residual_bias(float* out, const float* res, const float* bias, int64_t N, int C);
template <typename A>
cudaError_t cast_from_f32(A* dst, const float* src, int64_t n);
cudaError_t fill_f32(float* x, float v, int64_t n);
cudaError_t add_f32(float* dst, const float* src, int64_t n);  // dst += src
template <typename A>
cudaError_t gather_rows(A* dst, const A* src, const int32_t* rows, int n, int C);

// ---- adamw_cuda.cu
// PyTorch AdamW on [0, n) (see adamw.cc); pc (may be null) receives the updated weights in A.
template <typename A>
cudaError_t adamw_update(float* p, const float* g, float* m, float* v, A* pc, int64_t n, float b1, float b2, float eps,
                         float gs, float step_size, float bc2_sqrt, float shrink);
// out[c] = Σ_{i ∈ [begin[c], end[c])} g[i]² in float64, one block per chunk (fixed order)
cudaError_t sumsq_chunks(double* out, const float* g, const int64_t* begin, const int64_t* end, int n_chunks);

// ---- eval_cuda.cu: per-row statistics of s = softcap(z/T) over z (n × V, fp32, transformed in place)
struct RowStatsArgs {
  float* z;
  int n;
  int64_t V;
  float inv_t, cap;
  const int32_t* targets;  // n entries (the evaluated rows' targets) or null
  int32_t ignore_index;
  int top_k;
  const int32_t* option_ids;
  int n_options;
  // outputs, n entries each (top: n·top_k, options: n·n_options)
  int32_t* argmax;
  float* p_target;
  float* nll;
  float* p_max;
  float* entropy;
  float* lse;
  int32_t* top_ids;
  float* top_p;
  float* option_logits;
};
cudaError_t row_stats(const RowStatsArgs& a);

}  // namespace calib::model::cuda
