// RMSNorm on the GPU (rmsnorm.cc on the CPU; Hugging Face's LlamaRMSNorm, Gemma's 1 + w): one warp per row,
// statistics in fp32, input from an fp32 stream (the residual, or a post-norm's branch output).
//   forward   y = x·r·w', r = 1/√(mean(x²) + eps), w' = w or 1 + w; r kept for the backward; y written in the
//             activation type (a matmul's input) and/or added onto an fp32 output (a post-norm onto the residual)
//   backward  dx = r·(dn − n·mean(dn·n)), dn = w'·dy, n = x·r;  dw += Σ_rows n·dy (fixed row order)
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

constexpr int kWarps = 8;

template <typename A>
__global__ void rmsnorm_forward_kernel(A* out_a, float* out_f, float* rstd, const float* inp, const float* w,
                                       float one, float eps, int N, int C) {
  const int row = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t o = int64_t(row) * C;
  const float* x = inp + o;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
  const float r = rsqrtf(warp_sum(ss) / C + eps);
  for (int c = lane; c < C; c += 32) {
    const float y = x[c] * r * (one + w[c]);
    if (out_a) out_a[o + c] = from_f<A>(y);
    if (out_f) out_f[o + c] += y;
  }
  if (lane == 0) rstd[row] = r;
}

template <typename A>
__global__ void rmsnorm_backward_kernel(float* dinp_f, A* dinp_a, const float* dout, const float* inp, const float* w,
                                        const float* rstd, float one, int N, int C) {
  const int row = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t o = int64_t(row) * C;
  const float* x = inp + o;
  const float* dy = dout + o;
  const float r = rstd[row];
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += (one + w[c]) * dy[c] * x[c] * r;
  s = warp_sum(s) / C;
  for (int c = lane; c < C; c += 32) {
    float d = ((one + w[c]) * dy[c] - x[c] * r * s) * r;
    if (dinp_f) {
      d += dinp_f[o + c];
      dinp_f[o + c] = d;
    }
    if (dinp_a) dinp_a[o + c] = from_f<A>(d);
  }
}

// partial[k, c] = Σ_{rows of chunk k} x·r·dy
__global__ void rmsnorm_param_partial_kernel(float* partial, const float* dout, const float* inp, const float* rstd,
                                             int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y;
  if (c >= C) return;
  const int r0 = k * kColRows, r1 = min(N, r0 + kColRows);
  float s = 0.f;
  for (int i = r0; i < r1; ++i) s += dout[int64_t(i) * C + c] * inp[int64_t(i) * C + c] * rstd[i];
  partial[int64_t(k) * C + c] = s;
}

}  // namespace

template <typename A>
cudaError_t rmsnorm_forward(A* out_a, float* out_f, float* rstd, const float* inp, const float* w, bool plus_one,
                            float eps, int N, int C) {
  rmsnorm_forward_kernel<A><<<(N + kWarps - 1) / kWarps, kWarps * 32>>>(out_a, out_f, rstd, inp, w,
                                                                       plus_one ? 1.f : 0.f, eps, N, C);
  return cudaGetLastError();
}

template <typename A>
cudaError_t rmsnorm_backward(float* dinp_f, A* dinp_a, const float* dout, const float* inp, const float* w,
                             const float* rstd, bool plus_one, int N, int C) {
  rmsnorm_backward_kernel<A><<<(N + kWarps - 1) / kWarps, kWarps * 32>>>(dinp_f, dinp_a, dout, inp, w, rstd,
                                                                        plus_one ? 1.f : 0.f, N, C);
  return cudaGetLastError();
}

cudaError_t rmsnorm_param_grads(float* dw, const float* dout, const float* inp, const float* rstd, int N, int C,
                                float* partial) {
  const int chunks = static_cast<int>(col_chunks(N));
  rmsnorm_param_partial_kernel<<<dim3((C + 127) / 128, chunks), 128>>>(partial, dout, inp, rstd, N, C);
  if (cudaError_t e = cudaGetLastError()) return e;
  return colsum_final(dw, nullptr, C, partial, chunks, C);
}

template cudaError_t rmsnorm_forward<float>(float*, float*, float*, const float*, const float*, bool, float, int, int);
template cudaError_t rmsnorm_forward<bf16>(bf16*, float*, float*, const float*, const float*, bool, float, int, int);
template cudaError_t rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*,
                                             bool, int, int);
template cudaError_t rmsnorm_backward<bf16>(float*, bf16*, const float*, const float*, const float*, const float*, bool,
                                            int, int);

}  // namespace calib::model::cuda
