#include "gemm.h"

#include "simd.h"

namespace calib {
namespace {

constexpr int kMR = 6;  // rows per register block
constexpr int kNV = 2;  // SIMD vectors of columns per register block

template <int MR>
void rows_kernel(int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
                 const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  constexpr int W = kLanes;
  int64_t j = 0;
  for (; j + kNV * W <= N; j += kNV * W) {
    vfloat c[MR][kNV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int q = 0; q < kNV; ++q) c[i][q] = accumulate ? vload(C + i * ldc + j + q * W) : vfloat{};
    const float* b = B + j;
    const float* a = A;
    for (int64_t k = 0; k < K; ++k, b += ldb, a += a_cs) {
      vfloat b0 = vload(b), b1 = vload(b + W);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        vfloat ai = vsplat(a[i * a_rs]);
        c[i][0] += ai * b0;
        c[i][1] += ai * b1;
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int q = 0; q < kNV; ++q) vstore(C + i * ldc + j + q * W, c[i][q]);
  }
  for (; j + W <= N; j += W) {
    vfloat c[MR];
    for (int i = 0; i < MR; ++i) c[i] = accumulate ? vload(C + i * ldc + j) : vfloat{};
    const float* b = B + j;
    const float* a = A;
    for (int64_t k = 0; k < K; ++k, b += ldb, a += a_cs) {
      vfloat b0 = vload(b);
      for (int i = 0; i < MR; ++i) c[i] += vsplat(a[i * a_rs]) * b0;
    }
    for (int i = 0; i < MR; ++i) vstore(C + i * ldc + j, c[i]);
  }
  for (; j < N; ++j) {
    float c[MR];
    for (int i = 0; i < MR; ++i) c[i] = accumulate ? C[i * ldc + j] : 0.f;
    const float* b = B + j;
    const float* a = A;
    for (int64_t k = 0; k < K; ++k, b += ldb, a += a_cs)
      for (int i = 0; i < MR; ++i) c[i] += a[i * a_rs] * *b;
    for (int i = 0; i < MR; ++i) C[i * ldc + j] = c[i];
  }
}

}  // namespace

void gemm_acc(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
              const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + kMR <= M; i += kMR)
    rows_kernel<kMR>(N, K, A + i * a_rs, a_rs, a_cs, B, ldb, C + i * ldc, ldc, accumulate);
  const float* a = A + i * a_rs;
  float* c = C + i * ldc;
  switch (M - i) {
    case 5: rows_kernel<5>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 4: rows_kernel<4>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 3: rows_kernel<3>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 2: rows_kernel<2>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    case 1: rows_kernel<1>(N, K, a, a_rs, a_cs, B, ldb, c, ldc, accumulate); break;
    default: break;
  }
}

}  // namespace calib
