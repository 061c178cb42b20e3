// Kernels of the CUDA loss's fused engine (linear_ce_fused.cu): tensor-core tiles of E·Cᵀ whose
// logits live only in registers — the logsumexp pass, the gradient tiles, the gradient GEMMs of
// both operands in one launch, the chunk's logits → G, and the rank-1 smoothing terms. mma.sync
// (three bf16 planes for fp32 inputs) or wgmma (bf16 on Hopper). Deterministic.
#pragma once
#include <type_traits>

#include "../cuda/wgmma.cuh"
#include "linear_ce_common.cuh"

namespace calib::lce {

// Where accumulator (mt, nt, e) of a thread lives in the CTA's 128 × BN tile, for the
// mma.sync layout (8 warps as 2 × 4, warp tile 64 × NT·8) and the wgmma one (warp q owns
// rows 16q..16q+15 and all 256 columns).
template <int PLANES, bool WG>
struct Frag {
  static constexpr int MT = WG ? 1 : 4;
  static constexpr int NT = WG ? 32 : TileCfg<PLANES>::NT;
  static constexpr int WN = WG ? 1 : 4;  // warps side by side along N
  static constexpr int BN = WG ? kWgBN : TileCfg<PLANES>::BN;
  static constexpr int BK = WG ? kWgBK : kBK;
  static constexpr int SMEM = WG ? kWgSmemBytes : TileCfg<PLANES>::SMEM_BYTES;
  __device__ static int row(int warp, int lane, int mt, int h) {
    return WG ? warp * 16 + h * 8 + (lane >> 2) : (warp >> 2) * 64 + mt * 16 + h * 8 + (lane >> 2);
  }
  __device__ static int col(int warp, int lane, int nt) {  // of element e = 0; e = 1 is the next column
    return WG ? nt * 8 + 2 * (lane & 3) : (warp & 3) * (NT * 8) + nt * 8 + 2 * (lane & 3);
  }
  __device__ static int wn(int warp) { return WG ? 0 : warp & 3; }
};

// Runs the GEMM main loop of either kind over one CTA's steps (K-contiguous or
// MN-contiguous A/B as AT/BT), with tile coordinates from next() and tile_done() callbacks.
template <int SRCA, int SRCB, bool AT, bool BT, bool WG, int TILE_B, class Next, class Done, class Acc>
__device__ __forceinline__ void gemm_steps(char* smem, int nsteps, int per_tile, const Operand& oa, const Operand& ob,
                                           Next&& next, Done&& done, Acc& acc) {
  if constexpr (WG) {
    WgLoader<AT, kBM> la;
    WgLoader<BT, TILE_B> lb;
    la.op = oa;
    lb.op = ob;
    wg_pipeline<AT, BT>(smem, nsteps, per_tile, la, lb, next, done, acc);
  } else {
    constexpr int PLANES = planes_of<SRCA>();
    TileLoader<SRCA, AT, kBM> la;
    TileLoader<SRCB, BT, TILE_B> lb;
    la.op = oa;
    lb.op = ob;
    pipeline<PLANES, AT, BT>(smem, nsteps, per_tile, la, lb, next, done, acc);
  }
}

// ---------------------------------------------------------------------------------------
// Pass 1: logits tiles → per-(split, row) online logsumexp partials, the target logit,
// Σ_v s (softcap + smoothing only), and (chunked mode) the logits themselves.
// Grid: (row tiles, vocabulary splits); a CTA walks its split's vocabulary tiles in order
// with one continuous copy pipeline.
struct LseParams {
  const void* e;
  const void* c;
  const float* bias;
  const int32_t* targets;
  const int32_t* rows;  // valid rows (ascending); this launch covers rows[row0 .. row0+nrows)
  int64_t row0, nrows, D, V;
  int ntiles, splits;
  float inv_t, cap;
  int vec_e, vec_c;
  float* part_m;
  float* part_l;
  double* part_s;
  int64_t ldp;
  float* tgt;  // per launch row
  float* S;    // optional: final logits, [nrows][ldS]
  int64_t ldS;
};

template <int SRC, bool DENSE, bool WG>
__global__ void __launch_bounds__(kThreads, 1) lse_kernel(const LseParams p) {
  constexpr int PLANES = planes_of<SRC>();
  using FM = Frag<PLANES, WG>;
  constexpr int MT = FM::MT, NT = FM::NT, BN = FM::BN, BK = FM::BK, RR = 2 * MT;
  extern __shared__ __align__(128) char smem[];
  const int64_t r0 = int64_t(blockIdx.x) * kBM;
  if (r0 >= p.nrows) return;
  const int split = blockIdx.y;
  const int tb = static_cast<int>(int64_t(p.ntiles) * split / p.splits);
  const int te = static_cast<int>(int64_t(p.ntiles) * (split + 1) / p.splits);
  const int ksteps = static_cast<int>((p.D + BK - 1) / BK);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t4 = lane & 3;
  const int32_t* rows = p.rows + p.row0;

  Operand oa, ob;
  oa.base = p.e, oa.ld = p.D, oa.map = rows, oa.rows = p.nrows, oa.cont = p.D, oa.vec = p.vec_e;
  ob.base = p.c, ob.ld = p.D, ob.map = nullptr, ob.rows = p.V, ob.cont = p.D, ob.vec = p.vec_c;

  int y[RR];
  float m[RR], l[RR];
  double ss[DENSE ? RR : 1];
#pragma unroll
  for (int rr = 0; rr < RR; ++rr) {
    const int64_t lr = r0 + FM::row(warp, lane, rr >> 1, rr & 1);
    y[rr] = lr < p.nrows ? __ldg(p.targets + __ldg(rows + lr)) : -1;
    m[rr] = neg_inf();
    l[rr] = 0.f;
    if constexpr (DENSE) ss[rr] = 0.0;
  }

  float acc[MT][NT][4];
  int tile = tb;
  auto next = [&](int s, int64_t& af, int64_t& ak, int64_t& bf, int64_t& bk) {
    const int tl = s / ksteps, ks = s - tl * ksteps;
    af = r0;
    ak = int64_t(ks) * BK;
    bf = int64_t(tb + tl) * BN;
    bk = ak;
  };
  // Per tile: the accumulators become the final logits s in place (−inf past V), then
  // the online logsumexp of each of the thread's rows takes them in.
  auto done = [&](float(&a)[MT][NT][4]) {
    const int64_t v0 = int64_t(tile) * BN;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t col = v0 + FM::col(warp, lane, nt) + e;
        const float b = (p.bias && col < p.V) ? __ldg(p.bias + col) : 0.f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            float s = neg_inf();
            if (col < p.V) {
              s = transform(a[mt][nt][2 * h + e], b, p.inv_t, p.cap);
              if constexpr (DENSE) ss[mt * 2 + h] += s;
              if (col == y[mt * 2 + h]) p.tgt[r0 + FM::row(warp, lane, mt, h)] = s;
            }
            a[mt][nt][2 * h + e] = s;
          }
      }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int rr = mt * 2 + h;
        const int64_t lr = r0 + FM::row(warp, lane, mt, h);
        float mx = neg_inf();
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(a[mt][nt][2 * h], a[mt][nt][2 * h + 1]));
        if (p.S && lr < p.nrows) {
          float* srow = p.S + lr * p.ldS;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const int64_t col = v0 + FM::col(warp, lane, nt);
            if (col + 1 < p.V) *reinterpret_cast<float2*>(srow + col) = make_float2(a[mt][nt][2 * h], a[mt][nt][2 * h + 1]);
            else if (col < p.V) srow[col] = a[mt][nt][2 * h];
          }
        }
        const float mn = fmaxf(m[rr], mx);
        if (mn != neg_inf()) {
          float sum = m[rr] == neg_inf() ? 0.f : l[rr] * __expf(m[rr] - mn);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) sum += __expf(a[mt][nt][2 * h] - mn) + __expf(a[mt][nt][2 * h + 1] - mn);
          l[rr] = sum;
          m[rr] = mn;
        }
      }
    }
    ++tile;
  };
  gemm_steps<SRC, SRC, false, false, WG, BN>(smem, (te - tb) * ksteps, ksteps, oa, ob, next, done, acc);

  // Reduce over the quad (t4), then over the warps along N, in a fixed order.
#pragma unroll
  for (int rr = 0; rr < RR; ++rr) {
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[rr], off);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[rr], off);
      lse_combine(m[rr], l[rr], m2, l2);
      if constexpr (DENSE) ss[rr] += __shfl_xor_sync(0xffffffffu, ss[rr], off);
    }
  }
  float* rm = reinterpret_cast<float*>(smem);
  float* rl = rm + FM::WN * kBM;
  double* rs = reinterpret_cast<double*>(rl + FM::WN * kBM);
  if (t4 == 0) {
    const int wn = FM::wn(warp);
#pragma unroll
    for (int rr = 0; rr < RR; ++rr) {
      const int lrow = FM::row(warp, lane, rr >> 1, rr & 1);
      rm[wn * kBM + lrow] = m[rr];
      rl[wn * kBM + lrow] = l[rr];
      if constexpr (DENSE) rs[wn * kBM + lrow] = ss[rr];
    }
  }
  __syncthreads();
  if (threadIdx.x < kBM) {
    const int64_t lr = r0 + threadIdx.x;
    if (lr < p.nrows) {
      float M = rm[threadIdx.x], L = rl[threadIdx.x];
      double SS = DENSE ? rs[threadIdx.x] : 0.0;
#pragma unroll
      for (int w = 1; w < FM::WN; ++w) {
        lse_combine(M, L, rm[w * kBM + threadIdx.x], rl[w * kBM + threadIdx.x]);
        if constexpr (DENSE) SS += rs[w * kBM + threadIdx.x];
      }
      p.part_m[split * p.ldp + lr] = M;
      p.part_l[split * p.ldp + lr] = L;
      if constexpr (DENSE) p.part_s[split * p.ldp + lr] = SS;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Pass 2 (streamed): one Rb×Wb block of the logits gradient,
//   G = w·(softmax(s) − q_dense)·κ − w·(1−ε)·κ·[v = y]
// (κ = 1 − tanh², the softcap derivative; q_dense = ε/V with a softcap, else 0: the ε/V
// term is then a rank-1 correction), stored as bf16 (bf16 inputs) or as fp32 (fp32 inputs). With skipping, a tile whose unscaled entries are all below the
// threshold gets flag 0 and the gradient GEMMs leave it out.
struct GtileParams {
  const void* e;
  const void* c;
  const float* bias;
  const int32_t* targets;
  const int32_t* rows;
  int64_t r0, nrows, v0, ncols, D, V;
  float inv_t, cap, q_target, q_dense, skip_thr;
  int vec_e, vec_c;
  const float* lse_valid;
  const float* w;
  void* G;
  int64_t ldG;
  uint8_t* flags;
  int ldf;
  unsigned long long* skipped;
};

template <int SRC, bool WG>
__global__ void __launch_bounds__(kThreads, 1) gtile_kernel(const GtileParams p) {
  constexpr int PLANES = planes_of<SRC>();
  using FM = Frag<PLANES, WG>;
  constexpr int MT = FM::MT, NT = FM::NT, BN = FM::BN, BK = FM::BK;
  extern __shared__ __align__(128) char smem[];
  const int64_t lr0 = int64_t(blockIdx.y) * kBM, lc0 = int64_t(blockIdx.x) * BN;
  const int ksteps = static_cast<int>((p.D + BK - 1) / BK);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t* rows = p.rows + p.r0;

  Operand oa, ob;
  oa.base = p.e, oa.ld = p.D, oa.map = rows, oa.rows = p.nrows, oa.cont = p.D, oa.vec = p.vec_e;
  ob.base = p.c, ob.ld = p.D, ob.map = nullptr, ob.rows = p.V, ob.cont = p.D, ob.vec = p.vec_c;
  float acc[MT][NT][4];
  auto next = [&](int s, int64_t& af, int64_t& ak, int64_t& bf, int64_t& bk) {
    af = lr0;
    ak = int64_t(s) * BK;
    bf = p.v0 + lc0;
    bk = ak;
  };
  auto none = [](float(&)[MT][NT][4]) {};
  gemm_steps<SRC, SRC, false, false, WG, BN>(smem, ksteps, 1 << 30, oa, ob, next, none, acc);

  using Unit = typename std::conditional<PLANES == 1, uint16_t, uint32_t>::type;
  constexpr int SP = BN + 8;  // staging pitch (units)
  Unit* stage = reinterpret_cast<Unit*>(smem);
  int any = 0;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int srow = FM::row(warp, lane, mt, h);
      const int64_t lr = lr0 + srow;
      const bool row_ok = lr < p.nrows;
      float lse = 0.f, w = 0.f;
      int y = -1;
      if (row_ok) {
        lse = __ldg(p.lse_valid + p.r0 + lr);
        w = __ldg(p.w + p.r0 + lr);
        y = __ldg(p.targets + __ldg(rows + lr));
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        Unit out[2];
        const int scol = FM::col(warp, lane, nt);
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t lc = lc0 + scol + e;
          float gv = 0.f;
          if (row_ok && lc < p.ncols) {
            const float b = p.bias ? __ldg(p.bias + p.v0 + lc) : 0.f;
            const float s = transform(acc[mt][nt][2 * h + e], b, p.inv_t, p.cap);
            gv = logit_grad(s, lse, p.v0 + lc == y, p.q_dense, p.q_target, p.cap);
            any |= fabsf(gv) >= p.skip_thr;
            gv *= w;
          }
          if constexpr (PLANES == 1) out[e] = bf16_bits(gv);
          else out[e] = __float_as_uint(gv);
        }
        Unit* dst = stage + srow * SP + scol;
        if constexpr (PLANES == 1) *reinterpret_cast<uint32_t*>(dst) = pack2(out[0], out[1]);
        else *reinterpret_cast<uint2*>(dst) = make_uint2(out[0], out[1]);
      }
    }
  }
  any = __syncthreads_or(any);
  // Copy the staged tile out in 16-byte pieces (the G block holds whole tiles).
  constexpr int UNITS16 = 16 / sizeof(Unit);
  constexpr int PER_ROW = BN / UNITS16;
  for (int c = threadIdx.x; c < kBM * PER_ROW; c += kThreads) {
    const int r = c / PER_ROW, j = (c % PER_ROW) * UNITS16;
    const uint4 v = *reinterpret_cast<const uint4*>(stage + r * SP + j);
    *reinterpret_cast<uint4*>(static_cast<Unit*>(p.G) + (lr0 + r) * p.ldG + lc0 + j) = v;
  }
  if (threadIdx.x == 0) {
    const int keep = p.skip_thr > 0.f ? (any != 0) : 1;
    p.flags[blockIdx.y * p.ldf + blockIdx.x] = static_cast<uint8_t>(keep);
    if (!keep) atomicAdd(p.skipped, 1ull);
  }
}

// ---------------------------------------------------------------------------------------
// Pass 3: the two gradient GEMMs of one block in a single launch (CTAs [0, nn_tiles) do NN,
// the rest TN):
//   NN  dE[rows[r0+m]] (+)= Σ_k G[m][k] · C[v0+k]      M = block rows, K = block columns
//   TN  dC[v0+m]       (+)= Σ_k G[k][m] · E[rows[r0+k]] M = block columns, K = block rows
// "init" passes store instead of accumulating and add the rank-1 smoothing terms
// (−w·ε/V·c̄ for dE, −ε/V·Σ_i w_i E_i for dC). Flags (streamed mode) skip whole tiles.
struct GradParams {
  const void* G;
  int64_t ldG, nrows, ncols;
  const uint8_t* flags;  // [row tile][column tile of BN], or null
  int ldf;
  const void* e;
  const void* c;
  const int32_t* rows;
  int64_t r0, v0, D;
  int vec_e, vec_c, vec_g;
  float* dE;
  float* dC;
  int init_e, init_c;
  const float* w;
  float eta;
  const float* cbar_f;  // rank-1 (init passes), or null
  const float* rvec_f;  // −ε/V · Σ_i w_i E_i, or null
  int nn_tiles, dtiles;
};

// Indices i < n with flags[base + i·stride] != 0, in order, into list; returns the count.
__device__ __forceinline__ int active_list(const uint8_t* flags, int64_t base, int64_t stride, int n, int16_t* list) {
  __shared__ int wcount[kThreads / 32];
  const int i = threadIdx.x, warp = i >> 5, lane = i & 31;
  const bool on = i < n && flags[base + i * stride] != 0;
  const unsigned bal = __ballot_sync(0xffffffffu, on);
  if (lane == 0) wcount[warp] = __popc(bal);
  __syncthreads();
  int off = 0, total = 0;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) {
    off += w < warp ? wcount[w] : 0;
    total += wcount[w];
  }
  if (on) list[off + __popc(bal & ((1u << lane) - 1u))] = static_cast<int16_t>(i);
  __syncthreads();
  return total;
}

template <int PLANES, bool TN, bool WG>
__device__ __forceinline__ void grad_tile(const GradParams& p, int tile, char* smem) {
  using FM = Frag<PLANES, WG>;
  constexpr int MT = FM::MT, NT = FM::NT, BN = FM::BN, BK = FM::BK;
  constexpr int SRC = PLANES == 1 ? kSrcBf16 : kSrcF32;
  constexpr int ESZ = PLANES == 1 ? 2 : 4;
  __shared__ int16_t list[256];
  const int mt_i = tile / p.dtiles, nt_i = tile % p.dtiles;
  const int64_t m0 = int64_t(mt_i) * kBM, n0 = int64_t(nt_i) * BN;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t K = TN ? p.nrows : p.ncols;
  const int64_t M = TN ? p.ncols : p.nrows;
  // K is walked in chunks (flag granularity): BN block columns for NN, kBM block rows for TN.
  constexpr int CHUNK = TN ? kBM : BN;
  constexpr int SPC = CHUNK / BK;
  int nsteps;
  if (p.flags) {
    const int nch = static_cast<int>((K + CHUNK - 1) / CHUNK);
    const int nact = TN ? active_list(p.flags, (m0 / BN), p.ldf, nch, list)
                        : active_list(p.flags, int64_t(mt_i) * p.ldf, 1, nch, list);
    nsteps = nact * SPC;
  } else {
    nsteps = static_cast<int>((K + BK - 1) / BK);
  }
  auto kof = [&](int s) -> int64_t {
    if (!p.flags) return int64_t(s) * BK;
    return int64_t(list[s / SPC]) * CHUNK + (s % SPC) * BK;
  };

  Operand oa, ob;  // A: NN G rows [m][k]; TN G as [k][m]. B: [k][n] along D.
  oa.base = p.G, oa.ld = p.ldG, oa.map = nullptr, oa.vec = p.vec_g;
  oa.rows = p.nrows;  // NN: m index; TN: k index — both block rows
  oa.cont = p.ncols;  // NN: k index; TN: m index — both block columns
  if (!TN) {
    ob.base = static_cast<const char*>(p.c) + p.v0 * p.D * ESZ, ob.ld = p.D, ob.map = nullptr;
    ob.rows = p.ncols, ob.cont = p.D, ob.vec = p.vec_c;
  } else {
    ob.base = p.e, ob.ld = p.D, ob.map = p.rows + p.r0;
    ob.rows = p.nrows, ob.cont = p.D, ob.vec = p.vec_e;
  }
  float acc[MT][NT][4];
  auto next = [&](int s, int64_t& af, int64_t& ak, int64_t& bf, int64_t& bk) {
    const int64_t k = kof(s);
    af = m0;  // NN: row start (K-contiguous); TN: column start (MN-contiguous)
    ak = k;
    bf = n0;
    bk = k;
  };
  auto none = [](float(&)[MT][NT][4]) {};
  gemm_steps<SRC, SRC, TN, true, WG, BN>(smem, nsteps, 1 << 30, oa, ob, next, none, acc);

  // Stage the fp32 tile in shared memory, then read-modify-write the output rows with
  // coalesced 16-byte accesses (few registers, many loads in flight).
  constexpr int SP = BN + 4;
  float* st = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = FM::row(warp, lane, mt, h);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
        *reinterpret_cast<float2*>(st + r * SP + FM::col(warp, lane, nt)) = make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
    }
  __syncthreads();
  const bool init = TN ? p.init_c : p.init_e;
  const float* vec = init ? (TN ? p.rvec_f : p.cbar_f) : nullptr;
  const bool quad = (p.D & 3) == 0;
  constexpr int PER_ROW = BN / 4;
#pragma unroll 4
  for (int c = threadIdx.x; c < kBM * PER_ROW; c += kThreads) {
    const int r = c / PER_ROW, j = (c % PER_ROW) * 4;
    const int64_t lm = m0 + r, n = n0 + j;
    if (lm >= M || n >= p.D) continue;
    float* orow;
    float rs = 0.f;
    if (!TN) {
      orow = p.dE + int64_t(__ldg(p.rows + p.r0 + lm)) * p.D;
      if (vec) rs = -__ldg(p.w + p.r0 + lm) * p.eta;
    } else {
      orow = p.dC + (p.v0 + lm) * p.D;
      if (vec) rs = 1.f;
    }
    float4 x = *reinterpret_cast<const float4*>(st + r * SP + j);
    if (quad && n + 3 < p.D) {
      if (vec) {
        const float4 u = __ldg(reinterpret_cast<const float4*>(vec + n));
        x.x += rs * u.x, x.y += rs * u.y, x.z += rs * u.z, x.w += rs * u.w;
      }
      float4* o = reinterpret_cast<float4*>(orow + n);
      if (!init) {
        const float4 old = *o;
        x.x += old.x, x.y += old.y, x.z += old.z, x.w += old.w;
      }
      *o = x;
    } else {
      const float xs[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (n + e >= p.D) break;
        float v = xs[e] + (vec ? rs * __ldg(vec + n + e) : 0.f);
        orow[n + e] = init ? v : orow[n + e] + v;
      }
    }
  }
}

template <int PLANES, bool WG>
__global__ void __launch_bounds__(kThreads, 1) grad_kernel(const GradParams p) {
  extern __shared__ __align__(128) char smem[];
  const int b = blockIdx.x;
  if (b < p.nn_tiles) grad_tile<PLANES, false, WG>(p, b, smem);
  else grad_tile<PLANES, true, WG>(p, b - p.nn_tiles, smem);
}

// ---------------------------------------------------------------------------------------
// Chunked (workspace) mode: the stored logits S of a row chunk become G in place.
// fp32 inputs: in place element by element. bf16: G row r is the first half of S row r, written chunk by chunk behind a
// barrier so that no S value is overwritten before it was read.
struct StoGParams {
  float* S;
  int64_t ldS;  // floats per row (V rounded up to 8)
  int64_t row0, nrows, V;
  const float* lse_valid;
  const float* w;
  const int32_t* targets;
  const int32_t* rows;
  float q_target, q_dense, cap;
};

__device__ __forceinline__ float grad_value(float s, float lse, float w, bool is_target, const StoGParams& p) {
  return w * logit_grad(s, lse, is_target, p.q_dense, p.q_target, p.cap);
}

template <int PLANES>
__global__ void s_to_g_kernel(const StoGParams p) {
  const int64_t lr = blockIdx.x;
  if (lr >= p.nrows) return;
  const int64_t j = p.row0 + lr;
  const float lse = __ldg(p.lse_valid + j), w = __ldg(p.w + j);
  const int64_t y = __ldg(p.targets + __ldg(p.rows + j));
  float* srow = p.S + lr * p.ldS;
  if constexpr (PLANES != 1) {
    for (int64_t v = threadIdx.x; v < p.ldS; v += blockDim.x)
      srow[v] = v < p.V ? grad_value(srow[v], lse, w, v == y, p) : 0.f;
  } else {
    uint16_t* grow = reinterpret_cast<uint16_t*>(srow);
    const int64_t chunk = int64_t(blockDim.x) * 8;
    for (int64_t v0 = 0; v0 < p.ldS; v0 += chunk) {
      const int64_t v = v0 + threadIdx.x * 8;
      float x[8];
      if (v < p.ldS) {
        const float4 a = *reinterpret_cast<const float4*>(srow + v);
        const float4 b = *reinterpret_cast<const float4*>(srow + v + 4);
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
      }
      __syncthreads();
      if (v < p.ldS) {
        uint16_t hb[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) hb[e] = bf16_bits(v + e < p.V ? grad_value(x[e], lse, w, v + e == y, p) : 0.f);
        *reinterpret_cast<uint4*>(grow + v) =
            make_uint4(pack2(hb[0], hb[1]), pack2(hb[2], hb[3]), pack2(hb[4], hb[5]), pack2(hb[6], hb[7]));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Small kernels: column sums (rank-1 vectors, bias gradient), dot products, scans, checks.

// out[part·D + d] = Σ_{r ∈ part} X[map(r)][d] · (wts ? wts[r] : 1), in float64.
template <int SRC>
__global__ void colsum_partial_kernel(const void* X, int64_t D, const int32_t* map, const float* wts, int64_t nrows,
                                      int64_t rows_per, double* out) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per, r1 = r0 + rows_per < nrows ? r0 + rows_per : nrows;
  double s = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t row = map ? __ldg(map + r) : r;
    const double x = load_elem<SRC>(X, row * D + d);
    s += wts ? x * double(__ldg(wts + r)) : x;
  }
  out[int64_t(blockIdx.y) * D + d] = s;
}

__global__ void colsum_final_kernel(const double* part, int nparts, int64_t D, double scale, double* out_d,
                                    float* out_f) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  double s = 0;
  for (int q = 0; q < nparts; ++q) s += part[q * D + d];
  if (out_d) out_d[d] = s;
  if (out_f) out_f[d] = static_cast<float>(scale * s);
}

// *out = Σ x[i] (float64), one block.
__global__ void sum_kernel(const float* x, int64_t n, double* out) {
  const double t = block_sum_f64(x, n);
  if (threadIdx.x == 0) *out = t;
}

// out[j] = (E[rows[j]]·c̄ + Σb) / T in float64: Σ_v s of valid row j without a softcap.
template <int SRC>
__global__ void rowdot_kernel(const void* E, int64_t D, const int32_t* rows, int64_t count, const double* cbar,
                              const double* bsum, float inv_t, double* out) {
  const int64_t j = int64_t(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (j >= count) return;
  const int64_t row = __ldg(rows + j);
  double s = 0;
  for (int64_t d = lane; d < D; d += 32) s += double(load_elem<SRC>(E, row * D + d)) * cbar[d];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) out[j] = (s + (bsum ? *bsum : 0.0)) * double(inv_t);
}

}  // namespace calib::lce
