// The Llama family on the CPU (calib.h's LLAMA: Llama, Qwen2, Mistral, SmolLM2, Gemma 2):
// activations sized once for max_batch × context and the forward and backward passes that
// chain the kernels of kernels.h; buffers, the LM head, evaluation and AdamW are CpuModel's.
//   x0 = embed[tok]·embed_scale                                       (encoder.cc)
//   per layer:  a = rmsnorm(x);  q, k, v = a·Wᵀ (+ b);  rope(q), rope(k)  (rmsnorm.cc, matmul.cc, rope.cc)
//               y = attention(q, k, v) (GQA, scale, soft-cap, window);  h = y·Woᵀ   (attention.cc)
//               x = x + (post_norms ? rmsnorm(h) : h)
//               m = rmsnorm(x);  h = (act(m·Wgᵀ) ⊙ m·Wuᵀ)·Wdᵀ                 (glu.cc)
//               x = x + (post_norms ? rmsnorm(h) : h)
//   hidden = rmsnorm(x)
// Every layer keeps its inputs, norms, q/k/v (after the rotation), the attention probabilities
// and output, gate/up and their product for the backward. LlamaCpu<float> trains;
// LlamaCpu<double> is the float64 reference for gradient checks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "cpu_model.h"

namespace calib::model {
namespace {

template <typename T>
class LlamaCpu final : public CpuModel<T> {
  using Base = CpuModel<T>;
  using Base::c_, Base::L_, Base::C_, Base::Tc_, Base::Bm_, Base::params_, Base::grads_, Base::wt_,
      Base::wt_fresh_, Base::at;

 public:
  LlamaCpu(const calib_model_config& c, const Layout& layout)
      : Base(c, layout), m_(c.llama), H_(c.n_head), KVH_(m_.n_kv_head), hd_(m_.head_dim), Q_(H_ * hd_),
        K_(KVH_ * hd_), F_(m_.d_ff), post_(m_.post_norms != 0), sN_(Bm_ * Tc_) {
    const int64_t sN = sN_, D = C_;
    wt_.assign(L_ * per_layer_wt(), T(0));
    auto sized = [](std::initializer_list<std::vector<T>*> bufs, int64_t n) {
      for (std::vector<T>* b : bufs) b->resize(n);
    };
    a_.res.resize((L_ + 1) * sN * D);
    sized({&a_.mid, &a_.an, &a_.mn}, L_ * sN * D);
    sized({&a_.an_r, &a_.mn_r}, L_ * sN);
    sized({&a_.q, &a_.y}, L_ * sN * Q_);
    sized({&a_.k, &a_.v}, L_ * sN * K_);
    sized({&a_.g, &a_.u, &a_.act}, L_ * sN * F_);
    a_.att.resize(L_ * Bm_ * H_ * Tc_ * Tc_);
    if (post_) {
      sized({&a_.ho, &a_.hm}, L_ * sN * D);
      sized({&a_.ho_r, &a_.hm_r}, L_ * sN);
      g_.dh.resize(sN * D);
    }
    a_.nf.resize(sN * D);
    a_.nf_r.resize(sN);
    sized({&g_.dres, &g_.dln}, sN * D);
    sized({&g_.dy, &g_.dq}, sN * Q_);
    sized({&g_.dk, &g_.dv}, sN * K_);
    sized({&g_.da, &g_.dg, &g_.du}, sN * F_);
    sized({&cos_, &sin_}, Tc_ * (hd_ / 2));
    rope_table<T>(cos_.data(), sin_.data(), m_, Tc_);
    att_scratch(this->threads());
  }

 private:
  struct Acts {
    std::vector<T> res, mid, an, mn, an_r, mn_r, q, k, v, y, att, ho, hm, ho_r, hm_r, g, u, act, nf, nf_r;
  };
  struct GradActs {
    std::vector<T> dres, dln, dh, dy, dq, dk, dv, da, dg, du;
  };
  // The transposed matmul weights of a layer, in this order: qᵀ (D×Q), kᵀ, vᵀ (D×K), oᵀ (Q×D),
  // gateᵀ, upᵀ (D×F), downᵀ (F×D).
  enum Wt { kWq, kWk, kWv, kWo, kWg, kWu, kWd };

  const T* hidden() override { return a_.nf.data(); }
  T* dhidden() override { return g_.dln.data(); }

  int64_t per_layer_wt() const { return 2 * C_ * Q_ + 2 * C_ * K_ + 3 * C_ * F_; }
  T* wt(int64_t l, Wt which) {
    const int64_t DQ = C_ * Q_, DK = C_ * K_, DF = C_ * F_;
    const int64_t off[7] = {0, DQ, DQ + DK, DQ + 2 * DK, 2 * DQ + 2 * DK, 2 * DQ + 2 * DK + DF, 2 * DQ + 2 * DK + 2 * DF};
    return wt_.data() + l * per_layer_wt() + off[which];
  }
  void refresh_transposes(int nt) {
    struct {
      Wt wt;
      LlamaTensorId id;
      int64_t rows, cols;
    } const mats[7] = {{kWq, kQ, Q_, C_},    {kWk, kK, K_, C_},   {kWv, kV, K_, C_},   {kWo, kO, C_, Q_},
                       {kWg, kGate, F_, C_}, {kWu, kUp, F_, C_}, {kWd, kDown, C_, F_}};
    for (int64_t l = 0; l < L_; ++l)
      for (const auto& m : mats) transpose<T>(wt(l, m.wt), at(params_, m.id, l), m.rows, m.cols, nt);
    wt_fresh_ = true;
  }
  T* att_scratch(int nt) { return this->attention_scratch_for(nt, attention_scratch(Tc_, hd_, m_.attn_softcap > 0)); }
  AttnShape attn_shape(int64_t B, int64_t Tn, int64_t l) const {
    const bool slides = m_.sliding_window > 0 && l % m_.sliding_period == 0;
    return {B, Tn, H_, KVH_, hd_, Q_, K_, Q_, m_.attn_scale, m_.attn_softcap, slides ? m_.sliding_window : 0};
  }
  T* bias(std::vector<T>& buf, LlamaTensorId id, int64_t l) { return m_.qkv_bias ? at(buf, id, l) : nullptr; }
  // Views of layer l's activations.
  struct Layer {
    T *res, *mid, *next, *an, *mn, *an_r, *mn_r, *q, *k, *v, *y, *att, *ho, *hm, *ho_r, *hm_r, *g, *u, *act;
  };
  Layer layer(int64_t l) {
    const int64_t sN = sN_, D = C_;
    auto post = [&](std::vector<T>& b, int64_t w) { return post_ ? b.data() + l * sN * w : nullptr; };
    return {a_.res.data() + l * sN * D,  a_.mid.data() + l * sN * D, a_.res.data() + (l + 1) * sN * D,
            a_.an.data() + l * sN * D,   a_.mn.data() + l * sN * D,  a_.an_r.data() + l * sN,
            a_.mn_r.data() + l * sN,     a_.q.data() + l * sN * Q_,  a_.k.data() + l * sN * K_,
            a_.v.data() + l * sN * K_,   a_.y.data() + l * sN * Q_,  a_.att.data() + l * Bm_ * H_ * Tc_ * Tc_,
            post(a_.ho, D),              post(a_.hm, D),             post(a_.ho_r, 1),
            post(a_.hm_r, 1),            a_.g.data() + l * sN * F_,  a_.u.data() + l * sN * F_,
            a_.act.data() + l * sN * F_};
  }

  // out = x + h·Wᵀ, or out = x + rmsnorm(h·Wᵀ) with post-norms (h·Wᵀ kept in hpre, its rstd in hr).
  void residual_add(T* out, const T* x, const T* h, const T* wt, int64_t N, int64_t IC, T* hpre, T* hr,
                    LlamaTensorId post_norm, int64_t l, int nt) {
    std::memcpy(out, x, sizeof(T) * N * C_);
    if (!post_) {
      matmul_forward<T>(out, h, wt, nullptr, N, IC, C_, true, nt);
      return;
    }
    matmul_forward<T>(hpre, h, wt, nullptr, N, IC, C_, false, nt);
    rmsnorm_forward<T>(out, hr, hpre, at(params_, post_norm, l), m_.norm_plus_one, m_.norm_eps, N, C_, true, nt);
  }
  // The gradient of the branch output h·Wᵀ of residual_add from dres = d(out): dres itself, or
  // through the post-norm (into g_.dh).
  const T* branch_grad(const T* dres, const T* hpre, const T* hr, LlamaTensorId post_norm, int64_t l, int64_t N,
                       int nt) {
    if (!post_) return dres;
    std::fill(g_.dh.begin(), g_.dh.begin() + N * C_, T(0));
    rmsnorm_backward<T>(g_.dh.data(), at(grads_, post_norm, l), dres, hpre, at(params_, post_norm, l), hr,
                        m_.norm_plus_one, N, C_, nt);
    return g_.dh.data();
  }

  void forward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) override {
    if (!wt_fresh_) refresh_transposes(nt);
    const int64_t N = B * Tn;
    const bool p1 = m_.norm_plus_one != 0;
    encoder_forward<T>(a_.res.data(), inputs, at(params_, kEmbed), nullptr, static_cast<T>(m_.embed_scale), B, Tn, C_,
                       nt);
    for (int64_t l = 0; l < L_; ++l) {
      const Layer a = layer(l);
      // attention block
      rmsnorm_forward<T>(a.an, a.an_r, a.res, at(params_, kAttnNorm, l), p1, m_.norm_eps, N, C_, false, nt);
      matmul_forward<T>(a.q, a.an, wt(l, kWq), bias(params_, kQBias, l), N, C_, Q_, false, nt);
      matmul_forward<T>(a.k, a.an, wt(l, kWk), bias(params_, kKBias, l), N, C_, K_, false, nt);
      matmul_forward<T>(a.v, a.an, wt(l, kWv), bias(params_, kVBias, l), N, C_, K_, false, nt);
      rope_forward<T>(a.q, cos_.data(), sin_.data(), B, Tn, H_, hd_, Q_, nt);
      rope_forward<T>(a.k, cos_.data(), sin_.data(), B, Tn, KVH_, hd_, K_, nt);
      attention_forward<T>(attn_shape(B, Tn, l), a.y, a.att, a.q, a.k, a.v, att_scratch(nt), nt);
      residual_add(a.mid, a.res, a.y, wt(l, kWo), N, Q_, a.ho, a.ho_r, kAttnPostNorm, l, nt);
      // MLP block
      rmsnorm_forward<T>(a.mn, a.mn_r, a.mid, at(params_, kMlpNorm, l), p1, m_.norm_eps, N, C_, false, nt);
      matmul_forward<T>(a.g, a.mn, wt(l, kWg), nullptr, N, C_, F_, false, nt);
      matmul_forward<T>(a.u, a.mn, wt(l, kWu), nullptr, N, C_, F_, false, nt);
      glu_forward<T>(a.act, a.g, a.u, N * F_, m_.mlp_act, nt);
      residual_add(a.next, a.mid, a.act, wt(l, kWd), N, F_, a.hm, a.hm_r, kMlpPostNorm, l, nt);
    }
    rmsnorm_forward<T>(a_.nf.data(), a_.nf_r.data(), a_.res.data() + L_ * sN_ * C_, at(params_, kNormF), p1,
                       m_.norm_eps, N, C_, false, nt);
  }

  // Expects d(loss)/d(hidden) in g_.dln (written by the head); adds every parameter gradient.
  void backward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) override {
    const int64_t N = B * Tn;
    const bool p1 = m_.norm_plus_one != 0;
    T* dres = g_.dres.data();
    T* dln = g_.dln.data();
    std::fill(g_.dres.begin(), g_.dres.begin() + N * C_, T(0));
    rmsnorm_backward<T>(dres, at(grads_, kNormF), dln, a_.res.data() + L_ * sN_ * C_, at(params_, kNormF),
                        a_.nf_r.data(), p1, N, C_, nt);
    for (int64_t l = L_ - 1; l >= 0; --l) {
      const Layer a = layer(l);
      // next = mid + [post-norm](act(gate(mn)) ⊙ up(mn))·downᵀ,  mn = rmsnorm(mid)
      const T* dh = branch_grad(dres, a.hm, a.hm_r, kMlpPostNorm, l, N, nt);
      matmul_backward<T>(g_.da.data(), at(grads_, kDown, l), nullptr, dh, a.act, at(params_, kDown, l), N, F_, C_, nt);
      glu_backward<T>(g_.dg.data(), g_.du.data(), g_.da.data(), a.g, a.u, N * F_, m_.mlp_act, nt);
      matmul_backward<T>(dln, at(grads_, kGate, l), nullptr, g_.dg.data(), a.mn, at(params_, kGate, l), N, C_, F_, nt);
      matmul_backward<T>(dln, at(grads_, kUp, l), nullptr, g_.du.data(), a.mn, at(params_, kUp, l), N, C_, F_, nt,
                         true);
      rmsnorm_backward<T>(dres, at(grads_, kMlpNorm, l), dln, a.mid, at(params_, kMlpNorm, l), a.mn_r, p1, N, C_, nt);
      // mid = res + [post-norm](attention(rope(q), rope(k), v)·oᵀ),  q, k, v from an = rmsnorm(res)
      dh = branch_grad(dres, a.ho, a.ho_r, kAttnPostNorm, l, N, nt);
      matmul_backward<T>(g_.dy.data(), at(grads_, kO, l), nullptr, dh, a.y, at(params_, kO, l), N, Q_, C_, nt);
      attention_backward<T>(attn_shape(B, Tn, l), g_.dq.data(), g_.dk.data(), g_.dv.data(), g_.dy.data(), a.q, a.k,
                            a.v, a.att, att_scratch(nt), nt);
      rope_backward<T>(g_.dq.data(), cos_.data(), sin_.data(), B, Tn, H_, hd_, Q_, nt);
      rope_backward<T>(g_.dk.data(), cos_.data(), sin_.data(), B, Tn, KVH_, hd_, K_, nt);
      matmul_backward<T>(dln, at(grads_, kQ, l), bias(grads_, kQBias, l), g_.dq.data(), a.an, at(params_, kQ, l), N,
                         C_, Q_, nt);
      matmul_backward<T>(dln, at(grads_, kK, l), bias(grads_, kKBias, l), g_.dk.data(), a.an, at(params_, kK, l), N,
                         C_, K_, nt, true);
      matmul_backward<T>(dln, at(grads_, kV, l), bias(grads_, kVBias, l), g_.dv.data(), a.an, at(params_, kV, l), N,
                         C_, K_, nt, true);
      rmsnorm_backward<T>(dres, at(grads_, kAttnNorm, l), dln, a.res, at(params_, kAttnNorm, l), a.an_r, p1, N, C_,
                          nt);
    }
    encoder_backward<T>(at(grads_, kEmbed), nullptr, dres, inputs, static_cast<T>(m_.embed_scale), B, Tn, C_, nt);
  }

  const calib_llama_config m_;
  const int64_t H_, KVH_, hd_, Q_, K_, F_;
  const bool post_;
  const int64_t sN_;  // positions of the activations (max_batch × context): the per-layer stride
  std::vector<T> cos_, sin_;
  Acts a_;
  GradActs g_;
};

}  // namespace

std::unique_ptr<ModelImpl> make_llama_cpu(const calib_model_config& c, const Layout& layout) {
  return make_cpu_model<LlamaCpu>(c, layout);
}

}  // namespace calib::model
