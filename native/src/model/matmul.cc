// Linear layers: out[N×OC] (+)= inp[N×IC]·Wᵀ + bias with W stored OC×IC (nn.Linear layout).
//   forward   tiles of kRows tokens × kCols outputs; reads the transposed copy Wᵀ (IC×OC) that
//             the model refreshes after each parameter update, so every tile is one gemm
//   backward  dinp (+)= dout·W (tiles of tokens × inputs), dW += doutᵀ·inp (tiles of outputs ×
//             inputs, the token sum in fixed chunks of kK so that the inp panel stays in cache),
//             db += Σ_tokens dout (column ranges)
// Each output element is computed by one task in a fixed order: results are independent of
// the thread count.
#include <algorithm>

#include "../common/parallel.h"
#include "kernels.h"

namespace calib::model {
namespace {
constexpr int64_t kRows = 48;   // a multiple of gemm_acc's 6-row block
constexpr int64_t kCols = 256;  // a multiple of two SIMD vectors at every width
constexpr int64_t kK = 512;

inline int64_t blocks(int64_t n, int64_t b) { return (n + b - 1) / b; }
}  // namespace

template <typename T>
void transpose(T* dst, const T* src, int64_t rows, int64_t cols, int threads) {
  constexpr int64_t kB = 32;
  parallel_for(threads, blocks(rows, kB), 1, [&](int64_t b0, int64_t b1, int) {
    for (int64_t rb = b0; rb < b1; ++rb) {
      const int64_t r0 = rb * kB, r1 = std::min(rows, r0 + kB);
      for (int64_t c0 = 0; c0 < cols; c0 += kB) {
        const int64_t c1 = std::min(cols, c0 + kB);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
      }
    }
  });
}

template <typename T>
void matmul_forward(T* out, const T* inp, const T* wt, const T* bias, int64_t N, int64_t IC, int64_t OC,
                    bool accumulate, int threads) {
  const int64_t nc = blocks(OC, kCols);
  parallel_for(threads, blocks(N, kRows) * nc, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t r0 = (task / nc) * kRows, rn = std::min(kRows, N - r0);
      const int64_t c0 = (task % nc) * kCols, cn = std::min(kCols, OC - c0);
      for (int64_t r = 0; r < rn; ++r) {
        T* o = out + (r0 + r) * OC + c0;
        if (accumulate) {
          if (bias)
            for (int64_t c = 0; c < cn; ++c) o[c] += bias[c0 + c];
        } else {
          for (int64_t c = 0; c < cn; ++c) o[c] = bias ? bias[c0 + c] : T(0);
        }
      }
      gemm<T>(rn, cn, IC, inp + r0 * IC, IC, 1, wt + c0, OC, out + r0 * OC + c0, OC, true);
    }
  });
}

template <typename T>
void matmul_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t IC,
                     int64_t OC, int threads, bool accumulate_dinp) {
  // dinp (+)= dout · W
  const int64_t nic = blocks(IC, kCols);
  parallel_for(threads, blocks(N, kRows) * nic, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t r0 = (task / nic) * kRows, rn = std::min(kRows, N - r0);
      const int64_t c0 = (task % nic) * kCols, cn = std::min(kCols, IC - c0);
      gemm<T>(rn, cn, OC, dout + r0 * OC, OC, 1, w + c0, IC, dinp + r0 * IC + c0, IC, accumulate_dinp);
    }
  });
  // dW += doutᵀ · inp
  parallel_for(threads, blocks(OC, kRows) * nic, 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t o0 = (task / nic) * kRows, on = std::min(kRows, OC - o0);
      const int64_t c0 = (task % nic) * kCols, cn = std::min(kCols, IC - c0);
      for (int64_t k0 = 0; k0 < N; k0 += kK) {
        const int64_t kn = std::min(kK, N - k0);
        gemm<T>(on, cn, kn, dout + k0 * OC + o0, 1, OC, inp + k0 * IC + c0, IC, dw + o0 * IC + c0, IC, true);
      }
    }
  });
  // db += Σ_tokens dout
  if (db) {
    constexpr int64_t kB = 64;
    parallel_for(threads, blocks(OC, kB), 1, [&](int64_t b0, int64_t b1, int) {
      T acc[kB];
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t o0 = blk * kB, on = std::min(kB, OC - o0);
        for (int64_t o = 0; o < on; ++o) acc[o] = 0;
        for (int64_t i = 0; i < N; ++i) {
          const T* d = dout + i * OC + o0;
          for (int64_t o = 0; o < on; ++o) acc[o] += d[o];
        }
        for (int64_t o = 0; o < on; ++o) db[o0 + o] += acc[o];
      }
    });
  }
}

#define CALIB_MATMUL(T)                                                                                            \
  template void transpose<T>(T*, const T*, int64_t, int64_t, int);                                                \
  template void matmul_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, bool, int);        \
  template void matmul_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, int, bool);
CALIB_MATMUL(float)
CALIB_MATMUL(double)
#undef CALIB_MATMUL

}  // namespace calib::model
