// Internal interface of the fused linear + label-smoothed cross-entropy op, shared by
// the dispatcher (linear_ce.cc) and its CPU / CUDA implementations, which sit side by side:
//   linear_ce_cpu.cc    streamed CPU kernel and the materializing reference ("naive")
//   linear_ce_cuda.cu   CUDA kernels
// The dispatcher has validated every argument before a kernel runs.
#pragma once
#include <cstdint>
#include <vector>

#include "calib.h"

namespace calib {

struct LcePlan {
  std::vector<int64_t> rows;      // tokens whose target is not ignore_index, ascending
  std::vector<float> weight;      // per valid row: d(reduced loss)/d(loss_i) · upstream grad
  bool want_grad = false;
  // With a softcap the smoothing term is not linear in z, so the kernel sums it tile by
  // tile; otherwise it is a rank-1 term computed from Σ_v C_v (kernels-prior-art §6).
  bool dense_smoothing = false;
  std::vector<double> row_loss;   // out: per valid row, unreduced
};

calib_status lce_cpu(const calib_lce_args& a, LcePlan& plan, char* err);
calib_status lce_cpu_naive(const calib_lce_args& a, LcePlan& plan, char* err);
#if CALIB_WITH_CUDA
calib_status lce_cuda(const calib_lce_args& a, LcePlan& plan, char* err);
#endif

}  // namespace calib
