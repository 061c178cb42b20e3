// Hopper bulk tensor copies (TMA) and shared-memory barriers (mbarrier), the pieces of a
// warp-specialized pipeline: one producer thread issues the copies of a stage, the copy
// engine signals the stage's "full" barrier when its bytes have landed, and the consumer
// warps signal its "empty" barrier when their MMAs have read it.
//
// A 2D tensor map with a 64-element (128-byte) inner box and 128-byte swizzle writes a
// rows × 64 tile in exactly the canonical K-major layout of wgmma.cuh (chunk c of row r at
// r·128 + ((c ^ r%8)·16) from a 1024-byte aligned base), so the existing descriptors apply.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums (header only: the driver is reached at run time)
#include <cuda_runtime.h>

#include <cstdint>

namespace calib::cu {

__device__ __forceinline__ void mbar_init(uint32_t bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialized barriers visible to the copy engine (async proxy).
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase with the given parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

// Copies the box at (x = inner coordinate, y = outer coordinate) into shared memory at dst;
// completion is counted in bytes on `bar`. Out-of-range elements are filled with zeros.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int x, int y) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(x), "r"(y)
      : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Register budgets of producer and consumer warpgroups (all warps of the warpgroup execute it).
template <int N>
__device__ __forceinline__ void regs_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void regs_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// Host: a tensor map over a row-major bf16 matrix (rows × cols, `ld` elements per row) whose
// box is box_rows × 64 columns with 128-byte swizzle. Needs ld·2 a multiple of 16 and a
// 16-byte aligned base (the caller checks). Returns false with a message in `why`.
bool tma_map_bf16(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int64_t ld, int box_rows, char* why,
                  size_t why_len);

}  // namespace calib::cu
