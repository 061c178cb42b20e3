// The cuBLAS path's logit passes on Hopper: a warp-specialized wgmma kernel fed by bulk tensor
// copies, so the logits never leave registers on their way to
//   kStats: the logsumexp statistics (forward): no fp32 slab to write and read back, no row
//           statistics kernel;
//   kGrad:  the bf16 gradient block G = w·(softmax − q)·κ of rows [r0, r0+nrows) × vocabulary
//           columns [v0, v0+ncols), written straight to memory for the two cuBLAS gradient GEMMs
//           (no fp32 slab, no slab → G kernel, and a bf16 block holds twice the columns);
//   kStore: the statistics of a chunk of whole rows (chunked mode, no softcap), which also keeps
//           its logits, packed: bf16 (s − m) with m the row's maximum within the 256-wide tile
//           (fp32, one per row and tile). Near the maximum, where the probabilities are large,
//           the packed value is small and bf16 keeps it to ~2^-9·|s − m|; a chunk of 1 GiB holds
//           2048 rows instead of 1024 fp32 ones, which halves dC's read-modify-write passes.
//           (With a softcap, κ = 1 − (s/cap)² needs s more exactly: the fp32 slab is kept.)
//
// A CTA owns 128 token rows and a run of 256-wide vocabulary tiles (a split of the range).
//   warpgroup 0, one thread: the producer. For every (tile, 64-deep k step) it waits until the
//     stage is free, then copies E[rows, k..k+64) and C[tile, k..k+64) into it (4 stages of 48 KB).
//   warpgroups 1 and 2: the consumers, 64 rows × 256 columns each (128 fp32 accumulators per
//     thread, as in wgmma.cuh). Per k step: wait for the stage, four m64n256k16 MMAs, release
//     the stage of the step before once its MMAs have finished. Per tile: the
//     accumulators become the final logits s (bias, temperature, softcap), then statistics or G.
// Statistics: per-(split, row) partials merged in a fixed order by merge_kernel: deterministic.
// Rows are not gathered (the copy engine cannot): ignored rows are computed, then write nothing
// (statistics) or zeros (G); rows past the block (zero-filled by the copies) write nothing.
#pragma once
#include "../cuda/tma.cuh"
#include "../cuda/wgmma.cuh"
#include "linear_ce_common.cuh"

namespace calib::lce {

constexpr int kLtThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kLtStages = 4;
constexpr int kLtBN = 256;
constexpr int kLtABytes = kBM * 64 * 2;    // 16 KB: 128 token rows × 64 k
constexpr int kLtBBytes = kLtBN * 64 * 2;  // 32 KB: 256 vocabulary rows × 64 k
constexpr int kLtStageBytes = kLtABytes + kLtBBytes;
constexpr int kLtSmemBytes = kLtStages * kLtStageBytes + 1024 + 2 * kLtStages * 8;  // + alignment, barriers

enum LtMode { kStats = 0, kGrad = 1, kStore = 2 };

struct LtParams {
  int64_t N, V;
  int64_t r0, nrows;    // token rows of the call (kStats: all N) or of the gradient block
  int v0, ncols;        // vocabulary columns (kStats: 0, V); V < 2^31 (a tensor-map coordinate)
  int ksteps, ntiles, splits;
  const int32_t* inv;   // token row → valid index, or −1
  const int32_t* targets;
  const float* bias;
  float inv_t, cap;
  // kStats
  int dense;            // also sum Σ_v s (the ε/V term)
  int64_t ldp;          // leading dimension of the partials (the valid-row count)
  float* part_m;        // [split][valid row]
  float* part_l;
  double* part_s;
  float* tgt;           // [valid row]: the target's final logit
  // kGrad
  const float* lse_valid;
  const float* w;       // per valid row
  float q_target, q_dense;
  uint16_t* G;          // bf16, row r − r0 at G + (r − r0)·ldG (kStore: the packed logits)
  int64_t ldG;
  // kStore
  float* tmax;          // row r − r0, tile t at tmax[(r − r0)·ldT + t]
  int64_t ldT;
};

// Shared-memory layout: stages, then the full and empty barriers.
struct LtSmem {
  uint32_t base;
  __device__ explicit LtSmem(const char* smem) : base((smem_u32(smem) + 1023) & ~1023u) {}  // 128B swizzle: 1 KB aligned
  __device__ uint32_t stage(int s) const { return base + s * kLtStageBytes; }
  __device__ uint32_t full(int s) const { return base + kLtStages * kLtStageBytes + s * 8; }
  __device__ uint32_t empty(int s) const { return base + kLtStages * kLtStageBytes + (kLtStages + s) * 8; }
};

// Producer (one thread): every (tile, k step) of the CTA's tiles into the ring of stages.
__device__ __forceinline__ void lt_produce(const CUtensorMap* map_e, const CUtensorMap* map_c, const LtSmem& sm,
                                           const LtParams& p, int tb, int te, int64_t row0) {
  tma_prefetch_map(map_e);
  tma_prefetch_map(map_c);
  const int total = (te - tb) * p.ksteps;
  for (int it = 0; it < total; ++it) {
    const int st = it % kLtStages;
    if (it >= kLtStages) mbar_wait(sm.empty(st), ((it / kLtStages) & 1) ^ 1);
    const int tile = tb + it / p.ksteps, k = (it % p.ksteps) * 64;
    const uint32_t sa = sm.stage(st), sb = sa + kLtABytes;
    const int c0 = p.v0 + tile * kLtBN;
    mbar_expect_tx(sm.full(st), kLtStageBytes);  // boxes past the matrix count whole (zero-filled)
    tma_load_2d(sa, map_e, sm.full(st), k, static_cast<int>(row0));
    tma_load_2d(sb, map_c, sm.full(st), k, c0);  // two boxes of 128 vocabulary rows
    tma_load_2d(sb + kLtBBytes / 2, map_c, sm.full(st), k, c0 + kLtBN / 2);
  }
}

// Consumers (threads 128..383): MMAs per k step, then the tile's logits into statistics or G.
// CAP: a softcap (a separate instantiation keeps its tanh out of the common epilogue).
template <int MODE, bool CAP>
__device__ __forceinline__ void lt_consume(const LtParams& p, const LtSmem& sm, int tb, int te, int64_t row0, int split) {
  const int cw = (threadIdx.x >> 7) - 1;  // consumer warpgroup: tile rows [64·cw, 64·cw + 64)
  const int lane = threadIdx.x & 31, q = (threadIdx.x >> 5) & 3, t4 = lane & 3;
  auto release = [&](int s) {  // this warp is done with stage s
    if (lane == 0) mbar_arrive(sm.empty(s));
  };
  int kv[2], y[2];
  bool live[2];         // the row is inside the block
  float m[2], l[2];     // kStats: running max and Σexp; kGrad: lse and the weight
  double ss[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t row = row0 + 64 * cw + 16 * q + (lane >> 2) + 8 * h;
    live[h] = row < p.r0 + p.nrows;
    kv[h] = live[h] ? __ldg(p.inv + row) : -1;
    y[h] = kv[h] >= 0 ? __ldg(p.targets + row) - p.v0 : -1;  // target column within the block
    if (MODE != kGrad) {
      m[h] = neg_inf();
      l[h] = 0.f;
    } else {  // an ignored row: lse = +inf and weight 0 make its G exactly 0 (exp(s − 0) could overflow, inf · 0 = NaN)
      m[h] = kv[h] >= 0 ? __ldg(p.lse_valid + kv[h]) : __int_as_float(0x7f800000);
      l[h] = kv[h] >= 0 ? __ldg(p.w + kv[h]) : 0.f;
    }
    ss[h] = 0.0;
  }
  float d[128];
  int it = 0;
  for (int tile = tb; tile < te; ++tile) {
    for (int ks = 0; ks < p.ksteps; ++ks, ++it) {
      const int st = it % kLtStages;
      mbar_wait(sm.full(st), (it / kLtStages) & 1);
      const uint32_t sa = sm.stage(st), sb = sa + kLtABytes;
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
        wgmma_m64n256k16<0, 0>(d, wg_desc(sa + cw * 8192 + kk * 32, 16, 1024), wg_desc(sb + kk * 32, 16, 1024),
                               (ks | kk) != 0);
      wg_commit();
      wg_wait<1>();  // the MMAs of the step before have read their stage
      if (ks > 0) release((it - 1) % kLtStages);
    }
    wg_wait<0>();
    release((it - 1) % kLtStages);
    wg_pin(d);

    // Accumulator (j, e) of row h: register 4j + 2h + e, tile column 8j + 2·t4 + e.
    const int c0 = tile * kLtBN;    // block column of the tile's first column
    const int vlim = p.ncols - c0;  // columns ≥ vlim are past the block (or V)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if constexpr (MODE != kGrad) {
        float mx = neg_inf(), sum = 0.f;
#pragma unroll
        for (int j = 0; j < 32; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = 8 * j + 2 * t4 + e;
            const bool in = col < vlim;
            const float b = (p.bias && in) ? __ldg(p.bias + p.v0 + c0 + col) : 0.f;
            const float u = (d[4 * j + 2 * h + e] + b) * p.inv_t;
            const float s = CAP ? softcap_apply(u, p.cap) : u;
            sum += in ? s : 0.f;
            d[4 * j + 2 * h + e] = in ? s : neg_inf();
            mx = fmaxf(mx, d[4 * j + 2 * h + e]);
          }
        if constexpr (MODE == kStore) {  // the row's tile maximum over its four threads, then (s − m) as bf16
          float mt = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
          if (live[h]) {
            const int64_t lr = row0 + 64 * cw + 16 * q + (lane >> 2) + 8 * h - p.r0;
            uint16_t* g = p.G + lr * p.ldG + c0;
#pragma unroll
            for (int j = 0; j < 32; ++j) {
              const int col = 8 * j + 2 * t4;
              const uint32_t v = pack2(bf16_bits(d[4 * j + 2 * h] - mt), bf16_bits(d[4 * j + 2 * h + 1] - mt));
              if (col + 1 < vlim) *reinterpret_cast<uint32_t*>(g + col) = v;
              else if (col < vlim) g[col] = static_cast<uint16_t>(v & 0xFFFFu);
            }
            if (t4 == 0) p.tmax[lr * p.ldT + tile] = mt;
          }
        }
        if (y[h] >= c0 && y[h] < c0 + kLtBN) {  // one tile per row holds the target
#pragma unroll
          for (int j = 0; j < 32; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (c0 + 8 * j + 2 * t4 + e == y[h]) p.tgt[kv[h]] = d[4 * j + 2 * h + e];
        }
        if (mx != neg_inf()) {
          const float mn = fmaxf(m[h], mx);
          float acc = m[h] == neg_inf() ? 0.f : l[h] * __expf(m[h] - mn);
#pragma unroll
          for (int j = 0; j < 32; ++j) acc += __expf(d[4 * j + 2 * h] - mn) + __expf(d[4 * j + 2 * h + 1] - mn);
          l[h] = acc;
          m[h] = mn;
        }
        if (p.dense) ss[h] += double(sum);
      } else {
        if (!live[h]) continue;
        uint16_t* g = p.G + (row0 + 64 * cw + 16 * q + (lane >> 2) + 8 * h - p.r0) * p.ldG + c0;
#pragma unroll
        for (int j = 0; j < 32; ++j) {
          const int col = 8 * j + 2 * t4;
          uint16_t hv[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float b = (p.bias && col + e < vlim) ? __ldg(p.bias + p.v0 + c0 + col + e) : 0.f;
            const float u = (d[4 * j + 2 * h + e] + b) * p.inv_t;
            const float s = CAP ? softcap_apply(u, p.cap) : u;
            hv[e] = bf16_bits(logit_grad(s, m[h], c0 + col + e == y[h], p.q_dense, p.q_target, CAP ? p.cap : 0.f) * l[h]);
          }
          if (col + 1 < vlim) *reinterpret_cast<uint32_t*>(g + col) = pack2(hv[0], hv[1]);
          else if (col < vlim) g[col] = hv[0];
        }
      }
    }
  }
  if constexpr (MODE != kGrad) {
    // The row's four threads (t4), in a fixed order, then one write per (split, valid row).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int off = 1; off <= 2; off <<= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m[h], off);
        const float l2 = __shfl_xor_sync(0xffffffffu, l[h], off);
        lse_combine(m[h], l[h], m2, l2);
        ss[h] += __shfl_xor_sync(0xffffffffu, ss[h], off);
      }
      if (t4 == 0 && kv[h] >= 0) {
        const int64_t at = int64_t(split) * p.ldp + kv[h];
        p.part_m[at] = m[h];
        p.part_l[at] = l[h];
        if (p.dense) p.part_s[at] = ss[h];
      }
    }
  }
}

// Grid: (row tiles of the block, splits of its vocabulary tiles); 384 threads. CAP: p.cap > 0.
template <int MODE, bool CAP>
__global__ void __launch_bounds__(kLtThreads, 1)
    logit_tma_kernel(const __grid_constant__ CUtensorMap map_e, const __grid_constant__ CUtensorMap map_c,
                     const LtParams p) {
  extern __shared__ __align__(128) char smem[];
  const LtSmem sm(smem);
  const int64_t row0 = p.r0 + int64_t(blockIdx.x) * kBM;
  const int split = blockIdx.y;
  const int tb = static_cast<int>(int64_t(p.ntiles) * split / p.splits);
  const int te = static_cast<int>(int64_t(p.ntiles) * (split + 1) / p.splits);
  if (threadIdx.x == 0) {
    for (int s = 0; s < kLtStages; ++s) {
      mbar_init(sm.full(s), 1);            // the producer's expect_tx arrival (+ the copies' bytes)
      mbar_init(sm.empty(s), 8);           // one arrival per consumer warp
    }
    mbar_init_fence();
  }
  __syncthreads();
  if (threadIdx.x < 128) {
    regs_dec<40>();
    if (threadIdx.x == 0) lt_produce(&map_e, &map_c, sm, p, tb, te, row0);
  } else {
    regs_inc<232>();
    lt_consume<MODE, CAP>(p, sm, tb, te, row0, split);
  }
}

// Chunked mode with packed logits: x = bf16(s − m_tile) becomes G = w·(softmax − q) − w·q_t·[target]
// in place (no softcap here, so κ = 1). A CTA per chunk row, 8 consecutive columns per thread.
struct PackedParams {
  uint16_t* P;  // row r − r0 at P + (r − r0)·ldP
  int64_t ldP;
  const float* tmax;
  int64_t ldT;
  int64_t r0, V;
  const int32_t* inv;
  const int32_t* targets;
  const float* lse_valid;
  const float* w;
  float q_target, q_dense;
};

__global__ void __launch_bounds__(256) packed_grad_kernel(const PackedParams p) {
  const int64_t lr = blockIdx.x;
  const auto [k, lse, w, y] = grad_row(p.inv, p.targets, p.lse_valid, p.w, p.r0 + lr, 0);
  uint16_t* g = p.P + lr * p.ldP;
  const float* tm = p.tmax + lr * p.ldT;
  for (int64_t c = int64_t(threadIdx.x) * 8; c < p.V; c += 256 * 8) {
    const float shift = __ldg(tm + c / kLtBN) - lse;  // 8 columns never straddle a 256-wide tile
    uint16_t h[8];
    if (c + 8 <= p.V) {
      const uint4 raw = *reinterpret_cast<const uint4*>(g + c);
      const uint32_t wv[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float x = bf16_float(static_cast<uint16_t>(e & 1 ? wv[e / 2] >> 16 : wv[e / 2] & 0xFFFFu));
        float gv = __expf(x + shift) - p.q_dense;
        if (c + e == y) gv -= p.q_target;
        h[e] = bf16_bits(k >= 0 ? gv * w : 0.f);
      }
      *reinterpret_cast<uint4*>(g + c) = make_uint4(pack2(h[0], h[1]), pack2(h[2], h[3]), pack2(h[4], h[5]), pack2(h[6], h[7]));
    } else {
      for (int64_t v = c; v < p.V; ++v) {
        float gv = __expf(bf16_float(g[v]) + shift) - p.q_dense;
        if (v == y) gv -= p.q_target;
        g[v] = bf16_bits(k >= 0 ? gv * w : 0.f);
      }
    }
  }
}

}  // namespace calib::lce
