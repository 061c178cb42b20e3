// GELU (tanh approximation, as gelu.cc and nn.GELU(approximate='tanh')) with the fc bias folded
// in: the fc matmul stores its product without the bias, and both passes add it on the fly, so
// that the N×4C pre-activation is read and written once less; the backward can also sum the bias gradient
// (colsum_add's chunks and order) while it writes the pre-activation's gradient.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

// column of element i of a row-major tensor with OC columns (32-bit division when it fits)
__device__ __forceinline__ int column(int64_t i, int OC, bool small) {
  return small ? static_cast<int>(static_cast<uint32_t>(i) % static_cast<uint32_t>(OC)) : static_cast<int>(i % OC);
}

template <typename A>
__global__ void gelu_forward_kernel(A* out, const A* inp, const float* bias, int64_t n, int OC) {
  const bool small = n < (int64_t(1) << 31);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f(inp[i]) + (bias ? bias[column(i, OC, small)] : 0.f);
    out[i] = from_f<A>(gelu_tanh(x));
  }
}

template <typename A>
__global__ void gelu_backward_kernel(A* dinp, const A* inp, const float* bias, const A* dout, int64_t n, int OC) {
  const bool small = n < (int64_t(1) << 31);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f(inp[i]) + (bias ? bias[column(i, OC, small)] : 0.f);
    dinp[i] = from_f<A>(gelu_tanh_grad(x) * to_f(dout[i]));
  }
}

// gelu_backward over the rows of chunk blockIdx.y (kColRows rows, in order), one thread per column, with the column
// sums of the written (rounded) dinp into partial[chunk, column] — colsum_add's partial sums, in its order.
template <typename A>
__global__ void gelu_backward_colsum_kernel(A* dinp, const A* inp, const float* bias, const A* dout, int N, int OC,
                                            float* partial) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y;
  if (c >= OC) return;
  const int r0 = k * kColRows, r1 = min(N, r0 + kColRows);
  const float b = bias ? bias[c] : 0.f;
  float s = 0.f;
  for (int r = r0; r < r1; ++r) {
    const int64_t i = int64_t(r) * OC + c;
    const A d = from_f<A>(gelu_tanh_grad(to_f(inp[i]) + b) * to_f(dout[i]));
    dinp[i] = d;
    s += to_f(d);
  }
  partial[int64_t(k) * OC + c] = s;
}

}  // namespace

template <typename A>
cudaError_t gelu_backward_bias_grad(A* dinp, const A* inp, const float* bias, const A* dout, int N, int OC,
                                    float* dbias, float* partial) {
  const int chunks = static_cast<int>(col_chunks(N));
  gelu_backward_colsum_kernel<A><<<dim3((OC + 127) / 128, chunks), 128>>>(dinp, inp, bias, dout, N, OC, partial);
  if (cudaError_t e = cudaGetLastError()) return e;
  return colsum_final(dbias, nullptr, OC, partial, chunks, OC);
}

template <typename A>
cudaError_t gelu_forward(A* out, const A* inp, const float* bias, int64_t N, int OC) {
  const int64_t n = N * OC;
  gelu_forward_kernel<A><<<grid_for(n, 256, 65536), 256>>>(out, inp, bias, n, OC);
  return cudaGetLastError();
}

template <typename A>
cudaError_t gelu_backward(A* dinp, const A* inp, const float* bias, const A* dout, int64_t N, int OC) {
  const int64_t n = N * OC;
  gelu_backward_kernel<A><<<grid_for(n, 256, 65536), 256>>>(dinp, inp, bias, dout, n, OC);
  return cudaGetLastError();
}

template cudaError_t gelu_forward<float>(float*, const float*, const float*, int64_t, int);
template cudaError_t gelu_forward<bf16>(bf16*, const bf16*, const float*, int64_t, int);
template cudaError_t gelu_backward_bias_grad<float>(float*, const float*, const float*, const float*, int, int, float*,
                                                   float*);
template cudaError_t gelu_backward_bias_grad<bf16>(bf16*, const bf16*, const float*, const bf16*, int, int, float*,
                                                  float*);
template cudaError_t gelu_backward<float>(float*, const float*, const float*, const float*, int64_t, int);
template cudaError_t gelu_backward<bf16>(bf16*, const bf16*, const float*, const bf16*, int64_t, int);

}  // namespace calib::model::cuda
