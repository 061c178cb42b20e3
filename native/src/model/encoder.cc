// Token (+ position) embeddings: x0[b,t,:] = wte[tok[b,t],:]·scale (+ wpe[t,:]).
// GPT-2 adds learned positions with scale 1; the Llama family has no position table (rotary
// embeddings act in attention) and scales the rows by embed_scale (Gemma: √d_model).
// The backward scatters into the embedding rows; it is split over column ranges (every
// thread walks all tokens in order for its columns), so repeated tokens never race and the
// sum order is fixed.
#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {

template <typename T>
void encoder_forward(T* out, const int32_t* inp, const T* wte, const T* wpe, T scale, int64_t B, int64_t Tn, int64_t C,
                     int threads) {
  parallel_for(threads, B * Tn, 64, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* e = wte + static_cast<int64_t>(inp[i]) * C;
      T* o = out + i * C;
      if (wpe) {
        const T* p = wpe + (i % Tn) * C;
        for (int64_t c = 0; c < C; ++c) o[c] = e[c] * scale + p[c];
      } else {
        for (int64_t c = 0; c < C; ++c) o[c] = e[c] * scale;
      }
    }
  });
}

template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* inp, T scale, int64_t B, int64_t Tn, int64_t C,
                      int threads) {
  parallel_for(threads, C, 32, [&](int64_t c0, int64_t c1, int) {
    for (int64_t i = 0; i < B * Tn; ++i) {
      const T* d = dout + i * C;
      T* we = dwte + static_cast<int64_t>(inp[i]) * C;
      for (int64_t c = c0; c < c1; ++c) we[c] += d[c] * scale;
      if (dwpe) {
        T* wp = dwpe + (i % Tn) * C;
        for (int64_t c = c0; c < c1; ++c) wp[c] += d[c];
      }
    }
  });
}

#define CALIB_ENCODER(T)                                                                                         \
  template void encoder_forward<T>(T*, const int32_t*, const T*, const T*, T, int64_t, int64_t, int64_t, int);  \
  template void encoder_backward<T>(T*, T*, const T*, const int32_t*, T, int64_t, int64_t, int64_t, int);
CALIB_ENCODER(float)
CALIB_ENCODER(double)
#undef CALIB_ENCODER

}  // namespace calib::model
