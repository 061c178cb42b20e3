// Internal interface of the GPT model, shared by the validating C API (model.cc), the
// parameter layout (layout.cc), the seeded initialisation (init.cc) and the device
// implementations, which sit side by side:
//   gpt_cpu.cc     CPU forward / backward / step (fp32 training, fp64 reference)
//   eval_cpu.cc    CPU evaluation (per-token distribution statistics)
//   gpt_cuda.cu    CUDA implementation (issue 9): implements GptImpl, created in model.cc
// The per-layer kernels (one concern per file, forward and backward side by side) are
// declared in kernels.h. model.cc has validated every argument before an impl runs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "calib.h"
#include "../common/status.h"  // fail()

namespace calib::model {

using calib::fail;  // common/status.h

// The fused loss's arguments common to the CPU and CUDA LM heads: per-token losses (reduction
// 'none', the caller sums them) of rows e (n×d) against the head c (v×d) with the run's loss
// options (o: HeadArgs or calib_model_step_args); the caller adds dtype, device, memory, its
// execution options and the gradients.
template <typename LossOptions>
calib_lce_args head_lce_args(const LossOptions& o, int64_t n, int64_t d, int64_t v, const void* e, const void* c,
                             const int32_t* targets, float* loss) {
  calib_lce_args la{};
  la.n = n;
  la.d = d;
  la.v = v;
  la.e = e;
  la.c = c;
  la.targets = targets;
  la.label_smoothing = o.label_smoothing;
  la.ignore_index = o.ignore_index;
  la.reduction = CALIB_REDUCE_NONE;
  la.temperature = o.temperature;
  la.softcap = o.softcap;
  la.impl = CALIB_IMPL_FUSED;
  la.loss = loss;
  return la;
}

// The parameter tensors in flat-buffer order (llm.c order; lm_head only when untied).
enum TensorId {
  kWte, kWpe, kLn1w, kLn1b, kQkvw, kQkvb, kAttprojw, kAttprojb,
  kLn2w, kLn2b, kFcw, kFcb, kFcprojw, kFcprojb, kLnfw, kLnfb, kLmHead, kNumTensors
};

struct TensorSpec {
  const char* name;
  int64_t offset = 0, numel = 0;
  int32_t ndim = 0;
  int64_t shape[3] = {0, 0, 0};
  bool per_layer = false, decay = false, present = false;
};

struct Layout {
  TensorSpec t[kNumTensors];
  int64_t total = 0;
  int32_t count = 0;            // present tensors (16 tied, 17 untied)
  int32_t index[kNumTensors];   // public index (0..count) → TensorId
};

Layout make_layout(const calib_model_config& c);

// One device implementation of the model. Buffers hold float (F32) or double (F64).
class GptImpl {
 public:
  virtual ~GptImpl() = default;
  virtual void read(calib_model_buffer which, int64_t offset, int64_t count, void* dst) = 0;
  virtual void write(calib_model_buffer which, int64_t offset, int64_t count, const void* src) = 0;
  virtual void zero(calib_model_buffer which) = 0;
  virtual calib_status step(calib_model_step_args& a, char* err) = 0;
  virtual calib_status eval(calib_model_eval_args& a, char* err) = 0;
  virtual double grad_norm(double* tensor_norms) = 0;
  virtual void adamw(const calib_adamw_args& a) = 0;
};

// CPU implementations (gpt_cpu.cc). Throws std::bad_alloc when buffers do not fit.
std::unique_ptr<GptImpl> make_gpt_cpu(const calib_model_config& c, const Layout& layout);

}  // namespace calib::model

struct calib_model {
  calib_model_config config;
  calib::model::Layout layout;
  std::unique_ptr<calib::model::GptImpl> impl;
};
