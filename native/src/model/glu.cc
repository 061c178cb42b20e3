// The gated MLP's activation (Hugging Face's LlamaMLP / Gemma2MLP): out = act(gate) ⊙ up with
// act = SiLU (SwiGLU: Llama, Qwen2, Mistral, SmolLM2) or tanh-GELU (GeGLU: Gemma 2):
//   forward   out = act(g)·u
//   backward  dg = act'(g)·u·dout,  du = act(g)·dout
// The formulas are in activation.h; float runs SIMD lanes with a scalar tail, double std::exp/tanh.
#include "../common/parallel.h"
#include "activation.h"
#include "kernels.h"

namespace calib::model {
namespace {

constexpr int64_t kGrain = 8192;

template <typename S, typename V>
inline V value(V g, bool silu) {
  return silu ? act::silu<S>(g) : act::gelu<S>(g);
}
template <typename S, typename V>
inline V slope(V g, bool silu) {
  return silu ? act::silu_grad<S>(g) : act::gelu_grad<S>(g);
}

}  // namespace

template <typename T>
void glu_forward(T* out, const T* gate, const T* up, int64_t n, calib_mlp_act a, int threads) {
  const bool silu = a == CALIB_ACT_SILU;
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      for (; i + kLanes <= end; i += kLanes) vstore(out + i, value<float>(vload(gate + i), silu) * vload(up + i));
    }
    for (; i < end; ++i) out[i] = value<T>(gate[i], silu) * up[i];
  });
}

template <typename T>
void glu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n, calib_mlp_act a,
                  int threads) {
  const bool silu = a == CALIB_ACT_SILU;
  parallel_for(threads, n, kGrain, [&](int64_t begin, int64_t end, int) {
    int64_t i = begin;
    if constexpr (std::is_same_v<T, float>) {
      for (; i + kLanes <= end; i += kLanes) {
        const vfloat g = vload(gate + i), d = vload(dout + i);
        vstore(dgate + i, slope<float>(g, silu) * vload(up + i) * d);
        vstore(dup + i, value<float>(g, silu) * d);
      }
    }
    for (; i < end; ++i) {
      dgate[i] = slope<T>(gate[i], silu) * up[i] * dout[i];
      dup[i] = value<T>(gate[i], silu) * dout[i];
    }
  });
}

#define CALIB_GLU(T)                                                                                  \
  template void glu_forward<T>(T*, const T*, const T*, int64_t, calib_mlp_act, int);                  \
  template void glu_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, calib_mlp_act, int);
CALIB_GLU(float)
CALIB_GLU(double)
#undef CALIB_GLU

}  // namespace calib::model
