// The C entry point of the loss: validates every argument, plans the call (valid
// tokens, gradient weights), runs the CPU or CUDA implementation, then reduces.
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>

#include "../common/bf16.h"
#include "../common/parallel.h"
#include "../common/status.h"
#include "linear_ce.h"

namespace calib {
namespace {

// First non-finite element of a float32 / bf16 array, or -1.
int64_t first_non_finite(const void* data, bool bf16, int64_t count) {
  if (!bf16) {
    const float* f = static_cast<const float*>(data);
    for (int64_t i = 0; i < count; ++i)
      if (!std::isfinite(f[i])) return i;
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(data);
    for (int64_t i = 0; i < count; ++i)
      if ((h[i] & 0x7f80) == 0x7f80) return i;  // exponent all ones: Inf or NaN
  }
  return -1;
}

calib_status validate(const calib_lce_args& a, char* err) {
  if (a.device != CALIB_DEVICE_CPU && a.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "unknown device %d", (int)a.device);
  if (a.memory != CALIB_MEM_HOST && a.memory != CALIB_MEM_DEVICE)
    return fail(err, CALIB_ERR_TYPE, "unknown memory kind %d", (int)a.memory);
  if (a.memory == CALIB_MEM_DEVICE && a.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "device memory needs device 'cuda'");
  if (a.n < 0 || a.d < 1 || a.v < 1)
    return fail(err, CALIB_ERR_RANGE, "shapes must be N ≥ 0, D ≥ 1, V ≥ 1 (got N=%lld, D=%lld, V=%lld)",
                (long long)a.n, (long long)a.d, (long long)a.v);
  const int64_t limit = std::numeric_limits<int64_t>::max() / 8;
  if (a.n > limit / a.d || a.v > limit / a.d || a.v > std::numeric_limits<int32_t>::max())
    return fail(err, CALIB_ERR_RANGE, "shapes too large (N=%lld, D=%lld, V=%lld)", (long long)a.n,
                (long long)a.d, (long long)a.v);
  if (a.dtype != CALIB_F32 && a.dtype != CALIB_BF16) return fail(err, CALIB_ERR_TYPE, "unknown dtype %d", (int)a.dtype);
  if (a.reduction < CALIB_REDUCE_MEAN || a.reduction > CALIB_REDUCE_NONE)
    return fail(err, CALIB_ERR_TYPE, "unknown reduction %d", (int)a.reduction);
  if (a.impl != CALIB_IMPL_FUSED && a.impl != CALIB_IMPL_NAIVE) return fail(err, CALIB_ERR_TYPE, "unknown impl %d", (int)a.impl);
  if ((a.n > 0 && (!a.e || !a.targets)) || !a.c || !a.loss) return fail(err, CALIB_ERR_TYPE, "missing input or output buffer");
  if (!(a.label_smoothing >= 0.f && a.label_smoothing <= 1.f))
    return fail(err, CALIB_ERR_RANGE, "labelSmoothing must be in [0, 1] (got %g)", (double)a.label_smoothing);
  if (!(a.temperature > 0.f) || !std::isfinite(a.temperature))
    return fail(err, CALIB_ERR_RANGE, "temperature must be a finite number > 0 (got %g)", (double)a.temperature);
  if (!(a.softcap >= 0.f) || !std::isfinite(a.softcap))
    return fail(err, CALIB_ERR_RANGE, "softcap must be a finite number > 0, or 0 for none (got %g)", (double)a.softcap);
  if (a.workspace_bytes < 0) return fail(err, CALIB_ERR_RANGE, "workspaceBytes must be ≥ 0");
  if (a.threads < 0) return fail(err, CALIB_ERR_RANGE, "threads must be ≥ 0");
  const bool grad = a.grad_e || a.grad_c || a.grad_bias;
  if (grad && !(a.grad_e && a.grad_c)) return fail(err, CALIB_ERR_TYPE, "gradients need both the dE and the dC buffer");
  if (a.grad_bias && !a.bias) return fail(err, CALIB_ERR_TYPE, "a bias gradient was requested without a bias");
  // Device buffers are checked by the CUDA path (it reports bad targets through a flag).
  if (a.memory == CALIB_MEM_DEVICE) return CALIB_OK;
  for (int64_t i = 0; i < a.n; ++i) {
    const int32_t t = a.targets[i];
    if (t != a.ignore_index && (t < 0 || t >= a.v))
      return fail(err, CALIB_ERR_RANGE, "targets[%lld] = %d is outside [0, %lld) and is not ignoreIndex (%d)",
                  (long long)i, t, (long long)a.v, a.ignore_index);
  }
  if (a.grad_output) {
    const int64_t m = a.reduction == CALIB_REDUCE_NONE ? a.n : 1;
    for (int64_t i = 0; i < m; ++i)
      if (!std::isfinite(a.grad_output[i]))
        return fail(err, CALIB_ERR_RANGE, "gradOutput[%lld] is not finite", (long long)i);
  }
  if (a.check_finite) {
    const bool bf16 = a.dtype == CALIB_BF16;
    int64_t bad;
    if ((bad = first_non_finite(a.e, bf16, a.n * a.d)) >= 0)
      return fail(err, CALIB_ERR_RANGE, "E contains NaN or Inf at row %lld, column %lld", (long long)(bad / a.d),
                  (long long)(bad % a.d));
    if ((bad = first_non_finite(a.c, bf16, a.v * a.d)) >= 0)
      return fail(err, CALIB_ERR_RANGE, "C contains NaN or Inf at row %lld, column %lld", (long long)(bad / a.d),
                  (long long)(bad % a.d));
    if (a.bias && (bad = first_non_finite(a.bias, false, a.v)) >= 0)
      return fail(err, CALIB_ERR_RANGE, "bias contains NaN or Inf at index %lld", (long long)bad);
  }
  return CALIB_OK;
}

}  // namespace

namespace {

// Validates, finds the valid tokens (host memory), runs the implementation, reduces (host memory).
calib_status dispatch(calib_lce_args& a, const calib_lce_cuda_options* cuda_options, char* err) {
  if (calib_status st = validate(a, err)) return st;

  LceRows rows;
  rows.want_grad = a.grad_e != nullptr;
  rows.dense_smoothing = a.softcap > 0 && a.label_smoothing > 0;
  if (a.memory == CALIB_MEM_HOST) {
    for (int64_t i = 0; i < a.n; ++i)
      if (a.targets[i] != a.ignore_index) rows.rows.push_back(i);
  }
  const int64_t count = a.memory == CALIB_MEM_HOST ? static_cast<int64_t>(rows.rows.size()) : -1;
  a.valid_count = count;

  if (rows.want_grad && a.memory == CALIB_MEM_HOST) {
    // d(reduced)/d(loss_i) · upstream: 1/count for mean (none when nothing is valid).
    const int64_t nv = count;
    rows.weight.resize(nv);
    for (int64_t j = 0; j < nv; ++j) {
      float g = 1.f;
      if (a.grad_output) g = a.reduction == CALIB_REDUCE_NONE ? a.grad_output[rows.rows[j]] : a.grad_output[0];
      if (a.reduction == CALIB_REDUCE_MEAN) g = static_cast<float>(g / static_cast<double>(nv));
      rows.weight[j] = g;
    }
    std::memset(a.grad_e, 0, sizeof(float) * a.n * a.d);
    std::memset(a.grad_c, 0, sizeof(float) * a.v * a.d);
    if (a.grad_bias) std::memset(a.grad_bias, 0, sizeof(float) * a.v);
  }
  if (a.lse && a.memory == CALIB_MEM_HOST)
    for (int64_t i = 0; i < a.n; ++i) a.lse[i] = std::numeric_limits<float>::quiet_NaN();

  calib_status st;
  if (a.memory == CALIB_MEM_HOST && a.n == 0) {
    st = CALIB_OK;
  } else if (a.impl == CALIB_IMPL_NAIVE) {
    st = a.memory == CALIB_MEM_HOST ? lce_cpu_naive(a, rows, err)
                                    : fail(err, CALIB_ERR_TYPE, "impl 'naive' runs on host memory only");
  } else if (a.device == CALIB_DEVICE_CUDA) {
#if CALIB_WITH_CUDA
    st = lce_cuda(a, cuda_options, rows, err);
    if (st == CALIB_OK && a.memory == CALIB_MEM_DEVICE) a.valid_count = rows.valid_count;
#else
    (void)cuda_options;
    st = fail(err, CALIB_ERR_DEVICE, "this build of the engine has no CUDA path (rebuild with nvcc present)");
#endif
  } else {
    st = lce_cpu(a, rows, err);
  }
  if (st != CALIB_OK) return st;

  if (a.memory == CALIB_MEM_HOST) {
    // Reduce in float64. Mean over zero valid tokens is NaN, as in PyTorch.
    if (a.reduction == CALIB_REDUCE_NONE) {
      for (int64_t i = 0; i < a.n; ++i) a.loss[i] = 0.f;
      for (size_t j = 0; j < rows.rows.size(); ++j) a.loss[rows.rows[j]] = static_cast<float>(rows.row_loss[j]);
    } else {
      double total = 0;
      for (double l : rows.row_loss) total += l;
      if (a.reduction == CALIB_REDUCE_MEAN)
        total = count > 0 ? total / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
      a.loss[0] = static_cast<float>(total);
    }
  }
  return CALIB_OK;
}

}  // namespace
}  // namespace calib

using namespace calib;

extern "C" calib_status calib_linear_cross_entropy(calib_lce_args* args, char* err) {
  err[0] = '\0';
  if (!args) return fail(err, CALIB_ERR_TYPE, "no arguments");
  return dispatch(*args, nullptr, err);
}

#if CALIB_WITH_CUDA
extern "C" calib_status calib_linear_cross_entropy_cuda(calib_lce_args* args, const calib_lce_cuda_options* options,
                                                        char* err) {
  err[0] = '\0';
  if (!args) return fail(err, CALIB_ERR_TYPE, "no arguments");
  return dispatch(*args, options, err);
}

extern "C" calib_status calib_lce_cuda_workspace_size(const calib_lce_args* args, const calib_lce_cuda_options* options,
                                                      int64_t* bytes, char* err) {
  err[0] = '\0';
  if (!args || !bytes) return fail(err, CALIB_ERR_TYPE, "no arguments");
  if (args->device != CALIB_DEVICE_CUDA || args->memory != CALIB_MEM_DEVICE)
    return fail(err, CALIB_ERR_TYPE, "workspace sizes are for calls on device memory (device 'cuda')");
  if (calib_status st = validate(*args, err)) return st;
  return lce_cuda_workspace(*args, options, bytes, err);
}
#endif
