// The CUDA loss's cuBLAS engine (bf16, the default when at least a third of the tokens are valid).
//
// Logits in registers (plan.tma: Hopper, D a multiple of 8, aligned inputs): our logit kernel
// (linear_ce_tma.cuh) computes the statistics pass, then per block of Ws columns a bf16 G block that
// cuBLAS turns into dE and dC (streamed); or per chunk of rows the statistics with packed logits,
// G in place (packed_grad_kernel) and the two GEMMs (chunked, no softcap).
// fp32 slab (elsewhere, and softcapped chunks): per block, cuBLAS writes the raw logits X = E·Cᵀ
// (fp32) into the slab, a row kernel (linear_ce_slab.cuh) folds them into the logsumexp state; for
// gradients another row kernel turns them into bf16 G in place and cuBLAS runs
// dE[rows] (+)= G·C[cols] and dC[cols] (+)= Gᵀ·E[rows] (fp32 outputs; "+" from the second block on).
// Every output element has one writer per GEMM. Streamed mode packs 1.5 blocks of G per slab:
// after block A (Ws columns) became bf16 in the first half of each slab row, block B (Ws/2
// columns) takes the free second half, and its G lands right after A's. The two gradient GEMMs
// then see K (or M) = 1.5·Ws, which cuts dE's fp32 read-modify-write traffic by a third.
// Ignored tokens' rows are computed and written as zeros (the copy engine cannot gather rows).
#include <algorithm>
#include <cstdio>

#include "linear_ce_cuda.h"
#include "linear_ce_slab.cuh"
#include "linear_ce_tma.cuh"

namespace calib::lce {

static_assert(kLogitTileCols == kLtBN, "the planner's logit tile is the kernel's");

blas::Handle blas_handle(char* why) {
  static bool tried = false;
  static blas::Handle h = nullptr;
  static char reason[CALIB_ERRLEN] = "";
  if (!tried) {
    tried = true;
    if (blas::create(&h, reason) != CALIB_OK) h = nullptr;
  }
  if (why) std::snprintf(why, CALIB_ERRLEN, "%s", reason);
  return h;
}

namespace {

class Blas : EngineRun {
 public:
  explicit Blas(const Call& c) : EngineRun(c), h_(blas_handle(nullptr)) {
    sp_.ldX = q_.ldX, sp_.V = p_.v, sp_.inv = b_.inv, sp_.targets = c_.targets, sp_.bias = c_.bias;
    sp_.inv_t = c_.inv_t, sp_.cap = p_.cap;
    sp_.run_m = b_.part_m, sp_.run_l = b_.part_l, sp_.run_s = b_.part_s, sp_.tgt = b_.tgt, sp_.dense = q_.dense ? 1 : 0;
    sp_.s_rank1 = nullptr, sp_.lse_valid = c_.lse_valid, sp_.row_loss = c_.row_loss, sp_.lse_out = c_.lse_out;
    sp_.T = c_.T, sp_.eps = p_.eps, sp_.w = c_.w, sp_.q_target = static_cast<float>(1.0 - p_.eps), sp_.q_dense = eta();
  }

  calib_status run(char* err) {
    CU_TRY(cudaMemsetAsync(b_.skipped, 0, sizeof(unsigned long long), s_));
    if (calib_status st = blas::set_stream(h_, s_, err)) return st;
    if (calib_status st = blas::set_workspace(h_, b_.blas_ws, size_t(q_.blas_ws_bytes), err)) return st;
    inverse_rows_kernel<<<1, 1024, 0, s_>>>(c_.rows, p_.count, p_.n, b_.inv);
    LAUNCHED("inverse row map kernel");
    if (q_.tma) {
      char why[CALIB_ERRLEN] = "";
      if (!tma_map_bf16(&me_, c_.e, p_.n, p_.d, p_.d, kBM, why, sizeof why) ||
          !tma_map_bf16(&mc_, c_.c, p_.v, p_.d, p_.d, kLtBN / 2, why, sizeof why))
        return fail(err, CALIB_ERR_RUNTIME, "logit pass: %s", why);
    }
    if (q_.mode == kModeChunked) return q_.packed ? chunked_packed(err) : chunked_slab(err);
    if (calib_status st = q_.tma ? tma_pass(kStats, 0, p_.n, 0, p_.v, err) : slab_statistics(err)) return st;
    if (q_.mode == kModeForward) return CALIB_OK;
    return q_.tma ? streamed_tma(err) : streamed_slab(err);
  }

 private:
  blas::Handle h_;
  SlabParams sp_{};
  CUtensorMap me_{}, mc_{};

  const char* E8() const { return static_cast<const char*>(c_.e); }
  const char* C8() const { return static_cast<const char*>(c_.c); }

  // cuBLAS takes a slow path when the vocabulary extent of a GEMM is not a multiple of 64 (seen at
  // V = 50257: ~100 TFLOP/s), so each GEMM runs as an aligned part plus a narrow tail.
  static int64_t aligned_part(int64_t nc) { return nc > 64 && nc % 64 ? nc / 64 * 64 : nc; }

  // logits of rows [r0, r0+nr) × columns [v0, v0+nc) into the slab at float column `at`
  calib_status block(int64_t r0, int64_t nr, int64_t v0, int64_t nc, int64_t at, char* err) {
    const int Di = static_cast<int>(p_.d);
    sp_.X = b_.X + at, sp_.r0 = r0, sp_.nrows = nr, sp_.v0 = v0, sp_.ncols = nc;
    for (int64_t a = 0, e = aligned_part(nc); a < nc; a = e, e = nc)
      if (calib_status st = blas::gemm_rm(h_, blas::kN, blas::kT, int(nr), int(e - a), Di, 1.f, E8() + r0 * p_.d * 2,
                                          blas::kBF16, Di, C8() + (v0 + a) * p_.d * 2, blas::kBF16, Di, 0.f, sp_.X + a,
                                          blas::kF32, int(q_.ldX), err))
        return st;
    return CALIB_OK;
  }

  // row kernels over the slab: a warp per row for vocabulary blocks, a CTA per row for whole rows
  calib_status row_kernel(bool statistics, const char* what, char* err) {
    const bool wide = sp_.ncols >= 8192;
    const unsigned grid = static_cast<unsigned>(wide ? sp_.nrows : ceil_div(sp_.nrows, 8));
    if (statistics) {
      if (wide) slab_stats_kernel<8><<<grid, 256, 0, s_>>>(sp_);
      else slab_stats_kernel<1><<<grid, 256, 0, s_>>>(sp_);
    } else {
      if (wide) slab_grad_kernel<8><<<grid, 256, 0, s_>>>(sp_);
      else slab_grad_kernel<1><<<grid, 256, 0, s_>>>(sp_);
    }
    LAUNCHED(what);
    return CALIB_OK;
  }
  calib_status stats_of(bool first, bool last, char* err) {
    sp_.first = first, sp_.last = last;
    return row_kernel(true, "logit statistics kernel", err);
  }

  // dE[r0..] (+)= G·C[v0..v0+nc], dC[v0..] (+)= Gᵀ·E[r0..], dbias; G is the slab's bf16 view
  calib_status gemms(int64_t r0, int64_t nr, int64_t v0, int64_t nc, bool add_e, bool add_c, char* err) {
    const int Di = static_cast<int>(p_.d), ldG = int(2 * q_.ldX);
    const uint16_t* Gb = reinterpret_cast<const uint16_t*>(b_.X);
    for (int64_t a = 0, e = aligned_part(nc); a < nc; a = e, e = nc) {
      const float be = add_e || a > 0 ? 1.f : 0.f;
      if (calib_status st = blas::gemm_rm(h_, blas::kN, blas::kN, int(nr), Di, int(e - a), 1.f, Gb + a, blas::kBF16, ldG,
                                          C8() + (v0 + a) * p_.d * 2, blas::kBF16, Di, be, c_.dE + r0 * p_.d, blas::kF32,
                                          Di, err))
        return st;
      if (calib_status st = blas::gemm_rm(h_, blas::kT, blas::kN, int(e - a), Di, int(nr), 1.f, Gb + a, blas::kBF16, ldG,
                                          E8() + r0 * p_.d * 2, blas::kBF16, Di, add_c ? 1.f : 0.f, c_.dC + (v0 + a) * p_.d,
                                          blas::kF32, Di, err))
        return st;
    }
    ++stats().last_tiles;
    if (c_.dbias) {  // G holds the ε/V term: no rank-1 correction of the bias gradient
      launch_bias_grad(b_.X, 1, 2 * q_.ldX, nr, nc, kBM, b_.gpart, c_.dbias + v0, !add_c, nullptr, p_.eps / double(p_.v), s_);
      LAUNCHED("bias gradient kernel");
    }
    return CALIB_OK;
  }

  // One launch of logit_tma_kernel over token rows [r0, r0+nr) × vocabulary columns [v0, v0+nc):
  // the statistics of those rows (then merged into lse, the row loss and lse_out; kStore also keeps
  // the packed logits), or a bf16 gradient block into the slab (kGrad).
  calib_status tma_pass(int which, int64_t r0, int64_t nr, int64_t v0, int64_t nc, char* err) {
    LtParams p{};
    p.N = p_.n, p.V = p_.v, p.r0 = r0, p.nrows = nr, p.v0 = static_cast<int>(v0), p.ncols = static_cast<int>(nc);
    p.ksteps = static_cast<int>(ceil_div(p_.d, 64)), p.ntiles = static_cast<int>(ceil_div(nc, kLtBN));
    p.splits = which == kGrad ? q_.grad_splits : q_.splits;
    p.inv = b_.inv, p.targets = c_.targets, p.bias = c_.bias, p.inv_t = c_.inv_t, p.cap = p_.cap;
    p.dense = q_.dense ? 1 : 0, p.ldp = p_.count, p.part_m = b_.part_m, p.part_l = b_.part_l, p.part_s = b_.part_s;
    p.tgt = b_.tgt, p.lse_valid = c_.lse_valid, p.w = c_.w, p.q_target = static_cast<float>(1.0 - p_.eps), p.q_dense = eta();
    p.G = reinterpret_cast<uint16_t*>(b_.X), p.ldG = 2 * q_.ldX, p.tmax = b_.tmax, p.ldT = ceil_div(p_.v, kLtBN);
    const bool cap = p_.cap > 0.f;
    auto kernel = which == kStore  ? logit_tma_kernel<kStore, false>  // packed: no softcap
                  : which == kStats ? (cap ? logit_tma_kernel<kStats, true> : logit_tma_kernel<kStats, false>)
                                    : (cap ? logit_tma_kernel<kGrad, true> : logit_tma_kernel<kGrad, false>);
    if (calib_status st = allow_smem(reinterpret_cast<const void*>(kernel), kLtSmemBytes, err)) return st;
    const dim3 grid(static_cast<unsigned>(ceil_div(nr, kBM)), static_cast<unsigned>(p.splits));
    kernel<<<grid, kLtThreads, kLtSmemBytes, s_>>>(me_, mc_, p);
    LAUNCHED(which == kGrad ? "gradient block kernel (bulk copies)" : "logit statistics kernel (bulk copies)");
    if (which == kGrad) return CALIB_OK;
    MergeParams m{};
    m.part_m = b_.part_m, m.part_l = b_.part_l, m.part_s = b_.part_s, m.ldp = p_.count, m.splits = p.splits;
    if (which == kStore) m.row0 = r0, m.nrows = nr, m.inv = b_.inv;  // the chunk's token rows
    else m.row0 = 0, m.nrows = p_.count;
    m.tgt = b_.tgt, m.s_rank1 = nullptr, m.rows = c_.rows;
    m.lse_valid = c_.lse_valid, m.row_loss = c_.row_loss, m.lse_out = c_.lse_out;
    m.T = c_.T, m.eps = p_.eps, m.V = double(p_.v), m.dense = q_.dense ? 1 : 0;
    launch_merge(m, s_);
    LAUNCHED("merge kernel");
    return CALIB_OK;
  }

  // chunked, packed: per chunk the statistics + packed logits, → G in place, the two GEMMs
  calib_status chunked_packed(char* err) {
    PackedParams g{};
    g.P = reinterpret_cast<uint16_t*>(b_.X), g.ldP = 2 * q_.ldX, g.tmax = b_.tmax, g.ldT = ceil_div(p_.v, kLtBN), g.V = p_.v;
    g.inv = b_.inv, g.targets = c_.targets, g.lse_valid = c_.lse_valid, g.w = c_.w;
    g.q_target = static_cast<float>(1.0 - p_.eps), g.q_dense = eta();
    for (int64_t r0 = 0; r0 < p_.n; r0 += q_.Rs) {
      const int64_t nr = std::min(q_.Rs, p_.n - r0);
      if (calib_status st = tma_pass(kStore, r0, nr, 0, p_.v, err)) return st;
      g.r0 = r0;
      packed_grad_kernel<<<static_cast<unsigned>(nr), 256, 0, s_>>>(g);
      LAUNCHED("packed logits-to-gradient kernel");
      if (calib_status st = gemms(r0, nr, 0, p_.v, false, r0 > 0, err)) return st;
    }
    return CALIB_OK;
  }

  // chunked, fp32 slab: per chunk the logits by cuBLAS, their statistics, → G in place, the GEMMs
  calib_status chunked_slab(char* err) {
    for (int64_t r0 = 0; r0 < p_.n; r0 += q_.Rs) {
      const int64_t nr = std::min(q_.Rs, p_.n - r0);
      calib_status st;
      if ((st = block(r0, nr, 0, p_.v, 0, err)) || (st = stats_of(true, true, err)) ||
          (st = row_kernel(false, "logits-to-gradient kernel", err)) || (st = gemms(r0, nr, 0, p_.v, false, r0 > 0, err)))
        return st;
    }
    return CALIB_OK;
  }

  // fn(r0, nr, v0, nc) over the plan's Rs × Ws blocks, rows outer, until one fails
  template <class F>
  calib_status each_block(F&& fn) {
    for (int64_t r0 = 0; r0 < p_.n; r0 += q_.Rs)
      for (int64_t v0 = 0; v0 < p_.v; v0 += q_.Ws)
        if (calib_status st = fn(r0, std::min(q_.Rs, p_.n - r0), v0, std::min(q_.Ws, p_.v - v0))) return st;
    return CALIB_OK;
  }

  // the statistics pass through the slab, block by block
  calib_status slab_statistics(char* err) {
    return each_block([&](int64_t r0, int64_t nr, int64_t v0, int64_t nc) {
      calib_status st = block(r0, nr, v0, nc, 0, err);
      return st ? st : stats_of(v0 == 0, v0 + nc >= p_.v, err);
    });
  }

  // G blocks straight from the logit kernel, bf16, Rs × Ws
  calib_status streamed_tma(char* err) {
    return each_block([&](int64_t r0, int64_t nr, int64_t v0, int64_t nc) {
      calib_status st = tma_pass(kGrad, r0, nr, v0, nc, err);
      return st ? st : gemms(r0, nr, v0, nc, v0 > 0, r0 > 0, err);
    });
  }

  // 1.5 blocks of G per slab (see the top of this file)
  calib_status streamed_slab(char* err) {
    const int64_t half = q_.Ws / 2;  // Ws is a multiple of 256
    for (int64_t r0 = 0; r0 < p_.n; r0 += q_.Rs)
      for (int64_t v0 = 0; v0 < p_.v; v0 += q_.Ws + half) {
        const int64_t nr = std::min(q_.Rs, p_.n - r0), na = std::min(q_.Ws, p_.v - v0), nb = std::min(half, p_.v - v0 - na);
        calib_status st;
        if ((st = block(r0, nr, v0, na, 0, err)) || (st = row_kernel(false, "logits-to-gradient kernel", err))) return st;
        if (nb > 0)
          if ((st = block(r0, nr, v0 + na, nb, half, err)) || (st = row_kernel(false, "logits-to-gradient kernel", err)))
            return st;
        if ((st = gemms(r0, nr, v0, na + nb, v0 > 0, r0 > 0, err))) return st;
      }
    return CALIB_OK;
  }
};

}  // namespace

calib_status run_blas(const Call& call, char* err) { return Blas(call).run(err); }

}  // namespace calib::lce
