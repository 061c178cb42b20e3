// Self-test of the tensor-core building blocks (native/src/cuda/mma.cuh) on the GPU: one
// CTA tile of A·B through every operand layout the loss kernels use (K- or MN-contiguous,
// gathered rows, bf16 or fp32 split into three planes, vector or scalar loads, ragged
// bounds) against a float64 CPU product. Built and run by scripts/gpu/job.sh; exits 1 on
// any failure. Output: one line per combination with the relative Frobenius error.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/mma.cuh"
#include "cuda/wgmma.cuh"

using namespace calib::cu;

#define CK(x)                                                                        \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(2);                                                                  \
    }                                                                                \
  } while (0)

// A: !AT → [M][K] (K contiguous), AT → [K][M]; B: !BT → [N][K], BT → [K][N].
// amap/bmap gather the "rows" of the stored arrays (m or k for A, n or k for B).
template <int SRC, bool AT, bool BT>
__global__ void __launch_bounds__(kThreads, 1)
    tile_kernel(const void* A, const void* B, int M, int N, int K, int64_t lda, int64_t ldb, const int32_t* amap,
                const int32_t* bmap, int veca, int vecb, float* out) {
  constexpr int P = planes_of<SRC>();
  using Cfg = TileCfg<P>;
  extern __shared__ __align__(128) char smem[];
  TileLoader<SRC, AT, kBM> la;
  la.op.base = A, la.op.ld = lda, la.op.map = amap, la.op.rows = AT ? K : M, la.op.cont = AT ? M : K, la.op.vec = veca;
  TileLoader<SRC, BT, Cfg::BN> lb;
  lb.op.base = B, lb.op.ld = ldb, lb.op.map = bmap, lb.op.rows = BT ? K : N, lb.op.cont = BT ? N : K, lb.op.vec = vecb;
  float acc[4][Cfg::NT][4];
  auto next = [&](int s, int64_t& af, int64_t& ak, int64_t& bf, int64_t& bk) {
    af = 0;
    ak = int64_t(s) * kBK;
    bf = 0;
    bk = ak;
  };
  auto none = [](float(&)[4][Cfg::NT][4]) {};
  pipeline<P, AT, BT>(smem, (K + kBK - 1) / kBK, 1 << 30, la, lb, next, none, acc);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
  for (int mt = 0; mt < 4; ++mt)
    for (int nt = 0; nt < Cfg::NT; ++nt)
      for (int i = 0; i < 4; ++i) {
        const int r = wm * 64 + mt * 16 + (lane >> 2) + (i >= 2 ? 8 : 0);
        const int c = wn * Cfg::NT * 8 + nt * 8 + 2 * (lane & 3) + (i & 1);
        if (r < M && c < N) out[r * N + c] = acc[mt][nt][i];
      }
}

// The same through the wgmma pipeline (bf16 only; BN = 256, 64-deep stages).
template <bool AT, bool BT>
__global__ void __launch_bounds__(kThreads, 1)
    wg_tile_kernel(const void* A, const void* B, int M, int N, int K, int64_t lda, int64_t ldb, const int32_t* amap,
                   const int32_t* bmap, int veca, int vecb, float* out) {
  extern __shared__ __align__(128) char smem[];
  WgLoader<AT, kBM> la;
  la.op.base = A, la.op.ld = lda, la.op.map = amap, la.op.rows = AT ? K : M, la.op.cont = AT ? M : K, la.op.vec = veca;
  WgLoader<BT, kWgBN> lb;
  lb.op.base = B, lb.op.ld = ldb, lb.op.map = bmap, lb.op.rows = BT ? K : N, lb.op.cont = BT ? N : K, lb.op.vec = vecb;
  float acc[1][32][4];
  auto next = [&](int s, int64_t& af, int64_t& ak, int64_t& bf, int64_t& bk) {
    af = 0;
    ak = int64_t(s) * kWgBK;
    bf = 0;
    bk = ak;
  };
  auto none = [](float(&)[1][32][4]) {};
  wg_pipeline<AT, BT>(smem, (K + kWgBK - 1) / kWgBK, 1 << 30, la, lb, next, none, acc);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int j = 0; j < 32; ++j)
    for (int i = 0; i < 4; ++i) {
      const int r = warp * 16 + (lane >> 2) + (i >= 2 ? 8 : 0);
      const int c = j * 8 + 2 * (lane & 3) + (i & 1);
      if (r < M && c < N) out[r * N + c] = acc[0][j][i];
    }
}

static uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float from_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

template <int SRC, bool AT, bool BT, bool WG = false>
static bool run(const char* name, int M, int N, int K, bool gather, bool pad, std::mt19937& gen) {
  constexpr int P = planes_of<SRC>();
  using Cfg = TileCfg<P>;
  // stored shapes (rows × ld); with gather, the stored arrays have extra rows, read through a map
  const int a_rows = (AT ? K : M) + (gather ? 7 : 0), b_rows = (BT ? K : N) + (gather ? 5 : 0);
  const int64_t lda = (AT ? M : K) + (pad ? 3 : 0), ldb = (BT ? N : K) + (pad ? 3 : 0);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> a(a_rows * lda), b(b_rows * ldb);
  for (auto& x : a) x = nd(gen);
  for (auto& x : b) x = nd(gen);
  if (SRC == kSrcBf16) {
    for (auto& x : a) x = from_bf16(to_bf16(x));
    for (auto& x : b) x = from_bf16(to_bf16(x));
  }
  std::vector<int32_t> amap(AT ? K : M), bmap(BT ? K : N);
  for (size_t i = 0; i < amap.size(); ++i) amap[i] = gather ? int32_t((i * 5 + 3) % a_rows) : int32_t(i);
  for (size_t i = 0; i < bmap.size(); ++i) bmap[i] = gather ? int32_t((i * 7 + 1) % b_rows) : int32_t(i);
  // reference: A(m,k) · B(k,n)
  auto A = [&](int m, int k) { return double(AT ? a[amap[k] * lda + m] : a[amap[m] * lda + k]); };
  auto B = [&](int k, int n) { return double(BT ? b[bmap[k] * ldb + n] : b[bmap[n] * ldb + k]); };
  std::vector<double> ref(size_t(M) * N, 0.0);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += A(m, k) * B(k, n);
      ref[size_t(m) * N + n] = s;
    }
  void *da, *db;
  int32_t *dam = nullptr, *dbm = nullptr;
  float* dout;
  const size_t es = SRC == kSrcBf16 ? 2 : 4;
  CK(cudaMalloc(&da, a.size() * es));
  CK(cudaMalloc(&db, b.size() * es));
  CK(cudaMalloc(&dout, size_t(M) * N * 4));
  CK(cudaMemset(dout, 0xff, size_t(M) * N * 4));  // NaN poison: every element must be written
  if (SRC == kSrcBf16) {
    std::vector<uint16_t> ha(a.size()), hb(b.size());
    for (size_t i = 0; i < a.size(); ++i) ha[i] = to_bf16(a[i]);
    for (size_t i = 0; i < b.size(); ++i) hb[i] = to_bf16(b[i]);
    CK(cudaMemcpy(da, ha.data(), ha.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice));
  } else {
    CK(cudaMemcpy(da, a.data(), a.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, b.data(), b.size() * 4, cudaMemcpyHostToDevice));
  }
  if (gather) {
    CK(cudaMalloc(&dam, amap.size() * 4));
    CK(cudaMalloc(&dbm, bmap.size() * 4));
    CK(cudaMemcpy(dam, amap.data(), amap.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dbm, bmap.data(), bmap.size() * 4, cudaMemcpyHostToDevice));
  }
  // vector loads need rows aligned to 16 bytes (8 bf16 / 4 floats)
  const int64_t align = SRC == kSrcBf16 ? 8 : 4;
  const int veca = !pad && lda % align == 0, vecb = !pad && ldb % align == 0;
  if constexpr (WG) {
    auto k = wg_tile_kernel<AT, BT>;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, kWgSmemBytes));
    k<<<1, kThreads, kWgSmemBytes>>>(da, db, M, N, K, lda, ldb, dam, dbm, veca, vecb, dout);
  } else {
    auto k = tile_kernel<SRC, AT, BT>;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM_BYTES));
    k<<<1, kThreads, Cfg::SMEM_BYTES>>>(da, db, M, N, K, lda, ldb, dam, dbm, veca, vecb, dout);
  }
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<float> out(size_t(M) * N);
  CK(cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) finite = false;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  const double rel = std::sqrt(num / den);
  const double tol = SRC == kSrcBf16 ? 1e-5 : 1e-6;
  const bool ok = finite && rel <= tol;
  std::printf("%-4s %-32s M=%3d N=%3d K=%3d gather=%d vec=%d%d  rel %.2e  %s\n", ok ? "ok" : "FAIL", name, M, N, K,
              gather, veca, vecb, rel, ok ? "" : (finite ? "(too large)" : "(unwritten or non-finite output)"));
  cudaFree(da);
  cudaFree(db);
  cudaFree(dout);
  if (dam) cudaFree(dam);
  if (dbm) cudaFree(dbm);
  return ok;
}

int main(int argc, char** argv) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device\n");
    return 2;
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  std::printf("device: %s (sm_%d%d)\n", p.name, p.major, p.minor);
  std::mt19937 gen(1234);
  bool ok = true;
  const bool only_wg = argc > 1 && std::strcmp(argv[1], "--wgmma") == 0;
  for (int variant = 0; variant < 3; ++variant) {
    const bool gather = variant >= 1, pad = variant == 2;
    ok &= run<kSrcBf16, false, false, true>("wgmma A[m][k] B[n][k] (logits)", 128, 256, 192, gather, pad, gen);
    ok &= run<kSrcBf16, false, false, true>("wgmma A[m][k] B[n][k] (logits)", 100, 201, 77, gather, pad, gen);
    ok &= run<kSrcBf16, false, true, true>("wgmma A[m][k] B[k][n] (dE)", 128, 256, 128, gather, pad, gen);
    ok &= run<kSrcBf16, false, true, true>("wgmma A[m][k] B[k][n] (dE)", 77, 250, 45, gather, pad, gen);
    ok &= run<kSrcBf16, true, true, true>("wgmma A[k][m] B[k][n] (dC)", 128, 256, 256, gather, pad, gen);
    ok &= run<kSrcBf16, true, true, true>("wgmma A[k][m] B[k][n] (dC)", 111, 199, 50, gather, pad, gen);
  }
  if (only_wg) {
    std::printf("%s\n", ok ? "SELFTEST PASS" : "SELFTEST FAIL");
    return ok ? 0 : 1;
  }
  for (int variant = 0; variant < 3; ++variant) {
    const bool gather = variant >= 1, pad = variant == 2;
    // full tiles and ragged ones; K not a multiple of the 32-deep stage
    ok &= run<kSrcBf16, false, false>("bf16 A[m][k] B[n][k] (logits)", 128, 256, 96, gather, pad, gen);
    ok &= run<kSrcBf16, false, false>("bf16 A[m][k] B[n][k] (logits)", 100, 201, 77, gather, pad, gen);
    ok &= run<kSrcBf16, false, true>("bf16 A[m][k] B[k][n] (dE)", 128, 256, 64, gather, pad, gen);
    ok &= run<kSrcBf16, false, true>("bf16 A[m][k] B[k][n] (dE)", 77, 250, 45, gather, pad, gen);
    ok &= run<kSrcBf16, true, true>("bf16 A[k][m] B[k][n] (dC)", 128, 256, 128, gather, pad, gen);
    ok &= run<kSrcBf16, true, true>("bf16 A[k][m] B[k][n] (dC)", 111, 199, 50, gather, pad, gen);
    ok &= run<kSrcF32, false, false>("fp32x3 A[m][k] B[n][k] (logits)", 128, 128, 96, gather, pad, gen);
    ok &= run<kSrcF32, false, false>("fp32x3 A[m][k] B[n][k] (logits)", 99, 101, 37, gather, pad, gen);
    ok &= run<kSrcF32, false, true>("fp32x3 A[m][k] B[k][n] (dE)", 128, 128, 64, gather, pad, gen);
    ok &= run<kSrcF32, true, true>("fp32x3 A[k][m] B[k][n] (dC)", 128, 128, 96, gather, pad, gen);
    ok &= run<kSrcF32, true, true>("fp32x3 A[k][m] B[k][n] (dC)", 70, 90, 33, gather, pad, gen);
  }
  std::printf("%s\n", ok ? "SELFTEST PASS" : "SELFTEST FAIL");
  return ok ? 0 : 1;
}
