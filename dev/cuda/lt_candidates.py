#!/usr/bin/env python3
"""How much the choice among cuBLASLt's heuristic candidates matters at the loss's GEMM shapes:
each candidate (up to 16) timed against cublasGemmEx's choice, for the chunked mode's dC GEMM
(fp32 read-modify-write, K = 1024) with and without accumulation, a streamed-mode logit block
and a streamed-mode dE step. Column-major, ctypes; bf16 inputs, fp32 output.

  python3 dev/cuda/lt_candidates.py    (needs $CALIB_CUBLAS_PATH or libcublas.so.13 on the path)

Prints a text report (scripts/gpu/job.sh bench keeps it as lt.txt in its output; dev/cuda/lt_candidates.txt is the H100 run).
"""
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "gpu"))
from lce_bench import timed  # noqa: E402

path = os.environ.get("CALIB_CUBLAS_PATH") or "libcublas.so.13"
d = os.path.dirname(path) if "/" in path else ""
lt = ctypes.CDLL(os.path.join(d, "libcublasLt.so.13") if d else "libcublasLt.so.13", mode=ctypes.RTLD_GLOBAL)
cb = ctypes.CDLL(path)
print(torch.cuda.get_device_name(0), "; torch", torch.__version__)


class Algo(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64 * 8)]


class Heur(ctypes.Structure):  # cublasLtMatmulHeuristicResult_t
    _fields_ = [("algo", Algo), ("ws", ctypes.c_size_t), ("state", ctypes.c_int), ("waves", ctypes.c_float), ("res", ctypes.c_int * 4)]


# enum values of cublasLt.h / cublas_api.h / library_types.h
BF16, F32, COMPUTE_32F, DESC_TRANSA, DESC_TRANSB, PREF_MAX_WORKSPACE = 14, 0, 68, 3, 4, 1
WS = 32 << 20


def ok(status, what):
    assert status == 0, f"{what}: status {status}"


H = ctypes.c_void_p()
ok(lt.cublasLtCreate(ctypes.byref(H)), "cublasLtCreate")
ws = torch.empty(WS, dtype=torch.uint8, device="cuda")
pref = ctypes.c_void_p()
ok(lt.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "preference")
wsz = ctypes.c_uint64(WS)
ok(lt.cublasLtMatmulPreferenceSetAttribute(pref, PREF_MAX_WORKSPACE, ctypes.byref(wsz), 8), "workspace preference")
stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
CB = ctypes.c_void_p()
ok(cb.cublasCreate_v2(ctypes.byref(CB)), "cublasCreate")
ok(cb.cublasSetStream_v2(CB, stream), "cublasSetStream")
ok(cb.cublasSetWorkspace_v2(CB, ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(WS)), "cublasSetWorkspace")
one, zero = ctypes.c_float(1), ctypes.c_float(0)


def desc(ta, tb):
    m = ctypes.c_void_p()
    ok(lt.cublasLtMatmulDescCreate(ctypes.byref(m), COMPUTE_32F, F32), "matmul descriptor")
    for attr, v in ((DESC_TRANSA, ta), (DESC_TRANSB, tb)):
        x = ctypes.c_int32(v)
        ok(lt.cublasLtMatmulDescSetAttribute(m, attr, ctypes.byref(x), 4), "transpose attribute")
    return m


def layout(dtype, rows, cols, ld):
    lay = ctypes.c_void_p()
    ok(lt.cublasLtMatrixLayoutCreate(ctypes.byref(lay), dtype, ctypes.c_uint64(rows), ctypes.c_uint64(cols), ctypes.c_int64(ld)), "layout")
    return lay


def probe(label, m, n, k, A, ta, a_rows, a_cols, lda, B, tb, b_rows, b_cols, ldb, Cp, ldc, accumulate):
    """Column-major C(m×n) = op(A)·op(B) (+ C): cublasGemmEx's choice, then each cuBLASLt candidate."""
    md = desc(ta, tb)
    la, lb, lc = layout(BF16, a_rows, a_cols, lda), layout(BF16, b_rows, b_cols, ldb), layout(F32, m, n, ldc)
    res = (Heur * 32)()  # 16 asked for, room for 32
    cnt = ctypes.c_int()
    st = lt.cublasLtMatmulAlgoGetHeuristic(H, md, la, lb, lc, lc, pref, 16, res, ctypes.byref(cnt))
    print(f"{label}: heuristic status {st}, {cnt.value} algos", flush=True)
    beta = ctypes.byref(one if accumulate else zero)
    flop = 2.0 * m * n * k
    def gemm_ex():
        ok(cb.cublasGemmEx(CB, ta, tb, m, n, k, ctypes.byref(one), ctypes.c_void_p(A), BF16, lda, ctypes.c_void_p(B), BF16, ldb,
                           beta, ctypes.c_void_p(Cp), F32, ldc, COMPUTE_32F, -1), "cublasGemmEx")
    t = timed(gemm_ex, 1, 5)[0]
    print(f"   cublasGemmEx default: {t:.3f} ms ({flop / t / 1e9:.0f} TFLOP/s)", flush=True)
    for i in range(cnt.value):
        r = res[i]
        if r.state != 0 or r.ws > WS:
            continue

        def run(r=r):
            ok(lt.cublasLtMatmul(H, md, ctypes.byref(one), ctypes.c_void_p(A), la, ctypes.c_void_p(B), lb, beta, ctypes.c_void_p(Cp), lc,
                                 ctypes.c_void_p(Cp), lc, ctypes.byref(r.algo), ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(WS), stream),
               "cublasLtMatmul")
        t = timed(run, 1, 5)[0]
        print(f"   algo {i}: {t:.3f} ms ({flop / t / 1e9:.0f} TFLOP/s) ws {r.ws >> 10} KiB waves {r.waves:.2f} id {r.algo.data[0] & 0xffffffff}",
              flush=True)


N, D, V, K = 8192, 2304, 256000, 1024
E = (torch.randn(N, D, device="cuda") * 0.14).bfloat16()
G = (torch.randn(K, V, device="cuda") * 1e-3).bfloat16()  # row-major K × V: column-major V × K
dC = torch.zeros(V, D, device="cuda")
# dC (row-major V × D) (+)= Gᵀ·E  ⇔  column-major C(D × V) = E_cm(D × K)·G_cm(V × K)ᵀ
probe("dC += G^T E, K=1024 (beta 1)", D, V, K, E.data_ptr(), 0, D, K, D, G.data_ptr(), 1, V, K, V, dC.data_ptr(), D, True)
probe("dC = G^T E, K=1024 (beta 0)", D, V, K, E.data_ptr(), 0, D, K, D, G.data_ptr(), 1, V, K, V, dC.data_ptr(), D, False)
# a streamed-mode logit block: X (row-major 8192 × 1792) = E·Cᵀ  ⇔  column-major X(1792 × 8192) = C_cmᵀ·E_cm
C = (torch.randn(V, D, device="cuda") * 0.14).bfloat16()
X = torch.empty(N * 1792, device="cuda")
probe("logits 8192 x 1792 fp32", 1792, N, D, C.data_ptr(), 1, D, 1792, D, E.data_ptr(), 0, D, N, D, X.data_ptr(), 1792, False)
# a streamed-mode dE step: dE (row-major N × D) += G(N × 2560)·C(2560 × D)  ⇔  column-major dE(D × N) += C_cm·G_cm
dE = torch.zeros(N, D, device="cuda")
Gs = (torch.randn(N, 2560, device="cuda") * 1e-3).bfloat16()
probe("dE += G C, K=2560 (beta 1)", D, N, 2560, C.data_ptr(), 0, D, 2560, D, Gs.data_ptr(), 0, 2560, N, 2560, dE.data_ptr(), D, True)
