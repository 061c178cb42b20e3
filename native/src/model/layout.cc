// The flat parameter layouts: one buffer, tensors in a fixed order, block tensors stacked over
// layers, matmul weights stored out×in (nn.Linear). Gradients and the AdamW moments use the
// same offsets, so a device port copies the buffers and this table unchanged.
//   GPT2   llm.c order: wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb,
//          fcprojw, fcprojb, lnfw, lnfb, lm_head (untied)
//   LLAMA  calib.h order: embed, attn_norm, q, k, v, q_bias, k_bias, v_bias (qkv_bias), o,
//          attn_post_norm (post_norms), mlp_norm, gate, up, down, mlp_post_norm (post_norms), norm_f,
//          lm_head (untied)
// Weight decay applies to the matmul weights (and an untied head), never to embeddings, norms or biases.
#include "gpt.h"

namespace calib::model {
namespace {

struct Row {
  int32_t id;
  const char* name;
  int32_t ndim;
  int64_t s0, s1, s2;
  bool per_layer, decay, present;
};

Layout build(const Row* rows, int n, int32_t head) {
  Layout out;
  out.head = head;
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const Row& r = rows[i];
    TensorSpec& s = out.t[r.id];
    s.name = r.name;
    s.ndim = r.ndim;
    s.shape[0] = r.s0;
    s.shape[1] = r.s1;
    s.shape[2] = r.s2;
    s.per_layer = r.per_layer;
    s.decay = r.decay;
    s.present = r.present;
    if (!s.present) continue;
    s.numel = r.s0 * (r.ndim > 1 ? r.s1 : 1) * (r.ndim > 2 ? r.s2 : 1);
    s.offset = offset;
    offset += s.numel;
    out.index[out.count++] = r.id;
  }
  out.total = offset;
  return out;
}

Layout gpt2_layout(const calib_model_config& c) {
  const int64_t L = c.n_layer, C = c.d_model, V = c.vocab, T = c.context;
  const Row rows[kNumTensors] = {
      {kWte, "wte", 2, V, C, 0, false, false, true},
      {kWpe, "wpe", 2, T, C, 0, false, false, true},
      {kLn1w, "ln1w", 2, L, C, 0, true, false, true},
      {kLn1b, "ln1b", 2, L, C, 0, true, false, true},
      {kQkvw, "qkvw", 3, L, 3 * C, C, true, true, true},
      {kQkvb, "qkvb", 2, L, 3 * C, 0, true, false, true},
      {kAttprojw, "attprojw", 3, L, C, C, true, true, true},
      {kAttprojb, "attprojb", 2, L, C, 0, true, false, true},
      {kLn2w, "ln2w", 2, L, C, 0, true, false, true},
      {kLn2b, "ln2b", 2, L, C, 0, true, false, true},
      {kFcw, "fcw", 3, L, 4 * C, C, true, true, true},
      {kFcb, "fcb", 2, L, 4 * C, 0, true, false, true},
      {kFcprojw, "fcprojw", 3, L, C, 4 * C, true, true, true},
      {kFcprojb, "fcprojb", 2, L, C, 0, true, false, true},
      {kLnfw, "lnfw", 1, C, 0, 0, false, false, true},
      {kLnfb, "lnfb", 1, C, 0, 0, false, false, true},
      {kLmHead, "lm_head", 2, V, C, 0, false, true, !c.tied},
  };
  return build(rows, kNumTensors, c.tied ? kWte : kLmHead);
}

Layout llama_layout(const calib_model_config& c) {
  const calib_llama_config& m = c.llama;
  const int64_t L = c.n_layer, D = c.d_model, V = c.vocab, F = m.d_ff;
  const int64_t Q = static_cast<int64_t>(c.n_head) * m.head_dim, KV = static_cast<int64_t>(m.n_kv_head) * m.head_dim;
  const bool bias = m.qkv_bias != 0, post = m.post_norms != 0;
  const Row rows[kLlamaNumTensors] = {
      {kEmbed, "embed", 2, V, D, 0, false, false, true},
      {kAttnNorm, "attn_norm", 2, L, D, 0, true, false, true},
      {kQ, "q", 3, L, Q, D, true, true, true},
      {kK, "k", 3, L, KV, D, true, true, true},
      {kV, "v", 3, L, KV, D, true, true, true},
      {kQBias, "q_bias", 2, L, Q, 0, true, false, bias},
      {kKBias, "k_bias", 2, L, KV, 0, true, false, bias},
      {kVBias, "v_bias", 2, L, KV, 0, true, false, bias},
      {kO, "o", 3, L, D, Q, true, true, true},
      {kAttnPostNorm, "attn_post_norm", 2, L, D, 0, true, false, post},
      {kMlpNorm, "mlp_norm", 2, L, D, 0, true, false, true},
      {kGate, "gate", 3, L, F, D, true, true, true},
      {kUp, "up", 3, L, F, D, true, true, true},
      {kDown, "down", 3, L, D, F, true, true, true},
      {kMlpPostNorm, "mlp_post_norm", 2, L, D, 0, true, false, post},
      {kNormF, "norm_f", 1, D, 0, 0, false, false, true},
      {kLlamaLmHead, "lm_head", 2, V, D, 0, false, true, !c.tied},
  };
  return build(rows, kLlamaNumTensors, c.tied ? kEmbed : kLlamaLmHead);
}

}  // namespace

Layout make_layout(const calib_model_config& c) {
  return c.arch == CALIB_ARCH_LLAMA ? llama_layout(c) : gpt2_layout(c);
}

}  // namespace calib::model
