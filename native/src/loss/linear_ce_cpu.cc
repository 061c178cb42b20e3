// CPU implementations of the fused linear + label-smoothed cross-entropy.
//
// lce_cpu (the default, "fused"): the N×V logits are never stored. Work goes in tiles of
// kRows tokens × kTile vocabulary entries:
//   forward   every thread takes every nt-th vocabulary tile for all tokens and keeps an
//             online logsumexp per token; the per-thread partials are merged at the end.
//   gradient  the logits are recomputed tile by tile. Threads own disjoint token groups
//             (so dE rows never collide) and step through the vocabulary tiles on a
//             diagonal — thread t works on tile (s + t·stride) mod #tiles at step s — so no
//             two threads write the same dC rows in one step; a barrier ends each step.
//             The result is deterministic and needs no locks.
// Extra memory: O(N + V + D) plus per-thread tiles, independent of N×V.
//
// lce_cpu_naive: materializes the logits with the same GEMM micro-kernel. It is the
// baseline of `npm run bench -- loss` and a second opinion in tests.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/bf16.h"
#include "../common/gemm.h"
#include "../common/parallel.h"
#include "../common/simd.h"
#include "linear_ce.h"

namespace calib {
namespace {

constexpr int64_t kRows = 48;   // tokens per sub-block (a multiple of the GEMM's 6 rows)
constexpr int64_t kTile = 128;  // vocabulary entries per tile (a multiple of 2 SIMD vectors)
static_assert(kTile % (2 * kLanes) == 0, "tile must hold whole SIMD vectors");

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Problem {
  const calib_lce_args& a;
  const LceRows& plan;
  bool bf16;
  int64_t D, V, nvalid, ntiles;
  float inv_t, cap;
  float q_target;  // 1 − ε, the one-hot part of the smoothed target
  float q_dense;   // ε/V when the smoothing term is summed in tiles (softcap), else 0
  int threads;

  explicit Problem(const calib_lce_args& args, const LceRows& p)
      : a(args), plan(p), bf16(args.dtype == CALIB_BF16), D(args.d), V(args.v),
        nvalid(static_cast<int64_t>(p.rows.size())), ntiles((args.v + kTile - 1) / kTile),
        inv_t(1.0f / args.temperature), cap(args.softcap),
        q_target(1.0f - args.label_smoothing),
        q_dense(p.dense_smoothing ? args.label_smoothing / static_cast<float>(args.v) : 0.f),
        threads(args.threads > 0 ? args.threads : default_threads()) {}
};

// Per-thread buffers, sized once per call.
struct Scratch {
  std::vector<float> ct;    // D × kTile: the C tile transposed (zero columns past V)
  std::vector<float> crow;  // kTile × D: the C tile as float32 (bf16 inputs only)
  std::vector<float> bias;  // kTile: the bias tile (zeros past V or without bias)
  std::vector<float> e;     // kRows × D: gathered token rows as float32
  std::vector<float> z;     // kRows × kTile: logits, then gradient of the tile
  std::vector<float> de;    // kRows × D: dE of a sub-block before it is scattered

  Scratch(const Problem& p, bool grad)
      : ct(p.D * kTile), bias(kTile), e(kRows * p.D), z(kRows * kTile) {
    if (grad) {
      de.resize(kRows * p.D);
      if (p.bf16) crow.resize(kTile * p.D);
    }
  }
};

// Loads vocabulary tile `t`: transposed for the logits product, row-major for dE.
// Returns the row-major tile pointer (into C itself for float32 inputs).
const float* load_tile(const Problem& p, Scratch& s, int64_t t, bool need_rows) {
  const int64_t v0 = t * kTile, vc = std::min(kTile, p.V - v0), D = p.D;
  const float* rows = nullptr;
  if (!p.bf16) {
    const float* c = static_cast<const float*>(p.a.c) + v0 * D;
    for (int64_t j = 0; j < vc; ++j)
      for (int64_t k = 0; k < D; ++k) s.ct[k * kTile + j] = c[j * D + k];
    rows = c;
  } else {
    const uint16_t* c = static_cast<const uint16_t*>(p.a.c) + v0 * D;
    for (int64_t j = 0; j < vc; ++j)
      for (int64_t k = 0; k < D; ++k) s.ct[k * kTile + j] = bf16_to_f32(c[j * D + k]);
    if (need_rows) {
      to_f32(p.a.c, true, v0 * D, vc * D, s.crow.data());
      rows = s.crow.data();
    }
  }
  for (int64_t k = 0; k < D; ++k)
    for (int64_t j = vc; j < kTile; ++j) s.ct[k * kTile + j] = 0.f;
  for (int64_t j = 0; j < kTile; ++j) s.bias[j] = (p.a.bias && j < vc) ? p.a.bias[v0 + j] : 0.f;
  return rows;
}

void gather_rows(const Problem& p, Scratch& s, int64_t r0, int64_t rc) {
  for (int64_t r = 0; r < rc; ++r) to_f32(p.a.e, p.bf16, p.plan.rows[r0 + r] * p.D, p.D, s.e.data() + r * p.D);
}

// Logits of one tile row → final logits s = softcap((z + b)/T); entries past V become −inf.
void transform_row(const Problem& p, const Scratch& s, float* zr, int64_t vc) {
  const vfloat inv_t = vsplat(p.inv_t);
  if (p.cap > 0) {
    const vfloat cap = vsplat(p.cap), inv_cap = vsplat(1.0f / p.cap);
    for (int64_t j = 0; j < kTile; j += kLanes)
      vstore(zr + j, cap * vtanh((vload(zr + j) + vload(s.bias.data() + j)) * inv_t * inv_cap));
  } else {
    for (int64_t j = 0; j < kTile; j += kLanes)
      vstore(zr + j, (vload(zr + j) + vload(s.bias.data() + j)) * inv_t);
  }
  for (int64_t j = vc; j < kTile; ++j) zr[j] = kNegInf;
}

float row_max(const float* zr) {
  vfloat m = vsplat(kNegInf);
  for (int64_t j = 0; j < kTile; j += kLanes) m = vmax(m, vload(zr + j));
  float out = kNegInf;
  for (int i = 0; i < kLanes; ++i) out = std::max(out, m[i]);
  return out;
}

float row_sum_exp(const float* zr, float shift) {
  vfloat acc{};
  const vfloat sh = vsplat(shift);
  for (int64_t j = 0; j < kTile; j += kLanes) acc += vexp(vload(zr + j) - sh);
  return hsum(acc);
}

double row_sum(const float* zr, int64_t vc) {
  double total = 0;
  for (int64_t j = 0; j < vc; ++j) total += zr[j];
  return total;
}

// Online logsumexp state of one token, one per thread in the forward pass.
struct RowState {
  float m = kNegInf;  // running max
  float l = 0.f;      // Σ exp(s − m)
  float sy = 0.f;     // the target's final logit (set by the thread that saw it)
  double ssum = 0;    // Σ_v s (only when the smoothing term is summed in tiles)
};

void forward(const Problem& p, std::vector<float>& lse, std::vector<float>& s_target,
             std::vector<double>& s_sum) {
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(p.threads, p.ntiles)));
  std::vector<std::vector<RowState>> state(nt, std::vector<RowState>(p.nvalid));
  run_team(nt, [&](int tid) {
    Scratch s(p, false);
    std::vector<RowState>& st = state[tid];
    for (int64_t t = tid; t < p.ntiles; t += nt) {
      const int64_t v0 = t * kTile, vc = std::min(kTile, p.V - v0);
      load_tile(p, s, t, false);
      for (int64_t r0 = 0; r0 < p.nvalid; r0 += kRows) {
        const int64_t rc = std::min(kRows, p.nvalid - r0);
        gather_rows(p, s, r0, rc);
        gemm_acc(rc, kTile, p.D, s.e.data(), p.D, 1, s.ct.data(), kTile, s.z.data(), kTile, false);
        for (int64_t r = 0; r < rc; ++r) {
          float* zr = s.z.data() + r * kTile;
          transform_row(p, s, zr, vc);
          RowState& rs = st[r0 + r];
          const float mt = std::max(rs.m, row_max(zr));
          rs.l = rs.l * std::exp(rs.m - mt) + row_sum_exp(zr, mt);
          rs.m = mt;
          const int64_t y = p.a.targets[p.plan.rows[r0 + r]];
          if (y >= v0 && y < v0 + vc) rs.sy = zr[y - v0];
          if (p.plan.dense_smoothing) rs.ssum += row_sum(zr, vc);
        }
      }
    }
  });
  for (int64_t i = 0; i < p.nvalid; ++i) {
    float m = kNegInf;
    for (int t = 0; t < nt; ++t) m = std::max(m, state[t][i].m);
    double l = 0, ssum = 0, sy = 0;
    for (int t = 0; t < nt; ++t) {
      const RowState& rs = state[t][i];
      if (rs.l > 0) l += static_cast<double>(rs.l) * std::exp(static_cast<double>(rs.m) - m);
      ssum += rs.ssum;
      sy += rs.sy;
    }
    lse[i] = static_cast<float>(m + std::log(l));
    s_target[i] = static_cast<float>(sy);
    s_sum[i] = ssum;
  }
}

void gradient(const Problem& p, const std::vector<float>& lse) {
  const calib_lce_args& a = p.a;
  const int nt = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>({static_cast<int64_t>(p.threads), p.ntiles, p.nvalid})));
  const int64_t per = (p.nvalid + nt - 1) / nt;
  const int64_t stride = p.ntiles / nt;
  Barrier barrier(nt);
  run_team(nt, [&](int tid) {
    Scratch s(p, true);
    const int64_t lo = std::min(p.nvalid, tid * per), hi = std::min(p.nvalid, lo + per);
    for (int64_t step = 0; step < p.ntiles; ++step) {
      const int64_t t = (step + tid * stride) % p.ntiles;
      const int64_t v0 = t * kTile, vc = std::min(kTile, p.V - v0);
      const float* crow = lo < hi ? load_tile(p, s, t, true) : nullptr;
      for (int64_t r0 = lo; r0 < hi; r0 += kRows) {
        const int64_t rc = std::min(kRows, hi - r0);
        gather_rows(p, s, r0, rc);
        gemm_acc(rc, kTile, p.D, s.e.data(), p.D, 1, s.ct.data(), kTile, s.z.data(), kTile, false);
        // z → G = w·(softmax − q)·κ with κ = d softcap/du (1 without a softcap); the 1/T
        // of s = cap(z/T) cancels against the loss factor T.
        for (int64_t r = 0; r < rc; ++r) {
          float* zr = s.z.data() + r * kTile;
          transform_row(p, s, zr, vc);
          const int64_t i = r0 + r;
          const float w = p.plan.weight[i];
          const int64_t y = a.targets[p.plan.rows[i]];
          const bool has_target = y >= v0 && y < v0 + vc;
          float kappa_y = 1.f;
          if (has_target && p.cap > 0) {
            const float ty = zr[y - v0] / p.cap;
            kappa_y = 1.f - ty * ty;
          }
          const vfloat shift = vsplat(lse[i]), wv = vsplat(w), qd = vsplat(p.q_dense);
          if (p.cap > 0) {
            const vfloat inv_cap = vsplat(1.0f / p.cap);
            for (int64_t j = 0; j < kTile; j += kLanes) {
              const vfloat sv = vload(zr + j), tv = sv * inv_cap;
              vstore(zr + j, wv * (vexp(sv - shift) - qd) * (1.f - tv * tv));
            }
          } else {
            for (int64_t j = 0; j < kTile; j += kLanes) vstore(zr + j, wv * (vexp(vload(zr + j) - shift) - qd));
          }
          for (int64_t j = vc; j < kTile; ++j) zr[j] = 0.f;
          if (has_target) zr[y - v0] -= w * p.q_target * kappa_y;
        }
        // dC[tile] += Gᵀ·E_rows ; dbias[tile] += Σ_rows G ; dE[rows] += G·C[tile]
        gemm_acc(vc, p.D, rc, s.z.data(), 1, kTile, s.e.data(), p.D, a.grad_c + v0 * p.D, p.D, true);
        if (a.grad_bias)
          for (int64_t r = 0; r < rc; ++r)
            for (int64_t j = 0; j < vc; ++j) a.grad_bias[v0 + j] += s.z[r * kTile + j];
        gemm_acc(rc, p.D, vc, s.z.data(), kTile, 1, crow, p.D, s.de.data(), p.D, false);
        for (int64_t r = 0; r < rc; ++r) {
          float* out = a.grad_e + p.plan.rows[r0 + r] * p.D;
          const float* src = s.de.data() + r * p.D;
          for (int64_t k = 0; k < p.D; ++k) out[k] += src[k];
        }
      }
      barrier.wait();
    }
  });
}

// Σ_v C_v in float64 (the rank-1 smoothing term), split over vocabulary ranges.
std::vector<double> column_sum(const Problem& p) {
  const int nt = std::max(1, p.threads);
  std::vector<std::vector<double>> part(nt, std::vector<double>(p.D, 0.0));
  parallel_for(nt, p.V, 1024, [&](int64_t b, int64_t e, int tid) {
    std::vector<float> row(p.D);
    for (int64_t v = b; v < e; ++v) {
      to_f32(p.a.c, p.bf16, v * p.D, p.D, row.data());
      for (int64_t k = 0; k < p.D; ++k) part[tid][k] += row[k];
    }
  });
  std::vector<double> out(p.D, 0.0);
  for (auto& q : part)
    for (int64_t k = 0; k < p.D; ++k) out[k] += q[k];
  return out;
}

// Adds the rank-1 smoothing gradient: dE_i −= w_i·ε/V·c̄, dC_v −= ε/V·Σ_i w_i E_i, dbias_v −= ε/V·Σ_i w_i.
void rank1_gradient(const Problem& p, const std::vector<double>& cbar) {
  const calib_lce_args& a = p.a;
  const double eta = static_cast<double>(a.label_smoothing) / static_cast<double>(p.V);
  std::vector<double> r(p.D, 0.0);
  std::vector<float> row(p.D);
  double wsum = 0;
  for (int64_t i = 0; i < p.nvalid; ++i) {
    const double w = p.plan.weight[i];
    wsum += w;
    to_f32(a.e, p.bf16, p.plan.rows[i] * p.D, p.D, row.data());
    float* de = a.grad_e + p.plan.rows[i] * p.D;
    for (int64_t k = 0; k < p.D; ++k) {
      r[k] += w * row[k];
      de[k] -= static_cast<float>(w * eta * cbar[k]);
    }
  }
  std::vector<float> delta(p.D);
  for (int64_t k = 0; k < p.D; ++k) delta[k] = static_cast<float>(eta * r[k]);
  parallel_for(p.threads, p.V, 4096, [&](int64_t b, int64_t e, int) {
    for (int64_t v = b; v < e; ++v) {
      float* dc = a.grad_c + v * p.D;
      for (int64_t k = 0; k < p.D; ++k) dc[k] -= delta[k];
    }
  });
  if (a.grad_bias) {
    const float db = static_cast<float>(eta * wsum);
    for (int64_t v = 0; v < p.V; ++v) a.grad_bias[v] -= db;
  }
}

// loss_i = T·(lse − (1−ε)·s_y − ε/V·Σ_v s)
void assemble_loss(const Problem& p, LceRows& plan, const std::vector<float>& lse,
                   const std::vector<float>& s_target, const std::vector<double>& s_sum) {
  const calib_lce_args& a = p.a;
  const double eps = a.label_smoothing, T = a.temperature;
  plan.row_loss.assign(p.nvalid, 0.0);
  for (int64_t i = 0; i < p.nvalid; ++i) {
    double l = lse[i] - (1.0 - eps) * s_target[i];
    if (eps > 0) l -= eps / static_cast<double>(p.V) * s_sum[i];
    plan.row_loss[i] = T * l;
    if (a.lse) a.lse[plan.rows[i]] = lse[i];
  }
}

}  // namespace

calib_status lce_cpu(const calib_lce_args& a, LceRows& plan, char*) {
  Problem p(a, plan);
  std::vector<float> lse(p.nvalid), s_target(p.nvalid);
  std::vector<double> s_sum(p.nvalid, 0.0);
  std::vector<double> cbar;
  const bool rank1 = a.label_smoothing > 0 && !plan.dense_smoothing;
  if (p.nvalid > 0) {
    forward(p, lse, s_target, s_sum);
    if (rank1) {
      cbar = column_sum(p);
      double bsum = 0;
      if (a.bias)
        for (int64_t v = 0; v < p.V; ++v) bsum += a.bias[v];
      std::vector<float> row(p.D);
      for (int64_t i = 0; i < p.nvalid; ++i) {
        to_f32(a.e, p.bf16, plan.rows[i] * p.D, p.D, row.data());
        double dot = bsum;
        for (int64_t k = 0; k < p.D; ++k) dot += row[k] * cbar[k];
        s_sum[i] = dot * p.inv_t;
      }
    }
  }
  assemble_loss(p, plan, lse, s_target, s_sum);
  if (plan.want_grad && p.nvalid > 0) {
    gradient(p, lse);
    if (rank1) rank1_gradient(p, cbar);
  }
  return CALIB_OK;
}

// ---------------------------------------------------------------------------------------
// The materializing baseline: logits (nvalid×V, float32) from the same tiled GEMM, softmax
// with the same vectorized exp, the gradient in place, then dE = G·C and dC = Gᵀ·E.
calib_status lce_cpu_naive(const calib_lce_args& a, LceRows& plan, char* err) {
  Problem p(a, plan);
  const int64_t n = p.nvalid, D = p.D, V = p.V;
  plan.row_loss.assign(n, 0.0);
  if (n == 0) return CALIB_OK;
  std::vector<float> z, cf, ef;
  try {
    z.resize(n * V);
    ef.resize(n * D);
    if (p.bf16 && plan.want_grad) cf.resize(V * D);
  } catch (const std::bad_alloc&) {
    std::snprintf(err, CALIB_ERRLEN, "naive cross-entropy: cannot allocate the %lld×%lld logits",
                  static_cast<long long>(n), static_cast<long long>(V));
    return CALIB_ERR_RUNTIME;
  }
  for (int64_t i = 0; i < n; ++i) to_f32(a.e, p.bf16, plan.rows[i] * D, D, ef.data() + i * D);
  // logits, one vocabulary tile at a time (packed like the fused kernel's tiles)
  parallel_for(p.threads, p.ntiles, 1, [&](int64_t b, int64_t e, int) {
    Scratch s(p, false);
    std::vector<float> zt(kTile * kRows);
    for (int64_t t = b; t < e; ++t) {
      const int64_t v0 = t * kTile, vc = std::min(kTile, V - v0);
      load_tile(p, s, t, false);
      for (int64_t r0 = 0; r0 < n; r0 += kRows) {
        const int64_t rc = std::min(kRows, n - r0);
        gemm_acc(rc, kTile, D, ef.data() + r0 * D, D, 1, s.ct.data(), kTile, zt.data(), kTile, false);
        for (int64_t r = 0; r < rc; ++r)
          for (int64_t j = 0; j < vc; ++j) z[(r0 + r) * V + v0 + j] = zt[r * kTile + j] + s.bias[j];
      }
    }
  });
  const double eps = a.label_smoothing, T = a.temperature;
  const float q_other = static_cast<float>(eps / V), inv_cap = p.cap > 0 ? 1.0f / p.cap : 0.f;
  parallel_for(p.threads, n, 8, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* zr = z.data() + i * V;
      const int64_t vv = V / kLanes * kLanes;
      vfloat mx = vsplat(kNegInf);
      for (int64_t v = 0; v < vv; v += kLanes) {
        vfloat u = vload(zr + v) * p.inv_t;
        if (p.cap > 0) u = p.cap * vtanh(u * inv_cap);
        vstore(zr + v, u);
        mx = vmax(mx, u);
      }
      float m = kNegInf;
      for (int l = 0; l < kLanes; ++l) m = std::max(m, mx[l]);
      for (int64_t v = vv; v < V; ++v) {
        float u = zr[v] * p.inv_t;
        if (p.cap > 0) u = p.cap * std::tanh(u * inv_cap);
        zr[v] = u;
        m = std::max(m, u);
      }
      vfloat acc{};
      for (int64_t v = 0; v < vv; v += kLanes) acc += vexp(vload(zr + v) - m);
      double l = hsum(acc), ssum = 0;
      for (int64_t v = vv; v < V; ++v) l += std::exp(zr[v] - m);
      for (int64_t v = 0; v < V; ++v) ssum += zr[v];
      const float lse = static_cast<float>(m + std::log(l));
      const int64_t y = a.targets[plan.rows[i]];
      plan.row_loss[i] = T * (lse - (1 - eps) * zr[y] - eps / V * ssum);
      if (a.lse) a.lse[plan.rows[i]] = lse;
      if (!plan.want_grad) continue;
      const float w = plan.weight[i];
      float kappa_y = 1.f;
      if (p.cap > 0) kappa_y = 1.f - (zr[y] * inv_cap) * (zr[y] * inv_cap);
      for (int64_t v = 0; v < vv; v += kLanes) {
        vfloat sv = vload(zr + v), k = vsplat(1.f);
        if (p.cap > 0) k = 1.f - (sv * inv_cap) * (sv * inv_cap);
        vstore(zr + v, w * (vexp(sv - lse) - q_other) * k);
      }
      for (int64_t v = vv; v < V; ++v) {
        float k = 1.f;
        if (p.cap > 0) k = 1.f - (zr[v] * inv_cap) * (zr[v] * inv_cap);
        zr[v] = w * (std::exp(zr[v] - lse) - q_other) * k;
      }
      zr[y] -= w * static_cast<float>(1 - eps) * kappa_y;
    }
  });
  if (!plan.want_grad) return CALIB_OK;
  const float* c = static_cast<const float*>(a.c);
  if (p.bf16) {
    to_f32(a.c, true, 0, V * D, cf.data());
    c = cf.data();
  }
  parallel_for(p.threads, n, 16, [&](int64_t b, int64_t e, int) {
    std::vector<float> de((e - b) * D);
    gemm_acc(e - b, D, V, z.data() + b * V, V, 1, c, D, de.data(), D, false);
    for (int64_t i = b; i < e; ++i) std::memcpy(a.grad_e + plan.rows[i] * D, de.data() + (i - b) * D, D * sizeof(float));
  });
  parallel_for(p.threads, V, 64, [&](int64_t b, int64_t e, int) {
    gemm_acc(e - b, D, n, z.data() + b, 1, V, ef.data(), D, a.grad_c + b * D, D, false);
    if (a.grad_bias)
      for (int64_t v = b; v < e; ++v) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += z[i * V + v];
        a.grad_bias[v] = static_cast<float>(s);
      }
  });
  return CALIB_OK;
}

}  // namespace calib
