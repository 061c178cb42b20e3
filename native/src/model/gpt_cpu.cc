// The GPT model on the CPU: activations sized once for max_batch × context and the forward and
// backward passes that chain the per-layer kernels of kernels.h (llm.c's gpt2_forward /
// gpt2_backward); buffers, the LM head, evaluation and AdamW are CpuModel's (cpu_model.h).
// GptCpu<float> trains; GptCpu<double> is the float64 reference for gradient checks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_model.h"

namespace calib::model {
namespace {

template <typename T>
class GptCpu final : public CpuModel<T> {
  using Base = CpuModel<T>;
  using Base::c_, Base::lay_, Base::L_, Base::C_, Base::Tc_, Base::Bm_, Base::params_, Base::grads_, Base::wt_,
      Base::wt_fresh_, Base::at;

 public:
  GptCpu(const calib_model_config& c, const Layout& layout) : Base(c, layout), NH_(c.n_head) {
    const int64_t N = Bm_ * Tc_, NC = N * C_;
    wt_.assign(L_ * 12 * C_ * C_, T(0));
    a_.encoded.resize(NC);
    a_.ln1.resize(L_ * NC);
    a_.ln1_mean.resize(L_ * N);
    a_.ln1_rstd.resize(L_ * N);
    a_.qkv.resize(L_ * 3 * NC);
    a_.atty.resize(L_ * NC);
    a_.att.resize(L_ * Bm_ * NH_ * Tc_ * Tc_);
    a_.res2.resize(L_ * NC);
    a_.ln2.resize(L_ * NC);
    a_.ln2_mean.resize(L_ * N);
    a_.ln2_rstd.resize(L_ * N);
    a_.fch.resize(L_ * 4 * NC);
    a_.fch_gelu.resize(L_ * 4 * NC);
    a_.res3.resize(L_ * NC);
    a_.lnf.resize(NC);
    a_.lnf_mean.resize(N);
    a_.lnf_rstd.resize(N);
    g_.dres.resize(NC);
    g_.dln.resize(NC);
    g_.datty.resize(NC);
    g_.dqkv.resize(3 * NC);
    g_.dfch.resize(4 * NC);
    g_.dfch_gelu.resize(4 * NC);
    att_scratch(this->threads());
  }

 private:
  struct Acts {
    std::vector<T> encoded, ln1, ln1_mean, ln1_rstd, qkv, atty, att, res2, ln2, ln2_mean, ln2_rstd, fch, fch_gelu,
        res3, lnf, lnf_mean, lnf_rstd;
  };
  struct GradActs {
    std::vector<T> dres, dln, datty, dqkv, dfch, dfch_gelu;
  };

  const T* hidden() override { return a_.lnf.data(); }
  T* dhidden() override { return g_.dln.data(); }

  T* att_scratch(int nt) { return this->attention_scratch_for(nt, attention_scratch(Tc_, C_ / NH_, false)); }
  // The attention of b×t tokens over the packed qkv rows (B, T, 3C).
  AttnShape attn_shape(int64_t B, int64_t Tn) const {
    return {B, Tn, NH_, NH_, C_ / NH_, 3 * C_, 3 * C_, C_, 1.0 / std::sqrt(static_cast<double>(C_ / NH_)), 0, 0};
  }
  // Transposed matmul weights per layer: qkvᵀ (C×3C), attprojᵀ (C×C), fcᵀ (C×4C), fcprojᵀ (4C×C).
  T* wt(int64_t l, int which) {
    static const int64_t off[4] = {0, 3, 4, 8};
    return wt_.data() + l * 12 * C_ * C_ + off[which] * C_ * C_;
  }
  void refresh_transposes(int nt) {
    for (int64_t l = 0; l < L_; ++l) {
      transpose<T>(wt(l, 0), at(params_, kQkvw, l), 3 * C_, C_, nt);
      transpose<T>(wt(l, 1), at(params_, kAttprojw, l), C_, C_, nt);
      transpose<T>(wt(l, 2), at(params_, kFcw, l), 4 * C_, C_, nt);
      transpose<T>(wt(l, 3), at(params_, kFcprojw, l), C_, 4 * C_, nt);
    }
    wt_fresh_ = true;
  }

  void forward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) override {
    if (!wt_fresh_) refresh_transposes(nt);
    const int64_t N = B * Tn, NC = N * C_, sN = Bm_ * Tc_, sNC = sN * C_;
    encoder_forward<T>(a_.encoded.data(), inputs, at(params_, kWte), at(params_, kWpe), T(1), B, Tn, C_, nt);
    for (int64_t l = 0; l < L_; ++l) {
      const T* res = l == 0 ? a_.encoded.data() : a_.res3.data() + (l - 1) * sNC;
      T* ln1 = a_.ln1.data() + l * sNC;
      T* qkv = a_.qkv.data() + l * 3 * sNC;
      T* atty = a_.atty.data() + l * sNC;
      T* att = a_.att.data() + l * Bm_ * NH_ * Tc_ * Tc_;
      T* res2 = a_.res2.data() + l * sNC;
      T* ln2 = a_.ln2.data() + l * sNC;
      T* fch = a_.fch.data() + l * 4 * sNC;
      T* fchg = a_.fch_gelu.data() + l * 4 * sNC;
      T* res3 = a_.res3.data() + l * sNC;
      layernorm_forward<T>(ln1, a_.ln1_mean.data() + l * sN, a_.ln1_rstd.data() + l * sN, res, at(params_, kLn1w, l),
                           at(params_, kLn1b, l), N, C_, nt);
      matmul_forward<T>(qkv, ln1, wt(l, 0), at(params_, kQkvb, l), N, C_, 3 * C_, false, nt);
      attention_forward<T>(attn_shape(B, Tn), atty, att, qkv, qkv + C_, qkv + 2 * C_, att_scratch(nt), nt);
      std::memcpy(res2, res, sizeof(T) * NC);
      matmul_forward<T>(res2, atty, wt(l, 1), at(params_, kAttprojb, l), N, C_, C_, true, nt);
      layernorm_forward<T>(ln2, a_.ln2_mean.data() + l * sN, a_.ln2_rstd.data() + l * sN, res2,
                           at(params_, kLn2w, l), at(params_, kLn2b, l), N, C_, nt);
      matmul_forward<T>(fch, ln2, wt(l, 2), at(params_, kFcb, l), N, C_, 4 * C_, false, nt);
      gelu_forward<T>(fchg, fch, 4 * NC, nt);
      std::memcpy(res3, res2, sizeof(T) * NC);
      matmul_forward<T>(res3, fchg, wt(l, 3), at(params_, kFcprojb, l), N, 4 * C_, C_, true, nt);
    }
    layernorm_forward<T>(a_.lnf.data(), a_.lnf_mean.data(), a_.lnf_rstd.data(), a_.res3.data() + (L_ - 1) * sNC,
                         at(params_, kLnfw), at(params_, kLnfb), N, C_, nt);
  }

  // Expects d(loss)/d(lnf) in g_.dln (written by the head); adds every parameter gradient.
  void backward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) override {
    const int64_t N = B * Tn, NC = N * C_, sN = Bm_ * Tc_, sNC = sN * C_;
    T* dres = g_.dres.data();
    T* dln = g_.dln.data();
    std::fill(g_.dres.begin(), g_.dres.begin() + NC, T(0));
    layernorm_backward<T>(dres, at(grads_, kLnfw), at(grads_, kLnfb), dln, a_.res3.data() + (L_ - 1) * sNC,
                          at(params_, kLnfw), a_.lnf_mean.data(), a_.lnf_rstd.data(), N, C_, nt);
    for (int64_t l = L_ - 1; l >= 0; --l) {
      const T* res = l == 0 ? a_.encoded.data() : a_.res3.data() + (l - 1) * sNC;
      const T* ln1 = a_.ln1.data() + l * sNC;
      const T* qkv = a_.qkv.data() + l * 3 * sNC;
      const T* atty = a_.atty.data() + l * sNC;
      const T* att = a_.att.data() + l * Bm_ * NH_ * Tc_ * Tc_;
      const T* res2 = a_.res2.data() + l * sNC;
      const T* ln2 = a_.ln2.data() + l * sNC;
      const T* fch = a_.fch.data() + l * 4 * sNC;
      const T* fchg = a_.fch_gelu.data() + l * 4 * sNC;
      // res3 = res2 + fcproj(gelu(fc(ln2(res2))))
      matmul_backward<T>(g_.dfch_gelu.data(), at(grads_, kFcprojw, l), at(grads_, kFcprojb, l), dres, fchg,
                         at(params_, kFcprojw, l), N, 4 * C_, C_, nt);
      gelu_backward<T>(g_.dfch.data(), fch, g_.dfch_gelu.data(), 4 * NC, nt);
      matmul_backward<T>(dln, at(grads_, kFcw, l), at(grads_, kFcb, l), g_.dfch.data(), ln2, at(params_, kFcw, l), N,
                         C_, 4 * C_, nt);
      layernorm_backward<T>(dres, at(grads_, kLn2w, l), at(grads_, kLn2b, l), dln, res2, at(params_, kLn2w, l),
                            a_.ln2_mean.data() + l * sN, a_.ln2_rstd.data() + l * sN, N, C_, nt);
      // res2 = res + attproj(attn(qkv(ln1(res))))
      matmul_backward<T>(g_.datty.data(), at(grads_, kAttprojw, l), at(grads_, kAttprojb, l), dres, atty,
                         at(params_, kAttprojw, l), N, C_, C_, nt);
      T* dqkv = g_.dqkv.data();
      attention_backward<T>(attn_shape(B, Tn), dqkv, dqkv + C_, dqkv + 2 * C_, g_.datty.data(), qkv, qkv + C_,
                            qkv + 2 * C_, att, att_scratch(nt), nt);
      matmul_backward<T>(dln, at(grads_, kQkvw, l), at(grads_, kQkvb, l), g_.dqkv.data(), ln1, at(params_, kQkvw, l),
                         N, C_, 3 * C_, nt);
      layernorm_backward<T>(dres, at(grads_, kLn1w, l), at(grads_, kLn1b, l), dln, res, at(params_, kLn1w, l),
                            a_.ln1_mean.data() + l * sN, a_.ln1_rstd.data() + l * sN, N, C_, nt);
    }
    encoder_backward<T>(at(grads_, kWte), at(grads_, kWpe), dres, inputs, T(1), B, Tn, C_, nt);
  }

  const int64_t NH_;
  Acts a_;
  GradActs g_;
};

}  // namespace

std::unique_ptr<ModelImpl> make_gpt_cpu(const calib_model_config& c, const Layout& layout) {
  return make_cpu_model<GptCpu>(c, layout);
}

}  // namespace calib::model
