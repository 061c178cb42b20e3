// Tensor-core GEMM building blocks for the CUDA kernels (sm_80+ instructions, built for sm_90a).
//
// One CTA of 256 threads (8 warps, 2 along M × 4 along N) computes a kBM × BN tile of
// C += A·B with mma.sync m16n8k16 (bf16 operands, fp32 accumulators):
//   BN = 256 for bf16 operands (warp tile 64×64), 128 for fp32 operands (warp tile 64×32).
//
// fp32 operands are split on the fly into three bf16 planes, x ≈ hi + mid + lo (each the
// bf16 rounding of what is left), and a·b ≈ Σ_{i+j≤2} a_i·b_j: six MMAs with fp32
// accumulation whose error (≈ 3·2^-24 relative per product) is that of fp32 arithmetic.
//
// Operands live in shared memory as bf16 tiles in one of two layouts:
//   K-contiguous   [rows][kBK + 8]      (E rows, C rows, G rows as the A operand)
//   MN-contiguous  [kBK][cols + 8]      (C or E read along D, Gᵀ)
// and reach the MMAs through ldmatrix (.trans for MN-contiguous tiles). The 8-element
// padding makes every ldmatrix phase conflict-free. Global → shared copies use cp.async
// (16 B) for aligned bf16 sources, and register staging (load, split, store) for fp32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace calib::cu {

constexpr int kThreads = 256;
constexpr int kBM = 128;           // rows of a CTA tile (M)
constexpr int kBK = 32;            // K per pipeline stage
constexpr int kPad = 8;
constexpr int kPitchK = kBK + kPad;  // K-contiguous tile pitch (elements): 80 B

// Source element kinds of an operand.
enum Src : int {
  kSrcBf16 = 0,  // bfloat16 bits (uint16): one plane
  kSrcF32 = 1,   // float32, split into three bf16 planes while loading
};
template <int SRC>
__host__ __device__ constexpr int planes_of() { return SRC == kSrcBf16 ? 1 : 3; }

template <int PLANES>
struct TileCfg {
  static constexpr int NT = PLANES == 1 ? 8 : 4;  // n8 tiles per warp
  static constexpr int BN = 4 * NT * 8;           // 256 or 128
  static constexpr int kPitchMNA = kBM + kPad;    // MN-contiguous A tile pitch
  static constexpr int kPitchMNB = BN + kPad;     // MN-contiguous B tile pitch
  // Plane sizes (elements): room for either layout.
  static constexpr int A_ELEMS = (kBM * kPitchK > kBK * kPitchMNA) ? kBM * kPitchK : kBK * kPitchMNA;
  static constexpr int B_ELEMS = (BN * kPitchK > kBK * kPitchMNB) ? BN * kPitchK : kBK * kPitchMNB;
  static constexpr int A_BYTES = A_ELEMS * 2;
  static constexpr int B_BYTES = B_ELEMS * 2;
  static constexpr int STAGE_BYTES = PLANES * (A_BYTES + B_BYTES);
  static constexpr int STAGES = PLANES == 1 ? 4 : 3;
  // the pipeline stages, or the fp32 staging tile of the gradient epilogue if larger
  static constexpr int SMEM_BYTES = STAGES * STAGE_BYTES > kBM * (BN + 4) * 4 ? STAGES * STAGE_BYTES : kBM * (BN + 4) * 4;
  static constexpr int MIN_BLOCKS = 1;
};

// ---------------------------------------------------------------------------------------
// PTX wrappers
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void st_shared16(uint32_t addr, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(a), "r"(b), "r"(c), "r"(d));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint16_t bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
__device__ __forceinline__ float bf16_float(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }
__device__ __forceinline__ uint32_t pack2(uint16_t lo_elem, uint16_t hi_elem) {
  return static_cast<uint32_t>(lo_elem) | (static_cast<uint32_t>(hi_elem) << 16);
}
// x ≈ hi + mid + lo, each bfloat16.
__device__ __forceinline__ void split3(float x, uint16_t& hi, uint16_t& mid, uint16_t& lo) {
  hi = bf16_bits(x);
  const float r = x - bf16_float(hi);
  mid = bf16_bits(r);
  lo = bf16_bits(r - bf16_float(mid));
}

// ---------------------------------------------------------------------------------------
// Operand description (runtime).
//   K-contiguous tiles:  element (r, k) = base[map(r0 + r)·ld + k0 + k]
//   MN-contiguous tiles: element (k, j) = base[map(k0 + k)·ld + j0 + j]
// "rows" bounds the mapped index (r0 + r, or k0 + k) and "cont" the contiguous index;
// elements outside read as zero. map == nullptr is the identity.
struct Operand {
  const void* base = nullptr;
  int64_t ld = 0;
  const int32_t* map = nullptr;
  int64_t rows = 0;
  int64_t cont = 0;
  int vec = 0;  // 16-byte (bf16) / 32-byte (4-byte sources) vector loads are aligned
};

// Loads one operand tile (TILE rows/cols × kBK) per pipeline stage. Each thread moves
// CHUNKS chunks of 8 consecutive elements along the contiguous dimension.
template <int SRC, bool MNC, int TILE>
struct TileLoader {
  static constexpr int PLANES = planes_of<SRC>();
  static constexpr int PER_ROW = MNC ? TILE / 8 : kBK / 8;  // chunks per smem row
  static constexpr int PITCH = MNC ? TILE + kPad : kPitchK;
  static constexpr int NCHUNK = TILE * kBK / 8;
  static constexpr int CHUNKS = NCHUNK / kThreads;
  static_assert(NCHUNK % kThreads == 0, "tile must split evenly over the threads");
  static constexpr int PLANE_BYTES = (MNC ? kBK * PITCH : TILE * PITCH) * 2;

  Operand op;
  int plane_bytes;                 // distance between the planes of one stage
  uint32_t raw[CHUNKS][8];         // staged values (4-byte sources)

  __device__ __forceinline__ void coords(int c, int64_t fixed0, int64_t k0, int64_t& srow, int64_t& cidx,
                                         int& soff) const {
    const int r = c / PER_ROW, j = (c % PER_ROW) * 8;
    if (!MNC) {
      srow = fixed0 + r;
      cidx = k0 + j;
    } else {
      srow = k0 + r;
      cidx = fixed0 + j;
    }
    soff = (r * PITCH + j) * 2;
  }

  // Issues the global reads of one stage (cp.async, or loads into registers).
  __device__ __forceinline__ void issue(uint32_t sdst, int64_t fixed0, int64_t k0) {
#pragma unroll
    for (int q = 0; q < CHUNKS; ++q) {
      const int c = threadIdx.x + q * kThreads;
      int64_t srow, cidx;
      int soff;
      coords(c, fixed0, k0, srow, cidx, soff);
      const bool row_ok = srow < op.rows && cidx < op.cont;
      int64_t prow = 0;
      if (row_ok) prow = op.map ? static_cast<int64_t>(__ldg(op.map + srow)) : srow;
      if constexpr (SRC == kSrcBf16) {
        const uint16_t* src = static_cast<const uint16_t*>(op.base) + prow * op.ld + cidx;
        if (row_ok && op.vec && cidx + 8 <= op.cont) {
          cp_async16(sdst + soff, src);
        } else {
          uint16_t h[8];
#pragma unroll
          for (int e = 0; e < 8; ++e) h[e] = (row_ok && cidx + e < op.cont) ? src[e] : uint16_t(0);
          st_shared16(sdst + soff, pack2(h[0], h[1]), pack2(h[2], h[3]), pack2(h[4], h[5]), pack2(h[6], h[7]));
        }
      } else {
        const uint32_t* src = static_cast<const uint32_t*>(op.base) + prow * op.ld + cidx;
        if (row_ok && op.vec && cidx + 8 <= op.cont) {
          const uint4 v0 = __ldg(reinterpret_cast<const uint4*>(src));
          const uint4 v1 = __ldg(reinterpret_cast<const uint4*>(src) + 1);
          raw[q][0] = v0.x, raw[q][1] = v0.y, raw[q][2] = v0.z, raw[q][3] = v0.w;
          raw[q][4] = v1.x, raw[q][5] = v1.y, raw[q][6] = v1.z, raw[q][7] = v1.w;
        } else {
#pragma unroll
          for (int e = 0; e < 8; ++e) raw[q][e] = (row_ok && cidx + e < op.cont) ? __ldg(src + e) : 0u;
        }
      }
    }
  }

  // Register path: splits the staged values and writes the three planes.
  __device__ __forceinline__ void commit(uint32_t sdst) {
    if constexpr (SRC != kSrcBf16) {
#pragma unroll
      for (int q = 0; q < CHUNKS; ++q) {
        const int c = threadIdx.x + q * kThreads;
        int64_t srow, cidx;
        int soff;
        coords(c, 0, 0, srow, cidx, soff);
        uint16_t h[3][8];
#pragma unroll
        for (int e = 0; e < 8; ++e) split3(__uint_as_float(raw[q][e]), h[0][e], h[1][e], h[2][e]);
#pragma unroll
        for (int p = 0; p < 3; ++p)
          st_shared16(sdst + p * plane_bytes + soff, pack2(h[p][0], h[p][1]), pack2(h[p][2], h[p][3]),
                      pack2(h[p][4], h[p][5]), pack2(h[p][6], h[p][7]));
      }
    }
  }
};

// One kBK-deep stage of MMAs for this warp's 64 × (NT·8) tile.
//   AT: A tile is MN-contiguous ([k][m]); otherwise K-contiguous ([m][k]).
//   BT: B tile is MN-contiguous ([k][n]); otherwise K-contiguous ([n][k]).
// B fragments of all planes stay live; A fragments are loaded per 16-row slice.
template <int PLANES, bool AT, bool BT>
__device__ __forceinline__ void mma_stage(float (&acc)[4][TileCfg<PLANES>::NT][4], uint32_t sA, uint32_t sB,
                                          int lane, int wm, int wn) {
  using Cfg = TileCfg<PLANES>;
  constexpr int NT = Cfg::NT;
#pragma unroll
  for (int kk = 0; kk < kBK; kk += 16) {
    uint32_t b[PLANES][NT][2];
#pragma unroll
    for (int p = 0; p < PLANES; ++p) {
#pragma unroll
      for (int n2 = 0; n2 < NT / 2; ++n2) {
        uint32_t r[4];
        if (!BT) {
          const int n = wn * (NT * 8) + n2 * 16 + (lane & 7) + (lane >> 4) * 8, k = kk + ((lane >> 3) & 1) * 8;
          ldsm_x4(r, sB + p * Cfg::B_BYTES + (n * kPitchK + k) * 2);
        } else {
          const int k = kk + (lane & 7) + ((lane >> 3) & 1) * 8, n = wn * (NT * 8) + n2 * 16 + (lane >> 4) * 8;
          ldsm_x4_t(r, sB + p * Cfg::B_BYTES + (k * Cfg::kPitchMNB + n) * 2);
        }
        b[p][2 * n2][0] = r[0];
        b[p][2 * n2][1] = r[1];
        b[p][2 * n2 + 1][0] = r[2];
        b[p][2 * n2 + 1][1] = r[3];
      }
    }
#pragma unroll
    for (int mt = 0; mt < 4; ++mt) {
      uint32_t a[PLANES][4];
#pragma unroll
      for (int p = 0; p < PLANES; ++p) {
        if (!AT) {
          const int m = wm * 64 + mt * 16 + (lane & 15), k = kk + (lane >> 4) * 8;
          ldsm_x4(a[p], sA + p * Cfg::A_BYTES + (m * kPitchK + k) * 2);
        } else {
          const int k = kk + (lane & 7) + (lane >> 4) * 8, m = wm * 64 + mt * 16 + ((lane >> 3) & 1) * 8;
          ldsm_x4_t(a[p], sA + p * Cfg::A_BYTES + (k * Cfg::kPitchMNA + m) * 2);
        }
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if constexpr (PLANES == 3) {  // small terms first
          mma_bf16(acc[mt][nt], a[2], b[0][nt][0], b[0][nt][1]);
          mma_bf16(acc[mt][nt], a[1], b[1][nt][0], b[1][nt][1]);
          mma_bf16(acc[mt][nt], a[0], b[2][nt][0], b[2][nt][1]);
          mma_bf16(acc[mt][nt], a[1], b[0][nt][0], b[0][nt][1]);
          mma_bf16(acc[mt][nt], a[0], b[1][nt][0], b[1][nt][1]);
        }
        mma_bf16(acc[mt][nt], a[0], b[0][nt][0], b[0][nt][1]);
      }
    }
  }
}

template <int PLANES>
__device__ __forceinline__ void zero_acc(float (&acc)[4][TileCfg<PLANES>::NT][4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < TileCfg<PLANES>::NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
}

// The software pipeline over `nsteps` kBK-steps. `next(s, a_fixed, a_k, b_fixed, b_k)` gives
// the tile coordinates of step s (called once per step, in order); `tile_done(acc)` runs
// after every `per_tile` steps (register-only work; the accumulators are zeroed after).
// Leaves no copy in flight and ends with a barrier, so shared memory may be reused.
template <int PLANES, bool AT, bool BT, class LA, class LB, class Next, class TileDone>
__device__ __forceinline__ void pipeline(char* smem, int nsteps, int per_tile, LA& la, LB& lb, Next&& next,
                                         TileDone&& tile_done, float (&acc)[4][TileCfg<PLANES>::NT][4]) {
  using Cfg = TileCfg<PLANES>;
  constexpr int S = Cfg::STAGES;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
  const uint32_t base = smem_u32(smem);
  auto sa = [&](int st) { return base + st * Cfg::STAGE_BYTES; };
  auto sb = [&](int st) { return base + st * Cfg::STAGE_BYTES + PLANES * Cfg::A_BYTES; };
  la.plane_bytes = Cfg::A_BYTES;
  lb.plane_bytes = Cfg::B_BYTES;
  int64_t af, ak, bf, bk;
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < nsteps) {
      next(s, af, ak, bf, bk);
      la.issue(sa(s), af, ak);
      lb.issue(sb(s), bf, bk);
      la.commit(sa(s));
      lb.commit(sb(s));
    }
    cp_async_commit();
  }
  zero_acc<PLANES>(acc);
  for (int s = 0; s < nsteps; ++s) {
    cp_async_wait<S - 2>();
    __syncthreads();
    const int nx = s + S - 1;
    const int stn = nx % S;
    if (nx < nsteps) {
      next(nx, af, ak, bf, bk);
      la.issue(sa(stn), af, ak);
      lb.issue(sb(stn), bf, bk);
    }
    const int st = s % S;
    mma_stage<PLANES, AT, BT>(acc, sa(st), sb(st), lane, wm, wn);
    if (nx < nsteps) {
      la.commit(sa(stn));
      lb.commit(sb(stn));
    }
    cp_async_commit();
    if ((s + 1) % per_tile == 0) {
      tile_done(acc);
      zero_acc<PLANES>(acc);
    }
  }
  cp_async_wait<0>();
  __syncthreads();
}

}  // namespace calib::cu
