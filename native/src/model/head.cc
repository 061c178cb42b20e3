// The LM head and the label-smoothed loss over the final hidden states h (N×C) against the
// head matrix H (V×C, wte when tied):
//   s = softcap(h·Hᵀ/T),  loss_i = T·(lse(s_i) − (1−ε)·s_iy − ε/V·Σ_v s_iv)  (supervised rows)
// float: the fused op through its C API (logits never stored; reduction 'none' with the
//        per-token upstream gradient grad_scale, so the sum is taken here in float64);
//        dH of the op goes to a scratch and is added to the head's gradient.
// double: the same equations written out directly, in float64 (the gradient-check reference).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/parallel.h"
#include "gpt.h"
#include "kernels.h"

namespace calib::model {

template <>
calib_status head_loss<float>(HeadArgs& a, const float* h, const float* H, int64_t N, int64_t C, int64_t V,
                              float* dh, float* dH, float* scratch, char* err) {
  float* dC = scratch;
  float* loss = dC + V * C;
  float* gout = loss + N;
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) valid += a.targets[i] != a.ignore_index;
  a.valid_count = valid;
  const float scale = a.grad_scale > 0 ? a.grad_scale : (valid > 0 ? static_cast<float>(1.0 / valid) : 0.f);
  const bool grad = a.backward && valid > 0;

  calib_lce_args la = head_lce_args(a, N, C, V, h, H, a.targets, loss);
  la.dtype = CALIB_F32;
  la.device = CALIB_DEVICE_CPU;
  la.memory = CALIB_MEM_HOST;
  la.threads = a.threads;
  la.check_finite = 0;
  if (grad) {
    for (int64_t i = 0; i < N; ++i) gout[i] = scale;
    la.grad_output = gout;
    la.grad_e = dh;
    la.grad_c = dC;
  }
  if (calib_status st = calib_linear_cross_entropy(&la, err)) return st;
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += loss[i];
  a.loss_sum = total;
  if (a.backward) {
    if (grad) {
      parallel_for(a.threads, V * C, 1 << 16, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) dH[i] += dC[i];
      });
    } else {
      std::memset(dh, 0, sizeof(float) * N * C);
    }
  }
  return CALIB_OK;
}

template <>
calib_status head_loss<double>(HeadArgs& a, const double* h, const double* H, int64_t N, int64_t C, int64_t V,
                               double* dh, double* dH, double*, char*) {
  const double eps = a.label_smoothing, T = a.temperature, cap = a.softcap;
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) valid += a.targets[i] != a.ignore_index;
  a.valid_count = valid;
  const double scale = a.grad_scale > 0 ? a.grad_scale : (valid > 0 ? 1.0 / valid : 0.0);
  if (a.backward) std::memset(dh, 0, sizeof(double) * N * C);
  std::vector<double> s(V), g(V);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int32_t y = a.targets[i];
    if (y == a.ignore_index) continue;
    const double* hi = h + i * C;
    double m = -INFINITY, ssum = 0;
    for (int64_t v = 0; v < V; ++v) {
      double z = 0;
      for (int64_t c = 0; c < C; ++c) z += hi[c] * H[v * C + c];
      double u = z / T;
      if (cap > 0) u = cap * std::tanh(u / cap);
      s[v] = u;
      m = std::max(m, u);
      ssum += u;
    }
    double l = 0;
    for (int64_t v = 0; v < V; ++v) l += std::exp(s[v] - m);
    const double lse = m + std::log(l);
    total += T * (lse - (1 - eps) * s[y] - eps / V * ssum);
    if (!a.backward) continue;
    // d(T·loss_i)/dz_v = (p_v − q_v)·κ_v with κ = d softcap/du (the 1/T cancels the factor T)
    for (int64_t v = 0; v < V; ++v) {
      const double q = eps / V + (v == y ? 1 - eps : 0);
      const double kappa = cap > 0 ? 1 - (s[v] / cap) * (s[v] / cap) : 1;
      g[v] = scale * (std::exp(s[v] - lse) - q) * kappa;
    }
    double* dhi = dh + i * C;
    for (int64_t v = 0; v < V; ++v) {
      for (int64_t c = 0; c < C; ++c) {
        dhi[c] += g[v] * H[v * C + c];
        dH[v * C + c] += g[v] * hi[c];
      }
    }
  }
  a.loss_sum = total;
  return CALIB_OK;
}

}  // namespace calib::model
