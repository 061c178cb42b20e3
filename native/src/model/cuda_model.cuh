// The CUDA base of every architecture (gpt_cuda.cu, llama_cuda.cu), as cpu_model.h is on the CPU:
// parameters (fp32 master), gradients, AdamW moments and the bf16 compute copy resident on the device in the
// layout's flat order; read / write / zero of the flat buffers; the step (the architecture's forward, the
// LM head through the fused loss, its backward); evaluation statistics from the final hidden states;
// gradient norms and AdamW; the row-major cuBLAS products; allocation with an error that names the sizes; the
// sticky error of calls that cannot return a status; the embedding-gradient buckets; CALIB_PROFILE's
// CUDA-event spans. An architecture allocates its activations in init(), fills hidden() (N×C, activation
// type) in forward() and, given d(loss)/d(hidden) in dln_ (fp32), adds every gradient in backward().
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "../cuda/cublas.cuh"
#include "../cuda/runtime.cuh"
#include "gpt.h"
#include "kernels_cuda.cuh"

namespace calib::model {

#define ST(call)                                \
  do {                                          \
    if (calib_status s_ = (call)) return s_;    \
  } while (0)

template <typename A>
class CudaModel : public ModelImpl {
 protected:
  static constexpr bool kBf16 = std::is_same_v<A, cuda::bf16>;
  static constexpr calib::blas::Dt kDt = kBf16 ? calib::blas::kBF16 : calib::blas::kF32;
  static constexpr int64_t kNormChunk = 1 << 16;  // the CPU's chunks (adamw.cc), for the same norm structure

 public:
  CudaModel(const calib_model_config& c, const Layout& layout)
      : c_(c), lay_(layout), L_(c.n_layer), C_(c.d_model), V_(c.vocab), Tc_(c.context), Bm_(c.max_batch) {
    prof_.on = std::getenv("CALIB_PROFILE") && std::getenv("CALIB_PROFILE")[0] == '1';
  }

  ~CudaModel() override {
    if (prof_.on && prof_.steps > 0) {
      const double n = static_cast<double>(prof_.steps);
      std::fprintf(stderr,
                   "calib profile (ms per step over %lld steps): forward %.2f (attention %.2f), head %.2f, "
                   "backward %.2f (attention %.2f, recompute %.2f)\n",
                   static_cast<long long>(prof_.steps), prof_.total[0] / n, prof_.total[3] / n, prof_.total[1] / n,
                   prof_.total[2] / n, prof_.total[4] / n, prof_.total[5] / n);
    }
    for (cudaEvent_t e : prof_.pool) cudaEventDestroy(e);
    calib::blas::destroy(h_);
    for (void* p : allocs_) cudaFree(p);
  }

  // The state every architecture has; partial_cols: the widest column reduction (bias / norm gradients)
  // of the architecture, for partial_.
  calib_status init_base(int64_t partial_cols, char* err) {
    calib::cu::DeviceInfo dev;
    ST(calib::cu::device_info(dev, err));
    cudaGetLastError();
    ST(calib::blas::create(&h_, err));
    const int64_t P = lay_.total, sN = Bm_ * Tc_;
    ST(alloc(&params_, P, err));
    ST(alloc(&grads_, P, err));
    ST(alloc(&m_, P, err));
    ST(alloc(&v_, P, err));
    if constexpr (kBf16) ST(alloc(&pc_, P, err));
    else pc_ = reinterpret_cast<A*>(params_);
    ST(alloc(&dln_, sN * C_, err));
    ST(alloc(&loss_, sN, err));
    ST(alloc(&gout_, sN, err));
    ST(alloc(&inputs_d_, sN, err));
    ST(alloc(&targets_d_, sN, err));
    ST(alloc(&uniq_d_, sN, err));
    ST(alloc(&offs_d_, sN + 1, err));
    ST(alloc(&pos_d_, sN, err));
    ST(alloc(&partial_, cuda::col_chunks(sN) * partial_cols, err));
    // gradient-norm chunks (the CPU's)
    std::vector<int64_t> b, e;
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      for (int64_t o = 0; o < s.numel; o += kNormChunk) {
        chunk_tensor_.push_back(i);
        b.push_back(s.offset + o);
        e.push_back(s.offset + std::min(s.numel, o + kNormChunk));
      }
    }
    n_chunks_ = static_cast<int>(b.size());
    ST(alloc(&chunk_begin_, n_chunks_, err));
    ST(alloc(&chunk_end_, n_chunks_, err));
    ST(alloc(&norm_parts_, n_chunks_, err));
    CU_TRY(cudaMemcpy(chunk_begin_, b.data(), b.size() * 8, cudaMemcpyHostToDevice));
    CU_TRY(cudaMemcpy(chunk_end_, e.data(), e.size() * 8, cudaMemcpyHostToDevice));
    for (float* buf : {params_, grads_, m_, v_}) CU_TRY(cudaMemset(buf, 0, size_t(P) * 4));
    if constexpr (kBf16) CU_TRY(cudaMemset(pc_, 0, size_t(P) * sizeof(A)));
    return CALIB_OK;
  }

  int64_t bytes() const { return bytes_; }

  // ---- buffers
  void read(calib_model_buffer which, int64_t offset, int64_t count, void* dst) override {
    cudaError_t e = cudaMemcpy(dst, buffer(which) + offset, size_t(count) * 4, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      keep(e, "read (cudaMemcpy)");
      std::fill_n(static_cast<float*>(dst), count, std::nanf(""));
    }
  }
  void write(calib_model_buffer which, int64_t offset, int64_t count, const void* src) override {
    if (which == CALIB_BUF_GRADS) head_grad_zero_ = false;
    cudaError_t e = cudaMemcpy(buffer(which) + offset, src, size_t(count) * 4, cudaMemcpyHostToDevice);
    if (e == cudaSuccess && which == CALIB_BUF_PARAMS && kBf16) e = cuda::cast_from_f32<A>(pc_ + offset, params_ + offset, count);
    if (e != cudaSuccess) keep(e, "write");
  }
  void zero(calib_model_buffer which) override {
    cudaError_t e = cudaMemset(buffer(which), 0, size_t(lay_.total) * 4);
    if (which == CALIB_BUF_GRADS) head_grad_zero_ = e == cudaSuccess;
    if (e == cudaSuccess && which == CALIB_BUF_PARAMS && kBf16) e = cudaMemset(pc_, 0, size_t(lay_.total) * sizeof(A));
    if (e != cudaSuccess) keep(e, "zero");
  }

  // ---- one micro-batch
  calib_status step(calib_model_step_args& a, char* err) override {
    ST(check_sticky(err));
    const int B = a.b, T = a.t;
    const int64_t N = int64_t(B) * T;
    const size_t t0 = prof_.mark();
    ST(forward(a.inputs, B, T, err));
    const size_t t1 = prof_.mark();
    int64_t valid = 0;
    for (int64_t i = 0; i < N; ++i) valid += a.targets[i] != a.ignore_index;
    const float scale = a.grad_scale > 0 ? a.grad_scale : (valid > 0 ? static_cast<float>(1.0 / valid) : 0.f);
    const bool grad = a.backward && valid > 0;
    double total = 0;
    ST(head(a, N, scale, grad, &total, err));
    a.loss_sum = total;
    a.valid_count = valid;
    const size_t t2 = prof_.mark();
    if (grad) ST(backward(a.inputs, B, T, err));
    const size_t t3 = prof_.mark();
    if (prof_.on) {
      prof_.span(0, t0, t1);
      prof_.span(1, t1, t2);
      prof_.span(2, t2, t3);
      prof_.finish();
    }
    if (grad) CU_TRY(cudaDeviceSynchronize());
    return CALIB_OK;
  }

  // ---- evaluation
  calib_status eval(calib_model_eval_args& a, char* err) override {
    ST(check_sticky(err));
    prof_.spans.clear();  // the profile covers training steps only
    prof_.used = 0;
    const int B = a.b, T = a.t;
    ST(forward(a.inputs, B, T, err));
    const int64_t n = a.rows ? a.n_rows : int64_t(B) * T;
    if (n == 0) return CALIB_OK;
    // rows per logits block: at most 4096 and 256 MiB of fp32 logits (buffers kept between calls)
    const int64_t R = std::max<int64_t>(1, std::min<int64_t>(4096, (int64_t(256) << 20) / (V_ * 4)));
    ST(eval_buffers(R, a.n_options, err));
    if (a.option_ids && a.n_options > 0)
      CU_TRY(cudaMemcpy(ev_opt_ids_, a.option_ids, size_t(a.n_options) * 4, cudaMemcpyHostToDevice));
    std::vector<int32_t> rows(R), tg(R);
    const int k = a.top_k;
    const A* H = head_compute();
    const A* hid = hidden();
    for (int64_t i0 = 0; i0 < n; i0 += R) {
      const int rn = static_cast<int>(std::min(R, n - i0));
      for (int r = 0; r < rn; ++r) {
        rows[r] = a.rows ? a.rows[i0 + r] : static_cast<int32_t>(i0 + r);
        if (a.targets) tg[r] = a.targets[rows[r]];
      }
      CU_TRY(cudaMemcpy(ev_rows_, rows.data(), size_t(rn) * 4, cudaMemcpyHostToDevice));
      if (a.targets) CU_TRY(cudaMemcpy(ev_tg_, tg.data(), size_t(rn) * 4, cudaMemcpyHostToDevice));
      CU_TRY(cuda::gather_rows<A>(ev_h_, hid, ev_rows_, rn, static_cast<int>(C_)));
      // z (rn × V) = h · Hᵀ
      ST(calib::blas::gemm_rm(h_, calib::blas::kN, calib::blas::kT, rn, static_cast<int>(V_), static_cast<int>(C_), 1.f, ev_h_, kDt,
                       static_cast<int>(C_), H, kDt, static_cast<int>(C_), 0.f, ev_z_, calib::blas::kF32,
                       static_cast<int>(V_), err));
      cuda::RowStatsArgs s{};
      s.z = ev_z_;
      s.n = rn;
      s.V = V_;
      s.inv_t = 1.0f / a.temperature;
      s.cap = a.softcap;
      s.targets = a.targets ? ev_tg_ : nullptr;
      s.ignore_index = a.ignore_index;
      s.top_k = k;
      s.option_ids = ev_opt_ids_;
      s.n_options = a.option_logits ? a.n_options : 0;
      s.argmax = ev_argmax_;
      s.p_target = ev_ptarget_;
      s.nll = ev_nll_;
      s.p_max = ev_pmax_;
      s.entropy = ev_entropy_;
      s.lse = ev_lse_;
      s.top_ids = ev_topi_;
      s.top_p = ev_topp_;
      s.option_logits = a.option_logits ? ev_opt_ : nullptr;
      CU_TRY(cuda::row_stats(s));
      auto back = [&](void* dst, const void* src, size_t elem, int64_t per) -> cudaError_t {
        if (!dst) return cudaSuccess;
        return cudaMemcpy(static_cast<char*>(dst) + size_t(i0) * per * elem, src, size_t(rn) * per * elem,
                          cudaMemcpyDeviceToHost);
      };
      CU_TRY(back(a.argmax, ev_argmax_, 4, 1));
      CU_TRY(back(a.p_target, ev_ptarget_, 4, 1));
      CU_TRY(back(a.nll, ev_nll_, 4, 1));
      CU_TRY(back(a.p_max, ev_pmax_, 4, 1));
      CU_TRY(back(a.entropy, ev_entropy_, 4, 1));
      CU_TRY(back(a.lse, ev_lse_, 4, 1));
      if (k > 0) {
        CU_TRY(back(a.top_ids, ev_topi_, 4, k));
        CU_TRY(back(a.top_p, ev_topp_, 4, k));
      }
      if (a.option_logits) CU_TRY(back(a.option_logits, ev_opt_, 4, a.n_options));
    }
    return CALIB_OK;
  }

  // ---- optimizer
  double grad_norm(double* tensor_norms) override {
    std::vector<double> parts(n_chunks_);
    cudaError_t e = cuda::sumsq_chunks(norm_parts_, grads_, chunk_begin_, chunk_end_, n_chunks_);
    if (e == cudaSuccess) e = cudaMemcpy(parts.data(), norm_parts_, parts.size() * 8, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      keep(e, "grad_norm");
      if (tensor_norms) std::fill_n(tensor_norms, lay_.count, std::nan(""));
      return std::nan("");
    }
    std::vector<double> tensors(lay_.count, 0.0);
    for (int c = 0; c < n_chunks_; ++c) tensors[chunk_tensor_[c]] += parts[c];
    double total = 0;
    for (int32_t t = 0; t < lay_.count; ++t) {
      total += tensors[t];
      if (tensor_norms) tensor_norms[t] = std::sqrt(tensors[t]);
    }
    return std::sqrt(total);
  }

  void adamw(const calib_adamw_args& a) override {
    const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
    const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
    const float step_size = static_cast<float>(a.lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    for (int32_t i = 0; i < lay_.count; ++i) {
      const TensorSpec& s = lay_.t[lay_.index[i]];
      const float shrink = s.decay ? static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay) : 1.f;
      cudaError_t e = cuda::adamw_update<A>(params_ + s.offset, grads_ + s.offset, m_ + s.offset, v_ + s.offset,
                                      kBf16 ? pc_ + s.offset : nullptr, s.numel, a.beta1, a.beta2, a.eps,
                                      a.grad_scale, step_size, bc2_sqrt, shrink);
      if (e != cudaSuccess) {
        keep(e, "adamw");
        return;
      }
    }
  }

 protected:
  // The architecture's passes (see the header comment).
  virtual calib_status forward(const int32_t* inputs, int B, int T, char* err) = 0;
  virtual calib_status backward(const int32_t* inputs, int B, int T, char* err) = 0;
  virtual const A* hidden() const = 0;

  template <typename X>
  calib_status alloc(X** out, int64_t count, char* err) {
    *out = nullptr;
    const size_t bytes = size_t(std::max<int64_t>(count, 1)) * sizeof(X);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      std::snprintf(err, CALIB_ERRLEN,
                    "cannot allocate the CUDA model: %.1f MiB more needed after %.1f MiB (%.1f of %.1f GiB free on the "
                    "GPU): lower maxBatch or context (%s)",
                    bytes / 1048576.0, bytes_ / 1048576.0, free_b / 1073741824.0, total_b / 1073741824.0,
                    cudaGetErrorString(e));
      return CALIB_ERR_RUNTIME;
    }
    allocs_.push_back(p);
    bytes_ += static_cast<int64_t>(bytes);
    *out = static_cast<X*>(p);
    return CALIB_OK;
  }

  void keep(cudaError_t e, const char* what) {
    if (sticky_.empty()) sticky_ = std::string(what) + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
  }
  calib_status check_sticky(char* err) {
    if (sticky_.empty()) return CALIB_OK;
    std::snprintf(err, CALIB_ERRLEN, "an earlier CUDA call of this model failed: %s", sticky_.c_str());
    return CALIB_ERR_RUNTIME;
  }

  calib_status eval_buffers(int64_t R, int32_t n_options, char* err) {
    if (R > ev_rows_cap_) {  // once: R depends on V only
      ST(alloc(&ev_h_, R * C_, err));
      ST(alloc(&ev_z_, R * V_, err));
      ST(alloc(&ev_rows_, R, err));
      ST(alloc(&ev_tg_, R, err));
      ST(alloc(&ev_argmax_, R, err));
      ST(alloc(&ev_ptarget_, R, err));
      ST(alloc(&ev_nll_, R, err));
      ST(alloc(&ev_pmax_, R, err));
      ST(alloc(&ev_entropy_, R, err));
      ST(alloc(&ev_lse_, R, err));
      ST(alloc(&ev_topi_, R * 16, err));
      ST(alloc(&ev_topp_, R * 16, err));
      ev_rows_cap_ = R;
      ev_opt_cap_ = 0;
    }
    const int64_t opt = R * std::max<int32_t>(1, n_options);
    if (opt > ev_opt_cap_) {
      ST(alloc(&ev_opt_, opt, err));
      ST(alloc(&ev_opt_ids_, std::max<int32_t>(1, n_options), err));
      ev_opt_cap_ = opt;
      ev_opt_ids_cap_ = std::max<int32_t>(1, n_options);
    }
    if (n_options > ev_opt_ids_cap_) {
      ST(alloc(&ev_opt_ids_, n_options, err));
      ev_opt_ids_cap_ = n_options;
    }
    return CALIB_OK;
  }

  float* buffer(calib_model_buffer w) {
    switch (w) {
      case CALIB_BUF_GRADS: return grads_;
      case CALIB_BUF_ADAM_M: return m_;
      case CALIB_BUF_ADAM_V: return v_;
      default: return params_;
    }
  }
  const A* head_compute() const { return pc_ + lay_.t[lay_.head].offset; }
  // Tensor `id` (the architecture's TensorId / LlamaTensorId) of layer `layer`: its master weights, compute copy and
  // gradient.
  int64_t off(int id, int64_t layer = 0) const {
    const TensorSpec& s = lay_.t[id];
    return s.offset + (s.per_layer ? layer * (s.numel / L_) : 0);
  }
  const float* P(int id, int64_t layer = 0) const { return params_ + off(id, layer); }
  const A* W(int id, int64_t layer = 0) const { return pc_ + off(id, layer); }
  float* G(int id, int64_t layer = 0) { return grads_ + off(id, layer); }

  // out (N×OC) (+)= inp (N×IC) · Wᵀ, W: OC×IC (nn.Linear)
  calib_status matmul_forward(void* out, calib::blas::Dt out_t, float beta, const A* inp, const A* w, int64_t N, int64_t IC,
                              int64_t OC, char* err) {
    return calib::blas::gemm_rm(h_, calib::blas::kN, calib::blas::kT, static_cast<int>(N), static_cast<int>(OC), static_cast<int>(IC), 1.f, inp, kDt,
                         static_cast<int>(IC), w, kDt, static_cast<int>(IC), beta, out, out_t, static_cast<int>(OC),
                         err);
  }
  // dinp (N×IC) = dout·W (+ dinp when accumulate);  dW (OC×IC) += doutᵀ·inp
  calib_status matmul_backward(void* dinp, calib::blas::Dt dinp_t, float* dw, const A* dout, const A* inp, const A* w,
                               int64_t N, int64_t IC, int64_t OC, char* err, bool accumulate = false) {
    ST(calib::blas::gemm_rm(h_, calib::blas::kN, calib::blas::kN, static_cast<int>(N), static_cast<int>(IC), static_cast<int>(OC), 1.f, dout, kDt,
                     static_cast<int>(OC), w, kDt, static_cast<int>(IC), accumulate ? 1.f : 0.f, dinp, dinp_t, static_cast<int>(IC), err));
    return calib::blas::gemm_rm(h_, calib::blas::kT, calib::blas::kN, static_cast<int>(OC), static_cast<int>(IC), static_cast<int>(N), 1.f, dout, kDt,
                         static_cast<int>(OC), inp, kDt, static_cast<int>(IC), 1.f, dw, calib::blas::kF32,
                         static_cast<int>(IC), err);
  }

  // The LM head through the fused loss (calib_linear_cross_entropy on device memory): no logits
  // are stored. dC (the loss writes it, V×C fp32) goes straight into the head's gradient while that is known to be
  // zero (the first micro-batch after zero(GRADS): 0 + dC is dC, bit for bit); otherwise into a scratch, allocated
  // on first need (gradient accumulation), that is then added — so a plain step holds no V×C scratch.
  calib_status head(calib_model_step_args& a, int64_t N, float scale, bool grad, double* total, char* err) {
    float* head_grad = grads_ + lay_.t[lay_.head].offset;
    const bool direct = grad && head_grad_zero_;
    if (grad && !direct && !dC_) ST(alloc(&dC_, V_ * C_, err));
    CU_TRY(cudaMemcpy(targets_d_, a.targets, size_t(N) * 4, cudaMemcpyHostToDevice));
    if (grad) CU_TRY(cuda::fill_f32(gout_, scale, N));
    calib_lce_args la = head_lce_args(a, N, C_, V_, hidden(), head_compute(), targets_d_, loss_);
    la.dtype = kBf16 ? CALIB_BF16 : CALIB_F32;
    la.device = CALIB_DEVICE_CUDA;
    la.memory = CALIB_MEM_DEVICE;
    la.workspace_bytes = c_.head_workspace_bytes;
    la.deterministic = 1;
    if (grad) {
      la.grad_output = gout_;
      la.grad_e = dln_;
      la.grad_c = direct ? head_grad : dC_;
      head_grad_zero_ = false;  // from here on (even if the call fails) the head's gradient may hold values
    }
    if (calib_status st = calib_linear_cross_entropy(&la, err)) {
      const std::string m = err;
      std::snprintf(err, CALIB_ERRLEN, "LM head: %s", m.c_str());
      return st;
    }
    host_loss_.resize(N);
    CU_TRY(cudaMemcpy(host_loss_.data(), loss_, size_t(N) * 4, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < N; ++i) *total += host_loss_[i];
    if (grad && !direct) CU_TRY(cuda::add_f32(head_grad, dC_, V_ * C_));
    return CALIB_OK;
  }

  // Uploads the buckets of the embedding gradient (the positions of each distinct token of inputs, in
  // increasing order) into uniq_d_, offs_d_, pos_d_; returns the number of distinct tokens.
  calib_status embedding_buckets(const int32_t* inputs, int64_t N, int* n_uniq, char* err) {
    // embedding gradients: positions of each distinct token, in increasing order
  order_.resize(N);
  std::iota(order_.begin(), order_.end(), 0);
  std::stable_sort(order_.begin(), order_.end(), [&](int32_t x, int32_t y) { return inputs[x] < inputs[y]; });
  uniq_.clear();
  offs_.clear();
  for (int64_t i = 0; i < N; ++i) {
    if (i == 0 || inputs[order_[i]] != inputs[order_[i - 1]]) {
      uniq_.push_back(inputs[order_[i]]);
      offs_.push_back(static_cast<int32_t>(i));
    }
  }
  offs_.push_back(static_cast<int32_t>(N));
  const int nu = static_cast<int>(uniq_.size());
  *n_uniq = nu;
  CU_TRY(cudaMemcpy(uniq_d_, uniq_.data(), size_t(nu) * 4, cudaMemcpyHostToDevice));
  CU_TRY(cudaMemcpy(offs_d_, offs_.data(), size_t(nu + 1) * 4, cudaMemcpyHostToDevice));
  CU_TRY(cudaMemcpy(pos_d_, order_.data(), size_t(N) * 4, cudaMemcpyHostToDevice));
  return CALIB_OK;
  }

  calib_model_config c_;
  Layout lay_;
  const int64_t L_, C_, V_, Tc_, Bm_;
  calib::blas::Handle h_ = nullptr;
  std::vector<void*> allocs_;
  int64_t bytes_ = 0;
  std::string sticky_;
  // parameters (fp32 master), gradients, moments, compute copy
  float *params_ = nullptr, *grads_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  A* pc_ = nullptr;
  float* dln_ = nullptr;  // d(loss)/d(hidden) from the head, then the architecture's fp32 scratch
  bool head_grad_zero_ = true;  // the head's gradient is all zeros (init, zero(GRADS); see head())
  float *dC_ = nullptr, *loss_ = nullptr, *gout_ = nullptr, *partial_ = nullptr;
  int32_t *inputs_d_ = nullptr, *targets_d_ = nullptr, *uniq_d_ = nullptr, *offs_d_ = nullptr, *pos_d_ = nullptr;
  std::vector<float> host_loss_;
  // CALIB_PROFILE=1: CUDA-event times of the step's phases, printed when the model is freed
  struct Profile {
    bool on = false;
    std::vector<cudaEvent_t> pool;
    size_t used = 0;
    std::vector<std::pair<int, std::pair<size_t, size_t>>> spans;
    double total[6] = {0, 0, 0, 0, 0, 0};
    int64_t steps = 0;
    size_t mark() {
      if (!on) return 0;
      if (used == pool.size()) {
        cudaEvent_t e;
        if (cudaEventCreate(&e) != cudaSuccess) {
          on = false;
          return 0;
        }
        pool.push_back(e);
      }
      cudaEventRecord(pool[used]);
      return used++;
    }
    void span(int cat, size_t a, size_t b) {
      if (on) spans.push_back({cat, {a, b}});
    }
    void finish() {
      if (!on || used == 0) return;
      cudaEventSynchronize(pool[used - 1]);
      for (auto& sp : spans) {
        float ms = 0;
        cudaEventElapsedTime(&ms, pool[sp.second.first], pool[sp.second.second]);
        total[sp.first] += ms;
      }
      spans.clear();
      used = 0;
      ++steps;
    }
  } prof_;
  std::vector<int32_t> order_, uniq_, offs_;
  // gradient norm
  int n_chunks_ = 0;
  std::vector<int32_t> chunk_tensor_;
  int64_t *chunk_begin_ = nullptr, *chunk_end_ = nullptr;
  double* norm_parts_ = nullptr;
  // evaluation (allocated on first use)
  int64_t ev_rows_cap_ = 0, ev_opt_cap_ = 0;
  int32_t ev_opt_ids_cap_ = 0;
  A* ev_h_ = nullptr;
  float *ev_z_ = nullptr, *ev_ptarget_ = nullptr, *ev_nll_ = nullptr, *ev_pmax_ = nullptr, *ev_entropy_ = nullptr,
        *ev_lse_ = nullptr, *ev_topp_ = nullptr, *ev_opt_ = nullptr;
  int32_t *ev_rows_ = nullptr, *ev_tg_ = nullptr, *ev_argmax_ = nullptr, *ev_topi_ = nullptr, *ev_opt_ids_ = nullptr;
};

}  // namespace calib::model
