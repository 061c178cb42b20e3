// Rotary position embeddings as Hugging Face's Llama applies them (rotate-half layout): a head
// vector x of size hd is split into halves x1 = x[0, hd/2), x2 = x[hd/2, hd), and at position t
//   forward   x1' = x1·cos − x2·sin,  x2' = x2·cos + x1·sin      (angles t·inv_freq[i], i < hd/2)
//   backward  the transposed rotation: dx1 = dx1'·cos + dx2'·sin,  dx2 = dx2'·cos − dx1'·sin
// The frequencies follow transformers' modeling_rope_utils (rope_type default / linear / llama3):
//   inv_freq[i] = 1 / θ^(2i/hd)                         in float32, as torch computes it
//   linear:  inv_freq / factor
//   llama3:  wavelength w = 2π/inv_freq; w > original/low_freq_factor: inv_freq/factor;
//            w < original/high_freq_factor: unchanged; between: (1 − s)·inv_freq/factor + s·inv_freq
//            with s = (original/w − low_freq_factor)/(high_freq_factor − low_freq_factor)
//            (evaluated in float64 from the float32 inv_freq, rounded to float32)
// and the angles are float32(t·inv_freq), the product transformers takes in float32; their cos and
// sin are evaluated in float64 (rounded to float32 on the training path). Both precisions thus
// rotate by the same angles as a Hugging Face model does.
#include <cmath>

#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {
namespace {

// transformers' inv_freq for this config, in float32.
float inv_frequency(const calib_llama_config& c, int64_t i) {
  const float e = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);  // arange(0, hd, 2).float() / hd
  const float base = static_cast<float>(std::pow(static_cast<double>(c.rope_theta), static_cast<double>(e)));
  float inv = 1.0f / base;
  if (c.rope_type == CALIB_ROPE_LINEAR) {
    inv = inv / c.rope_factor;
  } else if (c.rope_type == CALIB_ROPE_LLAMA3) {
    constexpr double kPi = 3.141592653589793;
    const double factor = c.rope_factor, lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
    const double old_context = c.rope_original_context;
    const double low_wavelen = old_context / lo, high_wavelen = old_context / hi;
    const double f = inv, wavelen = 2 * kPi / f;
    const double scaled = wavelen > low_wavelen ? f / factor : f;
    const double smooth = (old_context / wavelen - lo) / (hi - lo);
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    inv = static_cast<float>(medium ? (1 - smooth) * scaled / factor + smooth * scaled : scaled);
  }
  return inv;
}

// Rotates the halves of every head of every token; sign −1 applies the inverse rotation.
template <typename T>
void rotate(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t heads, int64_t hd, int64_t rs, T sign,
            int threads) {
  const int64_t half = hd / 2;
  parallel_for(threads, B * Tn, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* cs = cos + (i % Tn) * half;
      const T* sn = sin + (i % Tn) * half;
      for (int64_t h = 0; h < heads; ++h) {
        T* x1 = x + i * rs + h * hd;
        T* x2 = x1 + half;
        for (int64_t j = 0; j < half; ++j) {
          const T a = x1[j], b = x2[j], s = sign * sn[j];
          x1[j] = a * cs[j] - b * s;
          x2[j] = b * cs[j] + a * s;
        }
      }
    }
  });
}

}  // namespace

template <typename T>
void rope_table(T* cos, T* sin, const calib_llama_config& c, int64_t context) {
  const int64_t half = c.head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float inv = inv_frequency(c, i);
    for (int64_t t = 0; t < context; ++t) {
      const double angle = static_cast<float>(static_cast<float>(t) * inv);
      cos[t * half + i] = static_cast<T>(std::cos(angle));
      sin[t * half + i] = static_cast<T>(std::sin(angle));
    }
  }
}

template <typename T>
void rope_forward(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t heads, int64_t hd, int64_t rs,
                  int threads) {
  rotate(x, cos, sin, B, Tn, heads, hd, rs, T(1), threads);
}

template <typename T>
void rope_backward(T* dx, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t heads, int64_t hd, int64_t rs,
                   int threads) {
  rotate(dx, cos, sin, B, Tn, heads, hd, rs, T(-1), threads);
}

#define CALIB_ROPE(T)                                                                                              \
  template void rope_table<T>(T*, T*, const calib_llama_config&, int64_t);                                          \
  template void rope_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int);          \
  template void rope_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int);
CALIB_ROPE(float)
CALIB_ROPE(double)
#undef CALIB_ROPE

}  // namespace calib::model
