// Engine information: threads, and whether a CUDA device can be used.
#include <cstdio>
#include <cstring>

#include "calib.h"
#include "parallel.h"

#if CALIB_WITH_CUDA
namespace calib {
int cuda_device_count(char* message, size_t len);  // device_cuda.cu
}
#endif

extern "C" void calib_get_info(calib_info* info) {
  std::memset(info, 0, sizeof *info);
  info->cpu_threads = calib::default_threads();
#if CALIB_WITH_CUDA
  info->cuda_built = 1;
  info->cuda_devices = calib::cuda_device_count(info->cuda_message, sizeof info->cuda_message);
#else
  info->cuda_built = 0;
  std::snprintf(info->cuda_message, sizeof info->cuda_message, "built without CUDA (nvcc was not found or CALIB_CUDA=0)");
#endif
}

extern "C" void calib_set_threads(int32_t threads) { calib::set_default_threads(threads); }
