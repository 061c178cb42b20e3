#!/usr/bin/env python3
"""cuBLAS GEMM shapes of the streamed loss (ctypes cuBLAS, bf16 in, fp32 out, as the engine
calls them): the time of all V/w logit GEMMs of one pass for block width w, the 1.5-block
packing of pass 2, and the dE (read-modify-write) and dC GEMMs per K, each as a share of a
large GEMM's rate measured right before it (the clock changes under sustained load).

  python3 dev/cuda/gemm_widths.py      (needs $CALIB_CUBLAS_PATH or libcublas.so.13 on the path)
"""
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "gpu"))
from lce_bench import timed  # noqa: E402

N, D, V = 8192, 2304, 256000
BF, F32, OP_N, OP_T, COMPUTE_32F = 14, 0, 0, 1, 68
lib = ctypes.CDLL(os.environ.get("CALIB_CUBLAS_PATH") or "libcublas.so.13")
h = ctypes.c_void_p()
assert lib.cublasCreate_v2(ctypes.byref(h)) == 0
ws = torch.empty(4 << 20, dtype=torch.uint8, device="cuda")
assert lib.cublasSetStream_v2(h, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)) == 0
assert lib.cublasSetWorkspace_v2(h, ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(ws.numel())) == 0
E = (torch.randn(N, D, device="cuda") * D ** -0.25).bfloat16()
C = (torch.randn(V, D, device="cuda") * D ** -0.25).bfloat16()
slab = torch.empty(N * 3584 * 4, dtype=torch.uint8, device="cuda")
big = torch.empty(N * 8192, dtype=torch.float32, device="cuda")
dE = torch.zeros(N, D, device="cuda")
dC = torch.zeros(V, D, device="cuda")
one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)


def gemm_rm(ta, tb, M, Nn, K, A, lda, B, ldb, beta, Cp, ldc):
    """row-major C(M×Nn) = op(A)·op(B) (+ C): column-major Cᵀ = op(B)ᵀ·op(A)ᵀ"""
    st = lib.cublasGemmEx(h, tb, ta, Nn, M, K, ctypes.byref(one), ctypes.c_void_p(B), BF, ldb, ctypes.c_void_p(A), BF,
                          lda, ctypes.byref(one if beta else zero), ctypes.c_void_p(Cp), F32, ldc, COMPUTE_32F, -1)
    assert st == 0, st


def logits(v0, nc, X, ldX):
    gemm_rm(OP_N, OP_T, N, nc, D, E.data_ptr(), D, C.data_ptr() + v0 * D * 2, D, False, X, ldX)


def ref_tflops():
    def f():
        for i in range(8):
            logits(i * 8192, 8192, big.data_ptr(), 8192)
    return 2 * N * 8192 * D * 8 / timed(f, 1, 3)[0] / 1e9


FLOP = 2 * N * D * V


def report(label, fn):
    r = ref_tflops()
    ms = timed(fn, 1, 3)[0]
    print(f"  {label:<40} {ms:7.2f} ms {FLOP / ms / 1e9:6.0f} TFLOP/s {FLOP / ms / 1e9 / r * 100:6.1f}% of {r:.0f}", flush=True)


print(f"{torch.cuda.get_device_name(0)}: (N, D, V) = ({N}, {D}, {V}); each line: one pass over V (2·N·D·V FLOP)")
X = slab.data_ptr()
for w in (768, 1024, 1152, 1280, 1536, 1792, 1920, 2048, 3584):
    report(f"logits, blocks {N} x {w}", lambda w=w: [logits(v0, min(w, V - v0), X, w) for v0 in range(0, V, w)])
report("logits, pass-2 packing 1792 + 896", lambda: [
    (logits(v0, min(1792, V - v0), X, 1792),
     logits(v0 + 1792, min(896, V - v0 - 1792), X + 896 * 4, 1792) if V - v0 > 1792 else None)
    for v0 in range(0, V, 2688)])
report("logits, pass-2 packing 1536 + 1024", lambda: [
    (logits(v0, min(1536, V - v0), X, 1792),
     logits(v0 + 1536, min(1024, V - v0 - 1536), X + 768 * 4, 1792) if V - v0 > 1536 else None)
    for v0 in range(0, V, 2560)])
for k in (1792, 2560, 2688, 3584):
    report(f"dE += G.C, K = {k}", lambda k=k: [
        gemm_rm(OP_N, OP_N, N, D, min(k, V - v0), X, k, C.data_ptr() + v0 * D * 2, D, v0 > 0, dE.data_ptr(), D)
        for v0 in range(0, V, k)])
    report(f"dC = G^T.E, {k} rows per GEMM", lambda k=k: [
        gemm_rm(OP_T, OP_N, min(k, V - v0), D, N, X, k, E.data_ptr(), D, False, dC.data_ptr() + v0 * D * 4, D)
        for v0 in range(0, V, k)])
