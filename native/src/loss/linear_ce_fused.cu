// The CUDA loss's fused engine (fp32 inputs, tile skipping, batches of mostly ignored tokens): the
// logits live only in registers of our tensor-core kernels (linear_ce_fused.cuh). With Nv valid tokens:
//   0. rank-1 smoothing terms (no softcap): c̄ = Σ_v C_v, Σ_v s_iv = (E_i·c̄ + Σb)/T, and for
//      gradients r = Σ_i w_i E_i — small float64 reductions.
//   1. logsumexp pass: tiles of E·Cᵀ (rows × vocabulary), online logsumexp in registers,
//      per-(vocabulary split, row) partials merged in a fixed order → lse, per-token loss.  2·Nv·D·V
//   2. gradients, streamed: the logits are recomputed block by block. For an Rb × Wb block one
//      kernel writes G = w·(softmax − q)·κ, then one launch runs both GEMMs,
//        dE[block rows] += G·C[block cols]   and   dC[block cols] += Gᵀ·E[block rows],
//      in fp32 (plain read-modify-write: every output tile has one owner per launch).  6·Nv·D·V
//      Chunked: pass 1 runs per chunk of Rc rows and also stores the chunk's logits (fp32, Rc × V);
//      they become G in place and feed the same two GEMMs, so the logits are computed once. 6·Nv·D·V
//   Tile skipping (streamed, no softcap): gradient tiles whose entries are all below the threshold
//   are left out of both GEMMs (the ε/V term stays exact, rank-1).
#include <algorithm>

#include "linear_ce_cuda.h"
#include "linear_ce_fused.cuh"

namespace calib::lce {
namespace {

static_assert(kRowTile == kBM, "the planner's row tile is the kernels'");
static_assert(kFusedColsBf16 == TileCfg<1>::BN && kFusedColsBf16 == Frag<1, true>::BN, "bf16 tile columns");
static_assert(kFusedColsF32 == TileCfg<3>::BN, "fp32 tile columns");

template <class K>
calib_status smem_for(K kernel, int bytes, char* err) {
  return allow_smem(reinterpret_cast<const void*>(kernel), bytes, err);
}

class Fused : EngineRun {
 public:
  explicit Fused(const Call& c) : EngineRun(c) {}

  calib_status run(char* err) {
    CU_TRY(cudaMemsetAsync(b_.skipped, 0, sizeof(unsigned long long), s_));
    if (q_.rank1)
      if (calib_status st = rank1_terms(err)) return st;
    if (q_.mode != kModeChunked)
      if (calib_status st = lse_pass(0, p_.count, nullptr, 0, err)) return st;
    if (q_.mode == kModeStreamed) return streamed(err);
    if (q_.mode == kModeChunked) return chunked(err);
    return CALIB_OK;
  }

 private:
  bool bf16() const { return p_.bf16; }
  float q_dense() const { return q_.dense ? eta() : 0.f; }

  calib_status rank1_terms(char* err) {
    const int64_t D = p_.d, V = p_.v, count = p_.count;
    const unsigned dblocks = static_cast<unsigned>(ceil_div(D, 256));
    const dim3 cgrid(dblocks, static_cast<unsigned>(b_.ncpart));
    if (bf16()) colsum_partial_kernel<kSrcBf16><<<cgrid, 256, 0, s_>>>(c_.c, D, nullptr, nullptr, V, 1024, b_.cpart);
    else colsum_partial_kernel<kSrcF32><<<cgrid, 256, 0, s_>>>(c_.c, D, nullptr, nullptr, V, 1024, b_.cpart);
    colsum_final_kernel<<<dblocks, 256, 0, s_>>>(b_.cpart, b_.ncpart, D, 1.0, b_.cbar_d, b_.cbar_f);
    if (c_.bias) sum_kernel<<<1, 1024, 0, s_>>>(c_.bias, V, b_.bsum);
    const unsigned rb = static_cast<unsigned>(ceil_div(count, 8));
    const double* bsum = c_.bias ? b_.bsum : nullptr;
    if (bf16()) rowdot_kernel<kSrcBf16><<<rb, 256, 0, s_>>>(c_.e, D, c_.rows, count, b_.cbar_d, bsum, c_.inv_t, b_.s_rank1);
    else rowdot_kernel<kSrcF32><<<rb, 256, 0, s_>>>(c_.e, D, c_.rows, count, b_.cbar_d, bsum, c_.inv_t, b_.s_rank1);
    if (p_.grad) {
      const dim3 rgrid(dblocks, static_cast<unsigned>(b_.nrpart));
      if (bf16()) colsum_partial_kernel<kSrcBf16><<<rgrid, 256, 0, s_>>>(c_.e, D, c_.rows, c_.w, count, 256, b_.rpart);
      else colsum_partial_kernel<kSrcF32><<<rgrid, 256, 0, s_>>>(c_.e, D, c_.rows, c_.w, count, 256, b_.rpart);
      colsum_final_kernel<<<dblocks, 256, 0, s_>>>(b_.rpart, b_.nrpart, D, -p_.eps / double(V), nullptr, b_.rvec_f);
      sum_kernel<<<1, 1024, 0, s_>>>(c_.w, count, b_.wsum);
    }
    LAUNCHED("smoothing term kernels");
    return CALIB_OK;
  }

  // Statistics of valid rows [row0, row0 + nrows), and (S_out) the chunk's logits.
  calib_status lse_pass(int64_t row0, int64_t nrows, float* S_out, int64_t ldS, char* err) {
    LseParams p{};
    p.e = c_.e, p.c = c_.c, p.bias = c_.bias, p.targets = c_.targets, p.rows = c_.rows;
    p.row0 = row0, p.nrows = nrows, p.D = p_.d, p.V = p_.v;
    p.ntiles = q_.ntiles, p.splits = q_.splits, p.inv_t = c_.inv_t, p.cap = p_.cap, p.vec_e = c_.vec_e, p.vec_c = c_.vec_c;
    p.part_m = b_.part_m, p.part_l = b_.part_l, p.part_s = b_.part_s, p.ldp = q_.lse_rows, p.tgt = b_.tgt;
    p.S = S_out, p.ldS = ldS;
    const dim3 grid(static_cast<unsigned>(ceil_div(nrows, kBM)), static_cast<unsigned>(q_.splits));
    if (bf16() && q_.wgmma) {
      constexpr int sm = Frag<1, true>::SMEM;
      auto k = q_.dense ? lse_kernel<kSrcBf16, true, true> : lse_kernel<kSrcBf16, false, true>;
      if (calib_status st = smem_for(k, sm, err)) return st;
      k<<<grid, kThreads, sm, s_>>>(p);
    } else if (bf16()) {
      constexpr int sm = Frag<1, false>::SMEM;
      auto k = q_.dense ? lse_kernel<kSrcBf16, true, false> : lse_kernel<kSrcBf16, false, false>;
      if (calib_status st = smem_for(k, sm, err)) return st;
      k<<<grid, kThreads, sm, s_>>>(p);
    } else {
      constexpr int sm = Frag<3, false>::SMEM;
      auto k = q_.dense ? lse_kernel<kSrcF32, true, false> : lse_kernel<kSrcF32, false, false>;
      if (calib_status st = smem_for(k, sm, err)) return st;
      k<<<grid, kThreads, sm, s_>>>(p);
    }
    LAUNCHED("logsumexp kernel");
    MergeParams m{};
    m.part_m = b_.part_m, m.part_l = b_.part_l, m.part_s = b_.part_s, m.ldp = q_.lse_rows, m.splits = q_.splits;
    m.row0 = row0, m.nrows = nrows, m.tgt = b_.tgt, m.s_rank1 = q_.rank1 ? b_.s_rank1 : nullptr, m.rows = c_.rows;
    m.lse_valid = c_.lse_valid, m.row_loss = c_.row_loss, m.lse_out = c_.lse_out;
    m.T = c_.T, m.eps = p_.eps, m.V = double(p_.v), m.dense = q_.dense ? 1 : 0;
    launch_merge(m, s_);
    LAUNCHED("merge kernel");
    return CALIB_OK;
  }

  // dE[rows r0..] += G·C[cols v0..], dC[cols v0..] += Gᵀ·E[rows r0..] in one launch.
  calib_status grad_launch(const void* Gp, int64_t ldG, int64_t r0, int64_t nr, int64_t v0, int64_t nc,
                           const uint8_t* fl, bool init_e, bool init_c, char* err) {
    GradParams p{};
    p.G = Gp, p.ldG = ldG, p.nrows = nr, p.ncols = nc, p.flags = fl, p.ldf = q_.ldf;
    p.e = c_.e, p.c = c_.c, p.rows = c_.rows, p.r0 = r0, p.v0 = v0, p.D = p_.d;
    p.vec_e = c_.vec_e, p.vec_c = c_.vec_c, p.vec_g = 1;
    p.dE = c_.dE, p.dC = c_.dC, p.init_e = init_e, p.init_c = init_c;
    p.w = c_.w, p.eta = eta();
    p.cbar_f = q_.rank1 ? b_.cbar_f : nullptr;
    p.rvec_f = q_.rank1 ? b_.rvec_f : nullptr;
    p.dtiles = static_cast<int>(ceil_div(p_.d, q_.bn));
    p.nn_tiles = static_cast<int>(ceil_div(nr, kBM)) * p.dtiles;
    const int tn_tiles = static_cast<int>(ceil_div(nc, kBM)) * p.dtiles;
    const unsigned grid = static_cast<unsigned>(p.nn_tiles + tn_tiles);
    if (bf16() && q_.wgmma) {
      constexpr int sm = Frag<1, true>::SMEM;
      if (calib_status st = smem_for(grad_kernel<1, true>, sm, err)) return st;
      grad_kernel<1, true><<<grid, kThreads, sm, s_>>>(p);
    } else if (bf16()) {
      constexpr int sm = Frag<1, false>::SMEM;
      if (calib_status st = smem_for(grad_kernel<1, false>, sm, err)) return st;
      grad_kernel<1, false><<<grid, kThreads, sm, s_>>>(p);
    } else {
      constexpr int sm = Frag<3, false>::SMEM;
      if (calib_status st = smem_for(grad_kernel<3, false>, sm, err)) return st;
      grad_kernel<3, false><<<grid, kThreads, sm, s_>>>(p);
    }
    LAUNCHED("gradient GEMM kernel");
    return CALIB_OK;
  }

  calib_status bias_grad(const void* Gp, int64_t ldG, int64_t nr, int64_t v0, int64_t nc, bool init, char* err) {
    launch_bias_grad(Gp, q_.planes, ldG, nr, nc, kBM, b_.gpart, c_.dbias + v0, init, q_.rank1 ? b_.wsum : nullptr,
                     p_.eps / double(p_.v), s_);
    LAUNCHED("bias gradient kernel");
    return CALIB_OK;
  }

  calib_status streamed(char* err) {
    const int64_t count = p_.count, V = p_.v;
    for (int64_t r0 = 0; r0 < count; r0 += q_.Rb) {
      const int64_t nr = std::min(q_.Rb, count - r0);
      for (int64_t v0 = 0; v0 < V; v0 += q_.Wb) {
        const int64_t nc = std::min(q_.Wb, V - v0);
        GtileParams g{};
        g.e = c_.e, g.c = c_.c, g.bias = c_.bias, g.targets = c_.targets, g.rows = c_.rows;
        g.r0 = r0, g.nrows = nr, g.v0 = v0, g.ncols = nc, g.D = p_.d, g.V = V;
        g.inv_t = c_.inv_t, g.cap = p_.cap, g.q_target = static_cast<float>(1.0 - p_.eps);
        g.q_dense = q_dense();
        g.skip_thr = q_.skip_thr, g.vec_e = c_.vec_e, g.vec_c = c_.vec_c;
        g.lse_valid = c_.lse_valid, g.w = c_.w, g.G = b_.G, g.ldG = q_.Wb, g.flags = b_.flags, g.ldf = q_.ldf;
        g.skipped = b_.skipped;
        const dim3 grid(static_cast<unsigned>(ceil_div(nc, q_.bn)), static_cast<unsigned>(ceil_div(nr, kBM)));
        if (bf16() && q_.wgmma) {
          constexpr int sm = Frag<1, true>::SMEM;
          if (calib_status st = smem_for(gtile_kernel<kSrcBf16, true>, sm, err)) return st;
          gtile_kernel<kSrcBf16, true><<<grid, kThreads, sm, s_>>>(g);
        } else if (bf16()) {
          constexpr int sm = Frag<1, false>::SMEM;
          if (calib_status st = smem_for(gtile_kernel<kSrcBf16, false>, sm, err)) return st;
          gtile_kernel<kSrcBf16, false><<<grid, kThreads, sm, s_>>>(g);
        } else {
          constexpr int sm = Frag<3, false>::SMEM;
          if (calib_status st = smem_for(gtile_kernel<kSrcF32, false>, sm, err)) return st;
          gtile_kernel<kSrcF32, false><<<grid, kThreads, sm, s_>>>(g);
        }
        LAUNCHED("gradient tile kernel");
        stats().last_tiles += int64_t(grid.x) * grid.y;
        if (calib_status st = grad_launch(b_.G, q_.Wb, r0, nr, v0, nc, b_.flags, v0 == 0, r0 == 0, err)) return st;
        if (c_.dbias)
          if (calib_status st = bias_grad(b_.G, q_.Wb, nr, v0, nc, r0 == 0, err)) return st;
      }
    }
    return CALIB_OK;
  }

  calib_status chunked(char* err) {
    const int64_t count = p_.count, V = p_.v, Vp = q_.Vp;
    const int64_t ldG = q_.planes == 1 ? 2 * Vp : Vp;
    for (int64_t r0 = 0; r0 < count; r0 += q_.Rc) {
      const int64_t nr = std::min(q_.Rc, count - r0);
      if (calib_status st = lse_pass(r0, nr, b_.S, Vp, err)) return st;
      StoGParams g{};
      g.S = b_.S, g.ldS = Vp, g.row0 = r0, g.nrows = nr, g.V = V, g.lse_valid = c_.lse_valid, g.w = c_.w;
      g.targets = c_.targets, g.rows = c_.rows, g.q_target = static_cast<float>(1.0 - p_.eps);
      g.q_dense = q_dense();
      g.cap = p_.cap;
      if (bf16()) s_to_g_kernel<1><<<static_cast<unsigned>(nr), 256, 0, s_>>>(g);
      else s_to_g_kernel<3><<<static_cast<unsigned>(nr), 256, 0, s_>>>(g);
      LAUNCHED("logits-to-gradient kernel");
      stats().last_tiles += ceil_div(nr, kBM) * ceil_div(V, q_.bn);
      if (calib_status st = grad_launch(b_.S, ldG, r0, nr, 0, V, nullptr, true, r0 == 0, err)) return st;
      if (c_.dbias)
        if (calib_status st = bias_grad(b_.S, ldG, nr, 0, V, r0 == 0, err)) return st;
    }
    return CALIB_OK;
  }
};

}  // namespace

calib_status run_fused(const Call& call, char* err) { return Fused(call).run(err); }

}  // namespace calib::lce
