// The gated MLP's activation on the GPU (glu.cc on the CPU; Hugging Face's LlamaMLP / Gemma2MLP):
//   forward   out = act(g)·u,  act = SiLU (SwiGLU) or tanh-GELU (GeGLU)
//   backward  dg = act'(g)·u·dout,  du = act(g)·dout
// fp32 arithmetic, one rounding to A per output; the backward reads g and u before it writes, so dg may be
// g's buffer and du u's.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

template <typename A, bool kSilu>
__global__ void glu_forward_kernel(A* out, const A* gate, const A* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f(gate[i]);
    out[i] = from_f<A>((kSilu ? silu(g) : gelu_tanh(g)) * to_f(up[i]));
  }
}

template <typename A, bool kSilu>
__global__ void glu_backward_kernel(A* dgate, A* dup, const A* dout, const A* gate, const A* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = to_f(gate[i]), u = to_f(up[i]), d = to_f(dout[i]);
    const float a = kSilu ? silu(g) : gelu_tanh(g), s = kSilu ? silu_grad(g) : gelu_tanh_grad(g);
    dgate[i] = from_f<A>(s * u * d);
    dup[i] = from_f<A>(a * d);
  }
}

}  // namespace

template <typename A>
cudaError_t glu_forward(A* out, const A* gate, const A* up, int64_t n, bool silu) {
  if (n <= 0) return cudaSuccess;
  if (silu) glu_forward_kernel<A, true><<<grid_for(n, 256, 65536), 256>>>(out, gate, up, n);
  else glu_forward_kernel<A, false><<<grid_for(n, 256, 65536), 256>>>(out, gate, up, n);
  return cudaGetLastError();
}

template <typename A>
cudaError_t glu_backward(A* dgate, A* dup, const A* dout, const A* gate, const A* up, int64_t n, bool silu) {
  if (n <= 0) return cudaSuccess;
  if (silu) glu_backward_kernel<A, true><<<grid_for(n, 256, 65536), 256>>>(dgate, dup, dout, gate, up, n);
  else glu_backward_kernel<A, false><<<grid_for(n, 256, 65536), 256>>>(dgate, dup, dout, gate, up, n);
  return cudaGetLastError();
}

template cudaError_t glu_forward<float>(float*, const float*, const float*, int64_t, bool);
template cudaError_t glu_forward<bf16>(bf16*, const bf16*, const bf16*, int64_t, bool);
template cudaError_t glu_backward<float>(float*, float*, const float*, const float*, const float*, int64_t, bool);
template cudaError_t glu_backward<bf16>(bf16*, bf16*, const bf16*, const bf16*, const bf16*, int64_t, bool);

}  // namespace calib::model::cuda
