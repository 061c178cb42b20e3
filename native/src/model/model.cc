// The C entry points of the model: validate every argument before any memory is touched,
// then dispatch to the implementation of the architecture and device (gpt_cpu.cc, llama_cpu.cc,
// or gpt_cuda.cu / llama_cuda.cu on device 'cuda').
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include "gpt.h"

namespace calib::model {

#if CALIB_WITH_CUDA
// gpt_cuda.cu: the CUDA implementation (CALIB_ERR_DEVICE without a GPU or cuBLAS).
calib_status make_gpt_cuda(const calib_model_config& c, const Layout& layout, std::unique_ptr<ModelImpl>* out, char* err);
calib_status make_llama_cuda(const calib_model_config& c, const Layout& layout, std::unique_ptr<ModelImpl>* out, char* err);
#endif

namespace {

bool finite_positive(float x) { return x > 0.f && std::isfinite(x); }
bool flag(int32_t x) { return x == 0 || x == 1; }

// The Llama family's fields (calib_llama_config), named as the binding names them.
calib_status validate_llama(const calib_model_config& c, char* err) {
  const calib_llama_config& m = c.llama;
  if (m.n_kv_head < 1 || m.n_kv_head > c.n_head || c.n_head % m.n_kv_head != 0)
    return fail(err, CALIB_ERR_RANGE, "nKvHead must be ≥ 1 and divide nHead (got nKvHead %d, nHead %d)", m.n_kv_head,
                c.n_head);
  if (m.head_dim < 2 || m.head_dim > 65536 || m.head_dim % 2 != 0)
    return fail(err, CALIB_ERR_RANGE, "headDim must be an even number in [2, 65536] (rotary embeddings rotate pairs; got %d)",
                m.head_dim);
  if (m.d_ff < 1 || m.d_ff > (1 << 20)) return fail(err, CALIB_ERR_RANGE, "dFf must be in [1, 2^20] (got %d)", m.d_ff);
  if (!finite_positive(m.norm_eps)) return fail(err, CALIB_ERR_RANGE, "normEps must be a finite number > 0 (got %g)", m.norm_eps);
  if (!flag(m.norm_plus_one)) return fail(err, CALIB_ERR_TYPE, "normPlusOne must be 0 or 1");
  if (!flag(m.post_norms)) return fail(err, CALIB_ERR_TYPE, "postNorms must be 0 or 1");
  if (!flag(m.qkv_bias)) return fail(err, CALIB_ERR_TYPE, "qkvBias must be 0 or 1");
  if (m.mlp_act != CALIB_ACT_SILU && m.mlp_act != CALIB_ACT_GELU_TANH)
    return fail(err, CALIB_ERR_TYPE, "unknown mlpAct %d", static_cast<int>(m.mlp_act));
  if (!finite_positive(m.embed_scale))
    return fail(err, CALIB_ERR_RANGE, "embedScale must be a finite number > 0 (got %g)", m.embed_scale);
  if (!finite_positive(m.rope_theta))
    return fail(err, CALIB_ERR_RANGE, "ropeTheta must be a finite number > 0 (got %g)", m.rope_theta);
  if (m.rope_type != CALIB_ROPE_DEFAULT && m.rope_type != CALIB_ROPE_LINEAR && m.rope_type != CALIB_ROPE_LLAMA3)
    return fail(err, CALIB_ERR_TYPE, "unknown ropeType %d", static_cast<int>(m.rope_type));
  if (m.rope_type != CALIB_ROPE_DEFAULT && !finite_positive(m.rope_factor))
    return fail(err, CALIB_ERR_RANGE, "ropeFactor must be a finite number > 0 (got %g)", m.rope_factor);
  if (m.rope_type == CALIB_ROPE_LLAMA3) {
    if (!finite_positive(m.rope_low_freq_factor))
      return fail(err, CALIB_ERR_RANGE, "ropeLowFreqFactor must be a finite number > 0 (got %g)", m.rope_low_freq_factor);
    if (!(m.rope_high_freq_factor > m.rope_low_freq_factor) || !std::isfinite(m.rope_high_freq_factor))
      return fail(err, CALIB_ERR_RANGE, "ropeHighFreqFactor must be a finite number > ropeLowFreqFactor (got %g and %g)",
                  m.rope_high_freq_factor, m.rope_low_freq_factor);
    if (m.rope_original_context < 1)
      return fail(err, CALIB_ERR_RANGE, "ropeOriginalContext must be ≥ 1 (got %d)", m.rope_original_context);
  }
  if (!finite_positive(m.attn_scale))
    return fail(err, CALIB_ERR_RANGE, "attnScale must be a finite number > 0 (got %g)", m.attn_scale);
  if (!(m.attn_softcap >= 0.f) || !std::isfinite(m.attn_softcap))
    return fail(err, CALIB_ERR_RANGE, "attnSoftcap must be a finite number > 0, or 0 for none (got %g)", m.attn_softcap);
  if (m.sliding_window < 0) return fail(err, CALIB_ERR_RANGE, "slidingWindow must be ≥ 0 (got %d)", m.sliding_window);
  if (m.sliding_period < 0 || (m.sliding_window > 0 && m.sliding_period < 1))
    return fail(err, CALIB_ERR_RANGE, "slidingPeriod must be ≥ 1 with a sliding window (got %d)", m.sliding_period);
  return CALIB_OK;
}

// Elements per position of one layer's activations, and of one layer's parameters.
double layer_acts(const calib_model_config& c) {
  if (c.arch != CALIB_ARCH_LLAMA) return 16.0 * c.d_model;
  const double q = static_cast<double>(c.n_head) * c.llama.head_dim, k = static_cast<double>(c.llama.n_kv_head) * c.llama.head_dim;
  return 6.0 * c.d_model + 2 * q + 2 * k + 3.0 * c.llama.d_ff;
}
double layer_params(const calib_model_config& c) {
  const double d = c.d_model;
  if (c.arch != CALIB_ARCH_LLAMA) return 12.0 * d * d;
  const double q = static_cast<double>(c.n_head) * c.llama.head_dim, k = static_cast<double>(c.llama.n_kv_head) * c.llama.head_dim;
  return d * (2 * q + 2 * k + 3.0 * c.llama.d_ff);
}

calib_status validate_config(const calib_model_config& c, char* err) {
  if (c.device != CALIB_DEVICE_CPU && c.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "unknown device %d", static_cast<int>(c.device));
  if (c.precision != CALIB_MODEL_F32 && c.precision != CALIB_MODEL_F64 && c.precision != CALIB_MODEL_BF16)
    return fail(err, CALIB_ERR_TYPE, "unknown precision %d", static_cast<int>(c.precision));
  if (c.arch != CALIB_ARCH_GPT2 && c.arch != CALIB_ARCH_LLAMA)
    return fail(err, CALIB_ERR_TYPE, "unknown arch %d", static_cast<int>(c.arch));
  const bool llama = c.arch == CALIB_ARCH_LLAMA;
  if (c.n_layer < 1 || c.n_layer > 4096) return fail(err, CALIB_ERR_RANGE, "nLayer must be in [1, 4096] (got %d)", c.n_layer);
  if (c.d_model < 1 || c.d_model > 65536) return fail(err, CALIB_ERR_RANGE, "dModel must be in [1, 65536] (got %d)", c.d_model);
  if (llama && (c.n_head < 1 || c.n_head > 65536))
    return fail(err, CALIB_ERR_RANGE, "nHead must be in [1, 65536] (got %d)", c.n_head);
  if (!llama && (c.n_head < 1 || c.d_model % c.n_head != 0))
    return fail(err, CALIB_ERR_RANGE, "nHead must be ≥ 1 and divide dModel (got nHead %d, dModel %d)", c.n_head, c.d_model);
  if (c.context < 1 || c.context > 65536) return fail(err, CALIB_ERR_RANGE, "context must be in [1, 65536] (got %d)", c.context);
  if (c.vocab < 2) return fail(err, CALIB_ERR_RANGE, "vocab must be ≥ 2 (got %d)", c.vocab);
  if (c.tied != 0 && c.tied != 1) return fail(err, CALIB_ERR_TYPE, "tied must be 0 or 1");
  if (c.max_batch < 1 || c.max_batch > (1 << 20)) return fail(err, CALIB_ERR_RANGE, "maxBatch must be in [1, 2^20] (got %d)", c.max_batch);
  if (c.threads < 0) return fail(err, CALIB_ERR_RANGE, "threads must be ≥ 0");
  if (c.checkpoint_layers < 0 || c.checkpoint_layers > c.n_layer)
    return fail(err, CALIB_ERR_RANGE, "checkpointLayers must be in [0, nLayer = %d] (got %d)", c.n_layer, c.checkpoint_layers);
  if (c.head_workspace_bytes < 0) return fail(err, CALIB_ERR_RANGE, "headWorkspaceBytes must be ≥ 0 (got %lld)", static_cast<long long>(c.head_workspace_bytes));
  if (llama)
    if (calib_status st = validate_llama(c, err)) return st;
  // Element counts of the largest buffers must stay far from int64 overflow.
  const double n = static_cast<double>(c.max_batch) * c.context;
  const double att = static_cast<double>(c.n_layer) * c.max_batch * c.n_head * static_cast<double>(c.context) * c.context;
  const double act = static_cast<double>(c.n_layer) * n * layer_acts(c);
  const double par = (static_cast<double>(c.vocab) * 2 + c.context) * c.d_model + c.n_layer * layer_params(c);
  if (att > 0x1p40 || act > 0x1p40 || par > 0x1p38)
    return fail(err, CALIB_ERR_RANGE, "model too large (maxBatch %d × context %d, dModel %d, nLayer %d, vocab %d)",
                c.max_batch, c.context, c.d_model, c.n_layer, c.vocab);
  if (c.precision == CALIB_MODEL_F64 && c.device != CALIB_DEVICE_CPU)
    return fail(err, CALIB_ERR_TYPE, "precision 'float64' is the CPU reference only");
  if (c.precision == CALIB_MODEL_BF16 && c.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "precision 'bfloat16' (mixed precision) needs device 'cuda'");
  return CALIB_OK;
}

// Approximate bytes a CPU model needs (for the out-of-memory message).
double approx_bytes(const calib_model_config& c, int64_t params) {
  const double n = static_cast<double>(c.max_batch) * c.context, C = c.d_model, L = c.n_layer;
  const double acts = L * (n * layer_acts(c) + 2 * n + c.max_batch * c.n_head * static_cast<double>(c.context) * c.context) +
                      n * C * 13 + L * layer_params(c);
  const double elem = c.precision == CALIB_MODEL_F64 ? 8 : 4;
  return elem * (4.0 * params + acts + static_cast<double>(c.vocab) * C);
}

calib_status check_tokens(const int32_t* ids, int64_t n, int32_t V, const char* name, char* err) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V)
      return fail(err, CALIB_ERR_RANGE, "%s[%lld] = %d is outside [0, %d)", name, static_cast<long long>(i), ids[i], V);
  return CALIB_OK;
}

calib_status check_targets(const int32_t* t, int64_t n, int32_t V, int32_t ignore, char* err) {
  for (int64_t i = 0; i < n; ++i)
    if (t[i] != ignore && (t[i] < 0 || t[i] >= V))
      return fail(err, CALIB_ERR_RANGE, "targets[%lld] = %d is outside [0, %d) and is not ignoreIndex (%d)",
                  static_cast<long long>(i), t[i], V, ignore);
  return CALIB_OK;
}

// Activations hold max_batch × context positions: any b sequences of t ≤ context tokens with
// b·t ≤ max_batch·context fit (e.g. more, shorter sequences during a sequence-length warm-up).
calib_status check_shape(const calib_model* m, int32_t b, int32_t t, const int32_t* inputs, char* err) {
  if (t < 1 || t > m->config.context)
    return fail(err, CALIB_ERR_RANGE, "sequence length %d is outside [1, context = %d]", t, m->config.context);
  const int64_t room = static_cast<int64_t>(m->config.max_batch) * m->config.context;
  if (b < 1 || static_cast<int64_t>(b) * t > room)
    return fail(err, CALIB_ERR_RANGE, "batch of %d × %d tokens does not fit maxBatch × context = %d × %d", b, t,
                m->config.max_batch, m->config.context);
  if (!inputs) return fail(err, CALIB_ERR_TYPE, "inputs are required");
  return check_tokens(inputs, static_cast<int64_t>(b) * t, m->config.vocab, "inputs", err);
}

calib_status check_transform(float temperature, float softcap, char* err) {
  if (!(temperature > 0.f) || !std::isfinite(temperature))
    return fail(err, CALIB_ERR_RANGE, "temperature must be a finite number > 0 (got %g)", temperature);
  if (!(softcap >= 0.f) || !std::isfinite(softcap))
    return fail(err, CALIB_ERR_RANGE, "softcap must be a finite number > 0, or 0 for none (got %g)", softcap);
  return CALIB_OK;
}

}  // namespace
}  // namespace calib::model

using namespace calib::model;

extern "C" calib_status calib_model_create(const calib_model_config* config, calib_model** out, char* err) {
  err[0] = '\0';
  if (!config || !out) return fail(err, CALIB_ERR_TYPE, "no config or output handle");
  *out = nullptr;
  if (calib_status st = validate_config(*config, err)) return st;
  const bool llama = config->arch == CALIB_ARCH_LLAMA;
  if (config->device == CALIB_DEVICE_CUDA) {
#if CALIB_WITH_CUDA
    std::unique_ptr<calib_model> m;
    try {
      m = std::make_unique<calib_model>();
      m->config = *config;
      m->layout = make_layout(*config);
      if (calib_status st = (llama ? make_llama_cuda : make_gpt_cuda)(*config, m->layout, &m->impl, err)) return st;
    } catch (const std::bad_alloc&) {
      return fail(err, CALIB_ERR_RUNTIME, "cannot allocate the CUDA model's host state");
    }
    *out = m.release();
    return CALIB_OK;
#else
    return fail(err, CALIB_ERR_DEVICE, "this build of the engine has no CUDA path (rebuild with nvcc present)");
#endif
  }
  calib_model* m = nullptr;
  try {
    m = new calib_model();
    m->config = *config;
    m->layout = make_layout(*config);
    m->impl = llama ? make_llama_cpu(*config, m->layout) : make_gpt_cpu(*config, m->layout);
  } catch (const std::bad_alloc&) {
    const double mib = approx_bytes(*config, m ? m->layout.total : 0) / (1024.0 * 1024.0);
    delete m;
    return fail(err, CALIB_ERR_RUNTIME, "cannot allocate the model (about %.0f MiB): lower maxBatch or context", mib);
  }
  *out = m;
  return CALIB_OK;
}

extern "C" void calib_model_free(calib_model* model) { delete model; }

extern "C" int64_t calib_model_num_params(const calib_model* model) { return model ? model->layout.total : 0; }

extern "C" int32_t calib_model_num_tensors(const calib_model* model) { return model ? model->layout.count : 0; }

extern "C" calib_status calib_model_tensor_info(const calib_model* model, int32_t index, calib_model_tensor* out,
                                               char* err) {
  err[0] = '\0';
  if (!model || !out) return fail(err, CALIB_ERR_TYPE, "no model or output");
  if (index < 0 || index >= model->layout.count)
    return fail(err, CALIB_ERR_RANGE, "tensor index %d is outside [0, %d)", index, model->layout.count);
  const TensorSpec& s = model->layout.t[model->layout.index[index]];
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->name, sizeof out->name, "%s", s.name);
  out->offset = s.offset;
  out->numel = s.numel;
  out->ndim = s.ndim;
  for (int i = 0; i < 3; ++i) out->shape[i] = s.shape[i];
  out->per_layer = s.per_layer;
  out->decay = s.decay;
  return CALIB_OK;
}

static calib_status check_range(const calib_model* model, calib_model_buffer which, int64_t offset, int64_t count,
                                const void* ptr, char* err) {
  if (!model) return fail(err, CALIB_ERR_TYPE, "no model");
  if (which < CALIB_BUF_PARAMS || which > CALIB_BUF_ADAM_V)
    return fail(err, CALIB_ERR_TYPE, "unknown buffer %d", static_cast<int>(which));
  if (offset < 0 || count < 0 || offset > model->layout.total || count > model->layout.total - offset)
    return fail(err, CALIB_ERR_RANGE, "range [%lld, %lld) is outside the %lld parameters", static_cast<long long>(offset),
                static_cast<long long>(offset + count), static_cast<long long>(model->layout.total));
  if (count > 0 && !ptr) return fail(err, CALIB_ERR_TYPE, "no buffer");
  return CALIB_OK;
}

extern "C" calib_status calib_model_read(calib_model* model, calib_model_buffer which, int64_t offset, int64_t count,
                                        void* dst, char* err) {
  err[0] = '\0';
  if (calib_status st = check_range(model, which, offset, count, dst, err)) return st;
  if (count > 0) model->impl->read(which, offset, count, dst);
  return CALIB_OK;
}

extern "C" calib_status calib_model_write(calib_model* model, calib_model_buffer which, int64_t offset,
                                         int64_t count, const void* src, char* err) {
  err[0] = '\0';
  if (calib_status st = check_range(model, which, offset, count, src, err)) return st;
  if (count > 0) model->impl->write(which, offset, count, src);
  return CALIB_OK;
}

extern "C" calib_status calib_model_step(calib_model* model, calib_model_step_args* args, char* err) {
  err[0] = '\0';
  if (!model || !args) return fail(err, CALIB_ERR_TYPE, "no model or arguments");
  calib_model_step_args& a = *args;
  a.loss_sum = 0;
  a.valid_count = 0;
  if (calib_status st = check_shape(model, a.b, a.t, a.inputs, err)) return st;
  if (!a.targets) return fail(err, CALIB_ERR_TYPE, "targets are required");
  if (calib_status st = check_targets(a.targets, static_cast<int64_t>(a.b) * a.t, model->config.vocab, a.ignore_index, err))
    return st;
  if (!(a.label_smoothing >= 0.f && a.label_smoothing <= 1.f))
    return fail(err, CALIB_ERR_RANGE, "labelSmoothing must be in [0, 1] (got %g)", a.label_smoothing);
  if (calib_status st = check_transform(a.temperature, a.softcap, err)) return st;
  if (!(a.grad_scale >= 0.f) || !std::isfinite(a.grad_scale))
    return fail(err, CALIB_ERR_RANGE, "gradScale must be a finite number ≥ 0 (got %g)", a.grad_scale);
  if (a.backward != 0 && a.backward != 1) return fail(err, CALIB_ERR_TYPE, "backward must be 0 or 1");
  return model->impl->step(a, err);
}

extern "C" calib_status calib_model_zero_grad(calib_model* model, char* err) {
  err[0] = '\0';
  if (!model) return fail(err, CALIB_ERR_TYPE, "no model");
  model->impl->zero(CALIB_BUF_GRADS);
  return CALIB_OK;
}

extern "C" calib_status calib_model_grad_norm(calib_model* model, double* norm, double* tensor_norms, char* err) {
  err[0] = '\0';
  if (!model || !norm) return fail(err, CALIB_ERR_TYPE, "no model or output");
  *norm = model->impl->grad_norm(tensor_norms);
  return CALIB_OK;
}

namespace {
calib_status check_adamw(const calib_adamw_args& a, char* err) {
  if (!(a.lr >= 0.f) || !std::isfinite(a.lr)) return fail(err, CALIB_ERR_RANGE, "lr must be a finite number ≥ 0 (got %g)", a.lr);
  if (!(a.beta1 >= 0.f && a.beta1 < 1.f)) return fail(err, CALIB_ERR_RANGE, "beta1 must be in [0, 1) (got %g)", a.beta1);
  if (!(a.beta2 >= 0.f && a.beta2 < 1.f)) return fail(err, CALIB_ERR_RANGE, "beta2 must be in [0, 1) (got %g)", a.beta2);
  if (!(a.eps > 0.f) || !std::isfinite(a.eps)) return fail(err, CALIB_ERR_RANGE, "eps must be a finite number > 0 (got %g)", a.eps);
  if (!(a.weight_decay >= 0.f) || !std::isfinite(a.weight_decay))
    return fail(err, CALIB_ERR_RANGE, "weightDecay must be a finite number ≥ 0 (got %g)", a.weight_decay);
  if (!(a.grad_scale > 0.f) || !std::isfinite(a.grad_scale))
    return fail(err, CALIB_ERR_RANGE, "gradScale must be a finite number > 0 (got %g)", a.grad_scale);
  if (a.step < 1) return fail(err, CALIB_ERR_RANGE, "step must be ≥ 1 (got %lld)", static_cast<long long>(a.step));
  return CALIB_OK;
}
}  // namespace

calib_status calib::model::ModelImpl::adamw_range(const calib_adamw_args&, int64_t, int64_t, char* err) {
  return fail(err, CALIB_ERR_DEVICE, "AdamW over a range (sharded optimizer state) is implemented on the CPU only");
}

extern "C" calib_status calib_model_adamw(calib_model* model, const calib_adamw_args* args, char* err) {
  err[0] = '\0';
  if (!model || !args) return fail(err, CALIB_ERR_TYPE, "no model or arguments");
  if (calib_status st = check_adamw(*args, err)) return st;
  model->impl->adamw(*args);
  return CALIB_OK;
}

extern "C" calib_status calib_model_adamw_range(calib_model* model, const calib_adamw_args* args, int64_t begin, int64_t end,
                                                char* err) {
  err[0] = '\0';
  if (!model || !args) return fail(err, CALIB_ERR_TYPE, "no model or arguments");
  const int64_t n = model->layout.total;
  if (begin < 0 || end < begin || end > n)
    return fail(err, CALIB_ERR_RANGE, "range [%lld, %lld) is not within the %lld parameters", static_cast<long long>(begin),
                static_cast<long long>(end), static_cast<long long>(n));
  if (calib_status st = check_adamw(*args, err)) return st;
  return model->impl->adamw_range(*args, begin, end, err);
}

extern "C" calib_status calib_model_eval(calib_model* model, calib_model_eval_args* args, char* err) {
  err[0] = '\0';
  if (!model || !args) return fail(err, CALIB_ERR_TYPE, "no model or arguments");
  calib_model_eval_args& a = *args;
  if (calib_status st = check_shape(model, a.b, a.t, a.inputs, err)) return st;
  const int64_t n = static_cast<int64_t>(a.b) * a.t;
  if (a.targets)
    if (calib_status st = check_targets(a.targets, n, model->config.vocab, a.ignore_index, err)) return st;
  if (a.rows) {
    if (a.n_rows < 0) return fail(err, CALIB_ERR_RANGE, "nRows must be ≥ 0");
    for (int64_t i = 0; i < a.n_rows; ++i)
      if (a.rows[i] < 0 || a.rows[i] >= n)
        return fail(err, CALIB_ERR_RANGE, "rows[%lld] = %d is outside [0, %lld)", static_cast<long long>(i), a.rows[i],
                    static_cast<long long>(n));
  }
  if (calib_status st = check_transform(a.temperature, a.softcap, err)) return st;
  if (a.top_k < 0 || a.top_k > 16 || a.top_k > model->config.vocab)
    return fail(err, CALIB_ERR_RANGE, "topK must be in [0, min(16, vocab)] (got %d)", a.top_k);
  if ((a.top_ids || a.top_p) && a.top_k == 0) return fail(err, CALIB_ERR_TYPE, "top-k outputs need topK > 0");
  if (a.n_options < 0) return fail(err, CALIB_ERR_RANGE, "nOptions must be ≥ 0");
  if (a.option_logits && (a.n_options == 0 || !a.option_ids))
    return fail(err, CALIB_ERR_TYPE, "optionLogits needs optionIds");
  if (a.option_ids)
    if (calib_status st = check_tokens(a.option_ids, a.n_options, model->config.vocab, "optionIds", err)) return st;
  if ((a.p_target || a.nll) && !a.targets) return fail(err, CALIB_ERR_TYPE, "pTarget and nll need targets");
  return model->impl->eval(a, err);
}
