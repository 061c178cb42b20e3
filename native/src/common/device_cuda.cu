// How many CUDA devices the engine can use, and a message that says why there are none
// (no driver, no device, driver too old) or names the device. The CUDA runtime is linked
// statically, so this runs — and fails cleanly — on machines without a GPU or driver.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>

namespace calib {
namespace {
__global__ void probe_kernel() {}
}  // namespace

int cuda_device_count(char* message, size_t len) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    std::snprintf(message, len, "no usable CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (count == 0) {
    std::snprintf(message, len, "no CUDA device found");
    return 0;
  }
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    cudaGetLastError();
    std::snprintf(message, len, "%d CUDA device(s); properties of device %d unavailable", count, dev);
    return count;
  }
  if (p.major < 8) {
    std::snprintf(message, len, "CUDA device %s (sm_%d%d) is too old: the engine needs sm_80 or newer", p.name,
                  p.major, p.minor);
    return 0;
  }
  // The addon carries machine code for the architectures in CALIB_CUDA_ARCH only (default sm_90a).
  cudaFuncAttributes attr;
  if ((e = cudaFuncGetAttributes(&attr, probe_kernel)) != cudaSuccess) {
    cudaGetLastError();
    std::snprintf(message, len, "CUDA device %s (sm_%d%d) cannot run this build's kernels: %s (rebuild with CALIB_CUDA_ARCH=%d%d)",
                  p.name, p.major, p.minor, cudaGetErrorString(e), p.major, p.minor);
    return 0;
  }
  std::snprintf(message, len, "%s (sm_%d%d, %d SMs, %.1f GiB)%s", p.name, p.major, p.minor, p.multiProcessorCount,
                p.totalGlobalMem / 1073741824.0, count > 1 ? " and more; using the current device" : "");
  return count;
}

}  // namespace calib
