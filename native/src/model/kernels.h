// The CPU kernels of the GPT model, one concern per file, each layer's forward and backward
// side by side (llm.c train_gpt2.c style). Every kernel is a template on the scalar type:
// float is the training path (register-blocked gemm_acc, SIMD exp/tanh, the thread pool),
// double is the float64 reference used by the gradient checks. Both run the same blocked
// algorithms; only gemm<T>, exp and tanh differ.
//
// Determinism: every output element is produced by one thread in a fixed order, and
// reductions over rows (bias / LayerNorm / embedding gradients, norms) are split over
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

// ---- encoder.cc: x0[b,t] = wte[tok] + wpe[t]
template <typename T>
void encoder_forward(T* out, const int32_t* inp, const T* wte, const T* wpe, int64_t B, int64_t Tn, int64_t C,
                     int threads);
template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* inp, int64_t B, int64_t Tn, int64_t C,
                      int threads);

// ---- layernorm.cc: y = (x − mean)·rstd·w + b over rows of C, eps 1e-5; dinp is *added to*
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C,
                       int threads);
template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C, int threads);

// ---- matmul.cc: out[N×OC] (+)= inp[N×IC]·Wᵀ + bias, W is OC×IC (nn.Linear); the forward reads
// the transposed copy wt (IC×OC). The backward overwrites dinp and adds to dw, db.
template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols, int threads);
template <typename T>
void matmul_forward(T* out, const T* inp, const T* wt, const T* bias, int64_t N, int64_t IC, int64_t OC,
                    bool accumulate, int threads);
template <typename T>
void matmul_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t IC,
                     int64_t OC, int threads);

// ---- attention.cc: causal multi-head attention over qkv (B,T,3C) → out (B,T,C); att keeps the
// softmax probabilities (B,NH,T,T). scratch: per thread attention_scratch(T, C/NH) elements.
int64_t attention_scratch(int64_t Tn, int64_t hs);
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int64_t B, int64_t Tn, int64_t C, int64_t NH, T* scratch,
                       int threads);
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int64_t B, int64_t Tn, int64_t C,
                        int64_t NH, T* scratch, int threads);

// ---- gelu.cc: GELU, tanh approximation
template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n, int threads);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, int threads);

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
