// What the CUDA loss's entry point (linear_ce_cuda.cu) hands one of its engines after the call's
// prologue (valid rows, input checks, gradient weights) and its plan (linear_ce_plan.h):
//   run_fused  linear_ce_fused.cu   fused tensor-core kernels
//   run_blas   linear_ce_blas.cu    the logit kernel (Hopper) or an fp32 slab, and cuBLAS
// An engine fills lse_valid and row_loss for every valid row (and lse_out per token), and with
// gradients writes every element of dE, dC and dbias (the fused engine accumulates into the zeros
// the entry wrote). Everything runs on `stream`; an engine returns after queueing its work.
#pragma once
#include <cuda_runtime.h>

#include "../common/status.h"
#include "../cuda/cublas.cuh"
#include "../cuda/runtime.cuh"
#include "linear_ce_plan.h"

namespace calib::lce {

struct Call {
  Problem prob;
  Plan plan;
  Buffers buf;
  // inputs (device memory)
  const void* e = nullptr;     // N × D, bf16 or fp32
  const void* c = nullptr;     // V × D
  const float* bias = nullptr;
  const int32_t* targets = nullptr;
  const int32_t* rows = nullptr;  // the valid token rows, ascending (prob.count of them)
  const float* w = nullptr;       // gradient weight per valid row
  double T = 1;                   // temperature
  float inv_t = 1;
  bool vec_e = false, vec_c = false;  // 16-byte vector loads of E / C rows
  // outputs
  float* lse_valid = nullptr;  // per valid row
  double* row_loss = nullptr;  // per valid row, unreduced
  float* lse_out = nullptr;    // per token, or null
  float* dE = nullptr;
  float* dC = nullptr;
  float* dbias = nullptr;
  cudaStream_t stream = nullptr;
};

// What an engine's run holds of its call (the engines derive from it).
struct EngineRun {
  explicit EngineRun(const Call& c) : c_(c), p_(c.prob), q_(c.plan), b_(c.buf), s_(c.stream) {}
  const Call& c_;
  const Problem& p_;
  const Plan& q_;
  const Buffers& b_;
  cudaStream_t s_;
  // ε/V, the smoothing mass of each vocabulary entry
  float eta() const { return static_cast<float>(p_.eps / double(p_.v)); }
};

calib_status run_fused(const Call& call, char* err);
calib_status run_blas(const Call& call, char* err);

// The process's cuBLAS handle, made on first use (under the engine mutex); null when the library
// cannot be loaded, with the reason in `why` (CALIB_ERRLEN) when given.
blas::Handle blas_handle(char* why);

// Lets `kernel` use `bytes` of dynamic shared memory (once per kernel; under the engine mutex).
calib_status allow_smem(const void* kernel, int bytes, char* err);

}  // namespace calib::lce
