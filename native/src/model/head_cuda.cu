// The LM head's per-row loss and gradient for the chunked cuBLAS head of gpt_cuda.cu (head.cc on
// the CPU writes the same equations in float64): for each supervised row, given its logits
// z (fp32, one row of V), with s = softcap(z/T):
//   loss = T·(lse(s) − (1−ε)·s_y − ε/V·Σ_v s_v)
//   G_v  = scale·(p_v − q_v)·κ_v,  p = softmax(s), q = (1−ε)·[v = y] + ε/V, κ = 1 − (s/c)² (softcap)
// so that dE = G·H and dH = Gᵀ·E (the 1/T of the transform cancels the factor T). One block per
// row: an online (max, Σexp) pass that also sums s, then a pass writing G. Block reductions have a
// fixed order (float64 across threads); no atomics.
#include <cfloat>

#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

constexpr int kThreads = 256;


template <typename G>
__global__ void __launch_bounds__(kThreads) head_rows_kernel(HeadRowsArgs a, G* grad) {
  __shared__ float sm[kThreads];
  __shared__ double se[kThreads], ss[kThreads];
  const int tid = threadIdx.x;
  const int r = blockIdx.x;
  const float* z = a.z + int64_t(r) * a.V;
  const float inv_cap = a.cap > 0.f ? 1.f / a.cap : 0.f;
  // pass 1: online max / Σ exp(s − max), and Σ s
  float m = -FLT_MAX, e = 0.f, sum = 0.f;
  for (int64_t v = tid; v < a.V; v += kThreads) {
    const float s = softcap_logit(z[v], a.inv_t, a.cap, inv_cap);
    if (s > m) {
      e = e * expf(m - s) + 1.f;
      m = s;
    } else {
      e += expf(s - m);
    }
    sum += s;
  }
  sm[tid] = m;
  block_tree<kThreads>([&](int i, int j) { sm[i] = fmaxf(sm[i], sm[j]); });
  const float mx = sm[0];
  se[tid] = m > -FLT_MAX ? static_cast<double>(e) * exp(static_cast<double>(m) - mx) : 0.0;
  ss[tid] = sum;
  block_tree<kThreads>([&](int i, int j) { se[i] += se[j], ss[i] += ss[j]; });
  const double lse = static_cast<double>(mx) + log(se[0]);
  const int32_t y = a.targets[r];
  if (tid == 0) {
    const double sy = softcap_logit(z[y], a.inv_t, a.cap, inv_cap);
    a.loss[r] = static_cast<float>(a.T * (lse - (1.0 - a.eps) * sy - a.eps / static_cast<double>(a.V) * ss[0]));
  }
  if (!grad) return;
  // pass 2: the gradient row
  G* g = grad + int64_t(r) * a.V;
  const float lse_f = static_cast<float>(lse);
  const float q0 = static_cast<float>(a.eps / static_cast<double>(a.V)), q1 = 1.f - a.eps;
  for (int64_t v = tid; v < a.V; v += kThreads) {
    const float s = softcap_logit(z[v], a.inv_t, a.cap, inv_cap);
    const float p = expf(s - lse_f);
    const float q = q0 + (v == y ? q1 : 0.f);
    const float kappa = a.cap > 0.f ? 1.f - (s * inv_cap) * (s * inv_cap) : 1.f;
    g[v] = from_f<G>(a.scale * (p - q) * kappa);
  }
}

template <typename A>
__global__ void scatter_rows_kernel(A* dst, const A* src, const int32_t* rows, int C) {
  const int r = blockIdx.y;
  const int64_t to = int64_t(rows[r]) * C;
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x)
    dst[to + c] = src[int64_t(r) * C + c];
}

}  // namespace

template <typename G>
cudaError_t head_rows(const HeadRowsArgs& a, G* grad) {
  if (a.n <= 0) return cudaSuccess;
  head_rows_kernel<G><<<a.n, kThreads>>>(a, grad);
  return cudaGetLastError();
}

cudaError_t scatter_rows(float* dst, const float* src, const int32_t* rows, int n, int C) {
  if (n <= 0) return cudaSuccess;
  const int threads = C >= 256 ? 256 : ((C + 31) / 32) * 32;
  scatter_rows_kernel<float><<<dim3((C + threads - 1) / threads, n), threads>>>(dst, src, rows, C);
  return cudaGetLastError();
}

template cudaError_t head_rows<float>(const HeadRowsArgs&, float*);
template cudaError_t head_rows<bf16>(const HeadRowsArgs&, bf16*);

}  // namespace calib::model::cuda
