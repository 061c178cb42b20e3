// The GPT model on the GPU (issue 9): the same model, flat-buffer layout and C API as gpt_cpu.cc,
// with parameters, gradients, AdamW moments and activations resident on the device between calls
// (the buffers, the LM head, evaluation and AdamW are CudaModel's, cuda_model.cuh).
//
// Precision (calib_model_config.precision):
//   F32   everything in fp32; cuBLAS with CUBLAS_COMPUTE_32F and the default math mode (no TF32);
//         the LM head is the fused loss on fp32 inputs (its mma.sync three-plane fp32 path).
//   BF16  mixed precision: fp32 master weights, gradients and AdamW moments; a bf16 copy of the
//         weights (written by AdamW / write) feeds the matmuls and the LM head; activations that
//         feed matmuls are bf16, with fp32 accumulation everywhere; the residual stream, LayerNorm
//         statistics, softmax scores, bias and LayerNorm gradients and the gradient of the
//         residual stream stay fp32 (the same split as torch.autocast); in attention the probabilities are
//         rounded to bf16 for P·V and dS for its products (fp32 softmax arithmetic), as FlashAttention 2 does.
//
// Per layer the forward keeps ln1, qkv, the attention output, res2, ln2, the fc product (without bias), its GELU and
// res3; the backward writes the GELU gradient and sums the fc bias gradient in one pass. For attention:
//   bf16 with head size ≤ 256 (GPT-2's 64): flash attention (flash_attention_cuda.cu, the Llama family's kernel):
//     qkv holds q, k, v with their bias, each [B, T, NH, hs], plus the log-sum-exps; no T×T matrix exists.
//   otherwise (fp32, or larger heads): cuBLAS strided-batched products over the B·NH heads in causal query blocks
//     (keys up to each block's end only) + the softmax kernels; qkv holds the product without its bias and the
//     attention probabilities P (B·NH·T·T) are kept per layer.
// Matmuls: cuBLAS (loaded at run time, cuda/cublas.cu); the LM head: the fused loss calib_linear_cross_entropy on
// device memory (never N×V logits; its workspace is calib_model_config.head_workspace_bytes); everything else:
// kernels_cuda.cuh. Every CUDA and cuBLAS call is checked.
#include "cuda_model.cuh"
#include "flash_attention.h"

namespace calib::model {

namespace {

using namespace calib::model::cuda;
using blas::kN;
using blas::kT;

template <typename A>
class GptCuda final : public CudaModel<A> {
  using Base = CudaModel<A>;
  using Base::kBf16, Base::kDt, Base::c_, Base::lay_, Base::L_, Base::C_, Base::V_, Base::Tc_, Base::Bm_, Base::h_,
      Base::params_, Base::grads_, Base::pc_, Base::dln_, Base::partial_, Base::inputs_d_, Base::uniq_d_,
      Base::offs_d_, Base::pos_d_, Base::prof_, Base::alloc, Base::matmul_forward, Base::matmul_backward, Base::P, Base::W,
      Base::G;

 public:
  GptCuda(const calib_model_config& c, const Layout& layout)
      : Base(c, layout),
        NH_(c.n_head),
        flash_(kBf16 && c.d_model / c.n_head <= 256 && (int64_t(c.max_batch) * c.context * c.d_model) % 8 == 0) {}

  calib_status init(char* err) {
    ST(this->init_base(4 * C_, err));
    const int64_t sN = Bm_ * Tc_, sNC = sN * C_, att = Bm_ * NH_ * Tc_ * Tc_;
    // activations kept for the backward
    ST(alloc(&encoded_, sNC, err));
    ST(alloc(&ln1_, L_ * sNC, err));
    ST(alloc(&ln1_mean_, L_ * sN, err));
    ST(alloc(&ln1_rstd_, L_ * sN, err));
    ST(alloc(&qkv_, L_ * 3 * sNC, err));
    if (flash_) ST(alloc(&lse_, L_ * Bm_ * NH_ * Tc_, err));
    else ST(alloc(&att_, L_ * att, err));
    ST(alloc(&atty_, L_ * sNC, err));
    ST(alloc(&res2_, L_ * sNC, err));
    ST(alloc(&ln2_, L_ * sNC, err));
    ST(alloc(&ln2_mean_, L_ * sN, err));
    ST(alloc(&ln2_rstd_, L_ * sN, err));
    ST(alloc(&fch_, L_ * 4 * sNC, err));
    ST(alloc(&fchg_, L_ * 4 * sNC, err));
    ST(alloc(&res3_, L_ * sNC, err));
    ST(alloc(&lnf_, sNC, err));
    ST(alloc(&lnf_mean_, sN, err));
    ST(alloc(&lnf_rstd_, sN, err));
    // scratch shared by the layers
    if (flash_) {
      ST(alloc(&delta_, flash::delta_bytes(attn_args(Bm_, Tc_, 0)), err));
    } else {
      ST(alloc(&qh_, sNC, err));
      ST(alloc(&kh_, sNC, err));
      ST(alloc(&vh_, sNC, err));
      ST(alloc(&yh_, sNC, err));
      ST(alloc(&S_, att, err));
    }
    ST(alloc(&dres_, sNC, err));
    if constexpr (kBf16) ST(alloc(&dres_a_, sNC, err));
    else dres_a_ = reinterpret_cast<A*>(dres_);
    ST(alloc(&datty_, sNC, err));
    ST(alloc(&dqh_, sNC, err));
    ST(alloc(&dkh_, sNC, err));
    ST(alloc(&dvh_, sNC, err));
    ST(alloc(&dqkv_, 3 * sNC, err));
    ST(alloc(&dfch_, 4 * sNC, err));
    CU_TRY(cudaDeviceSynchronize());
    return CALIB_OK;
  }

 private:
  const A* hidden() const override { return lnf_; }

  // Query blocks of the causal products: block i (rows r0 … r0+rn) only needs keys 0 … r0+rn, so
  // with nb blocks the score products and their gradients do (nb+1)/(2·nb) of the full T×T work:
  // 4 blocks for T ≥ 512, 2 for T ≥ 128, else 1.
  static int attention_blocks(int T) { return T >= 512 ? 4 : T >= 128 ? 2 : 1; }

  // The flash path's arguments for layer l: q, k, v are its slices of qkv_ (biased, [B, T, NH, hs] each), o its
  // attention output atty_, lse its log-sum-exps.
  calib_attention_args attn_args(int64_t B, int64_t T, int64_t l) const {
    const int64_t sNC = Bm_ * Tc_ * C_;
    calib_attention_args a{};
    a.b = B;
    a.t = T;
    a.hq = a.hkv = NH_;
    a.head_dim = C_ / NH_;
    a.dtype = CALIB_BF16;
    a.device = CALIB_DEVICE_CUDA;
    a.memory = CALIB_MEM_DEVICE;
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(C_ / NH_)));
    if (qkv_) {
      a.q = qkv_ + l * 3 * sNC;
      a.k = qkv_ + l * 3 * sNC + sNC;
      a.v = qkv_ + l * 3 * sNC + 2 * sNC;
      a.o = atty_ + l * sNC;
      a.lse = lse_ + l * Bm_ * NH_ * Tc_;
    }
    return a;
  }

  // qkv = ln1·Wᵀ in dqkv_ (free in the forward) → q, k, v + bias into layer l's slices of qkv_ → flash → atty_
  calib_status flash_forward(int64_t l, int B, int T, char* err) {
    const int64_t sNC = Bm_ * Tc_ * C_;
    A* q = qkv_ + l * 3 * sNC;
    CU_TRY(permute_qkv<A>(q, q + sNC, q + 2 * sNC, dqkv_, P(kQkvb, l), B * T, 1, static_cast<int>(NH_),
                          static_cast<int>(C_ / NH_)));
    return flash::run_cuda(attn_args(B, T, l), false, err);
  }

  // datty_ → dq, dk, dv (dqh_, dkh_, dvh_) → dqkv_ [N, 3C], adding the qkv bias gradient
  calib_status flash_backward(int64_t l, int B, int T, char* err) {
    ST(flash::run_backward_cuda(attn_args(B, T, l), datty_, dqh_, dkh_, dvh_, delta_, err));
    CU_TRY(join_qkv_bias_grad<A>(dqkv_, dqh_, dkh_, dvh_, B * T, static_cast<int>(C_), G(kQkvb, l), partial_));
    return CALIB_OK;
  }

  calib_status attention_forward(int64_t l, int B, int T, char* err) {
    if constexpr (kBf16)
      if (flash_) return flash_forward(l, B, T, err);
    const int hs = static_cast<int>(C_ / NH_), NH = static_cast<int>(NH_), BH = B * NH;
    const int64_t sNC = Bm_ * Tc_ * C_;
    const A* qkv = qkv_ + l * 3 * sNC;
    A* P_l = att_ + l * Bm_ * NH_ * Tc_ * Tc_;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
    const int nb = attention_blocks(T), blk = (T + nb - 1) / nb;
    CU_TRY(permute_qkv<A>(qh_, kh_, vh_, qkv, P(kQkvb, l), B, T, NH, hs));
    const long long sh = int64_t(T) * hs, st = int64_t(T) * T;
    // S[rows of block i, keys ≤ its end] = scale · q·kᵀ
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      ST(blas::gemm_rm_batched(h_, kN, kT, rn, kn, hs, scale, qh_ + int64_t(r0) * hs, kDt, hs, sh, kh_, kDt, hs, sh,
                               0.f, S_ + int64_t(r0) * T, kDt, T, st, BH, err));
    }
    CU_TRY(softmax_forward<A>(P_l, S_, BH, T, blk));
    // y[block i] = P[block i, keys ≤ its end] · v
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      ST(blas::gemm_rm_batched(h_, kN, kN, rn, hs, kn, 1.f, P_l + int64_t(r0) * T, kDt, T, st, vh_, kDt, hs, sh, 0.f,
                               yh_ + int64_t(r0) * hs, kDt, hs, sh, BH, err));
    }
    CU_TRY(unpermute_heads<A>(atty_ + l * sNC, yh_, B, T, NH, hs));
    return CALIB_OK;
  }

  // datty_ → dqkv_
  calib_status attention_backward(int64_t l, int B, int T, char* err) {
    if constexpr (kBf16)
      if (flash_) return flash_backward(l, B, T, err);
    const int hs = static_cast<int>(C_ / NH_), NH = static_cast<int>(NH_), BH = B * NH;
    const int64_t sNC = Bm_ * Tc_ * C_;
    const A* qkv = qkv_ + l * 3 * sNC;
    const A* P_l = att_ + l * Bm_ * NH_ * Tc_ * Tc_;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
    const int nb = attention_blocks(T), blk = (T + nb - 1) / nb;
    const long long sh = int64_t(T) * hs, st = int64_t(T) * T;
    A* dyh = yh_;  // the forward's per-head output is free in the backward
    CU_TRY(permute_heads<A>(dyh, datty_, B, T, NH, hs));
    CU_TRY(permute_qkv<A>(qh_, kh_, vh_, qkv, P(kQkvb, l), B, T, NH, hs));
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      // dP[block i, keys ≤ its end] = dy·vᵀ (in S_)
      ST(blas::gemm_rm_batched(h_, kN, kT, rn, kn, hs, 1.f, dyh + int64_t(r0) * hs, kDt, hs, sh, vh_, kDt, hs, sh,
                               0.f, S_ + int64_t(r0) * T, kDt, T, st, BH, err));
      // dv[key block] = P[rows ≥ r0, key block]ᵀ · dy[rows ≥ r0]
      ST(blas::gemm_rm_batched(h_, kT, kN, rn, hs, T - r0, 1.f, P_l + int64_t(r0) * T + r0, kDt, T, st,
                               dyh + int64_t(r0) * hs, kDt, hs, sh, 0.f, dvh_ + int64_t(r0) * hs, kDt, hs, sh, BH,
                               err));
    }
    CU_TRY(softmax_backward<A>(S_, P_l, BH, T, blk, scale));  // dS in place of dP
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      // dq[block i] = dS[block i, keys ≤ its end] · k
      ST(blas::gemm_rm_batched(h_, kN, kN, rn, hs, kn, 1.f, S_ + int64_t(r0) * T, kDt, T, st, kh_, kDt, hs, sh, 0.f,
                               dqh_ + int64_t(r0) * hs, kDt, hs, sh, BH, err));
      // dk[key block] = dS[rows ≥ r0, key block]ᵀ · q[rows ≥ r0]
      ST(blas::gemm_rm_batched(h_, kT, kN, rn, hs, T - r0, 1.f, S_ + int64_t(r0) * T + r0, kDt, T, st,
                               qh_ + int64_t(r0) * hs, kDt, hs, sh, 0.f, dkh_ + int64_t(r0) * hs, kDt, hs, sh, BH,
                               err));
    }
    CU_TRY(unpermute_qkv<A>(dqkv_, dqh_, dkh_, dvh_, B, T, NH, hs));
    return CALIB_OK;
  }

  calib_status forward(const int32_t* inputs, int B, int T, char* err) override {
    cudaGetLastError();
    const int64_t N = int64_t(B) * T, sN = Bm_ * Tc_, sNC = sN * C_;
    const int C = static_cast<int>(C_), n = static_cast<int>(N);
    CU_TRY(cudaMemcpy(inputs_d_, inputs, size_t(N) * 4, cudaMemcpyHostToDevice));
    CU_TRY(encoder_forward(encoded_, inputs_d_, P(kWte), P(kWpe), B, T, C));
    for (int64_t l = 0; l < L_; ++l) {
      const float* res = l == 0 ? encoded_ : res3_ + (l - 1) * sNC;
      A* ln1 = ln1_ + l * sNC;
      A* qkv = qkv_ + l * 3 * sNC;
      float* res2 = res2_ + l * sNC;
      A* ln2 = ln2_ + l * sNC;
      A* fch = fch_ + l * 4 * sNC;
      float* res3 = res3_ + l * sNC;
      CU_TRY(layernorm_forward<A>(ln1, ln1_mean_ + l * sN, ln1_rstd_ + l * sN, res, P(kLn1w, l), P(kLn1b, l), n, C));
      // the flash path keeps q, k, v with their bias (attention_forward writes them), the other the bare product
      ST(matmul_forward(flash_ ? dqkv_ : qkv, kDt, 0.f, ln1, W(kQkvw, l), N, C_, 3 * C_, err));
      const size_t a0 = prof_.mark();
      ST(attention_forward(l, B, T, err));
      prof_.span(3, a0, prof_.mark());
      CU_TRY(residual_bias(res2, res, P(kAttprojb, l), N, C));
      ST(matmul_forward(res2, blas::kF32, 1.f, atty_ + l * sNC, W(kAttprojw, l), N, C_, C_, err));
      CU_TRY(layernorm_forward<A>(ln2, ln2_mean_ + l * sN, ln2_rstd_ + l * sN, res2, P(kLn2w, l), P(kLn2b, l), n, C));
      ST(matmul_forward(fch, kDt, 0.f, ln2, W(kFcw, l), N, C_, 4 * C_, err));
      A* fchg = fchg_ + l * 4 * sNC;
      CU_TRY(gelu_forward<A>(fchg, fch, P(kFcb, l), N, 4 * C));
      CU_TRY(residual_bias(res3, res2, P(kFcprojb, l), N, C));
      ST(matmul_forward(res3, blas::kF32, 1.f, fchg, W(kFcprojw, l), N, 4 * C_, C_, err));
    }
    CU_TRY(layernorm_forward<A>(lnf_, lnf_mean_, lnf_rstd_, res3_ + (L_ - 1) * sNC, P(kLnfw), P(kLnfb), n, C));
    return CALIB_OK;
  }

  // Expects d(loss)/d(lnf) in dln_; adds every parameter gradient.
  calib_status backward(const int32_t* inputs, int B, int T, char* err) override {
    const int64_t N = int64_t(B) * T, sN = Bm_ * Tc_, sNC = sN * C_;
    const int C = static_cast<int>(C_), n = static_cast<int>(N);
    A* dres_a = kBf16 ? dres_a_ : nullptr;  // bf16 copy of the residual gradient for the matmuls
    const A* dres_in = dres_a_;
    CU_TRY(cudaMemsetAsync(dres_, 0, size_t(N) * C * 4));
    const float* last = res3_ + (L_ - 1) * sNC;
    CU_TRY(layernorm_param_grads(G(kLnfw), G(kLnfb), dln_, last, lnf_mean_, lnf_rstd_, n, C, partial_));
    CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, last, P(kLnfw), lnf_mean_, lnf_rstd_, n, C));
    for (int64_t l = L_ - 1; l >= 0; --l) {
      const float* res = l == 0 ? encoded_ : res3_ + (l - 1) * sNC;
      const A* ln1 = ln1_ + l * sNC;
      const float* res2 = res2_ + l * sNC;
      const A* ln2 = ln2_ + l * sNC;
      const A* fch = fch_ + l * 4 * sNC;
      // res3 = res2 + fcproj(gelu(fc(ln2(res2))))
      ST(matmul_backward(dfch_, kDt, G(kFcprojw, l), dres_in, fchg_ + l * 4 * sNC, W(kFcprojw, l), N, 4 * C_, C_, err));
      CU_TRY(colsum_add<float>(G(kFcprojb, l), dres_, n, C, partial_));
      CU_TRY(gelu_backward_bias_grad<A>(dfch_, fch, P(kFcb, l), dfch_, n, 4 * C, G(kFcb, l), partial_));
      ST(matmul_backward(dln_, blas::kF32, G(kFcw, l), dfch_, ln2, W(kFcw, l), N, C_, 4 * C_, err));
      CU_TRY(layernorm_param_grads(G(kLn2w, l), G(kLn2b, l), dln_, res2, ln2_mean_ + l * sN, ln2_rstd_ + l * sN, n, C,
                               partial_));
      CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, res2, P(kLn2w, l), ln2_mean_ + l * sN, ln2_rstd_ + l * sN, n, C));
      // res2 = res + attproj(attn(qkv(ln1(res))))
      ST(matmul_backward(datty_, kDt, G(kAttprojw, l), dres_in, atty_ + l * sNC, W(kAttprojw, l), N, C_, C_, err));
      CU_TRY(colsum_add<float>(G(kAttprojb, l), dres_, n, C, partial_));
      const size_t a0 = prof_.mark();
      ST(attention_backward(l, B, T, err));
      prof_.span(4, a0, prof_.mark());
      if (!flash_) CU_TRY(colsum_add<A>(G(kQkvb, l), dqkv_, n, 3 * C, partial_));  // the flash path added it
      ST(matmul_backward(dln_, blas::kF32, G(kQkvw, l), dqkv_, ln1, W(kQkvw, l), N, C_, 3 * C_, err));
      CU_TRY(layernorm_param_grads(G(kLn1w, l), G(kLn1b, l), dln_, res, ln1_mean_ + l * sN, ln1_rstd_ + l * sN, n, C,
                               partial_));
      CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, res, P(kLn1w, l), ln1_mean_ + l * sN, ln1_rstd_ + l * sN, n, C));
    }
    int nu = 0;
    ST(this->embedding_buckets(inputs, N, &nu, err));
    CU_TRY(encoder_backward(G(kWte), G(kWpe), dres_, uniq_d_, offs_d_, pos_d_, nu, B, T, C));
    return CALIB_OK;
  }

  const int64_t NH_;
  const bool flash_;  // bf16 with head size ≤ 256: flash_attention_cuda.cu, else cuBLAS products + softmax kernels
  // activations
  float* encoded_ = nullptr;
  A *ln1_ = nullptr, *qkv_ = nullptr, *att_ = nullptr, *atty_ = nullptr, *ln2_ = nullptr, *fch_ = nullptr,
    *lnf_ = nullptr;
  float *ln1_mean_ = nullptr, *ln1_rstd_ = nullptr, *res2_ = nullptr, *ln2_mean_ = nullptr, *ln2_rstd_ = nullptr,
        *res3_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  // scratch
  A *qh_ = nullptr, *kh_ = nullptr, *vh_ = nullptr, *yh_ = nullptr;
  A* fchg_ = nullptr;  // per layer: gelu(fc + bias)
  A* S_ = nullptr;  // scores, then their gradient (dP, dS in place)
  float* lse_ = nullptr;  // flash: per layer [B, NH, T]
  char* delta_ = nullptr;  // flash backward scratch (Δ)
  float* dres_ = nullptr;
  A *dres_a_ = nullptr, *datty_ = nullptr, *dqh_ = nullptr, *dkh_ = nullptr, *dvh_ = nullptr, *dqkv_ = nullptr,
    *dfch_ = nullptr;
};

}  // namespace
// Creates the CUDA implementation (model.cc validated the configuration).
calib_status make_gpt_cuda(const calib_model_config& c, const Layout& layout, std::unique_ptr<GptImpl>* out,
                           char* err) {
  const int64_t N = int64_t(c.max_batch) * c.context;
  if (N > 2000000)
    return fail(err, CALIB_ERR_RANGE, "the CUDA model needs maxBatch × context ≤ 2,000,000 tokens (got %d × %d)",
                c.max_batch, c.context);
  if (int64_t(c.vocab) * c.d_model > (int64_t(1) << 31) - 1)
    return fail(err, CALIB_ERR_RANGE, "the CUDA model needs vocab × dModel < 2^31 (got %d × %d)", c.vocab, c.d_model);
  if (c.precision == CALIB_MODEL_BF16) {
    auto m = std::make_unique<GptCuda<bf16>>(c, layout);
    if (calib_status st = m->init(err)) return st;
    *out = std::move(m);
  } else {
    auto m = std::make_unique<GptCuda<float>>(c, layout);
    if (calib_status st = m->init(err)) return st;
    *out = std::move(m);
  }
  return CALIB_OK;
}

}  // namespace calib::model
