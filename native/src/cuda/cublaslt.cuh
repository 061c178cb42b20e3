// cuBLASLt, loaded at run time beside cuBLAS (cublas.cuh), for the loss's GEMMs: the same
// column-major GEMM as blas::gemm, planned once per shape (descriptors and the first candidate of
// the library's heuristic, told the pointers' real alignments and the workspace size) and kept
// for the process. At the loss's shapes this ran faster than cublasGemmEx's choice on an H100
// (data/bench/kernels_sweep.txt: "cublasGemmEx" against "default"). Timing the heuristic's other
// candidates at first use (up to 15% faster per GEMM in isolation, data/bench/kernels_lt.txt)
// gave no gain in the whole op, and would make results depend on the timing, so it is not done.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "cublas.cuh"

namespace calib::blas::lt {

// One GEMM: C(m×n) = op(A)·op(B) (+ C when accumulate), fp32 accumulation, column-major.
struct Shape {
  Op ta = kN, tb = kN;
  int m = 0, n = 0, k = 0;
  Dt at = kBF16, bt = kBF16, ct = kF32;
  int lda = 0, ldb = 0, ldc = 0;
  bool accumulate = false;
};

// Loads cuBLASLt (after blas::load) and creates the library handle; CALIB_ERR_DEVICE when missing.
calib_status load(char* err);

// Runs the GEMM on `stream` with `ws_bytes` of workspace at `ws`, with the plan of its shape (and
// of the pointers' alignments and the workspace size): results depend only on the shape, the GPU
// and the library.
calib_status gemm(const Shape& s, const void* A, const void* B, void* C, void* ws, size_t ws_bytes, cudaStream_t stream,
                  char* err);

// Row-major form, as blas::gemm_rm: C(M×N) = opA(A)·opB(B) (+ C).
inline calib_status gemm_rm(Op ta, Op tb, int M, int N, int K, const void* A, Dt at, int lda, const void* B, Dt bt,
                            int ldb, bool accumulate, void* C, Dt ct, int ldc, void* ws, size_t ws_bytes,
                            cudaStream_t stream, char* err) {
  Shape s;
  s.ta = tb, s.tb = ta, s.m = N, s.n = M, s.k = K, s.at = bt, s.bt = at, s.ct = ct;
  s.lda = ldb, s.ldb = lda, s.ldc = ldc, s.accumulate = accumulate;
  return gemm(s, B, A, C, ws, ws_bytes, stream, err);
}

}  // namespace calib::blas::lt
