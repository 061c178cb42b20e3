// Seeded initialisation.
//   GPT2 (nanoGPT / llm.c): every weight matrix and both embeddings N(0, std), the residual
//     projections attprojw and fcprojw N(0, std/√(2·n_layer)), biases 0, LayerNorm weights 1.
//   LLAMA (transformers' _init_weights): the embedding and every matrix N(0, std), biases 0,
//     RMSNorm weights 1 (0 with norm_plus_one, whose scale is 1 + w).
// Each tensor draws from its own stream (splitmix64 seeded by the seed and the tensor's kind),
// so its values do not depend on which other tensors exist (tied or untied head) or on the
// thread count; normals come from Box–Muller in float64 and are rounded to float32 for every
// precision. The values are generated on the host and written through the device
// implementation, so a CUDA model starts from the same numbers.
#include <cmath>
#include <new>
#include <vector>

#include "gpt.h"

namespace calib::model {
namespace {

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

// stream: the tensor's kind (GPT2: its TensorId; LLAMA: kLlamaStreams + its LlamaTensorId).
void normals(std::vector<float>& out, uint64_t seed, int32_t stream, double std) {
  SplitMix64 rng{seed ^ (0xD1B54A32D192ED03ull * (static_cast<uint64_t>(stream) + 1))};
  rng.next();
  constexpr double kTwoPi = 6.283185307179586;
  for (size_t i = 0; i < out.size(); i += 2) {
    const double u1 = 1.0 - rng.uniform();  // (0, 1]
    const double u2 = rng.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(std * r * std::cos(kTwoPi * u2));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(std * r * std::sin(kTwoPi * u2));
  }
}

constexpr int32_t kLlamaStreams = 64;

// Fills vals (sized to the tensor) with tensor id's initial values.
void gpt2_values(std::vector<float>& vals, TensorId id, uint64_t seed, double std0, int32_t n_layer) {
  switch (id) {
    case kLn1w: case kLn2w: case kLnfw:
      vals.assign(vals.size(), 1.f);
      break;
    case kWte: case kWpe: case kQkvw: case kFcw: case kLmHead:
      normals(vals, seed, id, std0);
      break;
    case kAttprojw: case kFcprojw:
      normals(vals, seed, id, std0 / std::sqrt(2.0 * n_layer));
      break;
    default:
      break;  // biases
  }
}

void llama_values(std::vector<float>& vals, LlamaTensorId id, uint64_t seed, double std0, bool norm_plus_one) {
  switch (id) {
    case kAttnNorm: case kAttnPostNorm: case kMlpNorm: case kMlpPostNorm: case kNormF:
      vals.assign(vals.size(), norm_plus_one ? 0.f : 1.f);
      break;
    case kQBias: case kKBias: case kVBias:
      break;
    default:
      normals(vals, seed, kLlamaStreams + id, std0);  // embed and every matrix
      break;
  }
}

}  // namespace
}  // namespace calib::model

using namespace calib::model;

extern "C" calib_status calib_model_init(calib_model* model, uint64_t seed, float stdev, char* err) {
  err[0] = '\0';
  if (!model) return fail(err, CALIB_ERR_TYPE, "no model");
  if (!(stdev >= 0.f) || !std::isfinite(stdev)) return fail(err, CALIB_ERR_RANGE, "init std must be ≥ 0 (got %g)", stdev);
  const double std0 = stdev > 0 ? stdev : 0.02;
  const Layout& lay = model->layout;
  const bool f64 = model->config.precision == CALIB_MODEL_F64;
  try {
    std::vector<float> vals;
    std::vector<double> wide;
    for (int32_t i = 0; i < lay.count; ++i) {
      const int32_t id = lay.index[i];
      const TensorSpec& s = lay.t[id];
      vals.assign(s.numel, 0.f);
      if (model->config.arch == CALIB_ARCH_LLAMA)
        llama_values(vals, static_cast<LlamaTensorId>(id), seed, std0, model->config.llama.norm_plus_one != 0);
      else
        gpt2_values(vals, static_cast<TensorId>(id), seed, std0, model->config.n_layer);
      if (f64) {
        wide.assign(vals.begin(), vals.end());
        model->impl->write(CALIB_BUF_PARAMS, s.offset, s.numel, wide.data());
      } else {
        model->impl->write(CALIB_BUF_PARAMS, s.offset, s.numel, vals.data());
      }
    }
  } catch (const std::bad_alloc&) {
    return fail(err, CALIB_ERR_RUNTIME, "init: out of memory");
  }
  model->impl->zero(CALIB_BUF_GRADS);
  model->impl->zero(CALIB_BUF_ADAM_M);
  model->impl->zero(CALIB_BUF_ADAM_V);
  return CALIB_OK;
}
