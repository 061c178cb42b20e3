// CUDA implementation of the fused linear + label-smoothed cross-entropy (same semantics
// as linear_ce_cpu.cc; the dispatcher linear_ce.cc validated the arguments).
//
// Two GEMM engines: bf16 calls take the cuBLAS path by default (Job::run_blas: on Hopper our
// logit kernel, linear_ce_tma.cuh, computes the statistics and bf16 gradient blocks from logits
// in registers, and cuBLAS runs dE and dC; elsewhere cuBLAS GEMMs fill an fp32 logit slab for
// the row kernels of linear_ce_blas.cuh); fp32 calls, tile skipping and mostly-ignored batches
// take the fused kernels described below (impl 'fused').
//
// A call, with Nv valid tokens (target ≠ ignore_index):
//   0. rank-1 smoothing terms (no softcap): c̄ = Σ_v C_v, Σ_v s_iv = (E_i·c̄ + Σb)/T, and for
//      gradients r = Σ_i w_i E_i — small float64 reductions.
//   1. logsumexp pass: tensor-core tiles of E·Cᵀ (rows × vocabulary), online logsumexp in
//      registers, per-(vocabulary split, row) partials merged in a fixed order → lse,
//      per-token loss. Logits exist only in registers.                           2·Nv·D·V
//   2. gradients, streamed mode (default): the logits are recomputed block by block. For an
//      Rb × Wb block (32 MiB of bf16 by default, workspaceBytes sets it) one kernel writes
//      G = w·(softmax − q)·κ, then one launch runs both GEMMs,
//        dE[block rows] += G·C[block cols]   and   dC[block cols] += Gᵀ·E[block rows],
//      in fp32 (plain read-modify-write: every output tile has one owner per launch).
//                                                                      2·Nv·D·V + 4·Nv·D·V
//      Chunked mode (workspaceBytes ≥ min(1024, Nv)·V·4): pass 1 runs per chunk of Rc rows and
//      also stores the chunk's logits (fp32, Rc × V); they become G in place and feed the
//      same two GEMMs, so the logits are computed once.                             6·Nv·D·V
//   Tile skipping (optional, streamed mode, no softcap): gradient tiles whose entries are
//   all below a threshold are left out of both GEMMs (the ε/V term stays exact, rank-1).
// Extra device memory: O(N + V + D) plus the gradient block (or chunk) — never N × V.
// Every kernel is deterministic (fixed reduction orders, no floating-point atomics), so
// results are bitwise reproducible; the `deterministic` option is therefore always met.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "../common/status.h"
#include "../cuda/cublas.cuh"
#include "../cuda/runtime.cuh"
#include "linear_ce.h"
#include "linear_ce_blas.cuh"
#include "linear_ce_kernels.cuh"
#include "linear_ce_tma.cuh"

namespace calib {
namespace {

using namespace calib::cu;
using namespace calib::lce;

thread_local const calib_lce_cuda_options* t_options = nullptr;

#define CU_TRY(call)                                        \
  do {                                                      \
    cudaError_t e_ = (call);                                \
    if (e_ != cudaSuccess) return cuda_fail(err, e_, #call); \
  } while (0)
#define LAUNCHED(what)                                      \
  do {                                                      \
    cudaError_t e_ = cudaGetLastError();                    \
    if (e_ != cudaSuccess) return cuda_fail(err, e_, what); \
  } while (0)

constexpr int64_t kDefaultBlockBytes = int64_t(32) << 20;
// cuBLAS path: the default fp32 logit slab (with the O(N+V+D) rest, under 64 MiB at
// N = 8192, D = 2304, V = 256000) and cuBLAS's workspace, taken from the same arena.
constexpr int64_t kDefaultSlabBytes = int64_t(56) << 20;
constexpr int64_t kBlasWorkspaceSmall = int64_t(4) << 20;
constexpr int64_t kBlasWorkspaceLarge = int64_t(32) << 20;

// One cuBLAS handle for the process, made on first use (under the engine mutex). A library
// that cannot be loaded leaves the handle null and `auto` takes the fused kernels.
blas::Handle blas_handle(char* msg) {
  static bool tried = false;
  static blas::Handle h = nullptr;
  static char why[CALIB_ERRLEN] = "";
  if (!tried) {
    tried = true;
    if (blas::create(&h, why) != CALIB_OK) h = nullptr;
  }
  if (msg) std::snprintf(msg, CALIB_ERRLEN, "%s", why);
  return h;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, x)); }
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class... Args>
calib_status big_smem(void (*kernel)(Args...), int bytes, char* err) {
  static std::vector<const void*> done;  // under the engine mutex
  const void* k = reinterpret_cast<const void*>(kernel);
  if (std::find(done.begin(), done.end(), k) != done.end()) return CALIB_OK;
  CU_TRY(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done.push_back(k);
  return CALIB_OK;
}

// Vocabulary splits of the logsumexp pass: fill whole waves of `cap` resident CTAs.
int choose_splits(int64_t row_tiles, int ntiles, int cap) {
  int best = std::min(ntiles, 1024);
  double best_eff = -1;
  for (int s = 1; s <= std::min(ntiles, 1024); ++s) {
    const int64_t tot = row_tiles * s;
    if (tot < cap && s < ntiles) continue;
    const double waves = std::ceil(double(tot) / cap);
    const double per = double(ntiles) / s;
    const double eff = tot / (waves * cap) * (per / std::ceil(per));
    if (eff > best_eff + 1e-6) {
      best_eff = eff;
      best = s;
    }
  }
  return best;
}

// Vocabulary splits of logit_tma_kernel (one CTA per SM): the fewest splits that minimize
// waves × tiles per CTA, at most 64 (statistics partials take splits × N × 16 bytes).
int tma_splits(int64_t row_tiles, int64_t ntiles, int sms) {
  int best = 1;
  int64_t best_cost = -1;
  for (int s = 1; s <= std::min<int64_t>(64, ntiles); ++s) {
    const int64_t cost = ceil_div(row_tiles * s, sms) * ceil_div(ntiles, s);
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best = s;
  }
  return best;
}

struct Job {
  // problem (device pointers)
  int64_t N = 0, D = 0, V = 0;
  bool bf16 = false;
  const void* e = nullptr;
  const void* c = nullptr;
  const float* bias = nullptr;
  const int32_t* targets = nullptr;
  const int32_t* rows = nullptr;
  const float* w = nullptr;
  int64_t count = 0;
  double eps = 0, T = 1;
  float inv_t = 1, cap = 0;
  bool grad = false, dense = false, rank1 = false;
  float skip_thr = 0;
  int64_t workspace = 0;
  float* lse_valid = nullptr;
  double* row_loss = nullptr;
  float* lse_out = nullptr;
  float* dE = nullptr;
  float* dC = nullptr;
  float* dbias = nullptr;
  int vec_e = 0, vec_c = 0;
  bool wg = false;  // bf16 on Hopper: wgmma kernels (else mma.sync)
  bool blas = false;  // bf16: GEMMs by cuBLAS through an fp32 logit slab (else the fused kernels)
  // plan
  int planes = 1, bn = 256, mode = 0, splits = 1, ntiles = 0, ldf = 0;
  int64_t Rb = 0, Wb = 0, Rc = 0, Vp = 0, lse_rows = 0;
  int ncpart = 0, nrpart = 0;
  // scratch
  double* cbar_d = nullptr;
  float* cbar_f = nullptr;
  double* bsum = nullptr;
  double* s_rank1 = nullptr;
  double* cpart = nullptr;
  double* rpart = nullptr;
  float* rvec_f = nullptr;
  double* wsum = nullptr;
  float* part_m = nullptr;
  float* part_l = nullptr;
  double* part_s = nullptr;
  float* tgt = nullptr;
  void* G = nullptr;
  uint8_t* flags = nullptr;
  float* gpart = nullptr;
  float* S = nullptr;
  unsigned long long* skipped = nullptr;
  // cuBLAS path: slab of Rs token rows × Ws vocabulary columns (ldX floats per row)
  int64_t Rs = 0, Ws = 0, ldX = 0, blas_ws_bytes = 0;
  int32_t* inv = nullptr;
  float* X = nullptr;
  void* blas_ws = nullptr;
  // Logits in registers (logit_tma_kernel, Hopper): the statistics pass of streamed and
  // forward-only calls, and the gradient blocks of streamed calls, which are then bf16 (the slab
  // holds Rs rows × Ws bf16 columns: ldX = Ws / 2 floats).
  bool tma_ok = false, tma = false, packed = false;
  float* tmax = nullptr;  // packed chunked mode: each chunk row's maximum per 256-wide tile
  int tma_pair = 2, grad_splits = 1;

  // cuBLAS path. With a slab of ≥ min(1024, N) whole rows (a large workspaceBytes) the logits
  // are computed once per row chunk (chunked, 6·N·D·V); otherwise the slab holds all rows ×
  // Ws columns (fewer rows only when N is huge) and the logits are computed twice: once for
  // the logsumexp, once for G (streamed, 8·N·D·V). Ignored tokens' rows are computed and
  // zeroed, so `auto` takes this path only when at least a third of the tokens are valid.
  void plan_blas(const DeviceInfo& dev) {
    const int64_t Vpad = round_up(V, 256), rows_all = std::max<int64_t>(N, 1);
    const int64_t budget = workspace > 0 ? workspace : kDefaultSlabBytes;
    mode = !grad ? 0 : (budget >= std::min<int64_t>(1024, rows_all) * Vpad * 4 ? 2 : 1);
    const char* force = std::getenv("CALIB_MODE");  // "streamed": no chunks whatever the budget (benchmarks)
    if (mode == 2 && force && std::strcmp(force, "streamed") == 0) mode = 1;
    // Chunked mode keeps its logits: packed bf16 by the logit kernel (no softcap), else fp32.
    // CALIB_PACKED=0 keeps the fp32 slab (benchmarks).
    const char* pk = std::getenv("CALIB_PACKED");
    packed = tma_ok && mode == 2 && cap == 0.f && !(pk && pk[0] == '0');
    tma = tma_ok && (mode != 2 || packed);
    const int64_t unit = tma ? 2 : 4;  // bytes per slab element: bf16 G or packed logits, or fp32 logits
    if (mode == 2) {
      const int64_t row_bytes = packed ? Vpad * 2 + ceil_div(V, kLtBN) * 4 : Vpad * 4;  // + tile maxima
      Rs = std::min<int64_t>(rows_all, budget / row_bytes);
      if (Rs < rows_all) Rs = Rs / kBM * kBM;
      Ws = V, ldX = packed ? Vpad / 2 : Vpad;
    } else {
      int64_t W = budget / (unit * rows_all) / 256 * 256;
      Rs = rows_all;
      if (W < 512) {
        W = 512;
        Rs = std::min<int64_t>(rows_all, std::max<int64_t>(kBM, budget / (unit * W) / kBM * kBM));
      }
      Ws = std::min<int64_t>(W, Vpad);
      ldX = tma ? Ws / 2 : Ws;
    }
    blas_ws_bytes = budget >= (int64_t(256) << 20) ? kBlasWorkspaceLarge : kBlasWorkspaceSmall;
    // CALIB_TMA_PAIR (1|2) and CALIB_TMA_SPLITS (statistics pass) override the plan (benchmarks)
    const char* pe = std::getenv("CALIB_TMA_PAIR");
    const char* se = std::getenv("CALIB_TMA_SPLITS");
    tma_pair = pe && pe[0] == '1' ? 1 : 2;
    const int64_t stat_rows = packed ? Rs : rows_all;  // rows per statistics launch
    splits = !tma ? 0
             : se ? static_cast<int>(clamp64(std::atoll(se), 1, ceil_div(V, kLtBN)))
                  : tma_splits(round_up(ceil_div(stat_rows, kBM), tma_pair), ceil_div(V, kLtBN), dev.sms);
    if (tma && mode == 1) grad_splits = tma_splits(round_up(ceil_div(Rs, kBM), tma_pair), ceil_div(Ws, kLtBN), dev.sms);
  }

  void plan(const DeviceInfo& dev) {
    if (blas) return plan_blas(dev);
    planes = bf16 ? 1 : 3;
    bn = planes == 1 ? TileCfg<1>::BN : TileCfg<3>::BN;
    ntiles = static_cast<int>(ceil_div(V, bn));
    Vp = round_up(V, 8);
    const int64_t unit = planes == 1 ? 2 : 4;
    const int64_t rows_avail = round_up(std::max<int64_t>(count, 1), kBM);
    // Chunked mode needs chunks of ≥ 1024 rows (or all rows): with fewer, its dE GEMM has
    // too few tiles (Rc/128 × D/256) for the GPU and a larger streamed block is faster.
    const int64_t min_rows = std::min<int64_t>(1024, rows_avail);
    mode = !grad ? 0 : (workspace >= min_rows * Vp * 4 ? 2 : 1);
    lse_rows = count;
    if (mode == 2) {
      Rc = clamp64(workspace / (Vp * 4) / kBM * kBM, kBM, rows_avail);
      lse_rows = std::min(Rc, count);
    } else if (mode == 1) {
      const int64_t budget = workspace > 0 ? workspace : kDefaultBlockBytes;
      const int64_t cols_avail = round_up(V, bn);
      const int64_t side = static_cast<int64_t>(std::sqrt(double(budget) / unit));
      Rb = clamp64(side / kBM * kBM, kBM, std::min<int64_t>(rows_avail, 256 * kBM));
      Wb = clamp64(budget / (unit * Rb) / bn * bn, bn, std::min<int64_t>(cols_avail, 256 * int64_t(bn)));
      Rb = clamp64(budget / (unit * Wb) / kBM * kBM, kBM, std::min<int64_t>(rows_avail, 256 * kBM));
      ldf = static_cast<int>(Wb / bn);
    }
    splits = choose_splits(ceil_div(std::max<int64_t>(lse_rows, 1), kBM), ntiles, dev.sms);
  }

  void layout(Layout& L) {
    if (rank1) {
      ncpart = static_cast<int>(ceil_div(V, 1024));
      cbar_d = L.take<double>(D);
      cbar_f = L.take<float>(D);
      bsum = L.take<double>(1);
      s_rank1 = L.take<double>(count);
      cpart = L.take<double>(size_t(ncpart) * D);
      if (grad && !blas) {
        nrpart = static_cast<int>(ceil_div(count, 256));
        rpart = L.take<double>(size_t(nrpart) * D);
        rvec_f = L.take<float>(D);
        wsum = L.take<double>(1);
      }
    }
    if (blas) {
      inv = L.take<int32_t>(std::max<int64_t>(N, 1));
      // running max and Σexp of each valid row, or logit_tma_kernel's partials per (split, valid
      // row), which live in the slab when they fit (that forward leaves the slab unused)
      const size_t np = size_t(std::max(splits, 1)) * count, slab = size_t(Rs) * ldX;
      const bool in_slab = tma && !packed && np * (dense ? 4 : 2) <= slab;
      if (!in_slab) {
        part_m = L.take<float>(np);
        part_l = L.take<float>(np);
        if (dense) part_s = L.take<double>(np);
      }
      tgt = L.take<float>(count);
      if (packed) tmax = L.take<float>(size_t(Rs) * ceil_div(V, kLtBN));
      X = L.take<float>(slab);
      if (in_slab && X) {
        part_s = dense ? reinterpret_cast<double*>(X) : nullptr;
        part_m = X + (dense ? 2 * np : 0);
        part_l = part_m + np;
      }
      blas_ws = L.take<char>(blas_ws_bytes);
      if (dbias) gpart = L.take<float>(size_t(ceil_div(Rs, kBM)) * (Ws + Ws / 2));
      skipped = L.take<unsigned long long>(1);
      return;
    }
    part_m = L.take<float>(size_t(splits) * lse_rows);
    part_l = L.take<float>(size_t(splits) * lse_rows);
    if (dense) part_s = L.take<double>(size_t(splits) * lse_rows);
    tgt = L.take<float>(lse_rows);
    const int64_t unit = planes == 1 ? 2 : 4;
    if (mode == 1) {
      G = L.take<char>(size_t(Rb) * Wb * unit);
      flags = L.take<uint8_t>(size_t(Rb / kBM) * ldf);
      if (dbias) gpart = L.take<float>(size_t(Rb / kBM) * Wb);
    } else if (mode == 2) {
      S = L.take<float>(size_t(Rc) * Vp);
      if (dbias) gpart = L.take<float>(size_t(Rc / kBM) * Vp);
    }
    skipped = L.take<unsigned long long>(1);
  }


  calib_status lse_pass(int64_t row0, int64_t nrows, float* S_out, int64_t ldS, char* err) {
    LseParams p{};
    p.e = e, p.c = c, p.bias = bias, p.targets = targets, p.rows = rows;
    p.row0 = row0, p.nrows = nrows, p.D = D, p.V = V;
    p.ntiles = ntiles, p.splits = splits, p.inv_t = inv_t, p.cap = cap, p.vec_e = vec_e, p.vec_c = vec_c;
    p.part_m = part_m, p.part_l = part_l, p.part_s = part_s, p.ldp = lse_rows, p.tgt = tgt;
    p.S = S_out, p.ldS = ldS;
    const dim3 grid(static_cast<unsigned>(ceil_div(nrows, kBM)), static_cast<unsigned>(splits));
    if (bf16 && wg) {
      constexpr int sm = Frag<1, true>::SMEM;
      auto k = dense ? lse_kernel<kSrcBf16, true, true> : lse_kernel<kSrcBf16, false, true>;
      if (calib_status st = big_smem(k, sm, err)) return st;
      k<<<grid, kThreads, sm>>>(p);
    } else if (bf16) {
      constexpr int sm = Frag<1, false>::SMEM;
      auto k = dense ? lse_kernel<kSrcBf16, true, false> : lse_kernel<kSrcBf16, false, false>;
      if (calib_status st = big_smem(k, sm, err)) return st;
      k<<<grid, kThreads, sm>>>(p);
    } else {
      constexpr int sm = Frag<3, false>::SMEM;
      auto k = dense ? lse_kernel<kSrcF32, true, false> : lse_kernel<kSrcF32, false, false>;
      if (calib_status st = big_smem(k, sm, err)) return st;
      k<<<grid, kThreads, sm>>>(p);
    }
    LAUNCHED("logsumexp kernel");
    MergeParams q{};
    q.part_m = part_m, q.part_l = part_l, q.part_s = part_s, q.ldp = lse_rows, q.splits = splits;
    q.row0 = row0, q.nrows = nrows, q.tgt = tgt, q.s_rank1 = rank1 ? s_rank1 : nullptr, q.rows = rows;
    q.lse_valid = lse_valid, q.row_loss = row_loss, q.lse_out = lse_out;
    q.T = T, q.eps = eps, q.V = double(V), q.dense = dense ? 1 : 0;
    merge_kernel<<<static_cast<unsigned>(ceil_div(nrows, 256)), 256>>>(q);
    LAUNCHED("merge kernel");
    return CALIB_OK;
  }

  calib_status grad_launch(const void* Gp, int64_t ldG, int64_t r0, int64_t nr, int64_t v0, int64_t nc,
                           const uint8_t* fl, bool init_e, bool init_c, char* err) {
    GradParams p{};
    p.G = Gp, p.ldG = ldG, p.nrows = nr, p.ncols = nc, p.flags = fl, p.ldf = ldf;
    p.e = e, p.c = c, p.rows = rows, p.r0 = r0, p.v0 = v0, p.D = D;
    p.vec_e = vec_e, p.vec_c = vec_c, p.vec_g = 1;
    p.dE = dE, p.dC = dC, p.init_e = init_e, p.init_c = init_c;
    p.w = w, p.eta = static_cast<float>(eps / double(V));
    p.cbar_f = rank1 ? cbar_f : nullptr;
    p.rvec_f = rank1 ? rvec_f : nullptr;
    p.dtiles = static_cast<int>(ceil_div(D, bn));
    p.nn_tiles = static_cast<int>(ceil_div(nr, kBM)) * p.dtiles;
    const int tn_tiles = static_cast<int>(ceil_div(nc, kBM)) * p.dtiles;
    if (bf16 && wg) {
      constexpr int sm = Frag<1, true>::SMEM;
      if (calib_status st = big_smem(grad_kernel<1, true>, sm, err)) return st;
      grad_kernel<1, true><<<p.nn_tiles + tn_tiles, kThreads, sm>>>(p);
    } else if (bf16) {
      constexpr int sm = Frag<1, false>::SMEM;
      if (calib_status st = big_smem(grad_kernel<1, false>, sm, err)) return st;
      grad_kernel<1, false><<<p.nn_tiles + tn_tiles, kThreads, sm>>>(p);
    } else {
      constexpr int sm = Frag<3, false>::SMEM;
      if (calib_status st = big_smem(grad_kernel<3, false>, sm, err)) return st;
      grad_kernel<3, false><<<p.nn_tiles + tn_tiles, kThreads, sm>>>(p);
    }
    LAUNCHED("gradient GEMM kernel");
    return CALIB_OK;
  }

  calib_status bias_grad(const void* Gp, int64_t ldG, int64_t nr, int64_t v0, int64_t nc, bool init, char* err) {
    const double* ws = rank1 && !blas ? wsum : nullptr;  // the cuBLAS path's G holds the ε/V term
    const int nparts = static_cast<int>(ceil_div(nr, kBM));
    const dim3 grid(static_cast<unsigned>(ceil_div(nc, 256)), static_cast<unsigned>(nparts));
    if (bf16) gsum_partial_kernel<1><<<grid, 256>>>(Gp, ldG, nr, nc, kBM, gpart);
    else gsum_partial_kernel<3><<<grid, 256>>>(Gp, ldG, nr, nc, kBM, gpart);
    LAUNCHED("bias gradient kernel");
    gsum_final_kernel<<<static_cast<unsigned>(ceil_div(nc, 256)), 256>>>(gpart, nparts, nc, dbias + v0, init ? 1 : 0, ws,
                                                                        eps / double(V));
    LAUNCHED("bias gradient kernel");
    return CALIB_OK;
  }

  calib_status run_blas(char* err);
  calib_status tma_pass(int which, const CUtensorMap& me, const CUtensorMap& mc, int64_t r0, int64_t nr, int64_t v0,
                        int64_t nc, char* err);

  calib_status run(char* err) {
    const unsigned dblocks = static_cast<unsigned>(ceil_div(D, 256));
    CU_TRY(cudaMemsetAsync(skipped, 0, sizeof(unsigned long long)));
    if (rank1) {
      if (bf16) colsum_partial_kernel<kSrcBf16><<<dim3(dblocks, ncpart), 256>>>(c, D, nullptr, nullptr, V, 1024, cpart);
      else colsum_partial_kernel<kSrcF32><<<dim3(dblocks, ncpart), 256>>>(c, D, nullptr, nullptr, V, 1024, cpart);
      colsum_final_kernel<<<dblocks, 256>>>(cpart, ncpart, D, 1.0, cbar_d, cbar_f);
      if (bias) sum_kernel<<<1, 1024>>>(bias, V, bsum);
      const unsigned rb = static_cast<unsigned>(ceil_div(count, 8));
      if (bf16) rowdot_kernel<kSrcBf16><<<rb, 256>>>(e, D, rows, count, cbar_d, bias ? bsum : nullptr, inv_t, s_rank1);
      else rowdot_kernel<kSrcF32><<<rb, 256>>>(e, D, rows, count, cbar_d, bias ? bsum : nullptr, inv_t, s_rank1);
      if (grad && !blas) {
        if (bf16) colsum_partial_kernel<kSrcBf16><<<dim3(dblocks, nrpart), 256>>>(e, D, rows, w, count, 256, rpart);
        else colsum_partial_kernel<kSrcF32><<<dim3(dblocks, nrpart), 256>>>(e, D, rows, w, count, 256, rpart);
        colsum_final_kernel<<<dblocks, 256>>>(rpart, nrpart, D, -eps / double(V), nullptr, rvec_f);
        sum_kernel<<<1, 1024>>>(w, count, wsum);
      }
      LAUNCHED("smoothing term kernels");
    }
    if (blas) return run_blas(err);
    if (mode != 2)
      if (calib_status st = lse_pass(0, count, nullptr, 0, err)) return st;
    if (mode == 1) {
      for (int64_t r0 = 0; r0 < count; r0 += Rb) {
        const int64_t nr = std::min(Rb, count - r0);
        for (int64_t v0 = 0; v0 < V; v0 += Wb) {
          const int64_t nc = std::min(Wb, V - v0);
          GtileParams g{};
          g.e = e, g.c = c, g.bias = bias, g.targets = targets, g.rows = rows;
          g.r0 = r0, g.nrows = nr, g.v0 = v0, g.ncols = nc, g.D = D, g.V = V;
          g.inv_t = inv_t, g.cap = cap, g.q_target = static_cast<float>(1.0 - eps);
          g.q_dense = dense ? static_cast<float>(eps / double(V)) : 0.f;
          g.skip_thr = skip_thr, g.vec_e = vec_e, g.vec_c = vec_c;
          g.lse_valid = lse_valid, g.w = w, g.G = G, g.ldG = Wb, g.flags = flags, g.ldf = ldf, g.skipped = skipped;
          const dim3 grid(static_cast<unsigned>(ceil_div(nc, bn)), static_cast<unsigned>(ceil_div(nr, kBM)));
          if (bf16 && wg) {
            constexpr int sm = Frag<1, true>::SMEM;
            if (calib_status st = big_smem(gtile_kernel<kSrcBf16, true>, sm, err)) return st;
            gtile_kernel<kSrcBf16, true><<<grid, kThreads, sm>>>(g);
          } else if (bf16) {
            constexpr int sm = Frag<1, false>::SMEM;
            if (calib_status st = big_smem(gtile_kernel<kSrcBf16, false>, sm, err)) return st;
            gtile_kernel<kSrcBf16, false><<<grid, kThreads, sm>>>(g);
          } else {
            constexpr int sm = Frag<3, false>::SMEM;
            if (calib_status st = big_smem(gtile_kernel<kSrcF32, false>, sm, err)) return st;
            gtile_kernel<kSrcF32, false><<<grid, kThreads, sm>>>(g);
          }
          LAUNCHED("gradient tile kernel");
          stats().last_tiles += int64_t(grid.x) * grid.y;
          if (calib_status st = grad_launch(G, Wb, r0, nr, v0, nc, flags, v0 == 0, r0 == 0, err)) return st;
          if (dbias)
            if (calib_status st = bias_grad(G, Wb, nr, v0, nc, r0 == 0, err)) return st;
        }
      }
    } else if (mode == 2) {
      const int64_t ldG = planes == 1 ? 2 * Vp : Vp;
      for (int64_t r0 = 0; r0 < count; r0 += Rc) {
        const int64_t nr = std::min(Rc, count - r0);
        if (calib_status st = lse_pass(r0, nr, S, Vp, err)) return st;
        StoGParams q{};
        q.S = S, q.ldS = Vp, q.row0 = r0, q.nrows = nr, q.V = V, q.lse_valid = lse_valid, q.w = w;
        q.targets = targets, q.rows = rows, q.q_target = static_cast<float>(1.0 - eps);
        q.q_dense = dense ? static_cast<float>(eps / double(V)) : 0.f;
        q.cap = cap;
        if (bf16) s_to_g_kernel<1><<<static_cast<unsigned>(nr), 256>>>(q);
        else s_to_g_kernel<3><<<static_cast<unsigned>(nr), 256>>>(q);
        LAUNCHED("logits-to-gradient kernel");
        stats().last_tiles += ceil_div(nr, kBM) * ceil_div(V, bn);
        if (calib_status st = grad_launch(S, ldG, r0, nr, 0, V, nullptr, true, r0 == 0, err)) return st;
        if (dbias)
          if (calib_status st = bias_grad(S, ldG, nr, 0, V, r0 == 0, err)) return st;
      }
    }
    return CALIB_OK;
  }
};

// The cuBLAS path. With logits in registers (tma, Hopper): the statistics pass, then per block
// of Ws columns a bf16 G block and the two GEMMs (streamed), or per chunk of rows the statistics
// with packed logits, G in place and the two GEMMs (chunked, no softcap).
// With the fp32 slab: per block, cuBLAS writes the raw logits X = E·Cᵀ (fp32) into the slab, a
// row kernel folds them into the logsumexp state; for gradients, another row kernel turns them
// into bf16 G in place and cuBLAS runs dE[rows] (+)= G·C[cols] and dC[cols] (+)= Gᵀ·E[rows]
// (fp32 outputs; "+" from the second block on). Every output element has one writer per GEMM.
// Streamed mode packs 1.5 blocks of G per slab: after block A (Ws columns) became bf16 in the
// first half of each slab row, block B (Ws/2 columns) takes the free second half, and its G
// lands right after A's. The two gradient GEMMs then see K (or M) = 1.5·Ws, which cuts dE's
// fp32 read-modify-write traffic, N·D·8 bytes per GEMM, by a third.
calib_status Job::run_blas(char* err) {
  blas::Handle h = blas_handle(nullptr);
  if (calib_status st = blas::set_workspace(h, blas_ws, size_t(blas_ws_bytes), err)) return st;
  inverse_rows_kernel<<<1, 1024>>>(rows, count, N, inv);
  LAUNCHED("inverse row map kernel");
  SlabParams p{};
  p.ldX = ldX, p.V = V, p.inv = inv, p.targets = targets, p.bias = bias, p.inv_t = inv_t, p.cap = cap;
  p.run_m = part_m, p.run_l = part_l, p.run_s = part_s, p.tgt = tgt, p.dense = dense ? 1 : 0;
  p.s_rank1 = rank1 ? s_rank1 : nullptr, p.lse_valid = lse_valid, p.row_loss = row_loss, p.lse_out = lse_out;
  p.T = T, p.eps = eps, p.w = w, p.q_target = static_cast<float>(1.0 - eps), p.q_dense = static_cast<float>(eps / double(V));
  const char* E8 = static_cast<const char*>(e);
  const char* C8 = static_cast<const char*>(c);
  const int64_t es = 2;
  const int Di = static_cast<int>(D);
  // cuBLAS takes a slow path when the vocabulary extent of a GEMM is not a multiple of 64 (seen at
  // V = 50257: ~100 TFLOP/s), so each GEMM runs as an aligned part plus a narrow tail.
  auto split = [](int64_t nc) { return nc > 64 && nc % 64 ? nc / 64 * 64 : nc; };
  // logits of rows [r0, r0+nr) × columns [v0, v0+nc) into the slab at float column `at`
  auto block = [&](int64_t r0, int64_t nr, int64_t v0, int64_t nc, int64_t at) -> calib_status {
    p.X = X + at, p.r0 = r0, p.nrows = nr, p.v0 = v0, p.ncols = nc;
    for (int64_t a = 0, b = split(nc); a < nc; a = b, b = nc)
      if (calib_status st = blas::gemm_rm(h, blas::kN, blas::kT, int(nr), int(b - a), Di, 1.f, E8 + r0 * D * es,
                                          blas::kBF16, Di, C8 + (v0 + a) * D * es, blas::kBF16, Di, 0.f, p.X + a,
                                          blas::kF32, int(ldX), err))
        return st;
    return CALIB_OK;
  };
  // row kernels: a warp per row for vocabulary blocks, a CTA per row for whole rows
  auto row_kernel = [&](bool stats_kernel, const char* what) -> calib_status {
    const bool wide = p.ncols >= 8192;
    const unsigned grid = static_cast<unsigned>(wide ? p.nrows : ceil_div(p.nrows, 8));
    if (stats_kernel) {
      if (wide) slab_stats_kernel<8><<<grid, 256>>>(p);
      else slab_stats_kernel<1><<<grid, 256>>>(p);
    } else {
      if (wide) slab_grad_kernel<8><<<grid, 256>>>(p);
      else slab_grad_kernel<1><<<grid, 256>>>(p);
    }
    LAUNCHED(what);
    return CALIB_OK;
  };
  auto stats_of = [&](bool first, bool last) {
    p.first = first, p.last = last;
    return row_kernel(true, "logit statistics kernel");
  };
  // dE[r0..] (+)= G·C[v0..v0+nc], dC[v0..] (+)= Gᵀ·E[r0..], dbias; G is the slab's bf16 view
  auto gemms = [&](int64_t r0, int64_t nr, int64_t v0, int64_t nc, bool add_e, bool add_c) -> calib_status {
    const int ldG = int(2 * ldX);
    const uint16_t* Gb = reinterpret_cast<const uint16_t*>(X);
    for (int64_t a = 0, b = split(nc); a < nc; a = b, b = nc) {
      const float be = add_e || a > 0 ? 1.f : 0.f;
      if (calib_status st = blas::gemm_rm(h, blas::kN, blas::kN, int(nr), Di, int(b - a), 1.f, Gb + a, blas::kBF16, ldG,
                                          C8 + (v0 + a) * D * es, blas::kBF16, Di, be, dE + r0 * D, blas::kF32, Di, err))
        return st;
      if (calib_status st = blas::gemm_rm(h, blas::kT, blas::kN, int(b - a), Di, int(nr), 1.f, Gb + a, blas::kBF16, ldG,
                                          E8 + r0 * D * es, blas::kBF16, Di, add_c ? 1.f : 0.f, dC + (v0 + a) * D,
                                          blas::kF32, Di, err))
        return st;
    }
    ++stats().last_tiles;
    if (dbias) return bias_grad(X, 2 * ldX, nr, v0, nc, !add_c, err);
    return CALIB_OK;
  };
  calib_status st;
  CUtensorMap me, mc;
  if (tma) {
    char why[CALIB_ERRLEN] = "";
    if (!tma_map_bf16(&me, e, N, D, D, kBM, why, sizeof why) || !tma_map_bf16(&mc, c, V, D, D, kLtBN / 2, why, sizeof why))
      return fail(err, CALIB_ERR_RUNTIME, "logit pass: %s", why);
  }
  if (mode == 2 && packed) {  // per chunk: statistics + packed logits, → G in place, the two GEMMs
    PackedParams g{};
    g.P = reinterpret_cast<uint16_t*>(X), g.ldP = 2 * ldX, g.tmax = tmax, g.ldT = ceil_div(V, kLtBN), g.V = V;
    g.inv = inv, g.targets = targets, g.lse_valid = lse_valid, g.w = w;
    g.q_target = static_cast<float>(1.0 - eps), g.q_dense = static_cast<float>(eps / double(V));
    for (int64_t r0 = 0; r0 < N; r0 += Rs) {
      const int64_t nr = std::min(Rs, N - r0);
      if ((st = tma_pass(kStore, me, mc, r0, nr, 0, V, err))) return st;
      g.r0 = r0;
      packed_grad_kernel<<<static_cast<unsigned>(nr), 256>>>(g);
      LAUNCHED("packed logits-to-gradient kernel");
      if ((st = gemms(r0, nr, 0, V, false, r0 > 0))) return st;
    }
    return CALIB_OK;
  }
  if (mode == 2) {
    for (int64_t r0 = 0; r0 < N; r0 += Rs) {
      const int64_t nr = std::min(Rs, N - r0);
      if ((st = block(r0, nr, 0, V, 0)) || (st = stats_of(true, true)) ||
          (st = row_kernel(false, "logits-to-gradient kernel")) || (st = gemms(r0, nr, 0, V, false, r0 > 0)))
        return st;
    }
    return CALIB_OK;
  }
  if (tma) {
    if ((st = tma_pass(kStats, me, mc, 0, N, 0, V, err))) return st;
  } else {
    for (int64_t r0 = 0; r0 < N; r0 += Rs)
      for (int64_t v0 = 0; v0 < V; v0 += Ws) {
        const int64_t nr = std::min(Rs, N - r0), nc = std::min(Ws, V - v0);
        if ((st = block(r0, nr, v0, nc, 0)) || (st = stats_of(v0 == 0, v0 + nc >= V))) return st;
      }
  }
  if (mode == 0) return CALIB_OK;
  if (tma) {  // G blocks straight from the logit kernel, bf16, Rs × Ws
    for (int64_t r0 = 0; r0 < N; r0 += Rs)
      for (int64_t v0 = 0; v0 < V; v0 += Ws) {
        const int64_t nr = std::min(Rs, N - r0), nc = std::min(Ws, V - v0);
        if ((st = tma_pass(kGrad, me, mc, r0, nr, v0, nc, err)) || (st = gemms(r0, nr, v0, nc, v0 > 0, r0 > 0))) return st;
      }
    return CALIB_OK;
  }
  const int64_t half = Ws / 2;  // Ws is a multiple of 256
  for (int64_t r0 = 0; r0 < N; r0 += Rs)
    for (int64_t v0 = 0; v0 < V; v0 += Ws + half) {
      const int64_t nr = std::min(Rs, N - r0), na = std::min(Ws, V - v0), nb = std::min(half, V - v0 - na);
      if ((st = block(r0, nr, v0, na, 0)) || (st = row_kernel(false, "logits-to-gradient kernel"))) return st;
      if (nb > 0)
        if ((st = block(r0, nr, v0 + na, nb, half)) || (st = row_kernel(false, "logits-to-gradient kernel"))) return st;
      if ((st = gemms(r0, nr, v0, na + nb, v0 > 0, r0 > 0))) return st;
    }
  return CALIB_OK;
}

// One launch of logit_tma_kernel (see linear_ce_tma.cuh) over token rows [r0, r0+nr) ×
// vocabulary columns [v0, v0+nc): the statistics of all rows (then merged into lse, the row loss
// and lse_out), or a bf16 gradient block into the slab.
calib_status Job::tma_pass(int which, const CUtensorMap& me, const CUtensorMap& mc, int64_t r0, int64_t nr, int64_t v0,
                           int64_t nc, char* err) {
  LtParams q{};
  q.N = N, q.V = V, q.r0 = r0, q.nrows = nr, q.v0 = static_cast<int>(v0), q.ncols = static_cast<int>(nc);
  q.ksteps = static_cast<int>(ceil_div(D, 64)), q.ntiles = static_cast<int>(ceil_div(nc, kLtBN));
  q.splits = which == kGrad ? grad_splits : splits;
  q.inv = inv, q.targets = targets, q.bias = bias, q.inv_t = inv_t, q.cap = cap, q.pair = tma_pair;
  q.dense = dense ? 1 : 0, q.ldp = count, q.part_m = part_m, q.part_l = part_l, q.part_s = part_s, q.tgt = tgt;
  q.lse_valid = lse_valid, q.w = w, q.q_target = static_cast<float>(1.0 - eps), q.q_dense = static_cast<float>(eps / double(V));
  q.G = reinterpret_cast<uint16_t*>(X), q.ldG = 2 * ldX, q.tmax = tmax, q.ldT = ceil_div(V, kLtBN);
  auto kernel = which == kStore  ? logit_tma_kernel<kStore, false>  // packed: no softcap
                : which == kStats ? (cap > 0.f ? logit_tma_kernel<kStats, true> : logit_tma_kernel<kStats, false>)
                                  : (cap > 0.f ? logit_tma_kernel<kGrad, true> : logit_tma_kernel<kGrad, false>);
  if (calib_status st = big_smem(kernel, kLtSmemBytes, err)) return st;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(round_up(ceil_div(nr, kBM), tma_pair)), static_cast<unsigned>(q.splits));
  cfg.blockDim = dim3(kLtThreads);
  cfg.dynamicSmemBytes = kLtSmemBytes;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(tma_pair);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  CU_TRY(cudaLaunchKernelEx(&cfg, kernel, me, mc, q));
  LAUNCHED(which == kGrad ? "gradient block kernel (bulk copies)" : "logit statistics kernel (bulk copies)");
  if (which == kGrad) return CALIB_OK;
  MergeParams r{};
  r.part_m = part_m, r.part_l = part_l, r.part_s = part_s, r.ldp = count, r.splits = splits;
  if (which == kStore) r.row0 = r0, r.nrows = nr, r.inv = inv;  // the chunk's token rows
  else r.row0 = 0, r.nrows = count;
  r.tgt = tgt, r.s_rank1 = nullptr, r.rows = rows;
  r.lse_valid = lse_valid, r.row_loss = row_loss, r.lse_out = lse_out;
  r.T = T, r.eps = eps, r.V = double(V), r.dense = dense ? 1 : 0;
  merge_kernel<<<static_cast<unsigned>(ceil_div(r.nrows, 256)), 256>>>(r);
  LAUNCHED("merge kernel");
  return CALIB_OK;
}

// Fills the problem and options of a job from the arguments.
void describe(const calib_lce_args& a, Job& j) {
  j.N = a.n, j.D = a.d, j.V = a.v;
  j.bf16 = a.dtype == CALIB_BF16;
  j.eps = a.label_smoothing;
  j.T = a.temperature;
  j.inv_t = 1.0f / a.temperature;
  j.cap = a.softcap;
  j.grad = a.grad_e != nullptr;
  j.dense = a.softcap > 0 && a.label_smoothing > 0;
  j.rank1 = a.label_smoothing > 0 && !j.dense;
  j.workspace = a.workspace_bytes;
  float thr = t_options ? t_options->skip_threshold : 0.f;
  if (thr < 0) thr = j.bf16 ? std::ldexp(1.f, -12) : std::ldexp(1.f, -28);
  j.skip_thr = j.dense ? 0.f : thr;
}

// bf16 on Hopper runs the wgmma kernels unless CALIB_CUDA_GEMM=mma asks for mma.sync.
// CALIB_WG_MN_LBO=0|1 picks the descriptor convention of MN-major wgmma operands (the
// self-test on the GPU says which one the hardware uses; 1 follows the PTX ISA).
calib_status set_gemm(Job& j, const DeviceInfo& dev, char* err) {
  const char* env = std::getenv("CALIB_CUDA_GEMM");
  const bool mma = env && std::strcmp(env, "mma") == 0;
  j.wg = j.bf16 && dev.cc_major == 9 && !mma;
  // cuBLAS path: bf16 without tile skipping; `auto` also wants ≥ 1/3 of the tokens valid
  // (it computes ignored rows) and a loadable cuBLAS.
  const int impl = t_options ? t_options->gemm_impl : CALIB_LCE_GEMM_AUTO;
  if (impl == CALIB_LCE_GEMM_CUBLAS) {
    if (!j.bf16) return fail(err, CALIB_ERR_TYPE, "impl 'cublas' needs bfloat16 inputs (float32 runs the fused kernels)");
    if (j.skip_thr > 0) return fail(err, CALIB_ERR_TYPE, "tile skipping runs in the fused kernels: use impl 'fused' or 'auto'");
    char why[CALIB_ERRLEN];
    if (!blas_handle(why)) return fail(err, CALIB_ERR_DEVICE, "impl 'cublas': %s", why);
    j.blas = true;
  } else if (impl == CALIB_LCE_GEMM_AUTO) {
    j.blas = j.bf16 && j.skip_thr == 0 && j.count * 3 >= j.N && blas_handle(nullptr) != nullptr;
  } else if (impl != CALIB_LCE_GEMM_FUSED) {
    return fail(err, CALIB_ERR_TYPE, "unknown CUDA impl %d", impl);
  }
  if (j.blas) {  // Σ_v s is summed by the statistics kernel (no c̄ pass over C); G holds the ε/V term
    j.dense = j.eps > 0;
    j.rank1 = false;
    // Logits in registers (logit_tma_kernel) on Hopper when the copy engine can read E and C:
    // rows of 16-byte multiples, 16-byte aligned bases, N and V < 2^31 (int coordinates). CALIB_LOGITS=slab keeps the
    // logits in the fp32 slab (the earlier plan, for comparison).
    const char* env = std::getenv("CALIB_LOGITS");
    j.tma_ok = j.wg && j.D % 8 == 0 && aligned16(j.e) && aligned16(j.c) && j.N < (int64_t(1) << 31) && j.V < (int64_t(1) << 31) &&
               !(env && std::strcmp(env, "slab") == 0);
  }
  static int applied = -1;
  const char* lbo = std::getenv("CALIB_WG_MN_LBO");
  const int want = lbo && lbo[0] == '0' ? 0 : 1;
  if (j.wg && applied != want) {
    CU_TRY(cudaMemcpyToSymbol(g_wg_mn_lbo_is_block, &want, sizeof want));
    applied = want;
  }
  return CALIB_OK;
}

void set_vec(Job& j) {
  const int64_t mult = j.bf16 ? 8 : 4;
  j.vec_e = (j.D % mult == 0 && aligned16(j.e)) ? 1 : 0;
  j.vec_c = (j.D % mult == 0 && aligned16(j.c)) ? 1 : 0;
}

void record(const Job& j, size_t bytes) {
  calib_cuda_stats& s = stats();
  s.last_scratch_bytes = static_cast<int64_t>(bytes);
  s.scratch_peak_bytes = std::max<int64_t>(s.scratch_peak_bytes, static_cast<int64_t>(bytes));
  s.last_mode = j.mode;
  s.last_splits = j.splits;
  if (j.blas) {
    s.last_block_rows = j.Rs;
    s.last_block_cols = j.Ws;
  } else {
    s.last_block_rows = j.mode == 1 ? j.Rb : j.mode == 2 ? j.Rc : 0;
    s.last_block_cols = j.mode == 1 ? j.Wb : j.mode == 2 ? j.Vp : 0;
  }
  s.last_gemm = j.blas ? 2 : j.wg ? 1 : 0;
}

calib_status finish(const Job& j, char* err) {
  unsigned long long skipped = 0;
  CU_TRY(cudaMemcpy(&skipped, j.skipped, sizeof skipped, cudaMemcpyDeviceToHost));  // also synchronizes
  stats().last_tiles_skipped = static_cast<int64_t>(skipped);
  return CALIB_OK;
}

// Device allocations of a host-memory call, freed on every exit path.
struct DeviceBuffers {
  std::vector<void*> ptrs;
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  template <class T>
  calib_status alloc(T** out, size_t count, char* err) {
    *out = nullptr;
    if (count == 0) return CALIB_OK;
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, count * sizeof(T));
    if (e != cudaSuccess) {
      cudaGetLastError();
      std::snprintf(err, CALIB_ERRLEN, "cannot allocate %.1f MiB on the GPU for the call's arrays: %s",
                    count * sizeof(T) / 1048576.0, cudaGetErrorString(e));
      return CALIB_ERR_RUNTIME;
    }
    ptrs.push_back(p);
    *out = static_cast<T*>(p);
    return CALIB_OK;
  }
};

calib_status run_host(const calib_lce_args& a, LcePlan& plan, const DeviceInfo& dev, char* err) {
  const int64_t count = static_cast<int64_t>(plan.rows.size());
  plan.row_loss.assign(count, 0.0);
  stats().last_tiles = 0;
  stats().last_tiles_skipped = 0;
  if (count == 0) return CALIB_OK;  // the dispatcher zeroed the gradients and set lse to NaN
  Job j;
  describe(a, j);
  const size_t es = j.bf16 ? 2 : 4;
  DeviceBuffers db;
  char* ebuf;
  char* cbuf;
  float *bias = nullptr, *w = nullptr, *lse_valid, *dE = nullptr, *dC = nullptr, *dbias = nullptr;
  int32_t *targets, *rows;
  double* row_loss;
  calib_status st;
  if ((st = db.alloc(&ebuf, size_t(a.n) * a.d * es, err)) || (st = db.alloc(&cbuf, size_t(a.v) * a.d * es, err)) ||
      (a.bias && (st = db.alloc(&bias, a.v, err))) || (st = db.alloc(&targets, a.n, err)) ||
      (st = db.alloc(&rows, count, err)) || (st = db.alloc(&lse_valid, count, err)) ||
      (st = db.alloc(&row_loss, count, err)))
    return st;
  if (j.grad) {
    if ((st = db.alloc(&w, count, err)) || (st = db.alloc(&dE, size_t(a.n) * a.d, err)) ||
        (st = db.alloc(&dC, size_t(a.v) * a.d, err)) || (a.grad_bias && (st = db.alloc(&dbias, a.v, err))))
      return st;
  }
  std::vector<int32_t> rows32(plan.rows.begin(), plan.rows.end());
  CU_TRY(cudaMemcpy(ebuf, a.e, size_t(a.n) * a.d * es, cudaMemcpyHostToDevice));
  CU_TRY(cudaMemcpy(cbuf, a.c, size_t(a.v) * a.d * es, cudaMemcpyHostToDevice));
  if (bias) CU_TRY(cudaMemcpy(bias, a.bias, size_t(a.v) * 4, cudaMemcpyHostToDevice));
  CU_TRY(cudaMemcpy(targets, a.targets, size_t(a.n) * 4, cudaMemcpyHostToDevice));
  CU_TRY(cudaMemcpy(rows, rows32.data(), size_t(count) * 4, cudaMemcpyHostToDevice));
  if (j.grad) CU_TRY(cudaMemcpy(w, plan.weight.data(), size_t(count) * 4, cudaMemcpyHostToDevice));
  j.e = ebuf, j.c = cbuf, j.bias = bias, j.targets = targets, j.rows = rows, j.w = w, j.count = count;
  j.lse_valid = lse_valid, j.row_loss = row_loss, j.lse_out = nullptr;
  j.dE = dE, j.dC = dC, j.dbias = a.grad_bias ? dbias : nullptr;
  set_vec(j);
  if ((st = set_gemm(j, dev, err))) return st;
  if (j.grad && !j.blas) CU_TRY(cudaMemsetAsync(dE, 0, size_t(a.n) * a.d * 4));  // cuBLAS writes every row
  j.plan(dev);
  Layout measure(nullptr);
  j.layout(measure);
  char* base;
  if ((st = scratch(measure.used(), &base, err))) return st;
  Layout real(base);
  j.layout(real);
  record(j, measure.used());
  if ((st = j.run(err))) return st;
  if ((st = finish(j, err))) return st;
  CU_TRY(cudaMemcpy(plan.row_loss.data(), row_loss, size_t(count) * 8, cudaMemcpyDeviceToHost));
  if (a.lse) {
    std::vector<float> l(count);
    CU_TRY(cudaMemcpy(l.data(), lse_valid, size_t(count) * 4, cudaMemcpyDeviceToHost));
    for (int64_t k = 0; k < count; ++k) a.lse[plan.rows[k]] = l[k];
  }
  if (j.grad) {
    CU_TRY(cudaMemcpy(a.grad_e, dE, size_t(a.n) * a.d * 4, cudaMemcpyDeviceToHost));
    CU_TRY(cudaMemcpy(a.grad_c, dC, size_t(a.v) * a.d * 4, cudaMemcpyDeviceToHost));
    if (a.grad_bias) CU_TRY(cudaMemcpy(a.grad_bias, dbias, size_t(a.v) * 4, cudaMemcpyDeviceToHost));
  }
  return CALIB_OK;
}

calib_status run_device(const calib_lce_args& a, const DeviceInfo& dev, char* err) {
  const int64_t N = a.n;
  const bool grad = a.grad_e != nullptr;
  stats().last_tiles = 0;
  stats().last_tiles_skipped = 0;
  if (N > std::numeric_limits<int32_t>::max()) {
    std::snprintf(err, CALIB_ERRLEN, "N = %lld tokens is too many for the CUDA path (at most 2^31 − 1)", (long long)N);
    return CALIB_ERR_RANGE;
  }
  // Phase A: valid rows, checks, weights (scratch sized by N).
  int32_t* rows;
  long long* cnt;
  unsigned long long* bad;
  float* w = nullptr;
  float* lse_valid;
  double* row_loss;
  auto phase_a = [&](Layout& L) {
    rows = L.take<int32_t>(std::max<int64_t>(N, 1));
    cnt = L.take<long long>(1);
    bad = L.take<unsigned long long>(5);
    w = grad ? L.take<float>(std::max<int64_t>(N, 1)) : nullptr;
    lse_valid = L.take<float>(std::max<int64_t>(N, 1));
    row_loss = L.take<double>(std::max<int64_t>(N, 1));
  };
  Layout ma(nullptr);
  phase_a(ma);
  const size_t bytes_a = ma.used();
  char* base;
  calib_status st;
  if ((st = scratch(bytes_a, &base, err))) return st;
  Layout la(base);
  phase_a(la);
  CU_TRY(cudaMemsetAsync(bad, 0xff, 5 * sizeof(unsigned long long)));
  CU_TRY(cudaMemsetAsync(cnt, 0, sizeof(long long)));
  if (N > 0) prep_kernel<<<1, 1024>>>(a.targets, N, a.ignore_index, a.v, rows, cnt, bad);
  const bool bf16 = a.dtype == CALIB_BF16;
  const int64_t ngo = a.grad_output ? (a.reduction == CALIB_REDUCE_NONE ? N : 1) : 0;
  if (a.check_finite) {
    auto scan = [&](const void* x, bool b, int64_t n, unsigned long long* flag) {
      if (!x || n == 0) return;
      const int64_t blocks = std::min<int64_t>(ceil_div(n, 256), int64_t(dev.sms) * 16);
      finite_kernel<<<static_cast<unsigned>(blocks), 256>>>(x, b ? 1 : 0, n, flag);
    };
    scan(a.e, bf16, N * a.d, bad + 1);
    scan(a.c, bf16, a.v * a.d, bad + 2);
    scan(a.bias, false, a.v, bad + 3);
    scan(a.grad_output, false, ngo, bad + 4);
  }
  LAUNCHED("input check kernels");
  long long count = 0;
  unsigned long long flags[5];
  CU_TRY(cudaMemcpy(&count, cnt, sizeof count, cudaMemcpyDeviceToHost));
  CU_TRY(cudaMemcpy(flags, bad, sizeof flags, cudaMemcpyDeviceToHost));
  const unsigned long long none = ~0ull;
  if (flags[0] != none) {
    int32_t t = 0;
    CU_TRY(cudaMemcpy(&t, a.targets + flags[0], 4, cudaMemcpyDeviceToHost));
    std::snprintf(err, CALIB_ERRLEN, "targets[%llu] = %d is outside [0, %lld) and is not ignoreIndex (%d)", flags[0], t,
                  (long long)a.v, a.ignore_index);
    return CALIB_ERR_RANGE;
  }
  const char* names[5] = {"", "E", "C", "bias", "gradOutput"};
  for (int k = 1; k < 5; ++k) {
    if (flags[k] == none) continue;
    if (k <= 2)
      std::snprintf(err, CALIB_ERRLEN, "%s contains NaN or Inf at row %lld, column %lld", names[k],
                    (long long)(flags[k] / a.d), (long long)(flags[k] % a.d));
    else
      std::snprintf(err, CALIB_ERRLEN, "%s contains NaN or Inf at index %llu", names[k], flags[k]);
    return CALIB_ERR_RANGE;
  }
  const_cast<calib_lce_args&>(a).valid_count = count;  // the caller's struct is not const
  if (grad && count > 0) {
    weights_kernel<<<static_cast<unsigned>(ceil_div(count, 256)), 256>>>(
        rows, count, a.grad_output, a.reduction == CALIB_REDUCE_NONE, a.reduction == CALIB_REDUCE_MEAN, w);
    LAUNCHED("weights kernel");
  }
  if (a.lse && N > 0) {
    fill_kernel<<<static_cast<unsigned>(std::min<int64_t>(ceil_div(N, 256), 4096)), 256>>>(
        a.lse, N, std::numeric_limits<float>::quiet_NaN());
    LAUNCHED("fill kernel");
  }

  Job j;
  describe(a, j);
  j.e = a.e, j.c = a.c, j.bias = a.bias, j.targets = a.targets, j.rows = rows, j.w = w, j.count = count;
  j.lse_valid = lse_valid, j.row_loss = row_loss, j.lse_out = a.lse;
  j.dE = a.grad_e, j.dC = a.grad_c, j.dbias = a.grad_bias;
  set_vec(j);
  if ((st = set_gemm(j, dev, err))) return st;
  if (grad && !(j.blas && count > 0)) {  // the cuBLAS path writes every gradient element itself
    if (N > 0) CU_TRY(cudaMemsetAsync(a.grad_e, 0, size_t(N) * a.d * 4));
    CU_TRY(cudaMemsetAsync(a.grad_c, 0, size_t(a.v) * a.d * 4));
    if (a.grad_bias) CU_TRY(cudaMemsetAsync(a.grad_bias, 0, size_t(a.v) * 4));
  }
  size_t total = bytes_a;
  if (count > 0) {
    j.plan(dev);
    Layout mb(nullptr);
    mb.take<char>(bytes_a);
    j.layout(mb);
    total = mb.used();
    if ((st = scratch_keep(total, bytes_a, &base, err))) return st;
    Layout lb(base);
    phase_a(lb);
    j.layout(lb);
    // re-point the job at the (possibly moved) phase-A buffers
    j.rows = rows, j.w = w, j.lse_valid = lse_valid, j.row_loss = row_loss;
    record(j, total);
    if ((st = j.run(err))) return st;
  } else {
    record(j, total);
  }
  if (a.reduction == CALIB_REDUCE_NONE) {
    if (N > 0) CU_TRY(cudaMemsetAsync(a.loss, 0, size_t(N) * 4));
    if (count > 0)
      scatter_loss_kernel<<<static_cast<unsigned>(ceil_div(count, 256)), 256>>>(row_loss, rows, count, a.loss);
  } else {
    loss_reduce_kernel<<<1, 1024>>>(row_loss, count, a.reduction == CALIB_REDUCE_MEAN, a.loss);
  }
  LAUNCHED("loss kernel");
  if (count > 0) return finish(j, err);
  CU_TRY(cudaDeviceSynchronize());
  return CALIB_OK;
}

}  // namespace

calib_status lce_cuda(const calib_lce_args& a, LcePlan& plan, char* err) {
  std::lock_guard<std::mutex> lock(engine_mutex());
  DeviceInfo dev;
  if (calib_status st = device_info(dev, err)) return st;
  cudaGetLastError();  // start from a clean error state
  calib_status st = a.memory == CALIB_MEM_HOST ? run_host(a, plan, dev, err) : run_device(a, dev, err);
  if (st == CALIB_OK) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) return cuda_fail(err, e, "CUDA linear cross-entropy");
  }
  return st;
}

}  // namespace calib

extern "C" calib_status calib_linear_cross_entropy_cuda(calib_lce_args* args, const calib_lce_cuda_options* options,
                                                        char* err) {
  calib::t_options = options;
  calib_status st = calib_linear_cross_entropy(args, err);
  calib::t_options = nullptr;
  return st;
}
