// Internal interface of the fused linear + label-smoothed cross-entropy op, shared by
// the dispatcher (linear_ce.cc) and its CPU / CUDA implementations, which sit side by side:
//   linear_ce_cpu.cc    streamed CPU kernel and the materializing reference ("naive")
//   linear_ce_cuda.cu   CUDA: planner (linear_ce_plan.h), engines (linear_ce_fused.cu, linear_ce_blas.cu)
// The dispatcher has validated every argument before a kernel runs.
#pragma once
#include <cstdint>
#include <vector>

#include "calib.h"

namespace calib {

// The valid tokens of a host-memory call and what the implementations return per token.
// (Device-memory calls find their valid rows on the GPU and report only valid_count.)
struct LceRows {
  std::vector<int64_t> rows;      // tokens whose target is not ignore_index, ascending
  std::vector<float> weight;      // per valid row: d(reduced loss)/d(loss_i) · upstream grad
  bool want_grad = false;
  // With a softcap the smoothing term is not linear in z, so the kernel sums it tile by
  // tile; otherwise it is a rank-1 term computed from Σ_v C_v (docs/kernels.md).
  bool dense_smoothing = false;
  std::vector<double> row_loss;   // out: per valid row, unreduced
  int64_t valid_count = -1;       // out (device memory): tokens whose target is not ignore_index
};

calib_status lce_cpu(const calib_lce_args& a, LceRows& rows, char* err);
calib_status lce_cpu_naive(const calib_lce_args& a, LceRows& rows, char* err);
#if CALIB_WITH_CUDA
// options: null for the defaults.
calib_status lce_cuda(const calib_lce_args& a, const calib_lce_cuda_options* options, LceRows& rows, char* err);
// The scratch a device-memory call with these arguments and options may need (calib_lce_cuda_workspace_size).
calib_status lce_cuda_workspace(const calib_lce_args& a, const calib_lce_cuda_options* options, int64_t* bytes,
                                char* err);
#endif

}  // namespace calib
