// Flash-style causal self-attention: the op behind calib_attention_forward / calib_attention_backward
// (calib.h). flash_attention.cc validates and dispatches and holds the CPU reference;
// flash_attention_cuda.cu holds the CUDA kernels.
//
// Contract
//   Shapes and layout (row-major, contiguous, the layout of the q/k/v projections' outputs):
//     q, o, dO, dQ   [B, T, Hq, Dh]      element (b, t, h, d) at ((b·T + t)·Hq + h)·Dh + d
//     k, v, dK, dV   [B, T, Hkv, Dh]     Hq a multiple of Hkv; query head h reads key/value head h / (Hq/Hkv)
//     lse            [B, Hq, T] float32  (FlashAttention's softmax_lse layout)
//   Math (always causal):
//     u_ij = q_i·k_j;  s_ij = scale·u_ij, or c·tanh(scale·u_ij / c) with a soft-cap c > 0
//     key j visible to query i  ⇔  j ≤ i, and i − window < j when window > 0
//     lse_i = log Σ_visible exp(s_ij)  (natural log);  p_ij = exp(s_ij − lse_i);  o_i = Σ_j p_ij·v_j
//   Backward, given dO and the forward's o and lse:
//     Δ_i = Σ_d dO_id·o_id;  dp_ij = dO_i·v_j;  ds_ij = p_ij·(dp_ij − Δ_i)·scale·(1 − (s_ij/c)²  with a cap)
//     dQ_i = Σ_j ds_ij·k_j;  dK_j = Σ_{heads of the group} Σ_i ds_ij·q_i;  dV_j = Σ_{heads of the group} Σ_i p_ij·dO_i
//   dtypes: CPU: float32 or bfloat16 elements, every sum in float64 (the reference), any Dh. CUDA: bfloat16
//     elements, fp32 accumulation, fp32 lse. Dh ∈ {64, 128}: tensor cores (mma.sync m16n8k16 bf16, sm_80+), P
//     rounded to bf16 for P·V and dS for dS·K / dSᵀ·Q, as FlashAttention 2 does; other Dh ≤ 256 (Gemma 2's
//     256): one warp per row in fp32 (slower); larger head sizes are refused with a RangeError naming head_dim.
//   Memory: never stores a T×T matrix. CUDA forward needs no scratch; the backward needs Δ (4·B·Hq·T bytes:
//     the caller's workspace, or the engine's arena).
//   Determinism: every output element is summed by one thread in a fixed order. CUDA backward: kernel 1 (one
//     CTA per 64 keys of a (b, kv head)) walks the query heads of the group in order and, for each, the query
//     blocks in order, accumulating dK and dV in registers; kernel 2 (one CTA per 64 queries of a (b, q head))
//     walks the key blocks in order for dQ. No atomics: two calls give bitwise-equal results.
//     CPU: one task per (b, q head) forward and per (b, kv head) backward; results do not depend on threads.
#pragma once
#include <cstdint>

#include "calib.h"

namespace calib::flash {

// CPU reference (float64 accumulation); arguments already validated.
void forward_cpu(const calib_attention_args& a);
void backward_cpu(const calib_attention_args& a);

// Device scratch of the CUDA backward: Δ, 4·B·Hq·T bytes rounded up to 256.
inline int64_t delta_bytes(const calib_attention_args& a) { return (a.b * a.hq * a.t * 4 + 255) / 256 * 256; }

#if CALIB_WITH_CUDA
// The CUDA path of a validated call (head_dim ≤ 256, bfloat16): device memory runs the kernels on
// a.stream; host memory is staged through device copies (legacy stream, synchronous).
calib_status run_cuda(const calib_attention_args& a, bool backward, char* err);
// Head sizes other than 64 and 128 (≤ 256): one warp per row, fp32 arithmetic (flash_attention_rows_cuda.cu).
calib_status forward_rows_cuda(const calib_attention_args& a, char* err);
calib_status backward_rows_cuda(const calib_attention_args& a, float* delta, char* err);

// The backward of a model's layer on device memory: a (the forward's arguments) with dO and the gradients' buffers,
// Δ in the caller's scratch `delta` (delta_bytes(a) bytes).
inline calib_status run_backward_cuda(calib_attention_args a, const void* grad_o, void* grad_q, void* grad_k,
                                      void* grad_v, void* delta, char* err) {
  a.grad_o = grad_o;
  a.grad_q = grad_q;
  a.grad_k = grad_k;
  a.grad_v = grad_v;
  a.workspace = delta;
  a.workspace_size = delta_bytes(a);
  return run_cuda(a, true, err);
}
#endif

}  // namespace calib::flash
