// new Model(options): the binding of the calib_model_* C API as a JavaScript class. Every
// method validates its arguments (TypeError/RangeError naming the field) and then calls the
// C API, which validates again before touching memory. Calls are synchronous.
#include <napi.h>

#include <string>

#include "args.h"
#include "calib.h"

namespace calib::napi {
namespace {

calib_model_buffer buffer_kind(Napi::Env env, const Napi::Value& v) {
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "params") return CALIB_BUF_PARAMS;
    if (s == "grads") return CALIB_BUF_GRADS;
    if (s == "m") return CALIB_BUF_ADAM_M;
    if (s == "v") return CALIB_BUF_ADAM_V;
  }
  type_error(env, "buffer must be one of 'params', 'grads', 'm', 'v'");
}

int64_t whole(Napi::Env env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) type_error(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) type_error(env, std::string(name) + " must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    range_error(env, std::string(name) + " = " + std::to_string(static_cast<long long>(d)) + " is out of range [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

// The `llama` options object of an arch 'llama' model, with Hugging Face's defaults where a
// checkpoint's config.json may omit a field (nKvHead = nHead, headDim = dModel / nHead, ropeTheta
// 10000, normEps 1e-6, attnScale = 1/√headDim); dFf is required, and so are the scaling's
// parameters for ropeType 'linear' / 'llama3'. Ranges are checked by calib_model_create.
calib_llama_config llama_options(Napi::Env env, const Napi::Object& model, const calib_model_config& c) {
  if (!has(model, "llama")) type_error(env, "llama (the Llama family's options) is required for arch 'llama'");
  const Napi::Value v = model.Get("llama");
  if (!v.IsObject() || v.IsArray()) type_error(env, "llama must be an object");
  const Napi::Object o = v.As<Napi::Object>();
  calib_llama_config m{};
  m.n_kv_head = static_cast<int32_t>(integer(o, "nKvHead", c.n_head, 1, 65536));
  const bool divides = c.n_head > 0 && c.d_model % c.n_head == 0;
  if (!has(o, "headDim") && !divides) type_error(env, "headDim is required when nHead does not divide dModel");
  m.head_dim = static_cast<int32_t>(integer(o, "headDim", divides ? c.d_model / c.n_head : 0, 1, 65536));
  if (!has(o, "dFf")) type_error(env, "dFf (the MLP's intermediate size) is required");
  m.d_ff = static_cast<int32_t>(integer(o, "dFf", 0, 1, 1 << 20));
  m.norm_eps = static_cast<float>(number(o, "normEps", 1e-6));
  m.norm_plus_one = boolean(o, "normPlusOne", false) ? 1 : 0;
  m.post_norms = boolean(o, "postNorms", false) ? 1 : 0;
  m.qkv_bias = boolean(o, "qkvBias", false) ? 1 : 0;
  m.mlp_act = static_cast<calib_mlp_act>(choice(o, "mlpAct", {"silu", "gelu_tanh"}, 0));
  m.embed_scale = static_cast<float>(number(o, "embedScale", 1.0));
  m.rope_theta = static_cast<float>(number(o, "ropeTheta", 10000.0));
  m.rope_type = static_cast<calib_rope_type>(choice(o, "ropeType", {"default", "linear", "llama3"}, 0));
  const char* type = m.rope_type == CALIB_ROPE_LINEAR ? "linear" : "llama3";
  auto needed = [&](const char* key) {
    if (!has(o, key)) type_error(env, std::string(key) + " is required for ropeType '" + type + "'");
  };
  if (m.rope_type != CALIB_ROPE_DEFAULT) needed("ropeFactor");
  if (m.rope_type == CALIB_ROPE_LLAMA3) {
    needed("ropeLowFreqFactor");
    needed("ropeHighFreqFactor");
    needed("ropeOriginalContext");
  }
  m.rope_factor = static_cast<float>(number(o, "ropeFactor", 1.0));
  m.rope_low_freq_factor = static_cast<float>(number(o, "ropeLowFreqFactor", 1.0));
  m.rope_high_freq_factor = static_cast<float>(number(o, "ropeHighFreqFactor", 4.0));
  m.rope_original_context = static_cast<int32_t>(integer(o, "ropeOriginalContext", 8192, 1, INT32_MAX));
  m.attn_scale = static_cast<float>(number(o, "attnScale", 1.0 / std::sqrt(static_cast<double>(m.head_dim))));
  m.attn_softcap = static_cast<float>(number(o, "attnSoftcap", 0.0));
  m.sliding_window = static_cast<int32_t>(integer(o, "slidingWindow", 0, 0, INT32_MAX));
  m.sliding_period = static_cast<int32_t>(integer(o, "slidingPeriod", 1, 1, INT32_MAX));
  return m;
}

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {
                           InstanceMethod<&Model::Free>("free"),
                           InstanceMethod<&Model::NumParams>("numParams"),
                           InstanceMethod<&Model::Tensors>("tensors"),
                           InstanceMethod<&Model::Read>("read"),
                           InstanceMethod<&Model::Write>("write"),
                           InstanceMethod<&Model::Init>("init"),
                           InstanceMethod<&Model::Step>("step"),
                           InstanceMethod<&Model::ZeroGrad>("zeroGrad"),
                           InstanceMethod<&Model::GradNorm>("gradNorm"),
                           InstanceMethod<&Model::AdamW>("adamw"),
                           InstanceMethod<&Model::AdamWRange>("adamwRange"),
                           InstanceMethod<&Model::Eval>("eval"),
                       });
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    Napi::Env env = info.Env();
    Napi::Object o = options(info, "Model");
    calib_model_config c{};
    c.n_layer = static_cast<int32_t>(integer(o, "nLayer", -1, 1, 4096));
    c.n_head = static_cast<int32_t>(integer(o, "nHead", -1, 1, 65536));
    c.d_model = static_cast<int32_t>(integer(o, "dModel", -1, 1, 65536));
    c.context = static_cast<int32_t>(integer(o, "context", -1, 1, 65536));
    c.vocab = static_cast<int32_t>(integer(o, "vocab", -1, 2, INT32_MAX));
    c.max_batch = static_cast<int32_t>(integer(o, "maxBatch", -1, 1, 1 << 20));
    if (c.n_layer < 0 || c.n_head < 0 || c.d_model < 0 || c.context < 0 || c.vocab < 0 || c.max_batch < 0)
      type_error(env, "nLayer, nHead, dModel, context, vocab and maxBatch are required");
    c.tied = boolean(o, "tied", true) ? 1 : 0;
    c.device = static_cast<calib_device>(choice(o, "device", {"cpu", "cuda"}, 0));
    c.precision = static_cast<calib_model_precision>(choice(o, "precision", {"float32", "float64", "bfloat16"}, 0));
    c.threads = static_cast<int32_t>(integer(o, "threads", 0, 0, 1024));
    c.head_workspace_bytes = integer(o, "headWorkspaceBytes", 0, 0, int64_t(1) << 50);
    c.checkpoint_layers = static_cast<int32_t>(integer(o, "checkpointLayers", 0, 0, 4096));
    c.arch = static_cast<calib_model_arch>(choice(o, "arch", {"gpt2", "llama"}, 0));
    if (c.arch == CALIB_ARCH_LLAMA) c.llama = llama_options(env, o, c);
    else if (has(o, "llama")) type_error(env, "llama options are only for arch 'llama'");
    f64_ = c.precision == CALIB_MODEL_F64;
    char err[CALIB_ERRLEN];
    check(env, calib_model_create(&c, &m_, err), err);
    total_ = calib_model_num_params(m_);
  }

  ~Model() override { calib_model_free(m_); }

 private:
  calib_model* get(Napi::Env env) {
    if (!m_) throw Napi::Error::New(env, "the model was freed");
    return m_;
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    calib_model_free(m_);
    m_ = nullptr;
    return info.Env().Undefined();
  }

  Napi::Value NumParams(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(calib_model_num_params(get(info.Env()))));
  }

  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    const int32_t n = calib_model_num_tensors(m);
    Napi::Array out = Napi::Array::New(env, n);
    char err[CALIB_ERRLEN];
    for (int32_t i = 0; i < n; ++i) {
      calib_model_tensor t;
      check(env, calib_model_tensor_info(m, i, &t, err), err);
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, t.name));
      o.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
      o.Set("numel", Napi::Number::New(env, static_cast<double>(t.numel)));
      Napi::Array shape = Napi::Array::New(env, t.ndim);
      for (int32_t d = 0; d < t.ndim; ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
      o.Set("shape", shape);
      o.Set("perLayer", Napi::Boolean::New(env, t.per_layer != 0));
      o.Set("decay", Napi::Boolean::New(env, t.decay != 0));
      out.Set(i, o);
    }
    return out;
  }

  // read(buffer, offset = 0, count = all − offset) → Float32Array | Float64Array (a copy)
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    if (info.Length() < 1) type_error(env, "read expects a buffer name");
    const calib_model_buffer which = buffer_kind(env, info[0]);
    const int64_t offset = info.Length() > 1 && !info[1].IsUndefined() ? whole(env, info[1], "offset", 0, total_) : 0;
    const int64_t count =
        info.Length() > 2 && !info[2].IsUndefined() ? whole(env, info[2], "count", 0, total_ - offset) : total_ - offset;
    char err[CALIB_ERRLEN];
    if (f64_) {
      Napi::Float64Array out = Napi::Float64Array::New(env, count);
      check(env, calib_model_read(m, which, offset, count, out.Data(), err), err);
      return out;
    }
    Napi::Float32Array out = Napi::Float32Array::New(env, count);
    check(env, calib_model_read(m, which, offset, count, out.Data(), err), err);
    return out;
  }

  // write(buffer, values, offset = 0)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    if (info.Length() < 2) type_error(env, "write expects a buffer name and values");
    const calib_model_buffer which = buffer_kind(env, info[0]);
    const napi_typedarray_type kind = f64_ ? napi_float64_array : napi_float32_array;
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != kind)
      type_error(env, std::string("values must be a ") + (f64_ ? "Float64Array" : "Float32Array") + " for this model");
    Napi::TypedArray t = info[1].As<Napi::TypedArray>();
    const int64_t offset = info.Length() > 2 && !info[2].IsUndefined() ? whole(env, info[2], "offset", 0, total_) : 0;
    const int64_t count = static_cast<int64_t>(t.ElementLength());
    if (count > total_ - offset)
      range_error(env, "values (" + std::to_string(count) + ") do not fit from offset " + std::to_string(offset) +
                           " into " + std::to_string(total_) + " parameters");
    uint8_t* data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    char err[CALIB_ERRLEN];
    check(env, calib_model_write(m, which, offset, count, data, err), err);
    return env.Undefined();
  }

  // init(seed, std = 0.02)
  Napi::Value Init(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    if (info.Length() < 1) type_error(env, "init expects a seed");
    const int64_t seed = whole(env, info[0], "seed", 0, (int64_t(1) << 53) - 1);
    double stdev = 0;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsNumber()) type_error(env, "std must be a number");
      stdev = info[1].As<Napi::Number>().DoubleValue();
    }
    char err[CALIB_ERRLEN];
    check(env, calib_model_init(m, static_cast<uint64_t>(seed), static_cast<float>(stdev), err), err);
    return env.Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    Napi::Object o = options(info, "step");
    calib_model_step_args a{};
    a.b = static_cast<int32_t>(integer(o, "b", -1, 1, 1 << 20));
    a.t = static_cast<int32_t>(integer(o, "t", -1, 1, 1 << 20));
    if (a.b < 0 || a.t < 0) type_error(env, "b and t are required");
    const int64_t n = static_cast<int64_t>(a.b) * a.t;
    a.inputs = static_cast<const int32_t*>(typed(o, "inputs", napi_int32_array, n, true));
    a.targets = static_cast<const int32_t*>(typed(o, "targets", napi_int32_array, n, true));
    a.label_smoothing = static_cast<float>(number(o, "labelSmoothing", 0.0));
    a.temperature = static_cast<float>(number(o, "temperature", 1.0));
    a.softcap = static_cast<float>(number(o, "softcap", 0.0));
    a.ignore_index = static_cast<int32_t>(integer(o, "ignoreIndex", -100, INT32_MIN, INT32_MAX));
    a.backward = boolean(o, "backward", false) ? 1 : 0;
    a.grad_scale = static_cast<float>(number(o, "gradScale", 0.0));
    char err[CALIB_ERRLEN];
    check(env, calib_model_step(m, &a, err), err);
    Napi::Object out = Napi::Object::New(env);
    out.Set("lossSum", Napi::Number::New(env, a.loss_sum));
    out.Set("validCount", Napi::Number::New(env, static_cast<double>(a.valid_count)));
    return out;
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    char err[CALIB_ERRLEN];
    check(info.Env(), calib_model_zero_grad(get(info.Env()), err), err);
    return info.Env().Undefined();
  }

  Napi::Value GradNorm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    Napi::Float64Array per = Napi::Float64Array::New(env, calib_model_num_tensors(m));
    double norm = 0;
    char err[CALIB_ERRLEN];
    check(env, calib_model_grad_norm(m, &norm, per.Data(), err), err);
    Napi::Object out = Napi::Object::New(env);
    out.Set("norm", Napi::Number::New(env, norm));
    out.Set("tensorNorms", per);
    return out;
  }

  // adamw({lr, beta1, beta2, eps, weightDecay, gradScale, step}); adamwRange takes begin and end too.
  static calib_adamw_args adamw_args(Napi::Env env, const Napi::Object& o) {
    calib_adamw_args a{};
    if (!has(o, "lr")) type_error(env, "lr is required");
    a.lr = static_cast<float>(number(o, "lr", 0));
    a.beta1 = static_cast<float>(number(o, "beta1", 0.9));
    a.beta2 = static_cast<float>(number(o, "beta2", 0.95));
    a.eps = static_cast<float>(number(o, "eps", 1e-8));
    a.weight_decay = static_cast<float>(number(o, "weightDecay", 0.0));
    a.grad_scale = static_cast<float>(number(o, "gradScale", 1.0));
    a.step = integer(o, "step", -1, 1, int64_t(1) << 53);
    if (a.step < 0) type_error(env, "step is required");
    return a;
  }

  Napi::Value AdamW(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    const calib_adamw_args a = adamw_args(env, options(info, "adamw"));
    char err[CALIB_ERRLEN];
    check(env, calib_model_adamw(m, &a, err), err);
    return env.Undefined();
  }

  Napi::Value AdamWRange(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    Napi::Object o = options(info, "adamwRange");
    const calib_adamw_args a = adamw_args(env, o);
    const int64_t begin = integer(o, "begin", -1, 0, int64_t(1) << 53), end = integer(o, "end", -1, 0, int64_t(1) << 53);
    if (begin < 0 || end < 0) type_error(env, "begin and end are required");
    char err[CALIB_ERRLEN];
    check(env, calib_model_adamw_range(m, &a, begin, end, err), err);
    return env.Undefined();
  }

  Napi::Value Eval(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    calib_model* m = get(env);
    Napi::Object o = options(info, "eval");
    calib_model_eval_args a{};
    a.b = static_cast<int32_t>(integer(o, "b", -1, 1, 1 << 20));
    a.t = static_cast<int32_t>(integer(o, "t", -1, 1, 1 << 20));
    if (a.b < 0 || a.t < 0) type_error(env, "b and t are required");
    const int64_t n = static_cast<int64_t>(a.b) * a.t;
    a.inputs = static_cast<const int32_t*>(typed(o, "inputs", napi_int32_array, n, true));
    a.targets = static_cast<const int32_t*>(typed(o, "targets", napi_int32_array, n, false));
    a.ignore_index = static_cast<int32_t>(integer(o, "ignoreIndex", -100, INT32_MIN, INT32_MAX));
    int64_t rows = n;
    if (has(o, "rows")) {
      Napi::Value r = o.Get("rows");
      if (!r.IsTypedArray() || r.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        type_error(env, "rows must be an Int32Array");
      rows = static_cast<int64_t>(r.As<Napi::TypedArray>().ElementLength());
      a.rows = static_cast<const int32_t*>(typed(o, "rows", napi_int32_array, rows, true));
      a.n_rows = rows;
    }
    a.temperature = static_cast<float>(number(o, "temperature", 1.0));
    a.softcap = static_cast<float>(number(o, "softcap", 0.0));
    a.top_k = static_cast<int32_t>(integer(o, "topK", 5, 0, 16));
    int64_t n_opt = 0;
    if (has(o, "optionIds")) {
      Napi::Value r = o.Get("optionIds");
      if (!r.IsTypedArray() || r.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        type_error(env, "optionIds must be an Int32Array");
      n_opt = static_cast<int64_t>(r.As<Napi::TypedArray>().ElementLength());
      if (n_opt < 1 || n_opt > INT32_MAX) range_error(env, "optionIds must not be empty");
      a.option_ids = static_cast<const int32_t*>(typed(o, "optionIds", napi_int32_array, n_opt, true));
      a.n_options = static_cast<int32_t>(n_opt);
    }
    Napi::Int32Array argmax = Napi::Int32Array::New(env, rows);
    Napi::Float32Array p_max = Napi::Float32Array::New(env, rows);
    Napi::Float32Array entropy = Napi::Float32Array::New(env, rows);
    Napi::Float32Array lse = Napi::Float32Array::New(env, rows);
    Napi::Float32Array p_target = Napi::Float32Array::New(env, a.targets ? rows : 0);
    Napi::Float32Array nll = Napi::Float32Array::New(env, a.targets ? rows : 0);
    Napi::Int32Array top_ids = Napi::Int32Array::New(env, rows * a.top_k);
    Napi::Float32Array top_p = Napi::Float32Array::New(env, rows * a.top_k);
    Napi::Float32Array opt = Napi::Float32Array::New(env, rows * n_opt);
    a.argmax = argmax.Data();
    a.p_max = p_max.Data();
    a.entropy = entropy.Data();
    a.lse = lse.Data();
    if (a.targets) {
      a.p_target = p_target.Data();
      a.nll = nll.Data();
    }
    if (a.top_k > 0) {
      a.top_ids = top_ids.Data();
      a.top_p = top_p.Data();
    }
    if (n_opt > 0) a.option_logits = opt.Data();
    char err[CALIB_ERRLEN];
    check(env, calib_model_eval(m, &a, err), err);
    Napi::Object out = Napi::Object::New(env);
    out.Set("argmax", argmax);
    out.Set("pMax", p_max);
    out.Set("entropy", entropy);
    out.Set("lse", lse);
    if (a.targets) {
      out.Set("pTarget", p_target);
      out.Set("nll", nll);
    }
    out.Set("topIds", top_ids);
    out.Set("topP", top_p);
    if (n_opt > 0) out.Set("optionLogits", opt);
    return out;
  }

  calib_model* m_ = nullptr;
  bool f64_ = false;
  int64_t total_ = 0;
};

}  // namespace

Napi::Function ModelClass(Napi::Env env) { return Model::Define(env); }

}  // namespace calib::napi
