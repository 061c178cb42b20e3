// AdamW and the gradient norm on the GPU (adamw.cc on the CPU): the fp32 master weights, moments
// and gradients stay on the device; the update also writes the bf16 compute copy of the weights
// in mixed precision. The sum of squares runs over the CPU's fixed 64K-element chunks, one block
// per chunk with a fixed float64 tree, so the norm does not depend on scheduling.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

template <typename A>
__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, A* pc, int64_t n, float b1, float b2,
                             float eps, float gs, float step_size, float bc2_sqrt, float shrink) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float grad = g[i] * gs;
    const float mi = b1 * m[i] + (1.f - b1) * grad;
    const float vi = b2 * v[i] + (1.f - b2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    // IEEE-rounded sqrt and divisions (the build uses fast math): the same arithmetic as adamw.cc
    const float denom = __fdiv_rn(__fsqrt_rn(vi), bc2_sqrt) + eps;
    const float pi = p[i] * shrink - __fdiv_rn(step_size * mi, denom);
    p[i] = pi;
    if (pc) pc[i] = from_f<A>(pi);
  }
}

constexpr int kNormThreads = 256;

__global__ void sumsq_kernel(double* out, const float* g, const int64_t* begin, const int64_t* end) {
  __shared__ double sh[kNormThreads];
  const int c = blockIdx.x;
  double s = 0;
  for (int64_t i = begin[c] + threadIdx.x; i < end[c]; i += kNormThreads) {
    const double x = g[i];
    s += x * x;
  }
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = kNormThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[c] = sh[0];
}

}  // namespace

template <typename A>
cudaError_t adamw_update(float* p, const float* g, float* m, float* v, A* pc, int64_t n, float b1, float b2, float eps,
                         float gs, float step_size, float bc2_sqrt, float shrink) {
  if (n <= 0) return cudaSuccess;
  adamw_kernel<A><<<grid_for(n, 256, 65536), 256>>>(p, g, m, v, pc, n, b1, b2, eps, gs, step_size, bc2_sqrt, shrink);
  return cudaGetLastError();
}

cudaError_t sumsq_chunks(double* out, const float* g, const int64_t* begin, const int64_t* end, int n_chunks) {
  if (n_chunks <= 0) return cudaSuccess;
  sumsq_kernel<<<n_chunks, kNormThreads>>>(out, g, begin, end);
  return cudaGetLastError();
}

template cudaError_t adamw_update<float>(float*, const float*, float*, float*, float*, int64_t, float, float, float,
                                         float, float, float, float);
template cudaError_t adamw_update<bf16>(float*, const float*, float*, float*, bf16*, int64_t, float, float, float,
                                        float, float, float, float);

}  // namespace calib::model::cuda
