// The one small-matrix product every CPU kernel uses:
//   C[M×N] (+)= A[M×K] · B[K×N]
// A is read element-wise through strides (so Aᵀ costs nothing), B and C are row-major.
// Register-blocked over MR rows × two SIMD vectors of columns; single-threaded — the
// callers split work across threads.
#pragma once
#include <cstdint>

namespace calib {

void gemm_acc(int64_t M, int64_t N, int64_t K,
              const float* A, int64_t a_rs, int64_t a_cs,
              const float* B, int64_t ldb,
              float* C, int64_t ldc, bool accumulate);

}  // namespace calib
