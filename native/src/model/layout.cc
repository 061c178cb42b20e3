// The flat parameter layout: one buffer, tensors in llm.c order, block tensors stacked over
// layers, matmul weights stored out×in (nn.Linear). Gradients and the AdamW moments use
// the same offsets, so a device port copies the buffers and this table unchanged.
#include "gpt.h"

namespace calib::model {

Layout make_layout(const calib_model_config& c) {
  Layout out;
  const int64_t L = c.n_layer, C = c.d_model, V = c.vocab, T = c.context;
  struct Row {
    TensorId id;
    const char* name;
    int32_t ndim;
    int64_t s0, s1, s2;
    bool per_layer, decay;
  };
  const Row rows[kNumTensors] = {
      {kWte, "wte", 2, V, C, 0, false, false},
      {kWpe, "wpe", 2, T, C, 0, false, false},
      {kLn1w, "ln1w", 2, L, C, 0, true, false},
      {kLn1b, "ln1b", 2, L, C, 0, true, false},
      {kQkvw, "qkvw", 3, L, 3 * C, C, true, true},
      {kQkvb, "qkvb", 2, L, 3 * C, 0, true, false},
      {kAttprojw, "attprojw", 3, L, C, C, true, true},
      {kAttprojb, "attprojb", 2, L, C, 0, true, false},
      {kLn2w, "ln2w", 2, L, C, 0, true, false},
      {kLn2b, "ln2b", 2, L, C, 0, true, false},
      {kFcw, "fcw", 3, L, 4 * C, C, true, true},
      {kFcb, "fcb", 2, L, 4 * C, 0, true, false},
      {kFcprojw, "fcprojw", 3, L, C, 4 * C, true, true},
      {kFcprojb, "fcprojb", 2, L, C, 0, true, false},
      {kLnfw, "lnfw", 1, C, 0, 0, false, false},
      {kLnfb, "lnfb", 1, C, 0, 0, false, false},
      {kLmHead, "lm_head", 2, V, C, 0, false, true},
  };
  int64_t offset = 0;
  for (const Row& r : rows) {
    TensorSpec& s = out.t[r.id];
    s.name = r.name;
    s.ndim = r.ndim;
    s.shape[0] = r.s0;
    s.shape[1] = r.s1;
    s.shape[2] = r.s2;
    s.per_layer = r.per_layer;
    s.decay = r.decay;
    s.present = !(r.id == kLmHead && c.tied);
    if (!s.present) continue;
    s.numel = r.s0 * (r.ndim > 1 ? r.s1 : 1) * (r.ndim > 2 ? r.s2 : 1);
    s.offset = offset;
    offset += s.numel;
    out.index[out.count++] = r.id;
  }
  out.total = offset;
  return out;
}

}  // namespace calib::model
