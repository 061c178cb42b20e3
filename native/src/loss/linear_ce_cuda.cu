// The CUDA fused linear + label-smoothed cross-entropy (same semantics as linear_ce_cpu.cc; the
// dispatcher linear_ce.cc validated the arguments). A call:
//   1. prologue (device memory): the valid rows and their count, the target and finite checks, the
//      gradient weights — then the count and the check flags come back to the host;
//   2. plan (linear_ce_plan.h: pure, tested on the CPU) and its scratch: the caller's workspace, or
//      the engine's arena (kept between calls);
//   3. one engine runs the plan: linear_ce_fused.cu or linear_ce_blas.cu (see linear_ce_cuda.h);
//   4. the loss (reduced in float64, or scattered per token), the statistics of the call.
// Extra device memory: O(N + V + D) plus the plan's block, slab or chunk — never N × V.
// Every kernel is deterministic (fixed reduction orders, no floating-point atomics), so results are
// bitwise reproducible; the `deterministic` option is therefore always met. Everything runs on the
// options' stream; the call returns when its work there is done.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <vector>

#include "linear_ce.h"
#include "linear_ce_common.cuh"
#include "linear_ce_cuda.h"

namespace calib {
namespace lce {

calib_status allow_smem(const void* kernel, int bytes, char* err) {
  static std::vector<const void*> done;  // under the engine mutex
  if (std::find(done.begin(), done.end(), kernel) != done.end()) return CALIB_OK;
  CU_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done.push_back(kernel);
  return CALIB_OK;
}

namespace {

DeviceProps props(const cu::DeviceInfo& dev) {
  DeviceProps d;
  d.sms = dev.sms;
  d.cc_major = dev.cc_major;
  return d;
}

// The plan's view of a call; cuBLAS is loaded only when the plan could use it (bf16, not impl 'fused').
Problem problem_of(const calib_lce_args& a, const calib_lce_cuda_options* o, int64_t count) {
  const int impl = o ? o->gemm_impl : CALIB_LCE_GEMM_AUTO;
  const bool blas = a.dtype == CALIB_BF16 && impl != CALIB_LCE_GEMM_FUSED && blas_handle(nullptr) != nullptr;
  return problem_from(a, o, count, blas);
}

calib_status plan_call(const Problem& p, const cu::DeviceInfo& dev, Plan* plan, char* err) {
  if (p.gemm_impl == CALIB_LCE_GEMM_CUBLAS && p.bf16 && !p.blas_available) {
    char why[CALIB_ERRLEN];
    blas_handle(why);
    return fail(err, CALIB_ERR_DEVICE, "impl 'cublas': %s", why);
  }
  return plan_lce_cuda(p, props(dev), plan, err);
}

// The call's fixed fields: inputs, outputs, scalars and stream.
Call call_of(const calib_lce_args& a, cudaStream_t s) {
  Call c;
  c.e = a.e, c.c = a.c, c.bias = a.bias, c.targets = a.targets;
  c.T = a.temperature;
  c.inv_t = 1.0f / a.temperature;
  const int64_t mult = a.dtype == CALIB_BF16 ? 8 : 4;
  c.vec_e = a.d % mult == 0 && aligned16(a.e);
  c.vec_c = a.d % mult == 0 && aligned16(a.c);
  c.stream = s;
  return c;
}

void record(const Plan& q, size_t bytes) {
  calib_cuda_stats& s = cu::stats();
  s.last_scratch_bytes = static_cast<int64_t>(bytes);
  s.scratch_peak_bytes = std::max<int64_t>(s.scratch_peak_bytes, static_cast<int64_t>(bytes));
  s.last_mode = q.mode;
  s.last_splits = q.splits;
  if (q.engine == kEngineBlas) {
    s.last_block_rows = q.Rs;
    s.last_block_cols = q.Ws;
  } else {
    s.last_block_rows = q.mode == kModeStreamed ? q.Rb : q.mode == kModeChunked ? q.Rc : 0;
    s.last_block_cols = q.mode == kModeStreamed ? q.Wb : q.mode == kModeChunked ? q.Vp : 0;
  }
  s.last_gemm = q.engine == kEngineBlas ? 2 : q.wgmma ? 1 : 0;
}

calib_status run_engine(const Call& c, char* err) {
  return c.plan.engine == kEngineBlas ? run_blas(c, err) : run_fused(c, err);
}

// Waits for the call's work and reads the count of skipped tiles.
calib_status finish(const Call& c, char* err) {
  unsigned long long skipped = 0;
  if (c.buf.skipped) CU_TRY(cudaMemcpyAsync(&skipped, c.buf.skipped, sizeof skipped, cudaMemcpyDeviceToHost, c.stream));
  CU_TRY(cudaStreamSynchronize(c.stream));
  cu::stats().last_tiles_skipped = static_cast<int64_t>(skipped);
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

// Host arrays: copies in, the valid rows and weights the dispatcher found, the engine arena, copies out.
calib_status run_host(const calib_lce_args& a, const calib_lce_cuda_options* o, LceRows& r, const cu::DeviceInfo& dev,
                      cudaStream_t s, char* err) {
  const int64_t count = static_cast<int64_t>(r.rows.size());
  r.row_loss.assign(count, 0.0);
  cu::stats().last_tiles = 0;
  cu::stats().last_tiles_skipped = 0;
  if (count == 0) return CALIB_OK;  // the dispatcher zeroed the gradients and set lse to NaN
  const bool grad = a.grad_e != nullptr;
  const size_t es = a.dtype == CALIB_BF16 ? 2 : 4;
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
  if (grad) {
    if ((st = db.alloc(&w, count, err)) || (st = db.alloc(&dE, size_t(a.n) * a.d, err)) ||
        (st = db.alloc(&dC, size_t(a.v) * a.d, err)) || (a.grad_bias && (st = db.alloc(&dbias, a.v, err))))
      return st;
  }
  const std::vector<int32_t> rows32(r.rows.begin(), r.rows.end());
  CU_TRY(cudaMemcpyAsync(ebuf, a.e, size_t(a.n) * a.d * es, cudaMemcpyHostToDevice, s));
  CU_TRY(cudaMemcpyAsync(cbuf, a.c, size_t(a.v) * a.d * es, cudaMemcpyHostToDevice, s));
  if (bias) CU_TRY(cudaMemcpyAsync(bias, a.bias, size_t(a.v) * 4, cudaMemcpyHostToDevice, s));
  CU_TRY(cudaMemcpyAsync(targets, a.targets, size_t(a.n) * 4, cudaMemcpyHostToDevice, s));
  CU_TRY(cudaMemcpyAsync(rows, rows32.data(), size_t(count) * 4, cudaMemcpyHostToDevice, s));
  if (grad) CU_TRY(cudaMemcpyAsync(w, r.weight.data(), size_t(count) * 4, cudaMemcpyHostToDevice, s));

  calib_lce_args d = a;  // the same call on the device copies (for the plan's alignment checks)
  d.e = ebuf, d.c = cbuf;
  Call c = call_of(d, s);
  c.bias = bias, c.targets = targets, c.rows = rows, c.w = w;
  c.lse_valid = lse_valid, c.row_loss = row_loss, c.lse_out = nullptr;
  c.dE = dE, c.dC = dC, c.dbias = a.grad_bias ? dbias : nullptr;
  c.prob = problem_of(d, o, count);
  if ((st = plan_call(c.prob, dev, &c.plan, err))) return st;
  if (grad && c.plan.engine != kEngineBlas) CU_TRY(cudaMemsetAsync(dE, 0, size_t(a.n) * a.d * 4, s));  // cuBLAS writes every row
  Arena measure(nullptr);
  take_buffers(measure, c.prob, c.plan, &c.buf);
  char* base;
  if ((st = cu::scratch(measure.used(), &base, err))) return st;
  Arena real(base);
  take_buffers(real, c.prob, c.plan, &c.buf);
  record(c.plan, measure.used());
  if ((st = run_engine(c, err)) || (st = finish(c, err))) return st;
  CU_TRY(cudaMemcpy(r.row_loss.data(), row_loss, size_t(count) * 8, cudaMemcpyDeviceToHost));
  if (a.lse) {
    std::vector<float> l(count);
    CU_TRY(cudaMemcpy(l.data(), lse_valid, size_t(count) * 4, cudaMemcpyDeviceToHost));
    for (int64_t k = 0; k < count; ++k) a.lse[r.rows[k]] = l[k];
  }
  if (grad) {
    CU_TRY(cudaMemcpy(a.grad_e, dE, size_t(a.n) * a.d * 4, cudaMemcpyDeviceToHost));
    CU_TRY(cudaMemcpy(a.grad_c, dC, size_t(a.v) * a.d * 4, cudaMemcpyDeviceToHost));
    if (a.grad_bias) CU_TRY(cudaMemcpy(a.grad_bias, dbias, size_t(a.v) * 4, cudaMemcpyDeviceToHost));
  }
  return CALIB_OK;
}

// The prologue of a device-memory call: valid rows, checks (read back, with the message of the first
// problem), weights, lse = NaN. Returns the count of valid tokens.
calib_status prologue(const calib_lce_args& a, const Prologue& pr, const cu::DeviceInfo& dev, cudaStream_t s,
                      int64_t* valid, char* err) {
  const int64_t N = a.n;
  const bool bf16 = a.dtype == CALIB_BF16;
  CU_TRY(cudaMemsetAsync(pr.bad, 0xff, 5 * sizeof(unsigned long long), s));
  CU_TRY(cudaMemsetAsync(pr.count, 0, sizeof(long long), s));
  if (N > 0) launch_prep(a.targets, N, a.ignore_index, a.v, pr.rows, pr.count, pr.bad, s);
  if (a.check_finite) {
    const int64_t ngo = a.grad_output ? (a.reduction == CALIB_REDUCE_NONE ? N : 1) : 0;
    const int blocks = dev.sms * 16;
    if (N * a.d > 0) launch_finite(a.e, bf16, N * a.d, blocks, pr.bad + 1, s);
    launch_finite(a.c, bf16, a.v * a.d, blocks, pr.bad + 2, s);
    if (a.bias) launch_finite(a.bias, false, a.v, blocks, pr.bad + 3, s);
    if (ngo > 0) launch_finite(a.grad_output, false, ngo, blocks, pr.bad + 4, s);
  }
  LAUNCHED("input check kernels");
  long long count = 0;
  unsigned long long flags[5];
  CU_TRY(cudaMemcpyAsync(&count, pr.count, sizeof count, cudaMemcpyDeviceToHost, s));
  CU_TRY(cudaMemcpyAsync(flags, pr.bad, sizeof flags, cudaMemcpyDeviceToHost, s));
  CU_TRY(cudaStreamSynchronize(s));
  const unsigned long long none = ~0ull;
  if (flags[0] != none) {
    int32_t t = 0;
    CU_TRY(cudaMemcpyAsync(&t, a.targets + flags[0], 4, cudaMemcpyDeviceToHost, s));
    CU_TRY(cudaStreamSynchronize(s));
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
  if (a.grad_e && count > 0) {
    launch_weights(pr.rows, count, a.grad_output, a.reduction == CALIB_REDUCE_NONE, a.reduction == CALIB_REDUCE_MEAN,
                   pr.w, s);
    LAUNCHED("weights kernel");
  }
  if (a.lse && N > 0) {
    launch_fill(a.lse, N, std::numeric_limits<float>::quiet_NaN(), s);
    LAUNCHED("fill kernel");
  }
  *valid = count;
  return CALIB_OK;
}

// Device arrays: prologue, plan, engine, loss — all on the device, only a few status words come back.
calib_status run_device(const calib_lce_args& a, const calib_lce_cuda_options* o, LceRows& r, const cu::DeviceInfo& dev,
                        cudaStream_t s, char* err) {
  const int64_t N = a.n;
  const bool grad = a.grad_e != nullptr;
  cu::stats().last_tiles = 0;
  cu::stats().last_tiles_skipped = 0;
  if (N > std::numeric_limits<int32_t>::max())
    return fail(err, CALIB_ERR_RANGE, "N = %lld tokens is too many for the CUDA path (at most 2^31 − 1)", (long long)N);
  // The caller's workspace, or the engine's arena (grown on demand, the prologue kept when it grows).
  char* given = o && o->workspace ? static_cast<char*>(o->workspace) : nullptr;
  const size_t given_bytes = given ? static_cast<size_t>(std::max<int64_t>(o->workspace_size, 0)) : 0;
  Arena ma(nullptr);
  Prologue pr;
  take_prologue(ma, N, grad, &pr);
  const size_t bytes_a = ma.used();
  auto room = [&](size_t bytes, size_t keep, char** base) -> calib_status {
    if (!given) return keep ? cu::scratch_keep(bytes, keep, base, err) : cu::scratch(bytes, base, err);
    if (bytes > given_bytes)
      return fail(err, CALIB_ERR_RANGE, "the workspace holds %zu bytes, this call needs %zu (calib_lce_cuda_workspace_size)",
                  given_bytes, bytes);
    *base = given;
    return CALIB_OK;
  };
  char* base;
  calib_status st;
  if ((st = room(bytes_a, 0, &base))) return st;
  Arena la(base);
  take_prologue(la, N, grad, &pr);
  int64_t count = 0;
  if ((st = prologue(a, pr, dev, s, &count, err))) return st;
  r.valid_count = count;

  Call c = call_of(a, s);
  c.rows = pr.rows, c.w = pr.w, c.lse_valid = pr.lse_valid, c.row_loss = pr.row_loss, c.lse_out = a.lse;
  c.dE = a.grad_e, c.dC = a.grad_c, c.dbias = a.grad_bias;
  c.prob = problem_of(a, o, count);
  size_t total = bytes_a;
  if (count > 0 && (st = plan_call(c.prob, dev, &c.plan, err))) return st;
  if (grad && !(c.plan.engine == kEngineBlas && count > 0)) {  // the cuBLAS engine writes every gradient element
    if (N > 0) CU_TRY(cudaMemsetAsync(a.grad_e, 0, size_t(N) * a.d * 4, s));
    CU_TRY(cudaMemsetAsync(a.grad_c, 0, size_t(a.v) * a.d * 4, s));
    if (a.grad_bias) CU_TRY(cudaMemsetAsync(a.grad_bias, 0, size_t(a.v) * 4, s));
  }
  if (count > 0) {
    Arena mb(nullptr);
    mb.take<char>(bytes_a);
    take_buffers(mb, c.prob, c.plan, &c.buf);
    total = mb.used();
    if ((st = room(total, bytes_a, &base))) return st;
    Arena lb(base);
    take_prologue(lb, N, grad, &pr);  // the arena may have moved: the prologue's buffers again
    take_buffers(lb, c.prob, c.plan, &c.buf);
    c.rows = pr.rows, c.w = pr.w, c.lse_valid = pr.lse_valid, c.row_loss = pr.row_loss;
    record(c.plan, total);
    if ((st = run_engine(c, err))) return st;
  } else {
    record(c.plan, total);
  }
  if (a.reduction == CALIB_REDUCE_NONE) {
    if (N > 0) CU_TRY(cudaMemsetAsync(a.loss, 0, size_t(N) * 4, s));
    if (count > 0) launch_scatter_loss(c.row_loss, c.rows, count, a.loss, s);
  } else {
    launch_loss_reduce(c.row_loss, count, a.reduction == CALIB_REDUCE_MEAN, a.loss, s);
  }
  LAUNCHED("loss kernel");
  return finish(c, err);
}

cudaStream_t stream_of(const calib_lce_cuda_options* o) {
  return o && o->stream ? static_cast<cudaStream_t>(o->stream) : nullptr;
}

}  // namespace
}  // namespace lce

calib_status lce_cuda(const calib_lce_args& a, const calib_lce_cuda_options* o, LceRows& rows, char* err) {
  std::lock_guard<std::mutex> lock(cu::engine_mutex());
  cu::DeviceInfo dev;
  if (calib_status st = cu::device_info(dev, err)) return st;
  cudaGetLastError();  // start from a clean error state
  const cudaStream_t s = lce::stream_of(o);
  calib_status st = a.memory == CALIB_MEM_HOST ? lce::run_host(a, o, rows, dev, s, err) : lce::run_device(a, o, rows, dev, s, err);
  if (st == CALIB_OK) {
    cudaError_t e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) return cu::cuda_fail(err, e, "CUDA linear cross-entropy");
  }
  return st;
}

calib_status lce_cuda_workspace(const calib_lce_args& a, const calib_lce_cuda_options* o, int64_t* bytes, char* err) {
  std::lock_guard<std::mutex> lock(cu::engine_mutex());
  cu::DeviceInfo dev;
  if (calib_status st = cu::device_info(dev, err)) return st;
  lce::Problem p = lce::problem_of(a, o, a.n);
  if (p.gemm_impl == CALIB_LCE_GEMM_CUBLAS && p.bf16 && !p.blas_available) {
    lce::Plan unused;
    return lce::plan_call(p, dev, &unused, err);  // the message naming why cuBLAS is missing
  }
  size_t need = 0;
  if (calib_status st = lce::workspace_bound(p, lce::props(dev), &need, err)) return st;
  *bytes = static_cast<int64_t>(need);
  return CALIB_OK;
}

}  // namespace calib
