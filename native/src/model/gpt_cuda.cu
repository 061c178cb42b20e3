// The GPT model on the GPU (issue 9): the same model, flat-buffer layout and C API as gpt_cpu.cc,
// with parameters, gradients, AdamW moments and activations resident on the device between calls.
// Host arrays go in and out of the C API; the copies happen here.
//
// Precision (calib_model_config.precision):
//   F32   everything in fp32; cuBLAS with CUBLAS_COMPUTE_32F and the default math mode (no TF32);
//         the LM head is the fused loss on fp32 inputs (its mma.sync three-plane fp32 path).
//   BF16  mixed precision: fp32 master weights, gradients and AdamW moments; a bf16 copy of the
//         weights (written by AdamW / write) feeds the matmuls and the LM head; activations that
//         feed matmuls are bf16, with fp32 accumulation everywhere; the residual stream, LayerNorm
//         statistics, softmax scores, bias and LayerNorm gradients and the gradient of the
//         residual stream stay fp32 (the same split as torch.autocast); attention scores and
//         probabilities are bf16 (fp32 softmax arithmetic), as in llm.c.
//
// Per layer the forward keeps ln1, qkv (without bias), the attention probabilities P, the attention
// output, res2, ln2, the fc product (without bias) and res3; GELU is recomputed in the backward.
// Matmuls: cuBLAS (loaded at run time, cuda/cublas.cu); attention: cuBLAS strided-batched products
// over the B·NH heads in causal query blocks (keys up to each block's end only) + the softmax kernels;
// the LM head: the fused loss calib_linear_cross_entropy on device memory (never N×V logits; its
// workspace is calib_model_config.head_workspace_bytes); everything else: kernels_cuda.cuh. Every CUDA and cuBLAS call is
// checked; an error inside a call that cannot return a status (read/write/zero/grad_norm/adamw)
// is kept and reported by the next step or eval.
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

namespace {

using namespace calib::model::cuda;
using blas::kN;
using blas::kT;

#define ST(call)                                \
  do {                                          \
    if (calib_status s_ = (call)) return s_;    \
  } while (0)

constexpr int64_t kNormChunk = 1 << 16;  // the CPU's chunks (adamw.cc), for the same norm structure

template <typename A>
class GptCuda final : public GptImpl {
  static constexpr bool kBf16 = std::is_same_v<A, bf16>;
  static constexpr blas::Dt kDt = kBf16 ? blas::kBF16 : blas::kF32;

 public:
  GptCuda(const calib_model_config& c, const Layout& layout)
      : c_(c), lay_(layout), L_(c.n_layer), C_(c.d_model), NH_(c.n_head), V_(c.vocab), Tc_(c.context),
        Bm_(c.max_batch) {
    prof_.on = std::getenv("CALIB_PROFILE") && std::getenv("CALIB_PROFILE")[0] == '1';
  }

  ~GptCuda() override {
    if (prof_.on && prof_.steps > 0) {
      const double n = static_cast<double>(prof_.steps);
      std::fprintf(stderr,
                   "calib profile (ms per step over %lld steps): forward %.2f (attention %.2f), head %.2f, "
                   "backward %.2f (attention %.2f)\n",
                   static_cast<long long>(prof_.steps), prof_.total[0] / n,
                   prof_.total[3] / n, prof_.total[1] / n, prof_.total[2] / n, prof_.total[4] / n);
    }
    for (cudaEvent_t e : prof_.pool) cudaEventDestroy(e);
    blas::destroy(h_);
    for (void* p : allocs_) cudaFree(p);
  }

  calib_status init(char* err) {
    calib::cu::DeviceInfo dev;
    ST(calib::cu::device_info(dev, err));
    cudaGetLastError();
    ST(blas::create(&h_, err));
    const int64_t P = lay_.total, sN = Bm_ * Tc_, sNC = sN * C_, att = Bm_ * NH_ * Tc_ * Tc_;
    ST(alloc(&params_, P, err));
    ST(alloc(&grads_, P, err));
    ST(alloc(&m_, P, err));
    ST(alloc(&v_, P, err));
    if constexpr (kBf16) ST(alloc(&pc_, P, err));
    else pc_ = reinterpret_cast<A*>(params_);
    // activations kept for the backward
    ST(alloc(&encoded_, sNC, err));
    ST(alloc(&ln1_, L_ * sNC, err));
    ST(alloc(&ln1_mean_, L_ * sN, err));
    ST(alloc(&ln1_rstd_, L_ * sN, err));
    ST(alloc(&qkv_, L_ * 3 * sNC, err));
    ST(alloc(&att_, L_ * att, err));
    ST(alloc(&atty_, L_ * sNC, err));
    ST(alloc(&res2_, L_ * sNC, err));
    ST(alloc(&ln2_, L_ * sNC, err));
    ST(alloc(&ln2_mean_, L_ * sN, err));
    ST(alloc(&ln2_rstd_, L_ * sN, err));
    ST(alloc(&fch_, L_ * 4 * sNC, err));
    ST(alloc(&res3_, L_ * sNC, err));
    ST(alloc(&lnf_, sNC, err));
    ST(alloc(&lnf_mean_, sN, err));
    ST(alloc(&lnf_rstd_, sN, err));
    // scratch shared by the layers
    ST(alloc(&qh_, sNC, err));
    ST(alloc(&kh_, sNC, err));
    ST(alloc(&vh_, sNC, err));
    ST(alloc(&yh_, sNC, err));
    ST(alloc(&S_, att, err));
    ST(alloc(&fchg_, 4 * sNC, err));
    ST(alloc(&dres_, sNC, err));
    if constexpr (kBf16) ST(alloc(&dres_a_, sNC, err));
    else dres_a_ = reinterpret_cast<A*>(dres_);
    ST(alloc(&dln_, sNC, err));
    ST(alloc(&datty_, sNC, err));
    ST(alloc(&dqh_, sNC, err));
    ST(alloc(&dkh_, sNC, err));
    ST(alloc(&dvh_, sNC, err));
    ST(alloc(&dqkv_, 3 * sNC, err));
    ST(alloc(&dfch_, 4 * sNC, err));
    ST(alloc(&loss_, sN, err));
    ST(alloc(&gout_, sN, err));
    ST(alloc(&inputs_d_, sN, err));
    ST(alloc(&targets_d_, sN, err));
    ST(alloc(&uniq_d_, sN, err));
    ST(alloc(&offs_d_, sN + 1, err));
    ST(alloc(&pos_d_, sN, err));
    ST(alloc(&partial_, col_chunks(sN) * 4 * C_, err));
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
    CU_TRY(cudaDeviceSynchronize());
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
    cudaError_t e = cudaMemcpy(buffer(which) + offset, src, size_t(count) * 4, cudaMemcpyHostToDevice);
    if (e == cudaSuccess && which == CALIB_BUF_PARAMS && kBf16) e = cast_from_f32<A>(pc_ + offset, params_ + offset, count);
    if (e != cudaSuccess) keep(e, "write");
  }
  void zero(calib_model_buffer which) override {
    cudaError_t e = cudaMemset(buffer(which), 0, size_t(lay_.total) * 4);
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
    for (int64_t i0 = 0; i0 < n; i0 += R) {
      const int rn = static_cast<int>(std::min(R, n - i0));
      for (int r = 0; r < rn; ++r) {
        rows[r] = a.rows ? a.rows[i0 + r] : static_cast<int32_t>(i0 + r);
        if (a.targets) tg[r] = a.targets[rows[r]];
      }
      CU_TRY(cudaMemcpy(ev_rows_, rows.data(), size_t(rn) * 4, cudaMemcpyHostToDevice));
      if (a.targets) CU_TRY(cudaMemcpy(ev_tg_, tg.data(), size_t(rn) * 4, cudaMemcpyHostToDevice));
      CU_TRY(gather_rows<A>(ev_h_, lnf_, ev_rows_, rn, static_cast<int>(C_)));
      // z (rn × V) = h · Hᵀ
      ST(blas::gemm_rm(h_, kN, kT, rn, static_cast<int>(V_), static_cast<int>(C_), 1.f, ev_h_, kDt,
                       static_cast<int>(C_), H, kDt, static_cast<int>(C_), 0.f, ev_z_, blas::kF32,
                       static_cast<int>(V_), err));
      RowStatsArgs s{};
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
      CU_TRY(row_stats(s));
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
    cudaError_t e = sumsq_chunks(norm_parts_, grads_, chunk_begin_, chunk_end_, n_chunks_);
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
      cudaError_t e = adamw_update<A>(params_ + s.offset, grads_ + s.offset, m_ + s.offset, v_ + s.offset,
                                      kBf16 ? pc_ + s.offset : nullptr, s.numel, a.beta1, a.beta2, a.eps,
                                      a.grad_scale, step_size, bc2_sqrt, shrink);
      if (e != cudaSuccess) {
        keep(e, "adamw");
        return;
      }
    }
  }

 private:
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
  int64_t off(TensorId id, int64_t layer = 0) const {
    const TensorSpec& s = lay_.t[id];
    return s.offset + (s.per_layer ? layer * (s.numel / L_) : 0);
  }
  float* gp(float* buf, TensorId id, int64_t layer = 0) { return buf + off(id, layer); }
  const float* P(TensorId id, int64_t layer = 0) { return params_ + off(id, layer); }
  const A* W(TensorId id, int64_t layer = 0) { return pc_ + off(id, layer); }
  float* G(TensorId id, int64_t layer = 0) { return grads_ + off(id, layer); }
  const A* head_compute() { return W(c_.tied ? kWte : kLmHead); }

  // out (N×OC) (+)= inp (N×IC) · Wᵀ, W: OC×IC (nn.Linear)
  calib_status matmul_forward(void* out, blas::Dt out_t, float beta, const A* inp, const A* w, int64_t N, int64_t IC,
                              int64_t OC, char* err) {
    return blas::gemm_rm(h_, kN, kT, static_cast<int>(N), static_cast<int>(OC), static_cast<int>(IC), 1.f, inp, kDt,
                         static_cast<int>(IC), w, kDt, static_cast<int>(IC), beta, out, out_t, static_cast<int>(OC),
                         err);
  }
  // dinp (N×IC) = dout·W (overwritten);  dW (OC×IC) += doutᵀ·inp
  calib_status matmul_backward(void* dinp, blas::Dt dinp_t, float* dw, const A* dout, const A* inp, const A* w,
                               int64_t N, int64_t IC, int64_t OC, char* err) {
    ST(blas::gemm_rm(h_, kN, kN, static_cast<int>(N), static_cast<int>(IC), static_cast<int>(OC), 1.f, dout, kDt,
                     static_cast<int>(OC), w, kDt, static_cast<int>(IC), 0.f, dinp, dinp_t, static_cast<int>(IC), err));
    return blas::gemm_rm(h_, kT, kN, static_cast<int>(OC), static_cast<int>(IC), static_cast<int>(N), 1.f, dout, kDt,
                         static_cast<int>(OC), inp, kDt, static_cast<int>(IC), 1.f, dw, blas::kF32,
                         static_cast<int>(IC), err);
  }

  // The LM head through the fused loss (calib_linear_cross_entropy on device memory): no logits
  // are stored; dC goes to a scratch that is added to the head's gradient.
  calib_status head(calib_model_step_args& a, int64_t N, float scale, bool grad, double* total, char* err) {
    if (grad && !dC_) ST(alloc(&dC_, V_ * C_, err));
    CU_TRY(cudaMemcpy(targets_d_, a.targets, size_t(N) * 4, cudaMemcpyHostToDevice));
    if (grad) CU_TRY(fill_f32(gout_, scale, N));
    calib_lce_args la = head_lce_args(a, N, C_, V_, lnf_, head_compute(), targets_d_, loss_);
    la.dtype = kBf16 ? CALIB_BF16 : CALIB_F32;
    la.device = CALIB_DEVICE_CUDA;
    la.memory = CALIB_MEM_DEVICE;
    la.workspace_bytes = c_.head_workspace_bytes;
    la.deterministic = 1;
    if (grad) {
      la.grad_output = gout_;
      la.grad_e = dln_;
      la.grad_c = dC_;
    }
    if (calib_status st = calib_linear_cross_entropy(&la, err)) {
      const std::string m = err;
      std::snprintf(err, CALIB_ERRLEN, "LM head: %s", m.c_str());
      return st;
    }
    host_loss_.resize(N);
    CU_TRY(cudaMemcpy(host_loss_.data(), loss_, size_t(N) * 4, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < N; ++i) *total += host_loss_[i];
    if (grad) CU_TRY(add_f32(G(c_.tied ? kWte : kLmHead), dC_, V_ * C_));
    return CALIB_OK;
  }

  // Query blocks of the causal products: block i (rows r0 … r0+rn) only needs keys 0 … r0+rn, so
  // with nb blocks the score products and their gradients do (nb+1)/(2·nb) of the full T×T work:
  // 4 blocks for T ≥ 512, 2 for T ≥ 128, else 1.
  static int attention_blocks(int T) { return T >= 512 ? 4 : T >= 128 ? 2 : 1; }

  calib_status attention_forward(int64_t l, int B, int T, char* err) {
    const int hs = static_cast<int>(C_ / NH_), NH = static_cast<int>(NH_), BH = B * NH;
    const int64_t sNC = Bm_ * Tc_ * C_;
    const A* qkv = qkv_ + l * 3 * sNC;
    A* P_l = att_ + l * Bm_ * NH_ * Tc_ * Tc_;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
    const int nb = attention_blocks(T), blk = (T + nb - 1) / nb;
    CU_TRY(permute_qkv<A>(qh_, kh_, vh_, qkv, P(kQkvb, l), B, T, NH, hs));
    const long long sh = int64_t(T) * hs, st = int64_t(T) * T;
    // S[rows of block i, keys ≤ its end] = scale · q·kᵀ
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      ST(blas::gemm_rm_batched(h_, kN, kT, rn, kn, hs, scale, qh_ + int64_t(r0) * hs, kDt, hs, sh, kh_, kDt, hs, sh,
                               0.f, S_ + int64_t(r0) * T, kDt, T, st, BH, err));
    }
    CU_TRY(softmax_forward<A>(P_l, S_, BH, T, blk));
    // y[block i] = P[block i, keys ≤ its end] · v
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      ST(blas::gemm_rm_batched(h_, kN, kN, rn, hs, kn, 1.f, P_l + int64_t(r0) * T, kDt, T, st, vh_, kDt, hs, sh, 0.f,
                               yh_ + int64_t(r0) * hs, kDt, hs, sh, BH, err));
    }
    CU_TRY(unpermute_heads<A>(atty_ + l * sNC, yh_, B, T, NH, hs));
    return CALIB_OK;
  }

  // datty_ → dqkv_
  calib_status attention_backward(int64_t l, int B, int T, char* err) {
    const int hs = static_cast<int>(C_ / NH_), NH = static_cast<int>(NH_), BH = B * NH;
    const int64_t sNC = Bm_ * Tc_ * C_;
    const A* qkv = qkv_ + l * 3 * sNC;
    const A* P_l = att_ + l * Bm_ * NH_ * Tc_ * Tc_;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
    const int nb = attention_blocks(T), blk = (T + nb - 1) / nb;
    const long long sh = int64_t(T) * hs, st = int64_t(T) * T;
    A* dyh = yh_;  // the forward's per-head output is free in the backward
    CU_TRY(permute_heads<A>(dyh, datty_, B, T, NH, hs));
    CU_TRY(permute_qkv<A>(qh_, kh_, vh_, qkv, P(kQkvb, l), B, T, NH, hs));
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      // dP[block i, keys ≤ its end] = dy·vᵀ (in S_)
      ST(blas::gemm_rm_batched(h_, kN, kT, rn, kn, hs, 1.f, dyh + int64_t(r0) * hs, kDt, hs, sh, vh_, kDt, hs, sh,
                               0.f, S_ + int64_t(r0) * T, kDt, T, st, BH, err));
      // dv[key block] = P[rows ≥ r0, key block]ᵀ · dy[rows ≥ r0]
      ST(blas::gemm_rm_batched(h_, kT, kN, rn, hs, T - r0, 1.f, P_l + int64_t(r0) * T + r0, kDt, T, st,
                               dyh + int64_t(r0) * hs, kDt, hs, sh, 0.f, dvh_ + int64_t(r0) * hs, kDt, hs, sh, BH,
                               err));
    }
    CU_TRY(softmax_backward<A>(S_, P_l, BH, T, blk, scale));  // dS in place of dP
    for (int r0 = 0; r0 < T; r0 += blk) {
      const int rn = std::min(blk, T - r0), kn = r0 + rn;
      // dq[block i] = dS[block i, keys ≤ its end] · k
      ST(blas::gemm_rm_batched(h_, kN, kN, rn, hs, kn, 1.f, S_ + int64_t(r0) * T, kDt, T, st, kh_, kDt, hs, sh, 0.f,
                               dqh_ + int64_t(r0) * hs, kDt, hs, sh, BH, err));
      // dk[key block] = dS[rows ≥ r0, key block]ᵀ · q[rows ≥ r0]
      ST(blas::gemm_rm_batched(h_, kT, kN, rn, hs, T - r0, 1.f, S_ + int64_t(r0) * T + r0, kDt, T, st,
                               qh_ + int64_t(r0) * hs, kDt, hs, sh, 0.f, dkh_ + int64_t(r0) * hs, kDt, hs, sh, BH,
                               err));
    }
    CU_TRY(unpermute_qkv<A>(dqkv_, dqh_, dkh_, dvh_, B, T, NH, hs));
    return CALIB_OK;
  }

  calib_status forward(const int32_t* inputs, int B, int T, char* err) {
    cudaGetLastError();
    const int64_t N = int64_t(B) * T, sN = Bm_ * Tc_, sNC = sN * C_;
    const int C = static_cast<int>(C_), n = static_cast<int>(N);
    CU_TRY(cudaMemcpy(inputs_d_, inputs, size_t(N) * 4, cudaMemcpyHostToDevice));
    CU_TRY(encoder_forward(encoded_, inputs_d_, P(kWte), P(kWpe), B, T, C));
    for (int64_t l = 0; l < L_; ++l) {
      const float* res = l == 0 ? encoded_ : res3_ + (l - 1) * sNC;
      A* ln1 = ln1_ + l * sNC;
      A* qkv = qkv_ + l * 3 * sNC;
      float* res2 = res2_ + l * sNC;
      A* ln2 = ln2_ + l * sNC;
      A* fch = fch_ + l * 4 * sNC;
      float* res3 = res3_ + l * sNC;
      CU_TRY(layernorm_forward<A>(ln1, ln1_mean_ + l * sN, ln1_rstd_ + l * sN, res, P(kLn1w, l), P(kLn1b, l), n, C));
      ST(matmul_forward(qkv, kDt, 0.f, ln1, W(kQkvw, l), N, C_, 3 * C_, err));
      const size_t a0 = prof_.mark();
      ST(attention_forward(l, B, T, err));
      prof_.span(3, a0, prof_.mark());
      CU_TRY(residual_bias(res2, res, P(kAttprojb, l), N, C));
      ST(matmul_forward(res2, blas::kF32, 1.f, atty_ + l * sNC, W(kAttprojw, l), N, C_, C_, err));
      CU_TRY(layernorm_forward<A>(ln2, ln2_mean_ + l * sN, ln2_rstd_ + l * sN, res2, P(kLn2w, l), P(kLn2b, l), n, C));
      ST(matmul_forward(fch, kDt, 0.f, ln2, W(kFcw, l), N, C_, 4 * C_, err));
      CU_TRY(gelu_forward<A>(fchg_, fch, P(kFcb, l), N, 4 * C));
      CU_TRY(residual_bias(res3, res2, P(kFcprojb, l), N, C));
      ST(matmul_forward(res3, blas::kF32, 1.f, fchg_, W(kFcprojw, l), N, 4 * C_, C_, err));
    }
    CU_TRY(layernorm_forward<A>(lnf_, lnf_mean_, lnf_rstd_, res3_ + (L_ - 1) * sNC, P(kLnfw), P(kLnfb), n, C));
    return CALIB_OK;
  }

  // Expects d(loss)/d(lnf) in dln_; adds every parameter gradient.
  calib_status backward(const int32_t* inputs, int B, int T, char* err) {
    const int64_t N = int64_t(B) * T, sN = Bm_ * Tc_, sNC = sN * C_;
    const int C = static_cast<int>(C_), n = static_cast<int>(N);
    A* dres_a = kBf16 ? dres_a_ : nullptr;  // bf16 copy of the residual gradient for the matmuls
    const A* dres_in = dres_a_;
    CU_TRY(cudaMemsetAsync(dres_, 0, size_t(N) * C * 4));
    const float* last = res3_ + (L_ - 1) * sNC;
    CU_TRY(layernorm_param_grads(G(kLnfw), G(kLnfb), dln_, last, lnf_mean_, lnf_rstd_, n, C, partial_));
    CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, last, P(kLnfw), lnf_mean_, lnf_rstd_, n, C));
    for (int64_t l = L_ - 1; l >= 0; --l) {
      const float* res = l == 0 ? encoded_ : res3_ + (l - 1) * sNC;
      const A* ln1 = ln1_ + l * sNC;
      const float* res2 = res2_ + l * sNC;
      const A* ln2 = ln2_ + l * sNC;
      const A* fch = fch_ + l * 4 * sNC;
      // res3 = res2 + fcproj(gelu(fc(ln2(res2))))
      CU_TRY(gelu_forward<A>(fchg_, fch, P(kFcb, l), N, 4 * C));
      ST(matmul_backward(dfch_, kDt, G(kFcprojw, l), dres_in, fchg_, W(kFcprojw, l), N, 4 * C_, C_, err));
      CU_TRY(colsum_add<float>(G(kFcprojb, l), dres_, n, C, partial_));
      CU_TRY(gelu_backward<A>(dfch_, fch, P(kFcb, l), dfch_, N, 4 * C));
      CU_TRY(colsum_add<A>(G(kFcb, l), dfch_, n, 4 * C, partial_));
      ST(matmul_backward(dln_, blas::kF32, G(kFcw, l), dfch_, ln2, W(kFcw, l), N, C_, 4 * C_, err));
      CU_TRY(layernorm_param_grads(G(kLn2w, l), G(kLn2b, l), dln_, res2, ln2_mean_ + l * sN, ln2_rstd_ + l * sN, n, C,
                               partial_));
      CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, res2, P(kLn2w, l), ln2_mean_ + l * sN, ln2_rstd_ + l * sN, n, C));
      // res2 = res + attproj(attn(qkv(ln1(res))))
      ST(matmul_backward(datty_, kDt, G(kAttprojw, l), dres_in, atty_ + l * sNC, W(kAttprojw, l), N, C_, C_, err));
      CU_TRY(colsum_add<float>(G(kAttprojb, l), dres_, n, C, partial_));
      const size_t a0 = prof_.mark();
      ST(attention_backward(l, B, T, err));
      prof_.span(4, a0, prof_.mark());
      CU_TRY(colsum_add<A>(G(kQkvb, l), dqkv_, n, 3 * C, partial_));
      ST(matmul_backward(dln_, blas::kF32, G(kQkvw, l), dqkv_, ln1, W(kQkvw, l), N, C_, 3 * C_, err));
      CU_TRY(layernorm_param_grads(G(kLn1w, l), G(kLn1b, l), dln_, res, ln1_mean_ + l * sN, ln1_rstd_ + l * sN, n, C,
                               partial_));
      CU_TRY(layernorm_backward<A>(dres_, dres_a, dln_, res, P(kLn1w, l), ln1_mean_ + l * sN, ln1_rstd_ + l * sN, n, C));
    }
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
    CU_TRY(cudaMemcpy(uniq_d_, uniq_.data(), size_t(nu) * 4, cudaMemcpyHostToDevice));
    CU_TRY(cudaMemcpy(offs_d_, offs_.data(), size_t(nu + 1) * 4, cudaMemcpyHostToDevice));
    CU_TRY(cudaMemcpy(pos_d_, order_.data(), size_t(N) * 4, cudaMemcpyHostToDevice));
    CU_TRY(encoder_backward(G(kWte), G(kWpe), dres_, uniq_d_, offs_d_, pos_d_, nu, B, T, C));
    return CALIB_OK;
  }

  calib_model_config c_;
  Layout lay_;
  const int64_t L_, C_, NH_, V_, Tc_, Bm_;
  blas::Handle h_ = nullptr;
  std::vector<void*> allocs_;
  int64_t bytes_ = 0;
  std::string sticky_;
  // parameters (fp32 master), gradients, moments, compute copy
  float *params_ = nullptr, *grads_ = nullptr, *m_ = nullptr, *v_ = nullptr;
  A* pc_ = nullptr;
  // activations
  float* encoded_ = nullptr;
  A *ln1_ = nullptr, *qkv_ = nullptr, *att_ = nullptr, *atty_ = nullptr, *ln2_ = nullptr, *fch_ = nullptr,
    *lnf_ = nullptr;
  float *ln1_mean_ = nullptr, *ln1_rstd_ = nullptr, *res2_ = nullptr, *ln2_mean_ = nullptr, *ln2_rstd_ = nullptr,
        *res3_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  // scratch
  A *qh_ = nullptr, *kh_ = nullptr, *vh_ = nullptr, *yh_ = nullptr, *fchg_ = nullptr;
  A* S_ = nullptr;  // scores, then their gradient (dP, dS in place)
  float *dres_ = nullptr, *dln_ = nullptr;
  A *dres_a_ = nullptr, *datty_ = nullptr, *dqh_ = nullptr, *dkh_ = nullptr, *dvh_ = nullptr, *dqkv_ = nullptr,
    *dfch_ = nullptr;
  float *dC_ = nullptr, *loss_ = nullptr, *gout_ = nullptr, *partial_ = nullptr;
  int32_t *inputs_d_ = nullptr, *targets_d_ = nullptr, *uniq_d_ = nullptr, *offs_d_ = nullptr, *pos_d_ = nullptr;
  std::vector<float> host_loss_;
  // chunked cuBLAS head (allocated on first use)
  // CALIB_PROFILE=1: CUDA-event times of the step's phases, printed when the model is freed
  struct Profile {
    bool on = false;
    std::vector<cudaEvent_t> pool;
    size_t used = 0;
    std::vector<std::pair<int, std::pair<size_t, size_t>>> spans;
    double total[5] = {0, 0, 0, 0, 0};
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

}  // namespace

// Creates the CUDA implementation (model.cc validated the configuration).
calib_status make_gpt_cuda(const calib_model_config& c, const Layout& layout, std::unique_ptr<GptImpl>* out,
                           char* err) {
  const int64_t N = int64_t(c.max_batch) * c.context;
  if (N > 2000000)
    return fail(err, CALIB_ERR_RANGE, "the CUDA model needs maxBatch × context ≤ 2,000,000 tokens (got %d × %d)",
                c.max_batch, c.context);
  if (int64_t(c.vocab) * c.d_model > (int64_t(1) << 31) - 1)
    return fail(err, CALIB_ERR_RANGE, "the CUDA model needs vocab × dModel < 2^31 (got %d × %d)", c.vocab, c.d_model);
  if (c.precision == CALIB_MODEL_BF16) {
    auto m = std::make_unique<GptCuda<bf16>>(c, layout);
    if (calib_status st = m->init(err)) return st;
    *out = std::move(m);
  } else {
    auto m = std::make_unique<GptCuda<float>>(c, layout);
    if (calib_status st = m->init(err)) return st;
    *out = std::move(m);
  }
  return CALIB_OK;
}

}  // namespace calib::model
