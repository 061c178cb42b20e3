// Flash-style causal attention on the GPU (contract: flash_attention.h; CPU reference: flash_attention.cc), head_dim
// 64 and 128; other head sizes (≤ 256) go to flash_attention_rows_cuda.cu.
//
// Every kernel runs 4 warps; a warp owns 16 rows of its CTA's tile and does all its products with the two
// warp-level building blocks below, on bf16 tiles in shared memory ([rows][Dh + 8], the padding makes every
// ldmatrix phase conflict-free) and fp32 accumulators in registers:
//   mma_nt   acc(16 × N) += A(16 × Dh, smem rows) · B(N × Dh, smem rows)ᵀ        (S = Q·Kᵀ, dP = dO·Vᵀ, Sᵀ, dPᵀ)
//   mma_pn   acc(16 × Dh) += P(16 × N, accumulators → bf16 A fragments) · B(N × Dh, smem rows)   (P·V, dS·K, Pᵀ·dO, dSᵀ·Q)
// (the m16n8k16 accumulator layout of a 16 × 16 slice is the A-fragment layout, so P never leaves registers).
// Tiles stream in with cp.async, double-buffered: the next block's tiles load while this one computes.
//   forward   grid (T/64 query blocks, Hq, B), last block first; per 64-key block: S, mask, online softmax
//             (log2 units, exp2), O += P·V; O staged through the warp's own Q rows for 16-byte stores
//   Δ         one warp per (b, t, h): Δ = Σ dO·O in fp32
//   dK, dV    grid (T/64 key blocks, Hkv, B): for each query head of the group in order, each query block of
//             BQ rows in order: Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ − lse), dPᵀ = V·dOᵀ, dSᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q
//   dQ        grid (T/64 query blocks, Hq, B): per key block: S, P, dP = dO·Vᵀ, dS, dQ += dS·K
#include <cuda_bf16.h>

#include <cmath>
#include <mutex>
#include <vector>

#include "../cuda/mma.cuh"
#include "../cuda/runtime.cuh"
#include "flash_attention.h"

namespace calib::flash {
namespace {

using cu::cp_async16;
using cu::cp_async_commit;
using cu::cp_async_wait;
using cu::ldsm_x4;
using cu::ldsm_x4_t;
using cu::mma_bf16;
using cu::smem_u32;
using cu::st_shared16;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kRows = 16 * kWarps;  // rows of a CTA's own tile (queries: forward, dQ; keys: dK/dV)
constexpr int kKeys = 64;           // keys per block (forward, dQ)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Params {
  const __nv_bfloat16 *q, *k, *v, *o, *dout;
  __nv_bfloat16 *out, *dq, *dk, *dv;
  float* lse;          // [B, Hq, T]
  float* delta;        // [B, Hq, T]
  int T, Hq, Hkv;
  float scale, cap;    // cap 0: none
  int window;          // 0: none
};

template <int DH>
__host__ __device__ constexpr int pitch() { return DH + 8; }
template <int DH>
__host__ __device__ constexpr int tile_bytes(int rows) { return rows * pitch<DH>() * 2; }

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src));
}

// ROWS × DH bf16 rows r0.. of one head (base: its row 0; row_stride elements between tokens) → smem
// [ROWS][DH + 8]; rows at or past T are zero (never garbage: 0·NaN would poison the products).
template <int ROWS, int DH>
__device__ __forceinline__ void load_tile(uint32_t dst, const __nv_bfloat16* base, int64_t row_stride, int r0, int T) {
  constexpr int kChunks = DH / 8;  // 16-byte chunks per row
#pragma unroll
  for (int c = threadIdx.x; c < ROWS * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const uint32_t s = dst + (r * pitch<DH>() + col) * 2;
    if (r0 + r < T) cp_async16(s, base + static_cast<int64_t>(r0 + r) * row_stride + col);
    else st_shared16(s, 0u, 0u, 0u, 0u);
  }
}

// acc[16 × 8·NT] += A[16 × KD] · B[8·NT × KD]ᵀ; sA, sB: the first row of each (pitch KD + 8 elements).
template <int NT, int KD>
__device__ __forceinline__ void mma_nt(float (&acc)[NT][4], uint32_t sA, uint32_t sB, int lane) {
  constexpr int P = pitch<KD>();
#pragma unroll
  for (int kk = 0; kk < KD; kk += 16) {
    uint32_t a[4];
    ldsm_x4(a, sA + ((lane & 15) * P + kk + (lane >> 4) * 8) * 2);
#pragma unroll
    for (int n2 = 0; n2 < NT / 2; ++n2) {
      uint32_t b[4];
      const int n = n2 * 16 + (lane & 7) + (lane >> 4) * 8, k = kk + ((lane >> 3) & 1) * 8;
      ldsm_x4(b, sB + (n * P + k) * 2);
      mma_bf16(acc[2 * n2], a, b[0], b[1]);
      mma_bf16(acc[2 * n2 + 1], a, b[2], b[3]);
    }
  }
}

// acc[16 × DH] += P[16 × 8·KT] · B[8·KT × DH]; P in accumulator layout (rounded to bf16 here), sB: B's first row.
template <int KT, int DH>
__device__ __forceinline__ void mma_pn(float (&acc)[DH / 8][4], const float (&p)[KT][4], uint32_t sB, int lane) {
  constexpr int P = pitch<DH>();
#pragma unroll
  for (int kt = 0; kt < KT; kt += 2) {
    const uint32_t a[4] = {pack_bf16(p[kt][0], p[kt][1]), pack_bf16(p[kt][2], p[kt][3]),
                           pack_bf16(p[kt + 1][0], p[kt + 1][1]), pack_bf16(p[kt + 1][2], p[kt + 1][3])};
#pragma unroll
    for (int d2 = 0; d2 < DH / 16; ++d2) {
      uint32_t b[4];
      const int k = kt * 8 + (lane & 7) + ((lane >> 3) & 1) * 8, n = d2 * 16 + (lane >> 4) * 8;
      ldsm_x4_t(b, sB + (k * P + n) * 2);
      mma_bf16(acc[2 * d2], a, b[0], b[1]);
      mma_bf16(acc[2 * d2 + 1], a, b[2], b[3]);
    }
  }
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.f;
}

__device__ __forceinline__ bool visible(int i, int j, int T, int window) {
  return j <= i && j < T && (window == 0 || j > i - window);
}
// Whether a block of queries [i0, i0 + ni) × keys [j0, j0 + nj) needs the element mask.
__device__ __forceinline__ bool needs_mask(int i0, int ni, int j0, int nj, int T, int window) {
  return j0 + nj - 1 > i0 || j0 + nj > T || (window > 0 && j0 <= i0 + ni - 1 - window);
}

// tanh with an absolute error of a few fp32 ulps (the approximate tanh.approx is ~2^-11 relative).
__device__ __forceinline__ float tanh_acc(float x) { return 1.f - 2.f / (__expf(2.f * x) + 1.f); }

// The logit of a raw product u in log2 units, and (CAP) the factor dS/dP·… = scale·(1 − tanh²).
template <bool CAP>
__device__ __forceinline__ float logit2(float u, float scale, float cap, float& fac) {
  if constexpr (CAP) {
    const float th = tanh_acc(u * scale / cap);
    fac = scale * (1.f - th * th);
    return cap * th * kLog2e;
  } else {
    fac = scale;
    return u * scale * kLog2e;
  }
}

// The warp's 16 rows of acc (16 × DH fp32, scaled by rs[0] / rs[1] for its rows g, g + 8) as bf16 to global
// rows row0.. (< T), staged through the warp's own 16 smem rows at `stage` (pitch DH + 8).
template <int DH>
__device__ __forceinline__ void store_rows(__nv_bfloat16* base, int64_t row_stride, int row0, int T,
                                           const float (&acc)[DH / 8][4], const float (&rs)[2], uint32_t stage,
                                           int lane) {
  constexpr int P = pitch<DH>();
  const int g = lane >> 2, t = lane & 3;
  __syncwarp();
#pragma unroll
  for (int nt = 0; nt < DH / 8; ++nt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const uint32_t v = pack_bf16(acc[nt][2 * r] * rs[r], acc[nt][2 * r + 1] * rs[r]);
      asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(stage + ((g + 8 * r) * P + nt * 8 + 2 * t) * 2), "r"(v));
    }
  __syncwarp();
  constexpr int kChunks = DH / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunks; c += 32) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    if (row0 + r >= T) continue;
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(stage + (r * P + col) * 2));
    *reinterpret_cast<uint4*>(base + static_cast<int64_t>(row0 + r) * row_stride + col) = v;
  }
}

// A CTA over 64 queries of one (b, query head) (forward, dQ; the last query block first, as it has the most keys):
// this thread's lane coordinates, the row strides, the offsets of the head's row 0 in q-shaped and k-shaped
// tensors, and the key blocks it walks [k_first, k_end) (k_first a multiple of 64).
template <int DH>
struct QueryBlock {
  int lane, w, g, t, q0, h, b, k_first, k_end;
  int64_t qs, ks, qhead, kvhead;
  __device__ explicit QueryBlock(const Params& p)
      : lane(threadIdx.x & 31), w(threadIdx.x >> 5), g(lane >> 2), t(lane & 3),
        q0(static_cast<int>(gridDim.x - 1 - blockIdx.x) * kRows), h(blockIdx.y), b(blockIdx.z),
        k_first(p.window > 0 ? max(0, q0 - p.window + 1) / kKeys * kKeys : 0), k_end(min(p.T, q0 + kRows)),
        qs(static_cast<int64_t>(p.Hq) * DH), ks(static_cast<int64_t>(p.Hkv) * DH),
        qhead((static_cast<int64_t>(b) * p.T * p.Hq + h) * DH),
        kvhead((static_cast<int64_t>(b) * p.T * p.Hkv + h / (p.Hq / p.Hkv)) * DH) {}
};

// ------------------------------------------------------------------------------------------------ forward
// smem: Q [64], then two buffers of (K [64], V [64]).
template <int DH, bool CAP>
__global__ void __launch_bounds__(kThreads) forward_kernel(Params p) {
  extern __shared__ __align__(16) char smem[];
  constexpr int TB = tile_bytes<DH>(kRows);
  const QueryBlock<DH> c(p);
  const int lane = c.lane, w = c.w, g = c.g, t = c.t, q0 = c.q0, h = c.h, b = c.b, T = p.T;
  const int64_t qs = c.qs, ks = c.ks;
  const __nv_bfloat16 *K = p.k + c.kvhead, *V = p.v + c.kvhead;
  const uint32_t sQ = smem_u32(smem);
  auto sK = [&](int buf) { return sQ + TB + buf * 2 * TB; };
  auto sV = [&](int buf) { return sQ + 2 * TB + buf * 2 * TB; };

  const int k_first = c.k_first, k_end = c.k_end;
  load_tile<kRows, DH>(sQ, p.q + c.qhead, qs, q0, T);
  load_tile<kKeys, DH>(sK(0), K, ks, k_first, T);
  load_tile<kKeys, DH>(sV(0), V, ks, k_first, T);
  cp_async_commit();

  float o[DH / 8][4];
  zero(o);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int row[2] = {q0 + w * 16 + g, q0 + w * 16 + g + 8};
  int buf = 0;
  for (int kb = k_first; kb < k_end; kb += kKeys, buf ^= 1) {
    cp_async_wait<0>();
    __syncthreads();  // this block's tiles have landed; every warp is done with the other buffer
    if (kb + kKeys < k_end) {
      load_tile<kKeys, DH>(sK(buf ^ 1), K, ks, kb + kKeys, T);
      load_tile<kKeys, DH>(sV(buf ^ 1), V, ks, kb + kKeys, T);
    }
    cp_async_commit();
    float s[kKeys / 8][4];
    zero(s);
    mma_nt<kKeys / 8, DH>(s, sQ + w * 16 * pitch<DH>() * 2, sK(buf), lane);
    const bool mask = needs_mask(q0 + w * 16, 16, kb, kKeys, T, p.window);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float fac;
        float x = logit2<CAP>(s[nt][e], p.scale, p.cap, fac);
        if (mask && !visible(row[e >> 1], kb + nt * 8 + 2 * t + (e & 1), T, p.window)) x = -INFINITY;
        s[nt][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mn = fmaxf(m[r], mx[r]);
      const float base = mn == -INFINITY ? 0.f : mn;  // a row with nothing visible yet keeps p = 0
      const float alpha = exp2f(m[r] - base);
      m[r] = mn;
      l[r] *= alpha;
#pragma unroll
      for (int nt = 0; nt < DH / 8; ++nt) {
        o[nt][2 * r] *= alpha;
        o[nt][2 * r + 1] *= alpha;
      }
#pragma unroll
      for (int nt = 0; nt < kKeys / 8; ++nt) {
        s[nt][2 * r] = exp2f(s[nt][2 * r] - base);
        s[nt][2 * r + 1] = exp2f(s[nt][2 * r + 1] - base);
        l[r] += s[nt][2 * r] + s[nt][2 * r + 1];
      }
    }
    mma_pn<kKeys / 8, DH>(o, s, sV(buf), lane);
  }
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
    if (t == 0 && row[r] < T)
      p.lse[(static_cast<int64_t>(b) * p.Hq + h) * T + row[r]] = (m[r] + log2f(l[r])) * kLn2;
  }
  store_rows<DH>(p.out + c.qhead, qs, q0 + w * 16, T, o, inv,
                 sQ + w * 16 * pitch<DH>() * 2, lane);
}

// ------------------------------------------------------------------------------------------------ Δ
// One warp per (b, t, h) row of dO and O: Δ = Σ_d dO·O (fp32), written at [b, h, t].
template <int DH>
__global__ void __launch_bounds__(256) delta_kernel(Params p, int64_t rows) {
  const int64_t r = blockIdx.x * int64_t(8) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const __nv_bfloat162* a = reinterpret_cast<const __nv_bfloat162*>(p.dout + r * DH);
  const __nv_bfloat162* c = reinterpret_cast<const __nv_bfloat162*>(p.o + r * DH);
  float s = 0.f;
#pragma unroll
  for (int i = lane; i < DH / 2; i += 32) {
    const float2 x = __bfloat1622float2(a[i]), y = __bfloat1622float2(c[i]);
    s = fmaf(x.x, y.x, fmaf(x.y, y.y, s));
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) {
    const int h = static_cast<int>(r % p.Hq);
    const int64_t bt = r / p.Hq, b = bt / p.T, t = bt % p.T;
    p.delta[(b * p.Hq + h) * p.T + t] = s;
  }
}

// ------------------------------------------------------------------------------------------------ dK, dV
// smem: K [64], V [64] (this CTA's keys), then two buffers of (Q [BQ], dO [BQ], lse [BQ], Δ [BQ]).
template <int DH>
__host__ __device__ constexpr int bq() { return DH <= 64 ? 64 : 32; }  // query rows per step (registers: dK, dV, Sᵀ, dPᵀ live at once)

template <int DH>
__host__ __device__ constexpr int dkdv_buf_bytes() { return 2 * tile_bytes<DH>(bq<DH>()) + 2 * bq<DH>() * 4; }

template <int DH, bool CAP>
__global__ void __launch_bounds__(kThreads) dkdv_kernel(Params p) {
  extern __shared__ __align__(16) char smem[];
  constexpr int BQ = bq<DH>(), KT = BQ / 8, TK = tile_bytes<DH>(kRows), TQ = tile_bytes<DH>(BQ);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int k0 = blockIdx.x * kRows, kvh = blockIdx.y, b = blockIdx.z, T = p.T, rep = p.Hq / p.Hkv;
  const int64_t qs = static_cast<int64_t>(p.Hq) * DH, ks = static_cast<int64_t>(p.Hkv) * DH;
  const uint32_t sK = smem_u32(smem), sV = sK + TK;
  const uint32_t sBuf = sV + TK;
  auto sQ = [&](int buf) { return sBuf + buf * dkdv_buf_bytes<DH>(); };
  auto sdO = [&](int buf) { return sQ(buf) + TQ; };
  auto sL = [&](int buf) { return sQ(buf) + 2 * TQ; };        // lse (natural log) of the block's queries
  auto sD = [&](int buf) { return sQ(buf) + 2 * TQ + BQ * 4; };  // Δ of the block's queries
  // the same lse / Δ rows through generic pointers, for plain loads
  auto lse_of = [&](int buf) { return reinterpret_cast<const float*>(smem + 2 * TK + buf * dkdv_buf_bytes<DH>() + 2 * TQ); };

  // Query blocks that see these keys: from k0 (causal) to the last query within the window of key k0 + 63.
  const int q_first = k0 / BQ * BQ;
  const int q_end = p.window > 0 ? min(T, k0 + kRows - 1 + p.window) : T;
  const int nq = q_end > q_first ? (q_end - q_first + BQ - 1) / BQ : 0;
  const int steps = rep * nq;
  // step s: query head kvh·rep + s / nq, query block q_first + (s % nq)·BQ
  auto issue = [&](int s, int buf) {
    const int h = kvh * rep + s / nq, q0 = q_first + (s % nq) * BQ;
    const int64_t head = (static_cast<int64_t>(b) * T * p.Hq + h) * DH;
    load_tile<BQ, DH>(sQ(buf), p.q + head, qs, q0, T);
    load_tile<BQ, DH>(sdO(buf), p.dout + head, qs, q0, T);
    const int64_t stat = (static_cast<int64_t>(b) * p.Hq + h) * T;
    for (int i = threadIdx.x; i < BQ; i += kThreads) {
      if (q0 + i < T) {
        cp_async4(sL(buf) + i * 4, p.lse + stat + q0 + i);
        cp_async4(sD(buf) + i * 4, p.delta + stat + q0 + i);
      } else {  // queries past T: p = exp(s − ∞) = 0
        asm volatile("st.shared.f32 [%0], %1;\n" ::"r"(sL(buf) + i * 4), "f"(INFINITY));
        asm volatile("st.shared.f32 [%0], %1;\n" ::"r"(sD(buf) + i * 4), "f"(0.f));
      }
    }
  };

  const int64_t kvhead = (static_cast<int64_t>(b) * T * p.Hkv + kvh) * DH;
  load_tile<kRows, DH>(sK, p.k + kvhead, ks, k0, T);
  load_tile<kRows, DH>(sV, p.v + kvhead, ks, k0, T);
  if (steps > 0) issue(0, 0);
  cp_async_commit();

  float dk[DH / 8][4], dv[DH / 8][4];
  zero(dk);
  zero(dv);
  const int key[2] = {k0 + w * 16 + g, k0 + w * 16 + g + 8};
  const uint32_t sKw = sK + w * 16 * pitch<DH>() * 2, sVw = sV + w * 16 * pitch<DH>() * 2;
  for (int s = 0; s < steps; ++s) {
    const int buf = s & 1, q0 = q_first + (s % nq) * BQ;
    cp_async_wait<0>();
    __syncthreads();
    if (s + 1 < steps) issue(s + 1, buf ^ 1);
    cp_async_commit();
    const float* L = lse_of(buf);
    const float* D = L + BQ;
    float st[KT][4], dp[KT][4];
    zero(st);
    zero(dp);
    mma_nt<KT, DH>(st, sKw, sQ(buf), lane);   // Sᵀ: keys × queries
    mma_nt<KT, DH>(dp, sVw, sdO(buf), lane);  // dPᵀ
    const bool mask = needs_mask(q0, BQ, k0 + w * 16, 16, T, p.window);
#pragma unroll
    for (int nt = 0; nt < KT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qi = nt * 8 + 2 * t + (e & 1);
        float f;
        const float x = logit2<CAP>(st[nt][e], p.scale, p.cap, f);
        float pr = exp2f(x - L[qi] * kLog2e);
        if (mask && !visible(q0 + qi, key[e >> 1], T, p.window)) pr = 0.f;
        st[nt][e] = pr;
        dp[nt][e] = pr * (dp[nt][e] - D[qi]) * f;  // dSᵀ
      }
    mma_pn<KT, DH>(dv, st, sdO(buf), lane);
    mma_pn<KT, DH>(dk, dp, sQ(buf), lane);
  }
  const float one[2] = {1.f, 1.f};
  // each warp reads only its own 16 rows of sK / sV: stage through them
  store_rows<DH>(p.dk + kvhead, ks, k0 + w * 16, T, dk, one, sKw, lane);
  store_rows<DH>(p.dv + kvhead, ks, k0 + w * 16, T, dv, one, sVw, lane);
}

// ------------------------------------------------------------------------------------------------ dQ
// smem: Q [64], dO [64], then two buffers of (K [64], V [64]).
template <int DH, bool CAP>
__global__ void __launch_bounds__(kThreads) dq_kernel(Params p) {
  extern __shared__ __align__(16) char smem[];
  constexpr int TB = tile_bytes<DH>(kRows);
  const QueryBlock<DH> c(p);
  const int lane = c.lane, w = c.w, g = c.g, t = c.t, q0 = c.q0, h = c.h, b = c.b, T = p.T;
  const int64_t qs = c.qs, ks = c.ks, qhead = c.qhead;
  const __nv_bfloat16 *K = p.k + c.kvhead, *V = p.v + c.kvhead;
  const uint32_t sQ = smem_u32(smem), sdO = sQ + TB;
  auto sK = [&](int buf) { return sQ + 2 * TB + buf * 2 * TB; };
  auto sV = [&](int buf) { return sQ + 3 * TB + buf * 2 * TB; };

  const int k_first = c.k_first, k_end = c.k_end;
  load_tile<kRows, DH>(sQ, p.q + qhead, qs, q0, T);
  load_tile<kRows, DH>(sdO, p.dout + qhead, qs, q0, T);
  load_tile<kKeys, DH>(sK(0), K, ks, k_first, T);
  load_tile<kKeys, DH>(sV(0), V, ks, k_first, T);
  cp_async_commit();

  const int row[2] = {q0 + w * 16 + g, q0 + w * 16 + g + 8};
  float lse2[2], dl[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {  // rows past T: zero Q and dO rows give finite values, never stored
    const int64_t i = (static_cast<int64_t>(b) * p.Hq + h) * T + row[r];
    lse2[r] = row[r] < T ? p.lse[i] * kLog2e : 0.f;
    dl[r] = row[r] < T ? p.delta[i] : 0.f;
  }
  float dq[DH / 8][4];
  zero(dq);
  const uint32_t sQw = sQ + w * 16 * pitch<DH>() * 2, sdOw = sdO + w * 16 * pitch<DH>() * 2;
  int buf = 0;
  for (int kb = k_first; kb < k_end; kb += kKeys, buf ^= 1) {
    cp_async_wait<0>();
    __syncthreads();
    if (kb + kKeys < k_end) {
      load_tile<kKeys, DH>(sK(buf ^ 1), K, ks, kb + kKeys, T);
      load_tile<kKeys, DH>(sV(buf ^ 1), V, ks, kb + kKeys, T);
    }
    cp_async_commit();
    float s[kKeys / 8][4], dp[kKeys / 8][4];
    zero(s);
    zero(dp);
    mma_nt<kKeys / 8, DH>(s, sQw, sK(buf), lane);
    mma_nt<kKeys / 8, DH>(dp, sdOw, sV(buf), lane);
    const bool mask = needs_mask(q0 + w * 16, 16, kb, kKeys, T, p.window);
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float f;
        const float x = logit2<CAP>(s[nt][e], p.scale, p.cap, f);
        float pr = exp2f(x - lse2[e >> 1]);
        if (mask && !visible(row[e >> 1], kb + nt * 8 + 2 * t + (e & 1), T, p.window)) pr = 0.f;
        s[nt][e] = pr * (dp[nt][e] - dl[e >> 1]) * f;  // dS
      }
    mma_pn<kKeys / 8, DH>(dq, s, sK(buf), lane);
  }
  const float one[2] = {1.f, 1.f};
  store_rows<DH>(p.dq + qhead, qs, q0 + w * 16, T, dq, one, sQw, lane);
}

// ------------------------------------------------------------------------------------------------ launch
template <class Kernel>
calib_status launch(Kernel kernel, dim3 grid, int threads, int smem, cudaStream_t stream, const Params& p,
                    const char* what, char* err) {
  CU_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<grid, threads, smem, stream>>>(p);
  LAUNCHED(what);
  return CALIB_OK;
}

Params params_of(const calib_attention_args& a) {
  Params p{};
  p.q = static_cast<const __nv_bfloat16*>(a.q);
  p.k = static_cast<const __nv_bfloat16*>(a.k);
  p.v = static_cast<const __nv_bfloat16*>(a.v);
  p.o = static_cast<const __nv_bfloat16*>(a.o);
  p.out = static_cast<__nv_bfloat16*>(a.o);
  p.dout = static_cast<const __nv_bfloat16*>(a.grad_o);
  p.dq = static_cast<__nv_bfloat16*>(a.grad_q);
  p.dk = static_cast<__nv_bfloat16*>(a.grad_k);
  p.dv = static_cast<__nv_bfloat16*>(a.grad_v);
  p.lse = a.lse;
  p.T = static_cast<int>(a.t);
  p.Hq = static_cast<int>(a.hq);
  p.Hkv = static_cast<int>(a.hkv);
  p.scale = a.scale;
  p.cap = a.softcap;
  p.window = static_cast<int>(a.window);
  return p;
}

dim3 grid_of(const calib_attention_args& a, int64_t heads) {
  return dim3(static_cast<unsigned>((a.t + kRows - 1) / kRows), static_cast<unsigned>(heads),
              static_cast<unsigned>(a.b));
}

template <int DH, bool CAP>
calib_status forward_t(const calib_attention_args& a, char* err) {
  const Params p = params_of(a);
  const int smem = 5 * tile_bytes<DH>(kRows);
  return launch(forward_kernel<DH, CAP>, grid_of(a, a.hq), kThreads, smem, static_cast<cudaStream_t>(a.stream), p,
                "flash attention forward kernel", err);
}

template <int DH, bool CAP>
calib_status backward_t(const calib_attention_args& a, float* delta, char* err) {
  Params p = params_of(a);
  p.delta = delta;
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  const int64_t rows = a.b * a.t * a.hq;
  delta_kernel<DH><<<static_cast<unsigned>((rows + 7) / 8), 256, 0, stream>>>(p, rows);
  LAUNCHED("flash attention Δ kernel");
  const int smem_kv = 2 * tile_bytes<DH>(kRows) + 2 * dkdv_buf_bytes<DH>();
  if (calib_status st = launch(dkdv_kernel<DH, CAP>, grid_of(a, a.hkv), kThreads, smem_kv, stream, p,
                               "flash attention dK/dV kernel", err))
    return st;
  return launch(dq_kernel<DH, CAP>, grid_of(a, a.hq), kThreads, 6 * tile_bytes<DH>(kRows), stream, p,
                "flash attention dQ kernel", err);
}

calib_status forward_cuda(const calib_attention_args& a, char* err) {
  if (a.head_dim != 64 && a.head_dim != 128) return forward_rows_cuda(a, err);
  const bool cap = a.softcap > 0;
  if (a.head_dim == 64) return cap ? forward_t<64, true>(a, err) : forward_t<64, false>(a, err);
  return cap ? forward_t<128, true>(a, err) : forward_t<128, false>(a, err);
}

calib_status backward_cuda(const calib_attention_args& a, float* delta, char* err) {
  if (a.head_dim != 64 && a.head_dim != 128) return backward_rows_cuda(a, delta, err);
  const bool cap = a.softcap > 0;
  if (a.head_dim == 64) return cap ? backward_t<64, true>(a, delta, err) : backward_t<64, false>(a, delta, err);
  return cap ? backward_t<128, true>(a, delta, err) : backward_t<128, false>(a, delta, err);
}

// A CUDA call on host arrays: device copies of every buffer, the kernels, the outputs copied back.
struct DeviceCopy {
  std::vector<void*> owned;
  ~DeviceCopy() {
    for (void* p : owned) cudaFree(p);
  }
  calib_status alloc(void** out, size_t bytes, char* err) {
    CU_TRY(cudaMalloc(out, bytes));
    owned.push_back(*out);
    return CALIB_OK;
  }
  calib_status upload(void** out, const void* src, size_t bytes, char* err) {
    if (calib_status st = alloc(out, bytes, err)) return st;
    CU_TRY(cudaMemcpy(*out, src, bytes, cudaMemcpyHostToDevice));
    return CALIB_OK;
  }
};

}  // namespace

calib_status run_cuda(const calib_attention_args& a, bool backward, char* err) {
  cu::DeviceInfo dev;
  if (calib_status st = cu::device_info(dev, err)) return st;
  std::lock_guard<std::mutex> lock(cu::engine_mutex());
  calib_attention_args d = a;
  DeviceCopy copies;
  const size_t nq = static_cast<size_t>(a.b * a.t * a.hq * a.head_dim) * 2;
  const size_t nkv = static_cast<size_t>(a.b * a.t * a.hkv * a.head_dim) * 2;
  const size_t nl = static_cast<size_t>(a.b * a.hq * a.t) * 4;
  if (a.memory == CALIB_MEM_HOST) {
    void *q, *k, *v, *o, *lse;
    if (calib_status st = copies.upload(&q, a.q, nq, err)) return st;
    if (calib_status st = copies.upload(&k, a.k, nkv, err)) return st;
    if (calib_status st = copies.upload(&v, a.v, nkv, err)) return st;
    if (calib_status st = backward ? copies.upload(&o, a.o, nq, err) : copies.alloc(&o, nq, err)) return st;
    if (calib_status st = backward ? copies.upload(&lse, a.lse, nl, err) : copies.alloc(&lse, nl, err)) return st;
    d.q = q, d.k = k, d.v = v, d.o = o, d.lse = static_cast<float*>(lse);
    if (backward) {
      void *dout, *dq, *dk, *dv;
      if (calib_status st = copies.upload(&dout, a.grad_o, nq, err)) return st;
      if (calib_status st = copies.alloc(&dq, nq, err)) return st;
      if (calib_status st = copies.alloc(&dk, nkv, err)) return st;
      if (calib_status st = copies.alloc(&dv, nkv, err)) return st;
      d.grad_o = dout, d.grad_q = dq, d.grad_k = dk, d.grad_v = dv;
    }
    d.memory = CALIB_MEM_DEVICE;
    d.stream = nullptr;
    d.workspace = nullptr;
  }
  cudaStream_t stream = static_cast<cudaStream_t>(d.stream);
  if (!backward) {
    if (calib_status st = forward_cuda(d, err)) return st;
  } else {
    float* delta = static_cast<float*>(d.workspace);
    if (!delta) {
      char* arena = nullptr;
      if (calib_status st = cu::scratch(static_cast<size_t>(delta_bytes(a)), &arena, err)) return st;
      delta = reinterpret_cast<float*>(arena);
    }
    if (calib_status st = backward_cuda(d, delta, err)) return st;
    if (!d.workspace) CU_TRY(cudaStreamSynchronize(stream));  // the arena is reused by the next call
  }
  if (a.memory == CALIB_MEM_HOST) {
    if (!backward) {
      CU_TRY(cudaMemcpy(a.o, d.o, nq, cudaMemcpyDeviceToHost));
      CU_TRY(cudaMemcpy(a.lse, d.lse, nl, cudaMemcpyDeviceToHost));
    } else {
      CU_TRY(cudaMemcpy(a.grad_q, d.grad_q, nq, cudaMemcpyDeviceToHost));
      CU_TRY(cudaMemcpy(a.grad_k, d.grad_k, nkv, cudaMemcpyDeviceToHost));
      CU_TRY(cudaMemcpy(a.grad_v, d.grad_v, nkv, cudaMemcpyDeviceToHost));
    }
  }
  return CALIB_OK;
}

}  // namespace calib::flash
