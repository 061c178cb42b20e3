// The GPT model on the CPU: parameter / gradient / AdamW buffers, activations sized once for
// max_batch × context (nothing is allocated per step), and the forward and backward passes
// that chain the per-layer kernels of kernels.h (llm.c's gpt2_forward / gpt2_backward).
// GptCpu<float> trains; GptCpu<double> is the float64 reference for gradient checks.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/parallel.h"
#include "gpt.h"
#include "kernels.h"

namespace calib::model {
namespace {

template <typename T>
class GptCpu final : public GptImpl {
 public:
  GptCpu(const calib_model_config& c, const Layout& layout)
      : c_(c), lay_(layout), L_(c.n_layer), C_(c.d_model), NH_(c.n_head), V_(c.vocab), Tc_(c.context),
        Bm_(c.max_batch) {
    const int64_t P = lay_.total, N = Bm_ * Tc_, NC = N * C_;
    params_.assign(P, T(0));
    grads_.assign(P, T(0));
    m_.assign(P, T(0));
    v_.assign(P, T(0));
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
    if constexpr (std::is_same_v<T, float>) head_scratch_.resize(V_ * C_ + 2 * N);
    ensure_scratch(threads());
    constexpr int64_t kChunk = 1 << 16;
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      for (int64_t b = 0; b < s.numel; b += kChunk)
        chunks_.push_back({i, s.offset + b, s.offset + std::min(s.numel, b + kChunk)});
    }
  }

  void read(calib_model_buffer which, int64_t offset, int64_t count, void* dst) override {
    std::memcpy(dst, buffer(which).data() + offset, sizeof(T) * count);
  }
  void write(calib_model_buffer which, int64_t offset, int64_t count, const void* src) override {
    std::memcpy(buffer(which).data() + offset, src, sizeof(T) * count);
    if (which == CALIB_BUF_PARAMS) wt_fresh_ = false;
  }
  void zero(calib_model_buffer which) override {
    std::fill(buffer(which).begin(), buffer(which).end(), T(0));
    if (which == CALIB_BUF_PARAMS) wt_fresh_ = false;
  }

  calib_status step(calib_model_step_args& a, char* err) override {
    const int64_t B = a.b, Tn = a.t, N = B * Tn;
    const int nt = threads();
    forward(a.inputs, B, Tn, nt);
    HeadArgs h{a.targets, a.ignore_index, a.label_smoothing, a.temperature, a.softcap, a.grad_scale,
               a.backward != 0, nt};
    if (calib_status st = head_loss<T>(h, a_.lnf.data(), head(params_), N, C_, V_, g_.dln.data(), head(grads_),
                                       head_scratch_.data(), err))
      return st;
    a.loss_sum = h.loss_sum;
    a.valid_count = h.valid_count;
    if (a.backward && h.valid_count > 0) backward(a.inputs, B, Tn, nt);
    return CALIB_OK;
  }

  calib_status eval(calib_model_eval_args& a, char*) override {
    const int nt = threads();
    forward(a.inputs, a.b, a.t, nt);
    eval_head<T>(a, a_.lnf.data(), head(params_), C_, V_, nt);
    return CALIB_OK;
  }

  double grad_norm(double* tensor_norms) override {
    return std::sqrt(sum_squares<T>(grads_.data(), chunks_.data(), static_cast<int64_t>(chunks_.size()),
                                    tensor_norms, lay_.count, threads()));
  }

  void adamw(const calib_adamw_args& a) override {
    const int nt = threads();
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      adamw_update<T>(params_.data(), grads_.data(), m_.data(), v_.data(), s.offset, s.offset + s.numel, a, s.decay,
                      nt);
    }
    wt_fresh_ = false;
  }

 private:
  struct Acts {
    std::vector<T> encoded, ln1, ln1_mean, ln1_rstd, qkv, atty, att, res2, ln2, ln2_mean, ln2_rstd, fch, fch_gelu,
        res3, lnf, lnf_mean, lnf_rstd;
  };
  struct GradActs {
    std::vector<T> dres, dln, datty, dqkv, dfch, dfch_gelu;
  };

  int threads() const { return c_.threads > 0 ? c_.threads : default_threads(); }
  void ensure_scratch(int nt) {
    const size_t need = static_cast<size_t>(nt) * attention_scratch(Tc_, C_ / NH_);
    if (att_scratch_.size() < need) att_scratch_.resize(need);
  }
  std::vector<T>& buffer(calib_model_buffer w) {
    switch (w) {
      case CALIB_BUF_GRADS: return grads_;
      case CALIB_BUF_ADAM_M: return m_;
      case CALIB_BUF_ADAM_V: return v_;
      default: return params_;
    }
  }
  T* at(std::vector<T>& buf, TensorId id, int64_t layer = 0) {
    const TensorSpec& s = lay_.t[id];
    return buf.data() + s.offset + (s.per_layer ? layer * (s.numel / L_) : 0);
  }
  T* head(std::vector<T>& buf) { return at(buf, c_.tied ? kWte : kLmHead); }
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

  void forward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) {
    ensure_scratch(nt);
    if (!wt_fresh_) refresh_transposes(nt);
    const int64_t N = B * Tn, NC = N * C_, sN = Bm_ * Tc_, sNC = sN * C_;
    encoder_forward<T>(a_.encoded.data(), inputs, at(params_, kWte), at(params_, kWpe), B, Tn, C_, nt);
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
      attention_forward<T>(atty, att, qkv, B, Tn, C_, NH_, att_scratch_.data(), nt);
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
  void backward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) {
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
      attention_backward<T>(g_.dqkv.data(), g_.datty.data(), qkv, att, B, Tn, C_, NH_, att_scratch_.data(), nt);
      matmul_backward<T>(dln, at(grads_, kQkvw, l), at(grads_, kQkvb, l), g_.dqkv.data(), ln1, at(params_, kQkvw, l),
                         N, C_, 3 * C_, nt);
      layernorm_backward<T>(dres, at(grads_, kLn1w, l), at(grads_, kLn1b, l), dln, res, at(params_, kLn1w, l),
                            a_.ln1_mean.data() + l * sN, a_.ln1_rstd.data() + l * sN, N, C_, nt);
    }
    encoder_backward<T>(at(grads_, kWte), at(grads_, kWpe), dres, inputs, B, Tn, C_, nt);
  }

  calib_model_config c_;
  Layout lay_;
  const int64_t L_, C_, NH_, V_, Tc_, Bm_;
  std::vector<T> params_, grads_, m_, v_, wt_;
  bool wt_fresh_ = false;
  Acts a_;
  GradActs g_;
  std::vector<T> att_scratch_, head_scratch_;
  std::vector<Chunk> chunks_;
};

}  // namespace

std::unique_ptr<GptImpl> make_gpt_cpu(const calib_model_config& c, const Layout& layout) {
  if (c.precision == CALIB_MODEL_F64) return std::make_unique<GptCpu<double>>(c, layout);
  return std::make_unique<GptCpu<float>>(c, layout);
}

}  // namespace calib::model
