// The Llama family on the GPU (calib.h's LLAMA: Llama, Qwen2, Mistral, SmolLM2, Gemma 2): the model of
// llama_cpu.cc in bf16 mixed precision (the split of gpt_cuda.cu: fp32 master weights, gradients, moments,
// residual stream, norm statistics and the residual's gradient; bf16 weights and matmul activations; fp32
// accumulation everywhere). The buffers, the LM head (the fused loss, Gemma 2's final soft-cap being the
// loss's), evaluation and AdamW are CudaModel's (cuda_model.cuh).
//   x0 = embed[tok]·embed_scale                                             (encoder_cuda.cu)
//   per layer:  a = rmsnorm(x);  q, k, v = a·Wᵀ (+ b);  rope(q), rope(k)     (rmsnorm_cuda.cu, cuBLAS, rope_cuda.cu)
//               y = attention(q, k, v): flash_attention_cuda.cu (GQA, scale, soft-cap, window; no T×T buffer)
//               x = x + [rmsnorm](y·Woᵀ)                                      (post-norms: Gemma 2)
//               m = rmsnorm(x);  x = x + [rmsnorm]((act(m·Wgᵀ) ⊙ m·Wuᵀ)·Wdᵀ)  (glu_cuda.cu)
//   hidden = rmsnorm(x)
// Kept per layer for the backward: its input x (fp32), the normed inputs of both blocks, q and k after the
// rotation, v, the attention output and its log-sum-exp, the fp32 residual between the blocks, gate and up
// (the activation is recomputed), and with post-norms the branch outputs before their norm. Gradient
// checkpointing (calib_model_config.checkpoint_layers = k): the first k layers keep only their input and
// recompute the rest in the backward, into one shared set of buffers (the profile's "recompute").
// Attention: head_dim 64 and 128 on the flash kernel's tensor cores, other sizes ≤ 256 (Gemma 2's 256) a row at a
// time (flash_attention_rows_cuda.cu, slower). The CUDA path is bf16 only (make_llama_cuda refuses the rest with
// the reason).
#include "cuda_model.cuh"
#include "flash_attention.h"

namespace calib::model {

template <typename T>
void rope_table(T* cos, T* sin, const calib_llama_config& c, int64_t context);  // rope.cc

namespace {

using namespace calib::model::cuda;

class LlamaCuda final : public CudaModel<bf16> {
  using A = bf16;
  using Base = CudaModel<bf16>;

 public:
  LlamaCuda(const calib_model_config& c, const Layout& layout)
      : Base(c, layout), m_(c.llama), H_(c.n_head), KVH_(m_.n_kv_head), hd_(m_.head_dim), Q_(H_ * hd_),
        K_(KVH_ * hd_), F_(m_.d_ff), post_(m_.post_norms != 0), ck_(c.checkpoint_layers) {}

  calib_status init(char* err) {
    ST(init_base(std::max(C_, Q_), err));
    const int64_t sN = Bm_ * Tc_, D = C_;
    ST(alloc(&res_, (L_ + 1) * sN * D, err));
    // per-layer activations: one slot per layer that keeps them, plus one shared by the recomputed layers
    const int64_t slots = (L_ - ck_) + (ck_ > 0 ? 1 : 0);
    slots_.resize(slots);
    for (Slot& s : slots_) {
      ST(alloc(&s.an, sN * D, err));
      ST(alloc(&s.mn, sN * D, err));
      ST(alloc(&s.an_r, sN, err));
      ST(alloc(&s.mn_r, sN, err));
      ST(alloc(&s.q, sN * Q_, err));
      ST(alloc(&s.y, sN * Q_, err));
      ST(alloc(&s.k, sN * K_, err));
      ST(alloc(&s.v, sN * K_, err));
      ST(alloc(&s.lse, Bm_ * H_ * Tc_, err));
      ST(alloc(&s.mid, sN * D, err));
      ST(alloc(&s.g, sN * F_, err));
      ST(alloc(&s.u, sN * F_, err));
      if (post_) {
        ST(alloc(&s.ho, sN * D, err));
        ST(alloc(&s.hm, sN * D, err));
        ST(alloc(&s.ho_r, sN, err));
        ST(alloc(&s.hm_r, sN, err));
      }
    }
    ST(alloc(&hid_, sN * D, err));
    ST(alloc(&nf_r_, sN, err));
    // scratch shared by the layers
    ST(alloc(&act_, sN * F_, err));  // act(g)·u, then d(gate)
    ST(alloc(&da_, sN * F_, err));
    ST(alloc(&du_, sN * F_, err));
    ST(alloc(&dy_, sN * Q_, err));
    ST(alloc(&dq_, sN * Q_, err));
    ST(alloc(&dk_, sN * K_, err));
    ST(alloc(&dv_, sN * K_, err));
    ST(alloc(&dres_, sN * D, err));
    ST(alloc(&dres_a_, sN * D, err));
    if (post_) ST(alloc(&dh_a_, sN * D, err));
    ST(alloc(&delta_, flash::delta_bytes(attn_args(Bm_, Tc_, 0)), err));
    // rotary tables (fp32, the CPU's angles)
    std::vector<float> cs(Tc_ * (hd_ / 2)), sn(cs.size());
    rope_table<float>(cs.data(), sn.data(), m_, Tc_);
    ST(alloc(&cos_, static_cast<int64_t>(cs.size()), err));
    ST(alloc(&sin_, static_cast<int64_t>(sn.size()), err));
    CU_TRY(cudaMemcpy(cos_, cs.data(), cs.size() * 4, cudaMemcpyHostToDevice));
    CU_TRY(cudaMemcpy(sin_, sn.data(), sn.size() * 4, cudaMemcpyHostToDevice));
    CU_TRY(cudaDeviceSynchronize());
    return CALIB_OK;
  }

 private:
  struct Slot {
    A *an = nullptr, *mn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *y = nullptr, *g = nullptr,
      *u = nullptr;
    float *an_r = nullptr, *mn_r = nullptr, *lse = nullptr, *mid = nullptr, *ho = nullptr, *hm = nullptr,
          *ho_r = nullptr, *hm_r = nullptr;
  };

  const A* hidden() const override { return hid_; }

  float* res(int64_t l) { return res_ + l * Bm_ * Tc_ * C_; }
  bool recomputed(int64_t l) const { return l < ck_; }
  Slot& slot(int64_t l) { return recomputed(l) ? slots_.back() : slots_[l - ck_]; }

  // The attention of layer l over slot s's q, k, v (o and lse: its output, or the backward's inputs).
  calib_attention_args attn_args(int64_t B, int64_t T, int64_t l, const Slot* s = nullptr) const {
    calib_attention_args a{};
    if (s) {
      a.q = s->q;
      a.k = s->k;
      a.v = s->v;
      a.o = s->y;
      a.lse = s->lse;
    }
    a.b = B;
    a.t = T;
    a.hq = H_;
    a.hkv = KVH_;
    a.head_dim = hd_;
    a.dtype = CALIB_BF16;
    a.device = CALIB_DEVICE_CUDA;
    a.memory = CALIB_MEM_DEVICE;
    a.scale = m_.attn_scale;
    a.softcap = m_.attn_softcap;
    a.window = m_.sliding_window > 0 && l % m_.sliding_period == 0 ? m_.sliding_window : 0;
    return a;
  }

  // out (fp32) = x + h·Woᵀ, or x + rmsnorm(h·Woᵀ) with post-norms (h·Woᵀ kept in hpre, its rstd in hr).
  calib_status residual_add(float* out, const float* x, const A* h, const A* w, int64_t N, int64_t IC, float* hpre,
                            float* hr, LlamaTensorId post_norm, int64_t l, char* err) {
    CU_TRY(cudaMemcpyAsync(out, x, size_t(N) * C_ * 4, cudaMemcpyDeviceToDevice));
    if (!post_) return matmul_forward(out, blas::kF32, 1.f, h, w, N, IC, C_, err);
    ST(matmul_forward(hpre, blas::kF32, 0.f, h, w, N, IC, C_, err));
    CU_TRY(rmsnorm_forward<A>(nullptr, out, hr, hpre, P(post_norm, l), m_.norm_plus_one != 0, m_.norm_eps,
                              static_cast<int>(N), static_cast<int>(C_)));
    return CALIB_OK;
  }

  // The gradient of a block's branch output h·Woᵀ from the residual's gradient: dres itself (its bf16 copy),
  // or through the post-norm (into dh_a_).
  calib_status branch_grad(const A** dh, const float* hpre, const float* hr, LlamaTensorId post_norm, int64_t l,
                           int n, char* err) {
    if (!post_) {
      *dh = dres_a_;
      return CALIB_OK;
    }
    const int C = static_cast<int>(C_);
    CU_TRY(rmsnorm_param_grads(G(post_norm, l), dres_, hpre, hr, n, C, partial_));
    CU_TRY(rmsnorm_backward<A>(nullptr, dh_a_, dres_, hpre, P(post_norm, l), hr, m_.norm_plus_one != 0, n, C));
    *dh = dh_a_;
    return CALIB_OK;
  }

  calib_status layer_forward(int64_t l, int B, int T, char* err) {
    const int64_t N = int64_t(B) * T;
    const int n = static_cast<int>(N), C = static_cast<int>(C_), Ti = T;
    const bool p1 = m_.norm_plus_one != 0;
    Slot& s = slot(l);
    // attention block
    CU_TRY(rmsnorm_forward<A>(s.an, nullptr, s.an_r, res(l), P(kAttnNorm, l), p1, m_.norm_eps, n, C));
    ST(matmul_forward(s.q, kDt, 0.f, s.an, W(kQ, l), N, C_, Q_, err));
    ST(matmul_forward(s.k, kDt, 0.f, s.an, W(kK, l), N, C_, K_, err));
    ST(matmul_forward(s.v, kDt, 0.f, s.an, W(kV, l), N, C_, K_, err));
    if (m_.qkv_bias) {
      CU_TRY(bias_add<A>(s.q, P(kQBias, l), N, static_cast<int>(Q_)));
      CU_TRY(bias_add<A>(s.k, P(kKBias, l), N, static_cast<int>(K_)));
      CU_TRY(bias_add<A>(s.v, P(kVBias, l), N, static_cast<int>(K_)));
    }
    CU_TRY(rope_apply<A>(s.q, cos_, sin_, n, Ti, static_cast<int>(H_), static_cast<int>(hd_), static_cast<int>(Q_), 1.f));
    CU_TRY(rope_apply<A>(s.k, cos_, sin_, n, Ti, static_cast<int>(KVH_), static_cast<int>(hd_), static_cast<int>(K_),
                         1.f));
    const size_t a0 = prof_.mark();
    ST(flash::run_cuda(attn_args(B, T, l, &s), false, err));
    prof_.span(3, a0, prof_.mark());
    ST(residual_add(s.mid, res(l), s.y, W(kO, l), N, Q_, s.ho, s.ho_r, kAttnPostNorm, l, err));
    // MLP block
    CU_TRY(rmsnorm_forward<A>(s.mn, nullptr, s.mn_r, s.mid, P(kMlpNorm, l), p1, m_.norm_eps, n, C));
    ST(matmul_forward(s.g, kDt, 0.f, s.mn, W(kGate, l), N, C_, F_, err));
    ST(matmul_forward(s.u, kDt, 0.f, s.mn, W(kUp, l), N, C_, F_, err));
    CU_TRY(glu_forward<A>(act_, s.g, s.u, N * F_, m_.mlp_act == CALIB_ACT_SILU));
    return residual_add(res(l + 1), s.mid, act_, W(kDown, l), N, F_, s.hm, s.hm_r, kMlpPostNorm, l, err);
  }

  calib_status forward(const int32_t* inputs, int B, int T, char* err) override {
    cudaGetLastError();
    const int64_t N = int64_t(B) * T;
    CU_TRY(cudaMemcpy(inputs_d_, inputs, size_t(N) * 4, cudaMemcpyHostToDevice));
    CU_TRY(encoder_forward(res(0), inputs_d_, P(kEmbed), nullptr, B, T, static_cast<int>(C_), m_.embed_scale));
    for (int64_t l = 0; l < L_; ++l) ST(layer_forward(l, B, T, err));
    CU_TRY(rmsnorm_forward<A>(hid_, nullptr, nf_r_, res(L_), P(kNormF), m_.norm_plus_one != 0, m_.norm_eps,
                              static_cast<int>(N), static_cast<int>(C_)));
    return CALIB_OK;
  }

  // Expects d(loss)/d(hidden) in dln_; adds every parameter gradient.
  calib_status backward(const int32_t* inputs, int B, int T, char* err) override {
    const int64_t N = int64_t(B) * T;
    const int n = static_cast<int>(N), C = static_cast<int>(C_);
    const bool p1 = m_.norm_plus_one != 0, silu = m_.mlp_act == CALIB_ACT_SILU;
    CU_TRY(cudaMemsetAsync(dres_, 0, size_t(N) * C * 4));
    CU_TRY(rmsnorm_param_grads(G(kNormF), dln_, res(L_), nf_r_, n, C, partial_));
    CU_TRY(rmsnorm_backward<A>(dres_, dres_a_, dln_, res(L_), P(kNormF), nf_r_, p1, n, C));
    for (int64_t l = L_ - 1; l >= 0; --l) {
      if (recomputed(l)) {
        const size_t r0 = prof_.mark();
        ST(layer_forward(l, B, T, err));  // rewrites res(l + 1) with the same values (same kernels, same order)
        prof_.span(5, r0, prof_.mark());
      }
      Slot& s = slot(l);
      // next = mid + [post-norm](act(gate(mn)) ⊙ up(mn))·downᵀ,  mn = rmsnorm(mid)
      const A* dh = nullptr;
      ST(branch_grad(&dh, s.hm, s.hm_r, kMlpPostNorm, l, n, err));
      CU_TRY(glu_forward<A>(act_, s.g, s.u, N * F_, silu));
      ST(matmul_backward(da_, kDt, G(kDown, l), dh, act_, W(kDown, l), N, F_, C_, err));
      CU_TRY(glu_backward<A>(act_, du_, da_, s.g, s.u, N * F_, silu));
      ST(matmul_backward(dln_, blas::kF32, G(kGate, l), act_, s.mn, W(kGate, l), N, C_, F_, err));
      ST(matmul_backward(dln_, blas::kF32, G(kUp, l), du_, s.mn, W(kUp, l), N, C_, F_, err, true));
      CU_TRY(rmsnorm_param_grads(G(kMlpNorm, l), dln_, s.mid, s.mn_r, n, C, partial_));
      CU_TRY(rmsnorm_backward<A>(dres_, dres_a_, dln_, s.mid, P(kMlpNorm, l), s.mn_r, p1, n, C));
      // mid = res + [post-norm](attention(rope(q), rope(k), v)·oᵀ),  q, k, v from an = rmsnorm(res)
      ST(branch_grad(&dh, s.ho, s.ho_r, kAttnPostNorm, l, n, err));
      ST(matmul_backward(dy_, kDt, G(kO, l), dh, s.y, W(kO, l), N, Q_, C_, err));
      const size_t a0 = prof_.mark();
      ST(flash::run_backward_cuda(attn_args(B, T, l, &s), dy_, dq_, dk_, dv_, delta_, err));
      prof_.span(4, a0, prof_.mark());
      CU_TRY(rope_apply<A>(dq_, cos_, sin_, n, T, static_cast<int>(H_), static_cast<int>(hd_), static_cast<int>(Q_),
                           -1.f));
      CU_TRY(rope_apply<A>(dk_, cos_, sin_, n, T, static_cast<int>(KVH_), static_cast<int>(hd_),
                           static_cast<int>(K_), -1.f));
      if (m_.qkv_bias) {
        CU_TRY(colsum_add<A>(G(kQBias, l), dq_, n, static_cast<int>(Q_), partial_));
        CU_TRY(colsum_add<A>(G(kKBias, l), dk_, n, static_cast<int>(K_), partial_));
        CU_TRY(colsum_add<A>(G(kVBias, l), dv_, n, static_cast<int>(K_), partial_));
      }
      ST(matmul_backward(dln_, blas::kF32, G(kQ, l), dq_, s.an, W(kQ, l), N, C_, Q_, err));
      ST(matmul_backward(dln_, blas::kF32, G(kK, l), dk_, s.an, W(kK, l), N, C_, K_, err, true));
      ST(matmul_backward(dln_, blas::kF32, G(kV, l), dv_, s.an, W(kV, l), N, C_, K_, err, true));
      CU_TRY(rmsnorm_param_grads(G(kAttnNorm, l), dln_, res(l), s.an_r, n, C, partial_));
      CU_TRY(rmsnorm_backward<A>(dres_, dres_a_, dln_, res(l), P(kAttnNorm, l), s.an_r, p1, n, C));
    }
    int nu = 0;
    ST(embedding_buckets(inputs, N, &nu, err));
    CU_TRY(encoder_backward(G(kEmbed), nullptr, dres_, uniq_d_, offs_d_, pos_d_, nu, B, T, C, m_.embed_scale));
    return CALIB_OK;
  }

  const calib_llama_config m_;
  const int64_t H_, KVH_, hd_, Q_, K_, F_;
  const bool post_;
  const int64_t ck_;  // layers [0, ck_) recompute their activations in the backward
  float* res_ = nullptr;  // the input of every layer and the last output: (L + 1) × max_batch·context × C
  std::vector<Slot> slots_;
  A* hid_ = nullptr;
  float* nf_r_ = nullptr;
  A *act_ = nullptr, *da_ = nullptr, *du_ = nullptr, *dy_ = nullptr, *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr,
    *dres_a_ = nullptr, *dh_a_ = nullptr;
  float* dres_ = nullptr;
  char* delta_ = nullptr;
  float *cos_ = nullptr, *sin_ = nullptr;
};

}  // namespace

// Creates the CUDA implementation of the Llama family (model.cc validated the configuration; here: what the
// CUDA path supports).
calib_status make_llama_cuda(const calib_model_config& c, const Layout& layout, std::unique_ptr<ModelImpl>* out,
                             char* err) {
  if (c.precision != CALIB_MODEL_BF16)
    return fail(err, CALIB_ERR_RANGE,
                "the Llama family on CUDA trains in bfloat16 mixed precision (precision 'bfloat16'); its float32 "
                "reference runs on the CPU");
  if (c.llama.head_dim > 256)
    return fail(err, CALIB_ERR_RANGE,
                "the Llama family on CUDA needs head_dim ≤ 256 (its attention's; got %d): run this model on the CPU",
                c.llama.head_dim);
  const int64_t N = int64_t(c.max_batch) * c.context;
  if (N > 2000000)
    return fail(err, CALIB_ERR_RANGE, "the CUDA model needs maxBatch × context ≤ 2,000,000 tokens (got %d × %d)",
                c.max_batch, c.context);
  const int64_t widest = std::max<int64_t>({c.d_model, int64_t(c.n_head) * c.llama.head_dim, c.llama.d_ff});
  if (int64_t(c.vocab) * c.d_model > (int64_t(1) << 31) - 1 || N * widest > (int64_t(1) << 31) - 1)
    return fail(err, CALIB_ERR_RANGE,
                "the CUDA model needs vocab × dModel and maxBatch × context × (the widest layer) < 2^31 (got %d × %d "
                "and %lld × %lld)",
                c.vocab, c.d_model, static_cast<long long>(N), static_cast<long long>(widest));
  auto m = std::make_unique<LlamaCuda>(c, layout);
  if (calib_status st = m->init(err)) return st;
  *out = std::move(m);
  return CALIB_OK;
}

}  // namespace calib::model
