// The CPU base of every architecture: parameter / gradient / AdamW buffers in the layout's flat
// order, the step (forward, LM head + label-smoothed loss, backward), evaluation, gradient norms
// and AdamW. An architecture (gpt_cpu.cc, llama_cpu.cc) supplies the forward pass up to the final
// hidden states and the backward pass from their gradient; its activations are sized once for
// max_batch × context (nothing is allocated per step).
// CpuModel<float> trains; CpuModel<double> is the float64 reference for gradient checks.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/parallel.h"
#include "gpt.h"
#include "kernels.h"

namespace calib::model {

template <typename T>
class CpuModel : public ModelImpl {
 public:
  CpuModel(const calib_model_config& c, const Layout& layout)
      : c_(c), lay_(layout), L_(c.n_layer), C_(c.d_model), V_(c.vocab), Tc_(c.context), Bm_(c.max_batch) {
    const int64_t P = lay_.total, N = Bm_ * Tc_;
    params_.assign(P, T(0));
    grads_.assign(P, T(0));
    m_.assign(P, T(0));
    v_.assign(P, T(0));
    if constexpr (std::is_same_v<T, float>) head_scratch_.resize(V_ * C_ + 2 * N);
    constexpr int64_t kChunk = 1 << 16;
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      for (int64_t b = 0; b < s.numel; b += kChunk)
        chunks_.push_back({i, s.offset + b, s.offset + std::min(s.numel, b + kChunk)});
    }
  }

  void read(calib_model_buffer which, int64_t offset, int64_t count, void* dst) final {
    std::memcpy(dst, buffer(which).data() + offset, sizeof(T) * count);
  }
  void write(calib_model_buffer which, int64_t offset, int64_t count, const void* src) final {
    std::memcpy(buffer(which).data() + offset, src, sizeof(T) * count);
    if (which == CALIB_BUF_PARAMS) wt_fresh_ = false;
  }
  void zero(calib_model_buffer which) final {
    std::fill(buffer(which).begin(), buffer(which).end(), T(0));
    if (which == CALIB_BUF_PARAMS) wt_fresh_ = false;
  }

  calib_status step(calib_model_step_args& a, char* err) final {
    const int64_t B = a.b, Tn = a.t, N = B * Tn;
    const int nt = threads();
    forward(a.inputs, B, Tn, nt);
    HeadArgs h{a.targets, a.ignore_index, a.label_smoothing, a.temperature, a.softcap, a.grad_scale,
               a.backward != 0, nt};
    if (calib_status st = head_loss<T>(h, hidden(), head(params_), N, C_, V_, dhidden(), head(grads_),
                                       head_scratch_.data(), err))
      return st;
    a.loss_sum = h.loss_sum;
    a.valid_count = h.valid_count;
    if (a.backward && h.valid_count > 0) backward(a.inputs, B, Tn, nt);
    return CALIB_OK;
  }

  calib_status eval(calib_model_eval_args& a, char*) final {
    const int nt = threads();
    forward(a.inputs, a.b, a.t, nt);
    eval_head<T>(a, hidden(), head(params_), C_, V_, nt);
    return CALIB_OK;
  }

  double grad_norm(double* tensor_norms) final {
    return std::sqrt(sum_squares<T>(grads_.data(), chunks_.data(), static_cast<int64_t>(chunks_.size()),
                                    tensor_norms, lay_.count, threads()));
  }

  void adamw(const calib_adamw_args& a) final { update(a, 0, static_cast<int64_t>(params_.size())); }

  calib_status adamw_range(const calib_adamw_args& a, int64_t begin, int64_t end, char*) final {
    update(a, begin, end);
    return CALIB_OK;
  }

 private:
  // AdamW on each tensor's part of [begin, end), with that tensor's decay (elementwise: a range
  // gets the values the whole update gives there).
  void update(const calib_adamw_args& a, int64_t begin, int64_t end) {
    const int nt = threads();
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      const int64_t b = std::max(begin, s.offset), e = std::min(end, s.offset + s.numel);
      if (b < e) adamw_update<T>(params_.data(), grads_.data(), m_.data(), v_.data(), b, e, a, s.decay, nt);
    }
    wt_fresh_ = false;
  }

 protected:
  // The architecture: forward fills hidden() (final normed states, N×d_model) for b×t tokens;
  // backward expects d(loss)/d(hidden) in dhidden() (written by the head) and adds every parameter
  // gradient.
  virtual void forward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) = 0;
  virtual void backward(const int32_t* inputs, int64_t B, int64_t Tn, int nt) = 0;
  virtual const T* hidden() = 0;
  virtual T* dhidden() = 0;

  // The attention kernels' scratch for nt threads of `per_thread` elements each.
  T* attention_scratch_for(int nt, int64_t per_thread) {
    const size_t need = static_cast<size_t>(nt) * per_thread;
    if (att_scratch_.size() < need) att_scratch_.resize(need);
    return att_scratch_.data();
  }

  int threads() const { return c_.threads > 0 ? c_.threads : default_threads(); }
  std::vector<T>& buffer(calib_model_buffer w) {
    switch (w) {
      case CALIB_BUF_GRADS: return grads_;
      case CALIB_BUF_ADAM_M: return m_;
      case CALIB_BUF_ADAM_V: return v_;
      default: return params_;
    }
  }
  // Tensor id (TensorId or LlamaTensorId) → its data in a flat buffer (one layer of a stacked tensor).
  T* at(std::vector<T>& buf, int32_t id, int64_t layer = 0) {
    const TensorSpec& s = lay_.t[id];
    return buf.data() + s.offset + (s.per_layer ? layer * (s.numel / L_) : 0);
  }
  T* head(std::vector<T>& buf) { return at(buf, lay_.head); }

  calib_model_config c_;
  Layout lay_;
  const int64_t L_, C_, V_, Tc_, Bm_;
  std::vector<T> params_, grads_, m_, v_;
  // The architecture's transposed matmul weights (matmul_forward reads Wᵀ): stale after any
  // parameter change until the next forward refreshes them.
  std::vector<T> wt_;
  bool wt_fresh_ = false;

 private:
  std::vector<T> head_scratch_, att_scratch_;
  std::vector<Chunk> chunks_;
};

// The implementation of an architecture (GptCpu, LlamaCpu) at the config's precision.
template <template <typename> class Model>
std::unique_ptr<ModelImpl> make_cpu_model(const calib_model_config& c, const Layout& layout) {
  if (c.precision == CALIB_MODEL_F64) return std::make_unique<Model<double>>(c, layout);
  return std::make_unique<Model<float>>(c, layout);
}

}  // namespace calib::model
