// Token + position embeddings: x0[b,t,:] = wte[tok[b,t],:] + wpe[t,:].
// The backward scatters into the embedding rows; it is split over column ranges (every
// thread walks all tokens in order for its columns), so repeated tokens never race and the
// sum order is fixed.
#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {

template <typename T>
void encoder_forward(T* out, const int32_t* inp, const T* wte, const T* wpe, int64_t B, int64_t Tn, int64_t C,
                     int threads) {
  parallel_for(threads, B * Tn, 64, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const T* e = wte + static_cast<int64_t>(inp[i]) * C;
      const T* p = wpe + (i % Tn) * C;
      T* o = out + i * C;
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
    }
  });
}

template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* inp, int64_t B, int64_t Tn, int64_t C,
                      int threads) {
  parallel_for(threads, C, 32, [&](int64_t c0, int64_t c1, int) {
    for (int64_t i = 0; i < B * Tn; ++i) {
      const T* d = dout + i * C;
      T* we = dwte + static_cast<int64_t>(inp[i]) * C;
      T* wp = dwpe + (i % Tn) * C;
      for (int64_t c = c0; c < c1; ++c) {
        we[c] += d[c];
        wp[c] += d[c];
      }
    }
  });
}

template void encoder_forward<float>(float*, const int32_t*, const float*, const float*, int64_t, int64_t, int64_t, int);
template void encoder_forward<double>(double*, const int32_t*, const double*, const double*, int64_t, int64_t, int64_t,
                                      int);
template void encoder_backward<float>(float*, float*, const float*, const int32_t*, int64_t, int64_t, int64_t, int);
template void encoder_backward<double>(double*, double*, const double*, const int32_t*, int64_t, int64_t, int64_t, int);

}  // namespace calib::model
