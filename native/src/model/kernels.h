// The CPU kernels of the models, one concern per file, each layer's forward and backward
// side by side (llm.c train_gpt2.c style). Every kernel is a template on the scalar type:
// float is the training path (register-blocked gemm_acc, SIMD exp/tanh, the thread pool),
// double is the float64 reference used by the gradient checks. Both run the same blocked
// algorithms; only gemm<T>, exp and tanh differ.
//
// Determinism: every output element is produced by one thread in a fixed order, and
// reductions over rows (bias / norm / embedding gradients, norms) are split over
// columns or fixed chunks, never over threads, so results do not depend on the thread count
// (the fused loss op, which merges per-thread partials, is the one exception).
#pragma once
#include <cstdint>
#include <type_traits>

#include "../common/gemm.h"
#include "calib.h"

namespace calib::model {

// C[M×N] (+)= A[M×K]·B[K×N]; A read through strides, B and C row-major.
template <typename T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B, int64_t ldb,
                 T* C, int64_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    gemm_acc(M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
  } else {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        T s = accumulate ? C[i * ldc + j] : T(0);
        for (int64_t k = 0; k < K; ++k) s += A[i * a_rs + k * a_cs] * B[k * ldb + j];
        C[i * ldc + j] = s;
      }
  }
}

// ---- encoder.cc: x0[b,t] = wte[tok]·scale (+ wpe[t] when wpe is given; GPT-2: scale 1, Llama: no wpe)
template <typename T>
void encoder_forward(T* out, const int32_t* inp, const T* wte, const T* wpe, T scale, int64_t B, int64_t Tn, int64_t C,
                     int threads);
template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* inp, T scale, int64_t B, int64_t Tn, int64_t C,
                      int threads);

// ---- layernorm.cc: y = (x − mean)·rstd·w + b over rows of C, eps 1e-5; dinp is *added to*
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C,
                       int threads);
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C, int threads);

// ---- rmsnorm.cc: y = x·rstd·w' over rows of C, rstd = 1/√(mean(x²) + eps), w' = w or 1 + w
// (plus_one, Gemma). The forward writes out, or adds y to it (accumulate: a post-norm onto the
// residual stream); the backward *adds to* dinp and dw.
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* w, bool plus_one, double eps, int64_t N, int64_t C,
                     bool accumulate, int threads);
template <typename T>
void rmsnorm_backward(T* dinp, T* dw, const T* dout, const T* inp, const T* w, const T* rstd, bool plus_one, int64_t N,
                      int64_t C, int threads);

// ---- matmul.cc: out[N×OC] (+)= inp[N×IC]·Wᵀ + bias, W is OC×IC (nn.Linear); the forward reads
// the transposed copy wt (IC×OC). The backward writes dinp (or adds to it: accumulate_dinp, for
// several layers reading one input) and adds to dw, db.
template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols, int threads);
template <typename T>
void matmul_forward(T* out, const T* inp, const T* wt, const T* bias, int64_t N, int64_t IC, int64_t OC,
                    bool accumulate, int threads);
template <typename T>
void matmul_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t IC,
                     int64_t OC, int threads, bool accumulate_dinp = false);

// ---- attention.cc: causal (grouped-query) attention of q (B·T rows, H heads of hd) over k, v
// (KV heads of hd; KV divides H, query head h reads key/value head h/(H/KV)) → y (H heads of hd).
// att keeps the softmax probabilities (B, H, T, T). scratch: per thread attention_scratch(T, hd, softcap > 0).
struct AttnShape {
  int64_t B, Tn;              // sequences, tokens per sequence
  int64_t H, KV, hd;          // query heads, key/value heads, head size
  int64_t q_rs, kv_rs, y_rs;  // row strides (elements from one token to the next) of q/dq, k/v/dk/dv, y/dy
  double scale;               // logits scale·q·k
  double softcap;             // > 0: logits c·tanh(logit/c) (Gemma 2); 0 none
  int64_t window;             // > 0: query t sees keys j with t − window < j ≤ t; 0: all j ≤ t
};
int64_t attention_scratch(int64_t Tn, int64_t hd, bool softcap);
template <typename T>
void attention_forward(const AttnShape& s, T* y, T* att, const T* q, const T* k, const T* v, T* scratch, int threads);
template <typename T>
void attention_backward(const AttnShape& s, T* dq, T* dk, T* dv, const T* dy, const T* q, const T* k, const T* v,
                        const T* att, T* scratch, int threads);

// ---- rope.cc: rotary position embedding in Hugging Face's rotate-half layout. rope_table fills
// cos/sin (context × hd/2) from the config's theta and scaling (inv_freq in float32 as transformers
// computes it, angles float32(position·inv_freq), cos/sin evaluated in float64). rope_forward rotates
// rows of x (B·T tokens, `heads` heads of hd, row stride rs) in place by the angle of each token's
// position t (its index within the sequence); rope_backward applies the inverse rotation to a gradient.
template <typename T>
void rope_table(T* cos, T* sin, const calib_llama_config& c, int64_t context);
template <typename T>
void rope_forward(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t heads, int64_t hd, int64_t rs,
                  int threads);
template <typename T>
void rope_backward(T* dx, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t heads, int64_t hd, int64_t rs,
                   int threads);

// ---- gelu.cc: GELU, tanh approximation
template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, int threads);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, int threads);

// ---- glu.cc: gated MLP activation out = act(gate) ⊙ up, act = SiLU (SwiGLU) or tanh-GELU (GeGLU);
// the backward writes dgate and dup.
template <typename T>
void glu_forward(T* out, const T* gate, const T* up, int64_t n, calib_mlp_act act, int threads);
template <typename T>
void glu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n, calib_mlp_act act,
                  int threads);

// ---- head.cc: the LM head + label-smoothed loss on rows h (N×C) against H (V×C).
// Adds grad_scale·d(loss_sum) to dh_out (overwritten) and dH (added to); float runs the fused
// op through its C API, double a direct float64 implementation of the same equations.
struct HeadArgs {
  const int32_t* targets;
  int32_t ignore_index;
  float label_smoothing, temperature, softcap, grad_scale;
  bool backward;
  int threads;
  double loss_sum = 0;
  int64_t valid_count = 0;
};
template <typename T>
calib_status head_loss(HeadArgs& a, const T* h, const T* H, int64_t N, int64_t C, int64_t V, T* dh, T* dH,
                       T* scratch /* float: V×C + N */, char* err);

// ---- eval_cpu.cc: distribution statistics of softmax(softcap(h·Hᵀ/T)) for the requested rows
template <typename T>
void eval_head(const calib_model_eval_args& a, const T* h, const T* H, int64_t C, int64_t V, int threads);

// ---- adamw.cc
struct Chunk {
  int32_t tensor;
  int64_t begin, end;
};
template <typename T>
double sum_squares(const T* g, const Chunk* chunks, int64_t n_chunks, double* per_tensor, int32_t n_tensors,
                   int threads);
template <typename T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t begin, int64_t end, const calib_adamw_args& a, bool decay,
                  int threads);

}  // namespace calib::model
