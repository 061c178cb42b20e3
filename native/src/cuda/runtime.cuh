// CUDA runtime helpers shared by the CUDA ops: error reporting, the device scratch arena
// (grown on demand, kept between calls, released by calib_cuda_release_scratch) and the
// per-call statistics. Host code only.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>

#include "calib.h"

namespace calib::cu {

// Formats "what: CUDA error text" into err and returns CALIB_ERR_RUNTIME.
calib_status cuda_fail(char* err, cudaError_t code, const char* what);

// The device the engine runs on (the current device) and its properties.
struct DeviceInfo {
  int device = -1;
  int sms = 0;
  int smem_optin = 0;
  int cc_major = 0, cc_minor = 0;
};
calib_status device_info(DeviceInfo& out, char* err);

// Serializes calls that use the scratch arena.
std::mutex& engine_mutex();

// Returns a device buffer of at least `bytes` (the arena; valid until the next call).
calib_status scratch(size_t bytes, char** out, char* err);
// Same, keeping the first `keep` bytes of the current contents when the arena grows.
calib_status scratch_keep(size_t bytes, size_t keep, char** out, char* err);

// Statistics of the last call.
calib_cuda_stats& stats();

}  // namespace calib::cu

// Inside a function that returns calib_status and has `char* err`: a failing CUDA call (CU_TRY) or
// kernel launch (LAUNCHED, after the launch) returns CALIB_ERR_RUNTIME naming what failed.
#define CU_TRY(call)                                                    \
  do {                                                                  \
    cudaError_t e_ = (call);                                            \
    if (e_ != cudaSuccess) return calib::cu::cuda_fail(err, e_, #call); \
  } while (0)
#define LAUNCHED(what)                                                  \
  do {                                                                  \
    cudaError_t e_ = cudaGetLastError();                                \
    if (e_ != cudaSuccess) return calib::cu::cuda_fail(err, e_, what);  \
  } while (0)
