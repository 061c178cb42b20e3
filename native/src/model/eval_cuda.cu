// Evaluation statistics on the GPU (eval_cpu.cc on the CPU): for each evaluated row, the logits z
// (one fp32 row of V, computed by a cuBLAS product in gpt_cuda.cu) become s = softcap(z/T) in
// place, then one block per row finds the max / argmax (first index on ties), the top-k (value
// descending, then index ascending: the CPU's order), Σ exp(s − m) and Σ exp(s − m)·s (float64
// across threads) → lse, entropy = lse − E_p[s], p(target), nll, and the options' logits.
#include <cfloat>
#include <climits>

#include "kernels_cuda.cuh"

namespace calib::model::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxK = 16;

__device__ __forceinline__ bool better(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

__global__ void __launch_bounds__(kThreads) row_stats_kernel(RowStatsArgs a) {
  __shared__ float sv[kMaxK * kThreads];
  __shared__ int si[kMaxK * kThreads];
  __shared__ float rv[kThreads];
  __shared__ int ri[kThreads], rp[kThreads];
  __shared__ double rd0[kThreads], rd1[kThreads];
  const int tid = threadIdx.x;
  const int r = blockIdx.x;
  float* z = a.z + int64_t(r) * a.V;
  const float inv_cap = a.cap > 0.f ? 1.f / a.cap : 0.f;

  // pass 1: transform, max / argmax, per-thread top-16
  float m = -FLT_MAX;
  int am = INT_MAX;
  float tv[kMaxK];
  int ti[kMaxK];
#pragma unroll
  for (int j = 0; j < kMaxK; ++j) {
    tv[j] = -FLT_MAX;
    ti[j] = INT_MAX;
  }
  for (int64_t v = tid; v < a.V; v += kThreads) {
    const float s = softcap_logit(z[v], a.inv_t, a.cap, inv_cap);
    z[v] = s;
    const int iv = static_cast<int>(v);
    if (s > m) {
      m = s;
      am = iv;
    }
    if (a.top_k > 0 && better(s, iv, tv[kMaxK - 1], ti[kMaxK - 1])) {
      float cv = s;
      int ci = iv;
#pragma unroll
      for (int j = 0; j < kMaxK; ++j) {
        if (better(cv, ci, tv[j], ti[j])) {
          const float t0 = tv[j];
          const int t1 = ti[j];
          tv[j] = cv;
          ti[j] = ci;
          cv = t0;
          ci = t1;
        }
      }
    }
  }
  rv[tid] = m;
  ri[tid] = am;
  block_tree<kThreads>([&](int i, int j) {
    if (better(rv[j], ri[j], rv[i], ri[i])) rv[i] = rv[j], ri[i] = ri[j];
  });
  const float mx = rv[0];
  const int amx = ri[0];
  __syncthreads();

  // pass 2: Σ exp(s − m), Σ exp(s − m)·s
  float se = 0.f, ss = 0.f;
  for (int64_t v = tid; v < a.V; v += kThreads) {
    const float s = z[v];
    const float e = expf(s - mx);
    se += e;
    ss += e * s;
  }
  rd0[tid] = se;
  rd1[tid] = ss;
  block_tree<kThreads>([&](int i, int j) { rd0[i] += rd0[j], rd1[i] += rd1[j]; });
  const double SE = rd0[0], SS = rd1[0];
  const double lse = static_cast<double>(mx) + log(SE);

  // top-k: merge the per-thread lists, k rounds of a block arg-best
  const int k = a.top_k;
  if (k > 0) {
#pragma unroll
    for (int j = 0; j < kMaxK; ++j) {
      sv[j * kThreads + tid] = tv[j];
      si[j * kThreads + tid] = ti[j];
    }
    __syncthreads();
    for (int round = 0; round < k; ++round) {
      float bv = -FLT_MAX;
      int bi = INT_MAX, bp = -1;
      for (int j = 0; j < kMaxK; ++j) {
        const int p = j * kThreads + tid;
        if (bp < 0 || better(sv[p], si[p], bv, bi)) {
          bv = sv[p];
          bi = si[p];
          bp = p;
        }
      }
      rv[tid] = bv;
      ri[tid] = bi;
      rp[tid] = bp;
      block_tree<kThreads>([&](int i, int j) {
        if (better(rv[j], ri[j], rv[i], ri[i])) rv[i] = rv[j], ri[i] = ri[j], rp[i] = rp[j];
      });
      if (tid == 0) {
        const int64_t o = int64_t(r) * k + round;
        if (a.top_ids) a.top_ids[o] = ri[0];
        if (a.top_p) a.top_p[o] = static_cast<float>(exp(static_cast<double>(rv[0]) - lse));
        sv[rp[0]] = -FLT_MAX;
        si[rp[0]] = INT_MAX;
      }
      __syncthreads();
    }
  }

  if (tid == 0) {
    if (a.lse) a.lse[r] = static_cast<float>(lse);
    if (a.argmax) a.argmax[r] = amx;
    if (a.p_max) a.p_max[r] = static_cast<float>(exp(static_cast<double>(mx) - lse));
    if (a.entropy) a.entropy[r] = static_cast<float>(fmax(0.0, lse - SS / SE));
    if (a.p_target || a.nll) {
      const int32_t y = a.targets ? a.targets[r] : a.ignore_index;
      const bool ok = a.targets && y != a.ignore_index;
      const double lp = ok ? static_cast<double>(z[y]) - lse : 0.0;
      if (a.p_target) a.p_target[r] = ok ? static_cast<float>(exp(lp)) : __int_as_float(0x7fc00000);
      if (a.nll) a.nll[r] = ok ? static_cast<float>(-lp) : __int_as_float(0x7fc00000);
    }
  }
  if (a.option_logits)
    for (int o = tid; o < a.n_options; o += kThreads)
      a.option_logits[int64_t(r) * a.n_options + o] = z[a.option_ids[o]];
}

}  // namespace

cudaError_t row_stats(const RowStatsArgs& a) {
  if (a.n <= 0) return cudaSuccess;
  row_stats_kernel<<<a.n, kThreads>>>(a);
  return cudaGetLastError();
}

}  // namespace calib::model::cuda
