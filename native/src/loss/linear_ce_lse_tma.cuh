// The cuBLAS path's logsumexp pass on Hopper: a warp-specialized wgmma kernel fed by bulk
// tensor copies, so the forward logits never leave registers (no fp32 slab to write and read
// back: 2 × N·V·4 bytes less traffic, and no row-statistics kernel).
//
// A CTA owns 128 token rows and one vocabulary split, walked in 256-wide tiles. Two CTAs of
// neighbouring row tiles form a cluster and share the C tile: each copies one 128-row half of it
// into both CTAs (multicast). That cuts the L2 → SM traffic per MMA by a third; a lone 128 × 256
// tile needs more L2 bandwidth than the H100 has at full MMA rate.
//   warpgroup 0, one thread: the producer. For every (tile, 64-deep k step) it waits until the
//     stage is free in both CTAs, then copies E[rows, k..k+64) into it and its half of
//     C[tile, k..k+64) into both CTAs' stage (4 stages of 48 KB).
//   warpgroups 1 and 2: the consumers, 64 rows × 256 columns each (128 fp32 accumulators per
//     thread, as in wgmma.cuh). Per k step: wait for the stage, four m64n256k16 MMAs, release the
//     stage of the step before (in both CTAs) once its MMAs have finished. Per tile: the accumulators become
//     the final logits s (bias, temperature, softcap), which feed the thread's online
//     (max, Σexp), its Σs and the target capture.
// The per-(split, row) partials merge in a fixed order (merge_kernel): deterministic.
// All N rows are computed (the copy engine cannot gather valid rows); ignored rows and rows
// past N (zero-filled by the copies) write nothing.
#pragma once
#include "../cuda/tma.cuh"
#include "../cuda/wgmma.cuh"
#include "linear_ce_kernels.cuh"

namespace calib::lce {

constexpr int kLtThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kLtStages = 4;
constexpr int kLtBN = 256;
constexpr int kLtABytes = kBM * 64 * 2;    // 16 KB: 128 token rows × 64 k
constexpr int kLtBBytes = kLtBN * 64 * 2;  // 32 KB: 256 vocabulary rows × 64 k
constexpr int kLtStageBytes = kLtABytes + kLtBBytes;
constexpr int kLtSmemBytes = kLtStages * kLtStageBytes + 1024 + 2 * kLtStages * 8;  // + alignment, barriers

struct LseTmaParams {
  int64_t N, V;
  int ksteps, ntiles, splits;
  int64_t ldp;           // leading dimension of the partials (the valid-row count)
  const int32_t* inv;    // token row → valid index, or −1
  const int32_t* targets;
  const float* bias;
  float inv_t, cap;
  int dense;             // also sum Σ_v s (the ε/V term)
  int pair;              // CTAs per cluster sharing the C tile: 2 (multicast halves) or 1
  float* part_m;         // [split][valid row]
  float* part_l;
  double* part_s;
  float* tgt;            // [valid row]: the target's final logit
};

// Shared-memory layout of lse_tma_kernel: stages, then the full and empty barriers.
struct LtSmem {
  uint32_t base;
  __device__ explicit LtSmem(const char* smem) : base((smem_u32(smem) + 1023) & ~1023u) {}  // 128B swizzle: 1 KB aligned
  __device__ uint32_t stage(int s) const { return base + s * kLtStageBytes; }
  __device__ uint32_t full(int s) const { return base + kLtStages * kLtStageBytes + s * 8; }
  __device__ uint32_t empty(int s) const { return base + kLtStages * kLtStageBytes + (kLtStages + s) * 8; }
};

// Producer (one thread): every (tile, k step) of the split into the ring of stages.
__device__ __forceinline__ void lt_produce(const CUtensorMap* map_e, const CUtensorMap* map_c, const LtSmem& sm, int tb,
                                           int te, int ksteps, int64_t r0, int pair) {
  const uint32_t rank = pair == 2 ? cluster_rank() : 0;
  tma_prefetch_map(map_e);
  tma_prefetch_map(map_c);
  const int total = (te - tb) * ksteps;
  for (int it = 0; it < total; ++it) {
    const int st = it % kLtStages;
    if (it >= kLtStages) mbar_wait(sm.empty(st), ((it / kLtStages) & 1) ^ 1);
    const int tile = tb + it / ksteps, k = (it % ksteps) * 64;
    const uint32_t sa = sm.stage(st);
    mbar_expect_tx(sm.full(st), kLtStageBytes);  // boxes past the matrix count whole (zero-filled)
    tma_load_2d(sa, map_e, sm.full(st), k, static_cast<int>(r0));
    const uint32_t sb = sa + kLtABytes;
    const int v0 = tile * kLtBN;
    if (pair == 2) {
      tma_load_2d_multicast(sb + rank * (kLtBBytes / 2), map_c, sm.full(st), k, v0 + static_cast<int>(rank) * (kLtBN / 2), 0x3);
    } else {
      tma_load_2d(sb, map_c, sm.full(st), k, v0);
      tma_load_2d(sb + kLtBBytes / 2, map_c, sm.full(st), k, v0 + kLtBN / 2);
    }
  }
}

// Consumers (threads 128..383): MMAs per k step, then the tile's logits into the row statistics.
// CAP: a softcap (a separate instantiation keeps its tanh out of the common epilogue).
template <bool CAP>
__device__ __forceinline__ void lt_consume(const LseTmaParams& p, const LtSmem& sm, int tb, int te, int64_t r0, int split) {
  const int cw = (threadIdx.x >> 7) - 1;  // consumer warpgroup: tile rows [64·cw, 64·cw + 64)
  const int lane = threadIdx.x & 31, q = (threadIdx.x >> 5) & 3, t4 = lane & 3;
  auto release = [&](int s) {  // this warp is done with stage s: lane r tells CTA r's producer
    if (p.pair == 2) {
      if (lane < 2) mbar_arrive_cluster(sm.empty(s), lane);
    } else if (lane == 0) {
      mbar_arrive(sm.empty(s));
    }
  };
  int kv[2], y[2];
  float m[2], l[2];
  double ss[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t row = r0 + 64 * cw + 16 * q + (lane >> 2) + 8 * h;
    kv[h] = row < p.N ? __ldg(p.inv + row) : -1;
    y[h] = kv[h] >= 0 ? __ldg(p.targets + row) : -1;
    m[h] = neg_inf();
    l[h] = 0.f;
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
    const int v0 = tile * kLtBN;  // V < 2^31 (a tensor-map coordinate)
    const int vlim = static_cast<int>(p.V - v0);  // columns ≥ vlim are past V
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = neg_inf(), sum = 0.f;
#pragma unroll
      for (int j = 0; j < 32; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = 8 * j + 2 * t4 + e;
          const bool in = col < vlim;
          const float b = (p.bias && in) ? __ldg(p.bias + v0 + col) : 0.f;
          const float u = (d[4 * j + 2 * h + e] + b) * p.inv_t;
          const float s = CAP ? softcap_apply(u, p.cap) : u;
          sum += in ? s : 0.f;
          d[4 * j + 2 * h + e] = in ? s : neg_inf();
          mx = fmaxf(mx, d[4 * j + 2 * h + e]);
        }
      if (y[h] >= v0 && y[h] < v0 + kLtBN) {  // one tile per row holds the target
#pragma unroll
        for (int j = 0; j < 32; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            if (v0 + 8 * j + 2 * t4 + e == y[h]) p.tgt[kv[h]] = d[4 * j + 2 * h + e];
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
    }
  }

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

// Grid: (row tiles, rounded up to a multiple of pair; splits), clusters of `pair` CTAs along the
// rows (a launch attribute); 384 threads. CAP: p.cap > 0.
template <bool CAP>
__global__ void __launch_bounds__(kLtThreads, 1)
    lse_tma_kernel(const __grid_constant__ CUtensorMap map_e, const __grid_constant__ CUtensorMap map_c,
                   const LseTmaParams p) {
  extern __shared__ __align__(128) char smem[];
  const LtSmem sm(smem);
  const int64_t r0 = int64_t(blockIdx.x) * kBM;  // may be ≥ N: the CTA still copies its half of C
  const int split = blockIdx.y;
  const int tb = static_cast<int>(int64_t(p.ntiles) * split / p.splits);
  const int te = static_cast<int>(int64_t(p.ntiles) * (split + 1) / p.splits);
  if (threadIdx.x == 0) {
    for (int s = 0; s < kLtStages; ++s) {
      mbar_init(sm.full(s), 1);    // the producer's expect_tx arrival (+ the copies' bytes)
      mbar_init(sm.empty(s), 8 * p.pair);  // one arrival per consumer warp of each CTA it feeds
    }
    mbar_init_fence();
  }
  if (p.pair == 2) cluster_sync();  // both CTAs' barriers exist before any copy or remote arrival
  else __syncthreads();
  if (threadIdx.x < 128) {
    regs_dec<40>();
    if (threadIdx.x == 0) lt_produce(&map_e, &map_c, sm, tb, te, p.ksteps, r0, p.pair);
  } else {
    regs_inc<232>();
    lt_consume<CAP>(p, sm, tb, te, r0, split);
  }
  if (p.pair == 2) cluster_sync();  // no CTA leaves while its partner may still copy into it or arrive on it
}

}  // namespace calib::lce
