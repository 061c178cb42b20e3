// The CUDA attention for head sizes the tensor-core kernels do not take (flash_attention_cuda.cu: 64, 128):
// Gemma 2's 256, or any head_dim ≤ 256. The same contract (flash_attention.h: causal, GQA, scale, soft-cap,
// window, lse, no T×T buffer, deterministic), computed a row at a time with one warp per row and fp32 arithmetic
// throughout (P and dS are not rounded to bf16 as the tensor-core path rounds them). Lane l holds the elements
// l, l + 32, … of a head vector (at most 8); dot products are warp sums in a fixed order.
//   forward   warp per (query i, head h, b): keys j in order with an online softmax; o_i and lse_i
//   dQ        warp per (i, h, b): Δ_i = dO_i·o_i (kept for dK/dV); keys in order: p_ij, dp_ij = dO_i·v_j,
//             ds_ij = p_ij·(dp_ij − Δ_i)·scale·(1 − (s_ij/c)²  with a cap);  dq_i = Σ_j ds_ij·k_j
//   dK, dV    warp per (key j, kv head g, b): the group's query heads in order, queries i ≥ j in order;
//             dv_j = Σ p_ij·dO_i,  dk_j = Σ ds_ij·q_i
// About T²·Dh work per head as the tensor-core path, without its reuse of tiles: slower, for correctness.
#include <cuda_bf16.h>

#include "../cuda/runtime.cuh"
#include "flash_attention.h"

namespace calib::flash {
namespace {

constexpr int kMaxLanes = 8;  // head_dim ≤ 256

struct Rows {
  const __nv_bfloat16 *q, *k, *v, *o, *dout;
  __nv_bfloat16 *out, *dq, *dk, *dv;
  float *lse, *delta;
  int T, Hq, Hkv, Dh;
  int64_t window;
  float scale, cap;
};

__device__ __forceinline__ float lane_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// A head vector into the lane's registers (zero past Dh).
__device__ __forceinline__ void load(float (&r)[kMaxLanes], const __nv_bfloat16* x, int Dh) {
  const int lane = threadIdx.x;
#pragma unroll
  for (int m = 0; m < kMaxLanes; ++m) {
    const int d = lane + 32 * m;
    r[m] = d < Dh ? __bfloat162float(x[d]) : 0.f;
  }
}
__device__ __forceinline__ void store(__nv_bfloat16* x, const float (&r)[kMaxLanes], float f, int Dh) {
  const int lane = threadIdx.x;
#pragma unroll
  for (int m = 0; m < kMaxLanes; ++m) {
    const int d = lane + 32 * m;
    if (d < Dh) x[d] = __float2bfloat16_rn(r[m] * f);
  }
}
__device__ __forceinline__ float dot(const float (&r)[kMaxLanes], const __nv_bfloat16* x, int Dh) {
  const int lane = threadIdx.x;
  float s = 0.f;
#pragma unroll
  for (int m = 0; m < kMaxLanes; ++m) {
    const int d = lane + 32 * m;
    if (d < Dh) s += r[m] * __bfloat162float(x[d]);
  }
  return lane_sum(s);
}
__device__ __forceinline__ void axpy(float (&r)[kMaxLanes], float a, const __nv_bfloat16* x, int Dh) {
  const int lane = threadIdx.x;
#pragma unroll
  for (int m = 0; m < kMaxLanes; ++m) {
    const int d = lane + 32 * m;
    if (d < Dh) r[m] += a * __bfloat162float(x[d]);
  }
}

// The logit of u = q·k and its slope d(logit)/d(scale·u) (1 without a cap).
__device__ __forceinline__ float logit_of(const Rows& a, float u, float* slope) {
  const float s = a.scale * u;
  if (a.cap > 0.f) {
    const float t = tanhf(s / a.cap);
    *slope = 1.f - t * t;
    return a.cap * t;
  }
  *slope = 1.f;
  return s;
}
__device__ __forceinline__ int first_key(const Rows& a, int i) {
  return a.window > 0 && i - a.window + 1 > 0 ? static_cast<int>(i - a.window + 1) : 0;
}
__device__ __forceinline__ int64_t q_at(const Rows& a, int b, int t, int h) { return ((int64_t(b) * a.T + t) * a.Hq + h) * a.Dh; }
__device__ __forceinline__ int64_t kv_at(const Rows& a, int b, int t, int g) { return ((int64_t(b) * a.T + t) * a.Hkv + g) * a.Dh; }

__global__ void forward_rows(Rows a) {
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (a.Hq / a.Hkv);
  float q[kMaxLanes], o[kMaxLanes] = {};
  load(q, a.q + q_at(a, b, i, h), a.Dh);
  float m = -INFINITY, l = 0.f, slope;
  for (int j = first_key(a, i); j <= i; ++j) {
    const float s = logit_of(a, dot(q, a.k + kv_at(a, b, j, g), a.Dh), &slope);
    const float mn = fmaxf(m, s), corr = __expf(m - mn), p = __expf(s - mn);
    l = l * corr + p;
#pragma unroll
    for (int r = 0; r < kMaxLanes; ++r) o[r] *= corr;
    axpy(o, p, a.v + kv_at(a, b, j, g), a.Dh);
    m = mn;
  }
  store(a.out + q_at(a, b, i, h), o, 1.f / l, a.Dh);
  if (threadIdx.x == 0) a.lse[(int64_t(b) * a.Hq + h) * a.T + i] = m + __logf(l);
}

__global__ void dq_rows(Rows a) {
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (a.Hq / a.Hkv);
  float q[kMaxLanes], dout[kMaxLanes], dq[kMaxLanes] = {};
  load(q, a.q + q_at(a, b, i, h), a.Dh);
  load(dout, a.dout + q_at(a, b, i, h), a.Dh);
  const int64_t row = (int64_t(b) * a.Hq + h) * a.T + i;
  const float delta = dot(dout, a.o + q_at(a, b, i, h), a.Dh), lse = a.lse[row];
  if (threadIdx.x == 0) a.delta[row] = delta;
  float slope;
  for (int j = first_key(a, i); j <= i; ++j) {
    const float s = logit_of(a, dot(q, a.k + kv_at(a, b, j, g), a.Dh), &slope);
    const float p = __expf(s - lse), dp = dot(dout, a.v + kv_at(a, b, j, g), a.Dh);
    axpy(dq, p * (dp - delta) * a.scale * slope, a.k + kv_at(a, b, j, g), a.Dh);
  }
  store(a.dq + q_at(a, b, i, h), dq, 1.f, a.Dh);
}

__global__ void dkv_rows(Rows a) {
  const int j = blockIdx.x, g = blockIdx.y, b = blockIdx.z, rep = a.Hq / a.Hkv;
  float k[kMaxLanes], v[kMaxLanes], dk[kMaxLanes] = {}, dv[kMaxLanes] = {};
  load(k, a.k + kv_at(a, b, j, g), a.Dh);
  load(v, a.v + kv_at(a, b, j, g), a.Dh);
  const int last = a.window > 0 && j + a.window - 1 < a.T - 1 ? static_cast<int>(j + a.window - 1) : a.T - 1;
  float slope;
  for (int h = g * rep; h < (g + 1) * rep; ++h) {
    for (int i = j; i <= last; ++i) {
      const int64_t row = (int64_t(b) * a.Hq + h) * a.T + i;
      const __nv_bfloat16* qi = a.q + q_at(a, b, i, h);
      const __nv_bfloat16* di = a.dout + q_at(a, b, i, h);
      const float s = logit_of(a, dot(k, qi, a.Dh), &slope);
      const float p = __expf(s - a.lse[row]), dp = dot(v, di, a.Dh);
      axpy(dv, p, di, a.Dh);
      axpy(dk, p * (dp - a.delta[row]) * a.scale * slope, qi, a.Dh);
    }
  }
  store(a.dk + kv_at(a, b, j, g), dk, 1.f, a.Dh);
  store(a.dv + kv_at(a, b, j, g), dv, 1.f, a.Dh);
}

Rows rows_of(const calib_attention_args& a) {
  Rows r{};
  r.q = static_cast<const __nv_bfloat16*>(a.q);
  r.k = static_cast<const __nv_bfloat16*>(a.k);
  r.v = static_cast<const __nv_bfloat16*>(a.v);
  r.o = static_cast<const __nv_bfloat16*>(a.o);
  r.out = static_cast<__nv_bfloat16*>(a.o);
  r.dout = static_cast<const __nv_bfloat16*>(a.grad_o);
  r.dq = static_cast<__nv_bfloat16*>(a.grad_q);
  r.dk = static_cast<__nv_bfloat16*>(a.grad_k);
  r.dv = static_cast<__nv_bfloat16*>(a.grad_v);
  r.lse = a.lse;
  r.T = static_cast<int>(a.t);
  r.Hq = static_cast<int>(a.hq);
  r.Hkv = static_cast<int>(a.hkv);
  r.Dh = static_cast<int>(a.head_dim);
  r.window = a.window;
  r.scale = a.scale;
  r.cap = a.softcap;
  return r;
}

}  // namespace

calib_status forward_rows_cuda(const calib_attention_args& a, char* err) {
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  forward_rows<<<dim3(static_cast<unsigned>(a.t), static_cast<unsigned>(a.hq), static_cast<unsigned>(a.b)), 32, 0,
                 stream>>>(rows_of(a));
  LAUNCHED("attention forward (rows)");
  return CALIB_OK;
}

calib_status backward_rows_cuda(const calib_attention_args& a, float* delta, char* err) {
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  Rows r = rows_of(a);
  r.delta = delta;
  dq_rows<<<dim3(static_cast<unsigned>(a.t), static_cast<unsigned>(a.hq), static_cast<unsigned>(a.b)), 32, 0, stream>>>(r);
  LAUNCHED("attention backward dQ (rows)");
  dkv_rows<<<dim3(static_cast<unsigned>(a.t), static_cast<unsigned>(a.hkv), static_cast<unsigned>(a.b)), 32, 0, stream>>>(r);
  LAUNCHED("attention backward dK, dV (rows)");
  return CALIB_OK;
}

}  // namespace calib::flash
