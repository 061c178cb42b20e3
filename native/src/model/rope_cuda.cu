// Rotary position embeddings on the GPU (rope.cc on the CPU: Hugging Face's rotate-half layout and angles).
// In place over N = B·T rows of row stride rs holding `heads` vectors of hd: at position t = row % T
//   forward (sign +1)   x1' = x1·cos − x2·sin,  x2' = x2·cos + x1·sin
//   backward (sign −1)  the transposed rotation of a gradient
// cos / sin: the fp32 tables of rope_table (context × hd/2), the rotation in fp32, one rounding to A.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

template <typename A>
__global__ void rope_kernel(A* x, const float* cos, const float* sin, int64_t pairs, int T, int heads, int half, int rs,
                            float sign) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < pairs; i += int64_t(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(i % half);
    const int64_t rh = i / half;  // row · heads + head
    const int h = static_cast<int>(rh % heads);
    const int64_t row = rh / heads;
    const int t = static_cast<int>(row % T);
    A* x1 = x + row * rs + int64_t(h) * 2 * half + j;
    A* x2 = x1 + half;
    const float c = cos[int64_t(t) * half + j], s = sign * sin[int64_t(t) * half + j];
    const float a = to_f(*x1), b = to_f(*x2);
    *x1 = from_f<A>(a * c - b * s);
    *x2 = from_f<A>(b * c + a * s);
  }
}

}  // namespace

template <typename A>
cudaError_t rope_apply(A* x, const float* cos, const float* sin, int N, int T, int heads, int hd, int rs, float sign) {
  const int64_t pairs = int64_t(N) * heads * (hd / 2);
  if (pairs == 0) return cudaSuccess;
  rope_kernel<A><<<grid_for(pairs, 256, 65536), 256>>>(x, cos, sin, pairs, T, heads, hd / 2, rs, sign);
  return cudaGetLastError();
}

template cudaError_t rope_apply<float>(float*, const float*, const float*, int, int, int, int, int, float);
template cudaError_t rope_apply<bf16>(bf16*, const float*, const float*, int, int, int, int, int, float);

}  // namespace calib::model::cuda
