// Hopper warpgroup MMA (wgmma, sm_90a) building blocks for the bf16 kernels.
//
// A CTA of 256 threads = 2 warpgroups computes a 128 × 256 tile: warpgroup w owns rows
// [64w, 64w+64) and all 256 columns (128 fp32 accumulators per thread). Each pipeline stage
// holds 64 K (one 128-byte swizzle row) of A (128 rows) and B (256 rows): 48 KB, 4 stages.
// Shared memory uses the canonical 128B-swizzled layouts, filled by cp.async (which keeps
// the row gather of E that the bulk tensor copy engine could not do):
//   K-major   (rows × 64 k):  chunk c (8 k) of row r at r·128 + ((c ^ r%8)·16);
//             descriptor: stride between 8-row groups (SBO) 1024 B, 16 k = +32 B.
//   MN-major  (64 k × C):     chunk c of the 64-wide block b of row k at
//             b·8192 + k·128 + ((c ^ k%8)·16); descriptor: LBO = MN-block stride, SBO = 8-k-row
//             group stride (the PTX ISA's reading, checked by test/cuda/mma_selftest.cu), 16 k = +2048 B.
// Accumulator fragment of warp q (of 8) for n8-block j, register e:
//   row 16q + lane/4 + 8·(e/2), column 8j + 2·(lane%4) + e%2.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "mma.cuh"

namespace calib::cu {

constexpr int kWgBK = 64;
constexpr int kWgBN = 256;
constexpr int kWgStages = 4;
constexpr int kWgABytes = kBM * kWgBK * 2;    // 16 KB
constexpr int kWgBBytes = kWgBN * kWgBK * 2;  // 32 KB
constexpr int kWgStageBytes = kWgABytes + kWgBBytes;
constexpr int kWgTableBytes = (kBM + kWgBN) * 8;  // row-pointer tables of K-major operands
constexpr int kWgSmemBytes = kWgStages * kWgStageBytes + 1024 + kWgTableBytes;  // + swizzle-atom alignment

__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((saddr & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);  // 128-byte swizzle
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Keeps the compiler from moving accumulator reads/writes across wgmma issue/wait points.
__device__ __forceinline__ void wg_pin(float (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// d (128 floats per thread) (+)= A(64×16)·B(16×256), A and B in shared memory (descriptors).
// TA / TB: the operand is MN-major (transposed) instead of K-major. scale_d = 0: d = A·B.
template <int TA, int TB>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "%128, %129, p, 1, 1, %131, %132;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TA), "n"(TB));
}

// Copies one operand tile of a stage (bf16 source) into the swizzled layout, with as
// little integer work per 16-byte chunk as possible (the loads are issued by the same
// warps that run the MMAs).
//   !MNC: TILE rows × 64 k (element (r, k) = base[map(f0 + r)·ld + k0 + k]). A table of
//         row pointers in shared memory (built once per tile by build()) makes a chunk a
//         table read, an add and a cp.async.
//    MNC: 64 k × TILE columns (element (k, j) = base[map(k0 + k)·ld + f0 + j]). Chunks of one
//         thread share a column and step rows by a fixed stride: one pointer per step.
template <bool MNC, int TILE>
struct WgLoader {
  static constexpr int PER_ROW = MNC ? TILE / 8 : kWgBK / 8;  // 16-byte chunks per smem row
  static constexpr int CHUNKS = TILE * kWgBK / 8 / kThreads;
  static constexpr int RPQ = kThreads / PER_ROW;              // smem rows between a thread's chunks
  Operand op;
  const uint16_t** table = nullptr;  // !MNC: TILE row pointers (null: row out of range)

  // !MNC only: row pointers of the tile whose first row is f0 (all threads; barrier around).
  __device__ __forceinline__ void build(int64_t f0) const {
    for (int r = threadIdx.x; r < TILE; r += kThreads) {
      const int64_t srow = f0 + r;
      const uint16_t* p = nullptr;
      if (srow < op.rows) {
        const int64_t prow = op.map ? static_cast<int64_t>(__ldg(op.map + srow)) : srow;
        p = static_cast<const uint16_t*>(op.base) + prow * op.ld;
      }
      table[r] = p;
    }
  }

  // Out of line: keeps the rarely taken scalar path from being predicated into the hot loop.
  __device__ __noinline__ void slow_chunk(uint32_t dst, const uint16_t* src, bool ok, int64_t cidx) const {
    uint16_t h[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) h[e] = (ok && cidx + e < op.cont) ? src[e] : uint16_t(0);
    st_shared16(dst, pack2(h[0], h[1]), pack2(h[2], h[3]), pack2(h[4], h[5]), pack2(h[6], h[7]));
  }

  __device__ __forceinline__ void issue(uint32_t sdst, int64_t fixed0, int64_t k0) const {
    const int j = threadIdx.x % PER_ROW, r0 = threadIdx.x / PER_ROW;
    if constexpr (!MNC) {
      const int64_t cidx = k0 + j * 8;
      const bool fast = op.vec && k0 + kWgBK <= op.cont;  // uniform
      const uint32_t off0 = r0 * 128 + ((j ^ (r0 & 7)) << 4);
#pragma unroll
      for (int q = 0; q < CHUNKS; ++q) {
        const int r = r0 + q * RPQ;  // RPQ is a multiple of 8: same swizzle phase
        const uint16_t* rp = table[r];
        const uint32_t dst = sdst + off0 + q * RPQ * 128;
        if (rp && fast) cp_async16(dst, rp + cidx);
        else slow_chunk(dst, rp + cidx, rp != nullptr && cidx < op.cont, cidx);
      }
    } else {
      const int64_t cidx = fixed0 + j * 8;
      const bool col_ok = cidx < op.cont, fast = op.vec && cidx + 8 <= op.cont;
      const uint32_t off0 = (j >> 3) * 8192 + r0 * 128 + (((j & 7) ^ (r0 & 7)) << 4);
      const uint16_t* base = static_cast<const uint16_t*>(op.base) + cidx;
      const uint16_t* p0 = base + (k0 + r0) * op.ld;
      const int64_t step = int64_t(RPQ) * op.ld;
#pragma unroll
      for (int q = 0; q < CHUNKS; ++q) {
        const int64_t srow = k0 + r0 + q * RPQ;
        const uint32_t dst = sdst + off0 + q * RPQ * 128;
        const bool ok = col_ok && srow < op.rows;
        const uint16_t* src = op.map ? (ok ? base + int64_t(__ldg(op.map + srow)) * op.ld : base) : p0 + q * step;
        if (ok && fast) cp_async16(dst, src);
        else slow_chunk(dst, src, ok, cidx);
      }
    }
  }
};

// Descriptor of warpgroup `wg`'s A slice / the B tile at k16 step kk of a stage.
template <bool MNC>
__device__ __forceinline__ uint64_t wg_desc_a(uint32_t base, int wg, int kk) {
  if (!MNC) return wg_desc(base + wg * 8192 + kk * 32, 16, 1024);
  // MN-major swizzled operands: the leading byte offset is the MN block (64 wide) stride, the stride
  // byte offset the 8-k-row group stride (PTX ISA; checked by test/cuda/mma_selftest.cu).
  const uint32_t blk = 8192, grp = 1024;
  return wg_desc(base + wg * blk + kk * 2 * grp, blk, grp);
}
template <bool MNC>
__device__ __forceinline__ uint64_t wg_desc_b(uint32_t base, int kk) {
  if (!MNC) return wg_desc(base + kk * 32, 16, 1024);
  const uint32_t blk = 8192, grp = 1024;
  return wg_desc(base + kk * 2 * grp, blk, grp);
}

// The wgmma software pipeline over `nsteps` 64-deep K steps (same contract as pipeline():
// next(s, a_fixed, a_k, b_fixed, b_k) in order; tile_done(acc) after every per_tile steps).
// Loads run two steps ahead; the MMAs of one step overlap the issue of the next.
template <bool AT, bool BT, class LA, class LB, class Next, class TileDone>
__device__ __forceinline__ void wg_pipeline(char* smem_raw, int nsteps, int per_tile, LA& la, LB& lb, Next&& next,
                                            TileDone&& tile_done, float (&acc)[1][32][4]) {
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;
  char* tables = smem_raw + (base - raw) + kWgStages * kWgStageBytes;
  la.table = reinterpret_cast<const uint16_t**>(tables);
  lb.table = reinterpret_cast<const uint16_t**>(tables + kBM * 8);
  const int wg = threadIdx.x >> 7;
  float(&d)[128] = reinterpret_cast<float(&)[128]>(acc);
  auto sa = [&](int st) { return base + st * kWgStageBytes; };
  auto sb = [&](int st) { return base + st * kWgStageBytes + kWgABytes; };
  int64_t ta = -1, tb = -1;  // first rows of the current K-major tables
  // Issues step n into its stage; rebuilds a row table when a K-major operand moves to a
  // new tile (uniform condition; the barriers keep earlier issues off the new table).
  auto issue = [&](int n) {
    int64_t af, ak, bf, bk;
    next(n, af, ak, bf, bk);
    const bool na = !AT && af != ta, nb = !BT && bf != tb;
    if (na || nb) {
      __syncthreads();
      if (na) la.build(af);
      if (nb) lb.build(bf);
      ta = na ? af : ta;
      tb = nb ? bf : tb;
      __syncthreads();
    }
    la.issue(sa(n % kWgStages), af, ak);
    lb.issue(sb(n % kWgStages), bf, bk);
  };
  for (int s = 0; s < 2; ++s) {
    if (s < nsteps) issue(s);
    cp_async_commit();
  }
#pragma unroll
  for (int i = 0; i < 128; ++i) d[i] = 0.f;
  int in_tile = 0;
  for (int s = 0; s < nsteps; ++s) {
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    // Queue this step's MMAs first, so the tensor cores never wait for the copies issued
    // below (stage (s+2)%4 held step s−2, whose MMAs completed before the barrier).
    const int st = s % kWgStages;
    wg_pin(d);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < kWgBK / 16; ++kk)
      wgmma_m64n256k16<AT ? 1 : 0, BT ? 1 : 0>(d, wg_desc_a<AT>(sa(st), wg, kk), wg_desc_b<BT>(sb(st), kk),
                                                (in_tile > 0 || kk > 0) ? 1 : 0);
    wg_commit();
    if (s + 2 < nsteps) issue(s + 2);
    cp_async_commit();
    ++in_tile;
    if (in_tile == per_tile || s + 1 == nsteps) {
      wg_wait<0>();
      wg_pin(d);
      if (in_tile == per_tile) {
        tile_done(acc);
        in_tile = 0;
      }
    } else {
      wg_wait<1>();
    }
  }
  wg_wait<0>();
  wg_pin(d);
  cp_async_wait<0>();
  __syncthreads();
}

}  // namespace calib::cu
