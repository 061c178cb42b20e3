// Token (+ position) embeddings on the GPU (encoder.cc on the CPU): GPT-2's wte[tok] + wpe[pos], the Llama
// family's embed[tok]·embed_scale. The residual stream is fp32 in both precisions, so the embeddings are read
// from the fp32 master weights.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

__global__ void encoder_forward_kernel(float* x, const int32_t* inp, const float* wte, const float* wpe, int T, int C,
                                       int64_t total, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / C;
    const int c = static_cast<int>(i - row * C);
    const int t = static_cast<int>(row % T);
    const float e = wte[int64_t(inp[row]) * C + c] * scale;
    x[i] = wpe ? e + wpe[int64_t(t) * C + c] : e;
  }
}

// dwpe[t, c] += Σ_b dres[b, t, c] (b in order)
__global__ void encoder_wpe_kernel(float* dwpe, const float* dres, int B, int T, int C) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= int64_t(T) * C) return;
  float s = 0.f;
  for (int b = 0; b < B; ++b) s += dres[int64_t(b) * T * C + i];
  dwpe[i] += s;
}

// One block row per distinct token: its positions in increasing order, columns across threads.
__global__ void encoder_wte_kernel(float* dwte, const float* dres, const int32_t* uniq, const int32_t* offs,
                                   const int32_t* pos, int C, float scale) {
  const int u = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int j = offs[u]; j < offs[u + 1]; ++j) s += dres[int64_t(pos[j]) * C + c];
  dwte[int64_t(uniq[u]) * C + c] += s * scale;
}

}  // namespace

cudaError_t encoder_forward(float* x, const int32_t* inp, const float* wte, const float* wpe, int B, int T, int C,
                            float scale) {
  const int64_t total = int64_t(B) * T * C;
  encoder_forward_kernel<<<grid_for(total, 256, 65536), 256>>>(x, inp, wte, wpe, T, C, total, scale);
  return cudaGetLastError();
}

cudaError_t encoder_backward(float* dwte, float* dwpe, const float* dres, const int32_t* uniq, const int32_t* offs,
                             const int32_t* pos, int n_uniq, int B, int T, int C, float scale) {
  if (dwpe) {
    encoder_wpe_kernel<<<grid_for(int64_t(T) * C, 256), 256>>>(dwpe, dres, B, T, C);
    if (cudaError_t e = cudaGetLastError()) return e;
  }
  // gridDim.y ≤ 65535: distinct tokens come in slices
  const int threads = C >= 256 ? 256 : ((C + 31) / 32) * 32;
  for (int u0 = 0; u0 < n_uniq; u0 += 65535) {
    const int nu = n_uniq - u0 < 65535 ? n_uniq - u0 : 65535;
    encoder_wte_kernel<<<dim3((C + threads - 1) / threads, nu), threads>>>(dwte, dres, uniq + u0, offs + u0, pos, C, scale);
    if (cudaError_t e = cudaGetLastError()) return e;
  }
  return cudaSuccess;
}

}  // namespace calib::model::cuda
