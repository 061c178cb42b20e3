// The C entry points of flash attention (calib_attention_forward / _backward / _workspace_size): validation
// that names the bad field, dispatch to the CUDA kernels (flash_attention_cuda.cu) or to the CPU reference
// below, and host-memory staging for CUDA calls on host arrays. Contract: flash_attention.h.
//
// CPU reference: float64 for every sum (logits, softmax, products), inputs read as float32 or bfloat16,
// outputs rounded once. Forward: one task per (b, query head), each query row computes its visible logits
// (at most T values, never a T×T matrix), their log-sum-exp and o. Backward: one task per (b, kv head),
// which walks the query heads of the group in order and, for each query row, recomputes p from the given
// lse, then dQ (written per row), dK and dV (float64 sums over the group, written at the end).
#include "flash_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/bf16.h"
#include "../common/parallel.h"
#include "../common/status.h"

namespace calib::flash {
namespace {

double load(const void* p, bool bf16, int64_t i) {
  return bf16 ? static_cast<double>(bf16_to_f32(static_cast<const uint16_t*>(p)[i]))
              : static_cast<double>(static_cast<const float*>(p)[i]);
}
void store(void* p, bool bf16, int64_t i, double x) {
  if (bf16) static_cast<uint16_t*>(p)[i] = f32_to_bf16(static_cast<float>(x));
  else static_cast<float*>(p)[i] = static_cast<float>(x);
}

// A tensor [B, T, H, Dh] read into float64.
std::vector<double> to_f64(const void* p, bool bf16, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = load(p, bf16, i);
  return out;
}

struct Shape {
  int64_t B, T, Hq, Hkv, Dh, window;
  double scale, cap;
  explicit Shape(const calib_attention_args& a)
      : B(a.b), T(a.t), Hq(a.hq), Hkv(a.hkv), Dh(a.head_dim), window(a.window), scale(a.scale), cap(a.softcap) {}
  int64_t q_at(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * Hq + h) * Dh; }
  int64_t kv_at(int64_t b, int64_t t, int64_t g) const { return ((b * T + t) * Hkv + g) * Dh; }
  int64_t first_key(int64_t i) const { return window > 0 ? std::max<int64_t>(0, i - window + 1) : 0; }
  // s of a raw product u
  double logit(double u) const { return cap > 0 ? cap * std::tanh(scale * u / cap) : scale * u; }
  // ds/du at the logit s
  double slope(double s) const { return cap > 0 ? scale * (1 - (s / cap) * (s / cap)) : scale; }
};

double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

int threads_of(const calib_attention_args& a) { return a.threads > 0 ? a.threads : default_threads(); }

}  // namespace

void forward_cpu(const calib_attention_args& a) {
  const Shape s(a);
  const bool bf = a.dtype == CALIB_BF16;
  const std::vector<double> q = to_f64(a.q, bf, s.B * s.T * s.Hq * s.Dh);
  const std::vector<double> k = to_f64(a.k, bf, s.B * s.T * s.Hkv * s.Dh);
  const std::vector<double> v = to_f64(a.v, bf, s.B * s.T * s.Hkv * s.Dh);
  const int64_t rep = s.Hq / s.Hkv;
  parallel_for(threads_of(a), s.B * s.Hq, 1, [&](int64_t t0, int64_t t1, int) {
    std::vector<double> logit(static_cast<size_t>(s.T)), o(static_cast<size_t>(s.Dh));
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / s.Hq, h = bh % s.Hq, g = h / rep;
      for (int64_t i = 0; i < s.T; ++i) {
        const int64_t lo = s.first_key(i);
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = lo; j <= i; ++j) {
          logit[j] = s.logit(dot(&q[s.q_at(b, i, h)], &k[s.kv_at(b, j, g)], s.Dh));
          m = std::max(m, logit[j]);
        }
        double l = 0;
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j = lo; j <= i; ++j) {
          const double e = std::exp(logit[j] - m);
          l += e;
          const double* vj = &v[s.kv_at(b, j, g)];
          for (int64_t d = 0; d < s.Dh; ++d) o[d] += e * vj[d];
        }
        for (int64_t d = 0; d < s.Dh; ++d) store(a.o, bf, s.q_at(b, i, h) + d, o[d] / l);
        a.lse[(b * s.Hq + h) * s.T + i] = static_cast<float>(m + std::log(l));
      }
    }
  });
}

void backward_cpu(const calib_attention_args& a) {
  const Shape s(a);
  const bool bf = a.dtype == CALIB_BF16;
  const int64_t nq = s.B * s.T * s.Hq * s.Dh, nkv = s.B * s.T * s.Hkv * s.Dh;
  const std::vector<double> q = to_f64(a.q, bf, nq), k = to_f64(a.k, bf, nkv), v = to_f64(a.v, bf, nkv);
  const std::vector<double> o = to_f64(a.o, bf, nq), dO = to_f64(a.grad_o, bf, nq);
  const int64_t rep = s.Hq / s.Hkv;
  parallel_for(threads_of(a), s.B * s.Hkv, 1, [&](int64_t t0, int64_t t1, int) {
    std::vector<double> dk(static_cast<size_t>(s.T * s.Dh)), dv(static_cast<size_t>(s.T * s.Dh));
    std::vector<double> dq(static_cast<size_t>(s.Dh));
    for (int64_t bg = t0; bg < t1; ++bg) {
      const int64_t b = bg / s.Hkv, g = bg % s.Hkv;
      std::fill(dk.begin(), dk.end(), 0.0);
      std::fill(dv.begin(), dv.end(), 0.0);
      for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
        for (int64_t i = 0; i < s.T; ++i) {
          const double* qi = &q[s.q_at(b, i, h)];
          const double* doi = &dO[s.q_at(b, i, h)];
          const double delta = dot(doi, &o[s.q_at(b, i, h)], s.Dh);
          const double lse = a.lse[(b * s.Hq + h) * s.T + i];
          std::fill(dq.begin(), dq.end(), 0.0);
          for (int64_t j = s.first_key(i); j <= i; ++j) {
            const double* kj = &k[s.kv_at(b, j, g)];
            const double* vj = &v[s.kv_at(b, j, g)];
            const double logit = s.logit(dot(qi, kj, s.Dh));
            const double p = std::exp(logit - lse);
            const double ds = p * (dot(doi, vj, s.Dh) - delta) * s.slope(logit);
            double* dkj = &dk[j * s.Dh];
            double* dvj = &dv[j * s.Dh];
            for (int64_t d = 0; d < s.Dh; ++d) {
              dq[d] += ds * kj[d];
              dkj[d] += ds * qi[d];
              dvj[d] += p * doi[d];
            }
          }
          for (int64_t d = 0; d < s.Dh; ++d) store(a.grad_q, bf, s.q_at(b, i, h) + d, dq[d]);
        }
      }
      for (int64_t j = 0; j < s.T; ++j)
        for (int64_t d = 0; d < s.Dh; ++d) {
          store(a.grad_k, bf, s.kv_at(b, j, g) + d, dk[j * s.Dh + d]);
          store(a.grad_v, bf, s.kv_at(b, j, g) + d, dv[j * s.Dh + d]);
        }
    }
  });
}

namespace {

// Device, memory, dtype, shapes and options (no buffer is read).
calib_status validate_shape(const calib_attention_args& a, char* err) {
  if (a.device != CALIB_DEVICE_CPU && a.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "device: unknown device %d", (int)a.device);
  if (a.memory != CALIB_MEM_HOST && a.memory != CALIB_MEM_DEVICE)
    return fail(err, CALIB_ERR_TYPE, "memory: unknown memory kind %d", (int)a.memory);
  if (a.memory == CALIB_MEM_DEVICE && a.device != CALIB_DEVICE_CUDA)
    return fail(err, CALIB_ERR_TYPE, "memory: device memory needs device 'cuda'");
  if (a.dtype != CALIB_F32 && a.dtype != CALIB_BF16) return fail(err, CALIB_ERR_TYPE, "dtype: unknown dtype %d", (int)a.dtype);
  if (a.device == CALIB_DEVICE_CUDA && a.dtype != CALIB_BF16)
    return fail(err, CALIB_ERR_TYPE, "dtype: the CUDA attention runs bfloat16 only (got float32)");
  const struct { const char* name; int64_t value; } dims[] = {
      {"b", a.b}, {"t", a.t}, {"hq", a.hq}, {"hkv", a.hkv}, {"head_dim", a.head_dim}};
  for (const auto& d : dims)
    if (d.value < 1) return fail(err, CALIB_ERR_RANGE, "%s must be ≥ 1 (got %lld)", d.name, (long long)d.value);
  if (a.hq % a.hkv != 0)
    return fail(err, CALIB_ERR_RANGE, "hq (%lld) must be a multiple of hkv (%lld)", (long long)a.hq, (long long)a.hkv);
  const int64_t limit = int64_t(1) << 40;
  if (a.t > (int64_t(1) << 30) || a.hq > 65535 || a.b > 65535 || a.head_dim > 65536 ||
      a.b * a.t > limit / a.hq / a.head_dim)
    return fail(err, CALIB_ERR_RANGE, "shape too large (b=%lld, t=%lld, hq=%lld, head_dim=%lld)", (long long)a.b,
                (long long)a.t, (long long)a.hq, (long long)a.head_dim);
  if (a.device == CALIB_DEVICE_CUDA && a.head_dim > 256)
    return fail(err, CALIB_ERR_RANGE, "head_dim %lld is not supported by the CUDA attention (at most 256)",
                (long long)a.head_dim);
  if (!(a.scale > 0.f) || !std::isfinite(a.scale))
    return fail(err, CALIB_ERR_RANGE, "scale must be a finite number > 0 (got %g)", (double)a.scale);
  if (!(a.softcap >= 0.f) || !std::isfinite(a.softcap))
    return fail(err, CALIB_ERR_RANGE, "softcap must be a finite number > 0, or 0 for none (got %g)", (double)a.softcap);
  if (a.window < 0 || a.window > (int64_t(1) << 30))
    return fail(err, CALIB_ERR_RANGE, "window must be ≥ 0 (0: none; got %lld)", (long long)a.window);
  if (a.threads < 0) return fail(err, CALIB_ERR_RANGE, "threads must be ≥ 0 (got %d)", (int)a.threads);
  return CALIB_OK;
}

calib_status validate(const calib_attention_args& a, bool backward, char* err) {
  if (calib_status st = validate_shape(a, err)) return st;
  struct Buf { const char* name; const void* p; bool tensor; };
  const Buf fwd[] = {{"q", a.q, true}, {"k", a.k, true}, {"v", a.v, true}, {"o", a.o, true}, {"lse", a.lse, false}};
  const Buf bwd[] = {{"grad_o", a.grad_o, true}, {"grad_q", a.grad_q, true}, {"grad_k", a.grad_k, true},
                     {"grad_v", a.grad_v, true}};
  for (const Buf& x : fwd)
    if (!x.p) return fail(err, CALIB_ERR_TYPE, "%s is missing", x.name);
  if (backward)
    for (const Buf& x : bwd)
      if (!x.p) return fail(err, CALIB_ERR_TYPE, "%s is missing", x.name);
  if (a.memory == CALIB_MEM_DEVICE) {
    for (const Buf& x : fwd)
      if (reinterpret_cast<uintptr_t>(x.p) % (x.tensor ? 16 : 4) != 0)
        return fail(err, CALIB_ERR_TYPE, "%s must be %d-byte aligned", x.name, x.tensor ? 16 : 4);
    if (backward)
      for (const Buf& x : bwd)
        if (reinterpret_cast<uintptr_t>(x.p) % 16 != 0) return fail(err, CALIB_ERR_TYPE, "%s must be 16-byte aligned", x.name);
    if (backward && a.workspace && a.workspace_size < delta_bytes(a))
      return fail(err, CALIB_ERR_RANGE, "workspace_size %lld is below the %lld bytes the backward needs",
                  (long long)a.workspace_size, (long long)delta_bytes(a));
  }
  if (a.memory == CALIB_MEM_HOST && backward) {
    // lse must come from a forward: every row sees at least its own key, so it is finite
    const int64_t n = a.b * a.hq * a.t;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(a.lse[i]))
        return fail(err, CALIB_ERR_RANGE, "lse[%lld] is not finite (lse must be the forward's output)", (long long)i);
  }
  return CALIB_OK;
}


calib_status dispatch(calib_attention_args* args, bool backward, char* err) {
  err[0] = '\0';
  if (!args) return fail(err, CALIB_ERR_TYPE, "no arguments");
  if (calib_status st = validate(*args, backward, err)) return st;
  if (args->device == CALIB_DEVICE_CUDA) {
#if CALIB_WITH_CUDA
    return run_cuda(*args, backward, err);
#else
    return fail(err, CALIB_ERR_DEVICE, "this build of the engine has no CUDA path (rebuild with nvcc present)");
#endif
  }
  if (backward) backward_cpu(*args);
  else forward_cpu(*args);
  return CALIB_OK;
}

}  // namespace
}  // namespace calib::flash

extern "C" calib_status calib_attention_forward(calib_attention_args* args, char* err) {
  return calib::flash::dispatch(args, false, err);
}

extern "C" calib_status calib_attention_backward(calib_attention_args* args, char* err) {
  return calib::flash::dispatch(args, true, err);
}

extern "C" calib_status calib_attention_workspace_size(const calib_attention_args* args, int64_t* bytes, char* err) {
  err[0] = '\0';
  if (!args || !bytes) return calib::fail(err, CALIB_ERR_TYPE, "no arguments");
  if (calib_status st = calib::flash::validate_shape(*args, err)) return st;
  *bytes = calib::flash::delta_bytes(*args);
  return CALIB_OK;
}
