// Fused LayerNorm on the GPU (layernorm.cc on the CPU): one warp per row, statistics in fp32,
// input from the fp32 residual stream, output in the activation type.
//   forward   y = (x − μ)·r·w + b, r = 1/√(σ² + 1e-5), μ and r kept for the backward
//   backward  dx += r·(dn − mean(dn) − x̂·mean(dn·x̂)), dn = w·dy;  dw += Σ dy·x̂, db += Σ dy
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

constexpr int kWarps = 8;

template <typename A>
__global__ void layernorm_forward_kernel(A* out, float* mean, float* rstd, const float* inp, const float* w,
                                         const float* b, int N, int C) {
  const int row = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = inp + int64_t(row) * C;
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += x[c];
  const float m = warp_sum(s) / C;
  float v = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = x[c] - m;
    v += d * d;
  }
  v = warp_sum(v) / C;
  const float r = 1.0f / sqrtf(v + 1e-5f);
  A* y = out + int64_t(row) * C;
  for (int c = lane; c < C; c += 32) y[c] = from_f<A>((x[c] - m) * r * w[c] + b[c]);
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}

template <typename A>
__global__ void layernorm_backward_kernel(float* dinp, A* dinp_a, const float* dout, const float* inp, const float* w,
                                          const float* mean, const float* rstd, int N, int C) {
  const int row = blockIdx.x * kWarps + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t o = int64_t(row) * C;
  const float* x = inp + o;
  const float* dy = dout + o;
  const float m = mean[row], r = rstd[row];
  float s1 = 0.f, s2 = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float dn = w[c] * dy[c];
    s1 += dn;
    s2 += dn * (x[c] - m) * r;
  }
  s1 = warp_sum(s1) / C;
  s2 = warp_sum(s2) / C;
  float* dx = dinp + o;
  for (int c = lane; c < C; c += 32) {
    const float n = (x[c] - m) * r;
    const float d = dx[c] + (w[c] * dy[c] - s1 - n * s2) * r;
    dx[c] = d;
    if (dinp_a) dinp_a[o + c] = from_f<A>(d);
  }
}

// partial[k, c] = Σ_{rows of chunk k} dy·x̂, partial[k, C + c] = Σ dy
__global__ void layernorm_param_partial_kernel(float* partial, const float* dout, const float* inp, const float* mean,
                                               const float* rstd, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y;
  if (c >= C) return;
  const int r0 = k * kColRows, r1 = min(N, r0 + kColRows);
  float sw = 0.f, sb = 0.f;
  for (int i = r0; i < r1; ++i) {
    const float dy = dout[int64_t(i) * C + c];
    sw += dy * (inp[int64_t(i) * C + c] - mean[i]) * rstd[i];
    sb += dy;
  }
  partial[int64_t(k) * 2 * C + c] = sw;
  partial[int64_t(k) * 2 * C + C + c] = sb;
}

}  // namespace

template <typename A>
cudaError_t layernorm_forward(A* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                              int N, int C) {
  layernorm_forward_kernel<A><<<(N + kWarps - 1) / kWarps, kWarps * 32>>>(out, mean, rstd, inp, w, b, N, C);
  return cudaGetLastError();
}

template <typename A>
cudaError_t layernorm_backward(float* dinp, A* dinp_a, const float* dout, const float* inp, const float* w,
                               const float* mean, const float* rstd, int N, int C) {
  layernorm_backward_kernel<A><<<(N + kWarps - 1) / kWarps, kWarps * 32>>>(dinp, dinp_a, dout, inp, w, mean, rstd, N,
                                                                          C);
  return cudaGetLastError();
}

cudaError_t layernorm_param_grads(float* dw, float* db, const float* dout, const float* inp, const float* mean,
                                  const float* rstd, int N, int C, float* partial) {
  const int chunks = static_cast<int>(col_chunks(N));
  layernorm_param_partial_kernel<<<dim3((C + 127) / 128, chunks), 128>>>(partial, dout, inp, mean, rstd, N, C);
  if (cudaError_t e = cudaGetLastError()) return e;
  return colsum_final(dw, db, C, partial, chunks, 2 * C);
}

template cudaError_t layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                              int);
template cudaError_t layernorm_forward<bf16>(bf16*, float*, float*, const float*, const float*, const float*, int, int);
template cudaError_t layernorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*,
                                               const float*, int, int);
template cudaError_t layernorm_backward<bf16>(float*, bf16*, const float*, const float*, const float*, const float*,
                                              const float*, int, int);

}  // namespace calib::model::cuda
