// The CUDA loss's planner (see linear_ce_plan.h): pure arithmetic, compiled into every build.
#include "linear_ce_plan.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>

#include "../common/status.h"

namespace calib::lce {
namespace {

int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, x)); }

// Vocabulary splits of the fused statistics pass: fill whole waves of `cap` resident CTAs.
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

// Vocabulary splits of the logit kernel (one CTA per SM): the fewest splits that minimize
// waves × tiles per CTA, at most 64 (statistics partials take splits × N × 16 bytes).
int logit_splits(int64_t row_tiles, int64_t ntiles, int sms) {
  int best = 1;
  int64_t best_cost = -1;
  for (int s = 1; s <= std::min<int64_t>(64, ntiles); ++s) {
    const int64_t cost = ceil_div(row_tiles * s, sms) * ceil_div(ntiles, s);
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best = s;
  }
  return best;
}

// The cuBLAS engine. With a slab of ≥ min(1024, N) whole rows (a large workspace) the logits are
// computed once per row chunk (chunked, 6·N·D·V); otherwise the slab holds all rows × Ws columns
// (fewer rows only when N is huge) and the logits are computed twice (streamed, 8·N·D·V). Ignored
// tokens' rows are computed and zeroed, so `auto` takes this engine only when at least a third of
// the tokens are valid.
void plan_blas(const Problem& p, const DeviceProps& dev, Plan& q) {
  const int64_t V = p.v, Vpad = round_up(V, 256), rows_all = std::max<int64_t>(p.n, 1);
  const int64_t budget = p.workspace > 0 ? p.workspace : kDefaultSlabBytes;
  q.mode = !p.grad ? kModeForward : (budget >= std::min<int64_t>(1024, rows_all) * Vpad * 4 ? kModeChunked : kModeStreamed);
  // Logits in registers on Hopper when the copy engine can read E and C: rows of 16-byte multiples,
  // 16-byte aligned bases, N and V < 2^31 (int coordinates). Chunks keep them packed without a
  // softcap; with one, the chunk keeps fp32 logits (κ = 1 − (s/c)² needs s more exactly).
  const bool tma_ok = p.bf16 && dev.cc_major == 9 && p.d % 8 == 0 && p.aligned && p.n < (int64_t(1) << 31) &&
                      V < (int64_t(1) << 31);
  q.packed = tma_ok && q.mode == kModeChunked && p.cap == 0.f;
  q.tma = tma_ok && (q.mode != kModeChunked || q.packed);
  const int64_t unit = q.tma ? 2 : 4;  // bytes per slab element: bf16 G or packed logits, or fp32 logits
  if (q.mode == kModeChunked) {
    const int64_t row_bytes = q.packed ? Vpad * 2 + ceil_div(V, kLogitTileCols) * 4 : Vpad * 4;  // + tile maxima
    q.Rs = std::min<int64_t>(rows_all, budget / row_bytes);
    if (q.Rs < rows_all) q.Rs = q.Rs / kRowTile * kRowTile;
    q.Ws = V, q.ldX = q.packed ? Vpad / 2 : Vpad;
  } else {
    int64_t W = budget / (unit * rows_all) / 256 * 256;
    q.Rs = rows_all;
    if (W < 512) {
      W = 512;
      q.Rs = std::min<int64_t>(rows_all, std::max<int64_t>(kRowTile, budget / (unit * W) / kRowTile * kRowTile));
    }
    q.Ws = std::min<int64_t>(W, Vpad);
    q.ldX = q.tma ? q.Ws / 2 : q.Ws;
  }
  q.blas_ws_bytes = budget >= (int64_t(256) << 20) ? kBlasWorkspaceLarge : kBlasWorkspaceSmall;
  const int64_t stat_rows = q.packed ? q.Rs : rows_all;  // rows per statistics launch
  q.splits = q.tma ? logit_splits(ceil_div(stat_rows, kRowTile), ceil_div(V, kLogitTileCols), dev.sms) : 0;
  if (q.tma && q.mode == kModeStreamed)
    q.grad_splits = logit_splits(ceil_div(q.Rs, kRowTile), ceil_div(q.Ws, kLogitTileCols), dev.sms);
}

// The fused kernels. Chunked mode needs chunks of ≥ 1024 rows (or all rows): with fewer, its dE
// GEMM has too few tiles (Rc/128 × D/256) for the GPU and a larger streamed block is faster.
void plan_fused(const Problem& p, const DeviceProps& dev, Plan& q) {
  q.planes = p.bf16 ? 1 : 3;
  q.bn = p.bf16 ? kFusedColsBf16 : kFusedColsF32;
  q.ntiles = static_cast<int>(ceil_div(p.v, q.bn));
  q.Vp = round_up(p.v, 8);
  const int64_t unit = q.planes == 1 ? 2 : 4;
  const int64_t rows_avail = round_up(std::max<int64_t>(p.count, 1), kRowTile);
  const int64_t min_rows = std::min<int64_t>(1024, rows_avail);
  q.mode = !p.grad ? kModeForward : (p.workspace >= min_rows * q.Vp * 4 ? kModeChunked : kModeStreamed);
  q.lse_rows = p.count;
  if (q.mode == kModeChunked) {
    q.Rc = clamp64(p.workspace / (q.Vp * 4) / kRowTile * kRowTile, kRowTile, rows_avail);
    q.lse_rows = std::min(q.Rc, p.count);
  } else if (q.mode == kModeStreamed) {
    const int64_t budget = p.workspace > 0 ? p.workspace : kDefaultBlockBytes;
    const int64_t cols_avail = round_up(p.v, q.bn);
    const int64_t side = static_cast<int64_t>(std::sqrt(double(budget) / unit));
    q.Rb = clamp64(side / kRowTile * kRowTile, kRowTile, std::min<int64_t>(rows_avail, 256 * kRowTile));
    q.Wb = clamp64(budget / (unit * q.Rb) / q.bn * q.bn, q.bn, std::min<int64_t>(cols_avail, 256 * int64_t(q.bn)));
    q.Rb = clamp64(budget / (unit * q.Wb) / kRowTile * kRowTile, kRowTile, std::min<int64_t>(rows_avail, 256 * kRowTile));
    q.ldf = static_cast<int>(q.Wb / q.bn);
  }
  q.splits = choose_splits(ceil_div(std::max<int64_t>(q.lse_rows, 1), kRowTile), q.ntiles, dev.sms);
}

}  // namespace

Problem problem_from(const calib_lce_args& a, const calib_lce_cuda_options* o, int64_t count, bool blas_available) {
  Problem p;
  p.n = a.n, p.count = count, p.d = a.d, p.v = a.v;
  p.bf16 = a.dtype == CALIB_BF16;
  p.grad = a.grad_e != nullptr;
  p.bias = a.bias != nullptr;
  p.grad_bias = a.grad_bias != nullptr;
  p.eps = a.label_smoothing;
  p.cap = a.softcap;
  p.workspace = a.workspace_bytes;
  p.skip_threshold = o ? o->skip_threshold : 0.f;
  p.gemm_impl = o ? o->gemm_impl : CALIB_LCE_GEMM_AUTO;
  p.aligned = aligned16(a.e) && aligned16(a.c);
  p.blas_available = blas_available;
  return p;
}

calib_status plan_lce_cuda(const Problem& p, const DeviceProps& dev, Plan* out, char* err) {
  Plan q;
  q.dense = p.cap > 0 && p.eps > 0;
  q.rank1 = p.eps > 0 && !q.dense;
  float thr = p.skip_threshold;
  if (thr < 0) thr = p.bf16 ? std::ldexp(1.f, -12) : std::ldexp(1.f, -28);
  q.skip_thr = q.dense ? 0.f : thr;  // with a softcap the gradient is dense: no skipping
  q.wgmma = p.bf16 && dev.cc_major == 9;
  bool blas = false;
  if (p.gemm_impl == CALIB_LCE_GEMM_CUBLAS) {
    if (!p.bf16) return fail(err, CALIB_ERR_TYPE, "impl 'cublas' needs bfloat16 inputs (float32 runs the fused kernels)");
    if (q.skip_thr > 0) return fail(err, CALIB_ERR_TYPE, "tile skipping runs in the fused kernels: use impl 'fused' or 'auto'");
    if (!p.blas_available) return fail(err, CALIB_ERR_DEVICE, "impl 'cublas': cuBLAS could not be loaded");
    blas = true;
  } else if (p.gemm_impl == CALIB_LCE_GEMM_AUTO) {
    blas = p.bf16 && q.skip_thr == 0 && p.count * 3 >= p.n && p.blas_available;
  } else if (p.gemm_impl != CALIB_LCE_GEMM_FUSED) {
    return fail(err, CALIB_ERR_TYPE, "unknown CUDA impl %d", p.gemm_impl);
  }
  if (blas) {  // Σ_v s is summed by the statistics kernels (no c̄ pass over C); G holds the ε/V term
    q.engine = kEngineBlas;
    q.dense = p.eps > 0;
    q.rank1 = false;
    plan_blas(p, dev, q);
  } else {
    q.engine = kEngineFused;
    plan_fused(p, dev, q);
  }
  *out = q;
  return CALIB_OK;
}

void take_prologue(Arena& a, int64_t n, bool grad, Prologue* out) {
  const size_t rows = static_cast<size_t>(std::max<int64_t>(n, 1));
  out->rows = a.take<int32_t>(rows);
  out->count = a.take<long long>(1);
  out->bad = a.take<unsigned long long>(5);
  out->w = grad ? a.take<float>(rows) : nullptr;
  out->lse_valid = a.take<float>(rows);
  out->row_loss = a.take<double>(rows);
}

void take_buffers(Arena& a, const Problem& p, const Plan& q, Buffers* b) {
  const int64_t D = p.d, V = p.v, count = p.count;
  const bool blas = q.engine == kEngineBlas;
  if (q.rank1) {
    b->ncpart = static_cast<int>(ceil_div(V, 1024));
    b->cbar_d = a.take<double>(D);
    b->cbar_f = a.take<float>(D);
    b->bsum = a.take<double>(1);
    b->s_rank1 = a.take<double>(count);
    b->cpart = a.take<double>(size_t(b->ncpart) * D);
    if (p.grad && !blas) {
      b->nrpart = static_cast<int>(ceil_div(count, 256));
      b->rpart = a.take<double>(size_t(b->nrpart) * D);
      b->rvec_f = a.take<float>(D);
      b->wsum = a.take<double>(1);
    }
  }
  if (blas) {
    b->inv = a.take<int32_t>(std::max<int64_t>(p.n, 1));
    // running max and Σexp of each valid row, or the logit kernel's partials per (split, valid row),
    // which live in the slab when they fit (that forward leaves the slab unused)
    const size_t np = size_t(std::max(q.splits, 1)) * count, slab = size_t(q.Rs) * q.ldX;
    const bool in_slab = q.tma && !q.packed && np * (q.dense ? 4 : 2) <= slab;
    if (!in_slab) {
      b->part_m = a.take<float>(np);
      b->part_l = a.take<float>(np);
      if (q.dense) b->part_s = a.take<double>(np);
    }
    b->tgt = a.take<float>(count);
    if (q.packed) b->tmax = a.take<float>(size_t(q.Rs) * ceil_div(V, kLogitTileCols));
    b->X = a.take<float>(slab);
    if (in_slab && b->X) {
      b->part_s = q.dense ? reinterpret_cast<double*>(b->X) : nullptr;
      b->part_m = b->X + (q.dense ? 2 * np : 0);
      b->part_l = b->part_m + np;
    }
    b->blas_ws = a.take<char>(q.blas_ws_bytes);
    if (p.grad_bias) b->gpart = a.take<float>(size_t(ceil_div(q.Rs, kRowTile)) * (q.Ws + q.Ws / 2));
    b->skipped = a.take<unsigned long long>(1);
    return;
  }
  b->part_m = a.take<float>(size_t(q.splits) * q.lse_rows);
  b->part_l = a.take<float>(size_t(q.splits) * q.lse_rows);
  if (q.dense) b->part_s = a.take<double>(size_t(q.splits) * q.lse_rows);
  b->tgt = a.take<float>(q.lse_rows);
  const int64_t unit = q.planes == 1 ? 2 : 4;
  if (q.mode == kModeStreamed) {
    b->G = a.take<char>(size_t(q.Rb) * q.Wb * unit);
    b->flags = a.take<uint8_t>(size_t(q.Rb / kRowTile) * q.ldf);
    if (p.grad_bias) b->gpart = a.take<float>(size_t(q.Rb / kRowTile) * q.Wb);
  } else if (q.mode == kModeChunked) {
    b->S = a.take<float>(size_t(q.Rc) * q.Vp);
    if (p.grad_bias) b->gpart = a.take<float>(size_t(q.Rc / kRowTile) * q.Vp);
  }
  b->skipped = a.take<unsigned long long>(1);
}

size_t scratch_bytes(const Problem& p, const Plan& plan) {
  Arena a(nullptr);
  Prologue pro;
  take_prologue(a, p.n, p.grad, &pro);
  if (p.count > 0) {
    Buffers b;
    take_buffers(a, p, plan, &b);
  }
  return a.used();
}

calib_status workspace_bound(Problem p, const DeviceProps& dev, size_t* bytes, char* err) {
  // Within a bucket of counts (kRowTile·(k−1), kRowTile·k] every choice of the plan is the same and
  // each buffer grows with the count, so the top of every bucket (and N itself) bounds them all.
  size_t most = 0;
  const int64_t n = p.n;
  for (int64_t c = std::min<int64_t>(n, kRowTile);; c = std::min(n, c + kRowTile)) {
    p.count = c;
    Plan plan;
    if (calib_status st = plan_lce_cuda(p, dev, &plan, err)) return st;
    most = std::max(most, scratch_bytes(p, plan));
    if (c >= n) break;
  }
  *bytes = most;
  return CALIB_OK;
}

}  // namespace calib::lce

using namespace calib;

extern "C" calib_status calib_lce_cuda_describe(const calib_lce_args* args, const calib_lce_cuda_options* options,
                                                const calib_cuda_device_desc* device, int64_t valid_count,
                                                calib_lce_cuda_plan* out, char* err) {
  err[0] = '\0';
  if (!args || !device || !out) return fail(err, CALIB_ERR_TYPE, "no arguments");
  const calib_lce_args& a = *args;
  if (a.n < 0 || a.d < 1 || a.v < 1 || a.v > INT32_MAX)
    return fail(err, CALIB_ERR_RANGE, "shapes must be N ≥ 0, D ≥ 1, 1 ≤ V < 2^31 (got N=%lld, D=%lld, V=%lld)",
                (long long)a.n, (long long)a.d, (long long)a.v);
  if (a.dtype != CALIB_F32 && a.dtype != CALIB_BF16) return fail(err, CALIB_ERR_TYPE, "unknown dtype %d", (int)a.dtype);
  if (!(a.label_smoothing >= 0.f && a.label_smoothing <= 1.f))
    return fail(err, CALIB_ERR_RANGE, "labelSmoothing must be in [0, 1] (got %g)", (double)a.label_smoothing);
  if (!(a.softcap >= 0.f) || !std::isfinite(a.softcap))
    return fail(err, CALIB_ERR_RANGE, "softcap must be a finite number > 0, or 0 for none (got %g)", (double)a.softcap);
  if (a.workspace_bytes < 0) return fail(err, CALIB_ERR_RANGE, "workspaceBytes must be ≥ 0");
  if (valid_count < 0 || valid_count > a.n)
    return fail(err, CALIB_ERR_RANGE, "validCount must be in [0, N = %lld] (got %lld)", (long long)a.n, (long long)valid_count);
  if (device->sms < 1) return fail(err, CALIB_ERR_RANGE, "device.sms must be ≥ 1 (got %d)", device->sms);
  lce::DeviceProps dev;
  dev.sms = device->sms;
  dev.cc_major = device->cc_major;
  const lce::Problem p = lce::problem_from(a, options, valid_count, device->blas_available != 0);
  lce::Plan q;
  if (valid_count > 0)
    if (calib_status st = lce::plan_lce_cuda(p, dev, &q, err)) return st;
  size_t bound = 0;
  if (calib_status st = lce::workspace_bound(p, dev, &bound, err)) return st;
  calib_lce_cuda_plan r{};
  r.engine = q.engine;
  r.mode = q.mode;
  r.logits = q.engine == lce::kEngineBlas ? (q.packed ? 2 : q.tma ? 1 : 0) : 1;
  r.wgmma = q.wgmma ? 1 : 0;
  r.splits = q.splits;
  r.grad_splits = q.grad_splits;
  if (q.engine == lce::kEngineBlas) {
    r.block_rows = q.Rs, r.block_cols = q.Ws;
  } else {
    r.block_rows = q.mode == lce::kModeStreamed ? q.Rb : q.mode == lce::kModeChunked ? q.Rc : 0;
    r.block_cols = q.mode == lce::kModeStreamed ? q.Wb : q.mode == lce::kModeChunked ? q.Vp : 0;
  }
  r.scratch_bytes = static_cast<int64_t>(lce::scratch_bytes(p, q));
  r.workspace_bound = static_cast<int64_t>(bound);
  *out = r;
  return CALIB_OK;
}
