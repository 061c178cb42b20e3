// The CUDA kernels of the GPT model (issue 9), one concern per file, forward and backward side by
// side, mirroring kernels.h on the CPU:
//   encoder_cuda.cu    x0 = wte[tok] + wpe[pos]; deterministic embedding gradients
//   layernorm_cuda.cu  fused LayerNorm forward / backward (warp per row), parameter gradients
//   gelu_cuda.cu       GELU (tanh) with the fc bias folded in, forward / backward
// and of the Llama family (llama_cuda.cu), beside them:
//   rmsnorm_cuda.cu    RMSNorm (w or 1 + w) forward / backward, parameter gradients
//   rope_cuda.cu       rotary embeddings of q and k (and the inverse rotation of their gradients)
//   glu_cuda.cu        the gated MLP's act(gate) ⊙ up (SiLU or tanh-GELU), forward / backward
//   encoder_cuda.cu    also the scaled embedding without positions; reduce_cuda.cu also bias adds
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

// The activations (activation.h's formulas on the CPU): GELU with the tanh approximation and SiLU, value and slope.
constexpr float kGeluS = 0.7978845608028654f;  // √(2/π)
__device__ __forceinline__ float gelu_tanh(float x) {
  return 0.5f * x * (1.f + tanhf(kGeluS * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float gelu_tanh_grad(float x) {
  const float th = tanhf(kGeluS * (x + 0.044715f * x * x * x));
  return 0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * kGeluS * (1.f + 3.f * 0.044715f * x * x);
}
__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }
__device__ __forceinline__ float silu_grad(float x) {
  const float sg = 1.f / (1.f + __expf(-x));
  return sg * (1.f + x * (1.f - sg));
}

inline unsigned grid_for(int64_t n, int threads, int64_t cap = int64_t(1) << 20) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b < cap ? b : cap);
}

// Rows per partial sum of the column reductions (bias / LayerNorm parameter gradients).
constexpr int kColRows = 32;
inline int64_t col_chunks(int64_t N) { return (N + kColRows - 1) / kColRows; }

// ---- encoder_cuda.cu: x0 = wte[tok]·scale (+ wpe[pos] when wpe is not null)
cudaError_t encoder_forward(float* x, const int32_t* inp, const float* wte, const float* wpe, int B, int T, int C,
                            float scale = 1.f);
// dwpe[t] += Σ_b dres[b, t];  dwte[tok] += Σ over the positions of tok (host-built buckets:
// uniq[u] a token, pos[offs[u] .. offs[u+1]) its positions in increasing order).
// (dwpe may be null; the token gradients are scaled by scale)
cudaError_t encoder_backward(float* dwte, float* dwpe, const float* dres, const int32_t* uniq, const int32_t* offs,
                             const int32_t* pos, int n_uniq, int B, int T, int C, float scale = 1.f);

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
// the same (dinp may alias dout), and dbias[c] += Σ_rows dinp[·, c] as colsum_add(dbias, dinp, …) adds it, bit for bit
template <typename A>
cudaError_t gelu_backward_bias_grad(A* dinp, const A* inp, const float* bias, const A* dout, int N, int OC,
                                    float* dbias, float* partial);

// ---- attention_cuda.cu: qkv (B,T,3C) ↔ q,k,v (B,NH,T,hs)
template <typename A>
cudaError_t permute_qkv(A* q, A* k, A* v, const A* qkv, const float* bias, int B, int T, int NH, int hs);
template <typename A>
cudaError_t unpermute_qkv(A* dqkv, const A* dq, const A* dk, const A* dv, int B, int T, int NH, int hs);
// dqkv (N, 3C) ← dq, dk, dv (N, C each), and dbias[j] += Σ_rows dqkv[·, j] as colsum_add(dbias, dqkv, …) adds it
template <typename A>
cudaError_t join_qkv_bias_grad(A* dqkv, const A* dq, const A* dk, const A* dv, int N, int C, float* dbias,
                               float* partial);
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

// ---- rmsnorm_cuda.cu: y = x·r·w' (w' = w, or 1 + w with plus_one), r = 1/√(mean(x²) + eps) kept in rstd;
// y is written to out_a and/or added to out_f (either may be null).
template <typename A>
cudaError_t rmsnorm_forward(A* out_a, float* out_f, float* rstd, const float* inp, const float* w, bool plus_one,
                            float eps, int N, int C);
// dx = r·(dn − n·mean(dn·n)), dn = w'·dout: added to dinp_f when not null; dinp_a (may be null) receives the
// updated dinp_f, or dx when dinp_f is null, in A.
template <typename A>
cudaError_t rmsnorm_backward(float* dinp_f, A* dinp_a, const float* dout, const float* inp, const float* w,
                             const float* rstd, bool plus_one, int N, int C);
// dw += Σ_rows dout·x·r; partial: col_chunks(N) × C floats.
cudaError_t rmsnorm_param_grads(float* dw, const float* dout, const float* inp, const float* rstd, int N, int C,
                                float* partial);

// ---- rope_cuda.cu: rotates, in place, the `heads` vectors of hd of N rows (stride rs) at position row % T;
// sign +1 forward, −1 the inverse rotation (gradients); cos / sin: fp32 tables, T × hd/2 at least.
template <typename A>
cudaError_t rope_apply(A* x, const float* cos, const float* sin, int N, int T, int heads, int hd, int rs, float sign);

// ---- glu_cuda.cu: out = act(gate) ⊙ up, act = SiLU (silu) or tanh-GELU; the backward writes
// dgate = act'(gate)·up·dout and dup = act(gate)·dout (dgate may alias gate, dup may alias up).
template <typename A>
cudaError_t glu_forward(A* out, const A* gate, const A* up, int64_t n, bool silu);
template <typename A>
cudaError_t glu_backward(A* dgate, A* dup, const A* dout, const A* gate, const A* up, int64_t n, bool silu);

// ---- reduce_cuda.cu
// out[c] += Σ_i x[i, c]; partial: col_chunks(N) × C floats
template <typename T>
cudaError_t colsum_add(float* out, const T* x, int N, int C, float* partial);
// Second stage of the column reductions: for j < ld, Σ_k partial[k·ld + j] (k in order) is added
// to out0[j] (j < split) or out1[j − split].
cudaError_t colsum_final(float* out0, float* out1, int split, const float* partial, int n_chunks, int ld);
// out[i, c] = res[i, c] + bias[c]
cudaError_t residual_bias(float* out, const float* res, const float* bias, int64_t N, int C);
// x[i, c] += bias[c] (rounded to A once)
template <typename A>
cudaError_t bias_add(A* x, const float* bias, int64_t N, int C);
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
