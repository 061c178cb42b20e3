// Small GPU helpers of the model: deterministic column sums (bias gradients; the second stage is
// shared with the LayerNorm parameter gradients), the residual + bias initialisation of the
// projections' outputs, bias adds (Qwen2's q/k/v), casts of the master weights, fills, adds and row gathers.
#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

template <typename T>
__global__ void colsum_partial_kernel(float* partial, const T* x, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y;
  if (c >= C) return;
  const int r0 = k * kColRows, r1 = min(N, r0 + kColRows);
  float s = 0.f;
  for (int i = r0; i < r1; ++i) s += to_f(x[int64_t(i) * C + c]);
  partial[int64_t(k) * C + c] = s;
}

__global__ void colsum_final_kernel(float* out0, float* out1, int split, const float* partial, int n_chunks, int ld) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= ld) return;
  float s = 0.f;
  for (int k = 0; k < n_chunks; ++k) s += partial[int64_t(k) * ld + j];
  if (j < split) out0[j] += s;
  else out1[j - split] += s;
}

__global__ void residual_bias_kernel(float* out, const float* res, const float* bias, int64_t n, int C) {
  const bool small = n < (int64_t(1) << 31);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = res[i] + bias[small ? static_cast<int>(static_cast<uint32_t>(i) % static_cast<uint32_t>(C))
                                 : static_cast<int>(i % C)];
}

template <typename A>
__global__ void bias_add_kernel(A* x, const float* bias, int64_t n, int C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f<A>(to_f(x[i]) + bias[i % C]);
}

template <typename A>
__global__ void cast_kernel(A* dst, const float* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f<A>(src[i]);
}

__global__ void fill_kernel(float* x, float v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = v;
}

__global__ void add_kernel(float* dst, const float* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] += src[i];
}

template <typename A>
__global__ void gather_rows_kernel(A* dst, const A* src, const int32_t* rows, int n, int C) {
  const int r = blockIdx.y;
  const int64_t from = int64_t(rows ? rows[r] : r) * C;
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x)
    dst[int64_t(r) * C + c] = src[from + c];
}

}  // namespace

template <typename T>
cudaError_t colsum_add(float* out, const T* x, int N, int C, float* partial) {
  const int chunks = static_cast<int>(col_chunks(N));
  colsum_partial_kernel<T><<<dim3((C + 127) / 128, chunks), 128>>>(partial, x, N, C);
  if (cudaError_t e = cudaGetLastError()) return e;
  return colsum_final(out, nullptr, C, partial, chunks, C);
}

cudaError_t colsum_final(float* out0, float* out1, int split, const float* partial, int n_chunks, int ld) {
  colsum_final_kernel<<<(ld + 127) / 128, 128>>>(out0, out1, split, partial, n_chunks, ld);
  return cudaGetLastError();
}

cudaError_t residual_bias(float* out, const float* res, const float* bias, int64_t N, int C) {
  const int64_t n = N * C;
  residual_bias_kernel<<<grid_for(n, 256, 65536), 256>>>(out, res, bias, n, C);
  return cudaGetLastError();
}

template <typename A>
cudaError_t bias_add(A* x, const float* bias, int64_t N, int C) {
  const int64_t n = N * C;
  if (n <= 0) return cudaSuccess;
  bias_add_kernel<A><<<grid_for(n, 256, 65536), 256>>>(x, bias, n, C);
  return cudaGetLastError();
}

template <typename A>
cudaError_t cast_from_f32(A* dst, const float* src, int64_t n) {
  if (n <= 0) return cudaSuccess;
  cast_kernel<A><<<grid_for(n, 256, 65536), 256>>>(dst, src, n);
  return cudaGetLastError();
}

cudaError_t fill_f32(float* x, float v, int64_t n) {
  if (n <= 0) return cudaSuccess;
  fill_kernel<<<grid_for(n, 256, 65536), 256>>>(x, v, n);
  return cudaGetLastError();
}

cudaError_t add_f32(float* dst, const float* src, int64_t n) {
  if (n <= 0) return cudaSuccess;
  add_kernel<<<grid_for(n, 256, 65536), 256>>>(dst, src, n);
  return cudaGetLastError();
}

template <typename A>
cudaError_t gather_rows(A* dst, const A* src, const int32_t* rows, int n, int C) {
  if (n <= 0) return cudaSuccess;
  const int threads = C >= 256 ? 256 : ((C + 31) / 32) * 32;
  gather_rows_kernel<A><<<dim3((C + threads - 1) / threads, n), threads>>>(dst, src, rows, n, C);
  return cudaGetLastError();
}

template cudaError_t colsum_add<float>(float*, const float*, int, int, float*);
template cudaError_t colsum_add<bf16>(float*, const bf16*, int, int, float*);
template cudaError_t bias_add<float>(float*, const float*, int64_t, int);
template cudaError_t bias_add<bf16>(bf16*, const float*, int64_t, int);
template cudaError_t cast_from_f32<float>(float*, const float*, int64_t);
template cudaError_t cast_from_f32<bf16>(bf16*, const float*, int64_t);
template cudaError_t gather_rows<float>(float*, const float*, const int32_t*, int, int);
template cudaError_t gather_rows<bf16>(bf16*, const bf16*, const int32_t*, int, int);

}  // namespace calib::model::cuda
