// cuBLAS, loaded at run time. The development machine has no cuBLAS (headers or libraries), and
// the addon must load and run on machines without a GPU, so the library is opened with dlopen the
// first time a CUDA model needs it, and the few entry points we use are declared here by hand
// (signatures and enum values of cublas_api.h, CUDA 12/13).
//
// Search order: $CALIB_CUBLAS_PATH (a file, or a folder holding libcublas.so*), the dynamic
// loader's path (libcublas.so.13, .12, libcublas.so), the CUDA toolkit folders, then PyTorch's
// wheels (site-packages/nvidia/{cu13,cublas}/lib). libcublasLt from the same folder is opened
// first (RTLD_GLOBAL) so that a wheel's libcublas finds it. A missing library is a clear
// CALIB_ERR_DEVICE message, never a crash.
//
// Conventions: column-major as cuBLAS; `gemm_rm` below is the row-major helper the model uses.
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>

#include <cstdint>

#include "calib.h"

namespace calib::blas {

typedef void* Handle;

enum Op { kN = 0, kT = 1 };
// cublasComputeType_t values
enum Compute { kCompute32F = 68, kCompute32FPedantic = 69 };

// The loaded library (once per process). Returns CALIB_ERR_DEVICE with a message naming every
// place that was tried when it cannot be loaded.
calib_status load(char* err);
// Where the library came from (after a successful load), for messages and benchmarks.
const char* loaded_path();

// A handle on the legacy default stream, default math (no TF32).
calib_status create(Handle* out, char* err);
void destroy(Handle h);
// The stream the handle's GEMMs run on.
calib_status set_stream(Handle h, cudaStream_t stream, char* err);
// Gives cuBLAS a workspace (device memory the caller owns) instead of its own allocation, so
// that the loss's memory figures include it. A library without the entry point keeps its own.
calib_status set_workspace(Handle h, void* ptr, size_t bytes, char* err);

enum Dt { kF32 = CUDA_R_32F, kBF16 = CUDA_R_16BF };

// Column-major C(m×n) = alpha·op(A)·op(B) + beta·C, fp32 accumulation.
calib_status gemm(Handle h, Op ta, Op tb, int m, int n, int k, float alpha, const void* A, Dt at, int lda,
                  const void* B, Dt bt, int ldb, float beta, void* C, Dt ct, int ldc, char* err);
calib_status gemm_batched(Handle h, Op ta, Op tb, int m, int n, int k, float alpha, const void* A, Dt at, int lda,
                          long long sa, const void* B, Dt bt, int ldb, long long sb, float beta, void* C, Dt ct,
                          int ldc, long long sc, int batch, char* err);

// Row-major C(M×N) = alpha·opA(A)·opB(B) + beta·C where opA(A) is M×K: A is M×K (ta = kN, lda = K)
// or K×M (ta = kT, lda = M); B is K×N (tb = kN, ldb = N) or N×K (tb = kT, ldb = K).
inline calib_status gemm_rm(Handle h, Op ta, Op tb, int M, int N, int K, float alpha, const void* A, Dt at, int lda,
                            const void* B, Dt bt, int ldb, float beta, void* C, Dt ct, int ldc, char* err) {
  // row-major C = A·B  ⇔  column-major Cᵀ = Bᵀ·Aᵀ
  return gemm(h, tb, ta, N, M, K, alpha, B, bt, ldb, A, at, lda, beta, C, ct, ldc, err);
}
inline calib_status gemm_rm_batched(Handle h, Op ta, Op tb, int M, int N, int K, float alpha, const void* A, Dt at,
                                    int lda, long long sa, const void* B, Dt bt, int ldb, long long sb, float beta,
                                    void* C, Dt ct, int ldc, long long sc, int batch, char* err) {
  return gemm_batched(h, tb, ta, N, M, K, alpha, B, bt, ldb, sb, A, at, lda, sa, beta, C, ct, ldc, sc, batch, err);
}

}  // namespace calib::blas
