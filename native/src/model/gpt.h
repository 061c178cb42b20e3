// Internal interface of the engine's models, shared by the validating C API (model.cc), the
// parameter layouts (layout.cc), the seeded initialisation (init.cc) and the device
// implementations, which sit side by side:
//   cpu_model.h    the CPU base of both architectures: flat buffers, step / eval / norms / AdamW
//   gpt_cpu.cc     GPT-2 on the CPU: forward / backward (fp32 training, fp64 reference)
//   llama_cpu.cc   the Llama family on the CPU: forward / backward (fp32 training, fp64 reference)
//   eval_cpu.cc    CPU evaluation (per-token distribution statistics)
//   gpt_cuda.cu    GPT-2 on CUDA (issue 9): implements ModelImpl, created in model.cc
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

// The parameter tensors of GPT2 in flat-buffer order (llm.c order; lm_head only when untied).
enum TensorId {
  kWte, kWpe, kLn1w, kLn1b, kQkvw, kQkvb, kAttprojw, kAttprojb,
  kLn2w, kLn2b, kFcw, kFcb, kFcprojw, kFcprojb, kLnfw, kLnfb, kLmHead, kNumTensors
};

// The parameter tensors of LLAMA in flat-buffer order (calib.h; the biases only with qkv_bias, the
// post-norms only with post_norms, lm_head only when untied).
enum LlamaTensorId {
  kEmbed, kAttnNorm, kQ, kK, kV, kQBias, kKBias, kVBias, kO, kAttnPostNorm,
  kMlpNorm, kGate, kUp, kDown, kMlpPostNorm, kNormF, kLlamaLmHead, kLlamaNumTensors
};

constexpr int kMaxTensors = static_cast<int>(kNumTensors) > static_cast<int>(kLlamaNumTensors)
                                ? static_cast<int>(kNumTensors)
                                : static_cast<int>(kLlamaNumTensors);

struct TensorSpec {
  const char* name;
  int64_t offset = 0, numel = 0;
  int32_t ndim = 0;
  int64_t shape[3] = {0, 0, 0};
  bool per_layer = false, decay = false, present = false;
};

// t is indexed by the architecture's tensor id (TensorId or LlamaTensorId); absent tensors have
// present = false and take no space.
struct Layout {
  TensorSpec t[kMaxTensors];
  int64_t total = 0;
  int32_t count = 0;            // present tensors (GPT2: 16 tied, 17 untied)
  int32_t index[kMaxTensors];   // public index (0..count) → tensor id
  int32_t head = 0;             // id of the LM head's matrix (the embedding when tied)
};

Layout make_layout(const calib_model_config& c);

// One device implementation of a model (any architecture). Buffers hold float (F32) or double (F64).
class ModelImpl {
 public:
  virtual ~ModelImpl() = default;
  virtual void read(calib_model_buffer which, int64_t offset, int64_t count, void* dst) = 0;
  virtual void write(calib_model_buffer which, int64_t offset, int64_t count, const void* src) = 0;
  virtual void zero(calib_model_buffer which) = 0;
  virtual calib_status step(calib_model_step_args& a, char* err) = 0;
  virtual calib_status eval(calib_model_eval_args& a, char* err) = 0;
  virtual double grad_norm(double* tensor_norms) = 0;
  virtual void adamw(const calib_adamw_args& a) = 0;
  // AdamW on the flat range [begin, end) only (one rank's shard under ZeRO-1); devices without it say so.
  virtual calib_status adamw_range(const calib_adamw_args& a, int64_t begin, int64_t end, char* err);
};

using GptImpl = ModelImpl;  // the name gpt_cuda.cu implements

// CPU implementations (gpt_cpu.cc, llama_cpu.cc). Throw std::bad_alloc when buffers do not fit.
std::unique_ptr<ModelImpl> make_gpt_cpu(const calib_model_config& c, const Layout& layout);
std::unique_ptr<ModelImpl> make_llama_cpu(const calib_model_config& c, const Layout& layout);

}  // namespace calib::model

struct calib_model {
  calib_model_config config;
  calib::model::Layout layout;
  std::unique_ptr<calib::model::ModelImpl> impl;
};
