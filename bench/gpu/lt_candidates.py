#!/usr/bin/env python3
"""How much the choice among cuBLASLt's heuristic candidates matters at the loss's GEMM shapes:
each candidate (up to 16) timed against cublasGemmEx's choice, for the chunked mode's dC GEMM
(fp32 read-modify-write, K = 1024) with and without accumulation, a streamed-mode logit block
and a streamed-mode dE step. Column-major, ctypes; bf16 inputs, fp32 output.

  python3 bench/gpu/lt_candidates.py    (needs $CALIB_CUBLAS_PATH or libcublas.so.13 on the path)

Prints a text report (scripts/gpu/job.sh saves it as data/bench/kernels_lt.txt).
"""
import ctypes
import os
import statistics

import torch

path = os.environ.get("CALIB_CUBLAS_PATH") or "libcublas.so.13"
d = os.path.dirname(path) if "/" in path else ""
lt = ctypes.CDLL(os.path.join(d, "libcublasLt.so.13") if d else "libcublasLt.so.13", mode=ctypes.RTLD_GLOBAL)
cb = ctypes.CDLL(path)
print(torch.cuda.get_device_name(0), "; torch", torch.__version__)


class Algo(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64 * 8)]


class Heur(ctypes.Structure):  # cublasLtMatmulHeuristicResult_t
    _fields_ = [("algo", Algo), ("ws", ctypes.c_size_t), ("state", ctypes.c_int), ("waves", ctypes.c_float), ("res", ctypes.c_int * 4)]


H = ctypes.c_void_p(); assert lt.cublasLtCreate(ctypes.byref(H)) == 0
def desc(ta, tb):
    m = ctypes.c_void_p(); assert lt.cublasLtMatmulDescCreate(ctypes.byref(m), 68, 0) == 0  # COMPUTE_32F, scale R_32F
    for attr, v in ((3, ta), (4, tb)):
        x = ctypes.c_int32(v); assert lt.cublasLtMatmulDescSetAttribute(m, attr, ctypes.byref(x), 4) == 0
    return m
def lay(t, r, c, ld):
    l = ctypes.c_void_p(); assert lt.cublasLtMatrixLayoutCreate(ctypes.byref(l), t, ctypes.c_uint64(r), ctypes.c_uint64(c), ctypes.c_int64(ld)) == 0
    return l
WS = 32 << 20
ws = torch.empty(WS, dtype=torch.uint8, device="cuda")
pref = ctypes.c_void_p(); assert lt.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)) == 0
wsz = ctypes.c_uint64(WS); assert lt.cublasLtMatmulPreferenceSetAttribute(pref, 1, ctypes.byref(wsz), 8) == 0
stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
def tm(fn, reps=5):
    fn(); torch.cuda.synchronize(); ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True); a.record(); fn(); b.record(); b.synchronize(); ts.append(a.elapsed_time(b))
    return statistics.median(ts)
one, zero = ctypes.c_float(1), ctypes.c_float(0)
def probe(label, m, n, k, A, ta, lda_rows, lda_cols, lda, B, tb, ldb_rows, ldb_cols, ldb, Cp, ldc, beta):
    md = desc(ta, tb)
    la, lb, lc = lay(14, lda_rows, lda_cols, lda), lay(14, ldb_rows, ldb_cols, ldb), lay(0, m, n, ldc)
    res = (Heur * 32)(); cnt = ctypes.c_int()
    st = lt.cublasLtMatmulAlgoGetHeuristic(H, md, la, lb, lc, lc, pref, 16, res, ctypes.byref(cnt))  # 16 asked for, room for 32
    print(f"{label}: heuristic status {st}, {cnt.value} algos", flush=True)
    bt = ctypes.byref(one if beta else zero)
    ref = tm(lambda: cb.cublasGemmEx(CB, ta, tb, m, n, k, ctypes.byref(one), ctypes.c_void_p(A), 14, lda, ctypes.c_void_p(B), 14, ldb, bt, ctypes.c_void_p(Cp), 0, ldc, 68, -1))
    flop = 2.0 * m * n * k
    print(f"   cublasGemmEx default: {ref:.3f} ms ({flop / ref / 1e9:.0f} TFLOP/s)", flush=True)
    for i in range(cnt.value):
        r = res[i]
        if r.state != 0 or r.ws > WS: continue
        def f(r=r):
            s = lt.cublasLtMatmul(H, md, ctypes.byref(one), ctypes.c_void_p(A), la, ctypes.c_void_p(B), lb, bt, ctypes.c_void_p(Cp), lc,
                                  ctypes.c_void_p(Cp), lc, ctypes.byref(r.algo), ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(WS), stream)
            assert s == 0, s
        t = tm(f)
        print(f"   algo {i}: {t:.3f} ms ({flop / t / 1e9:.0f} TFLOP/s) ws {r.ws >> 10} KiB waves {r.waves:.2f} id {r.algo.data[0] & 0xffffffff}", flush=True)
CB = ctypes.c_void_p(); assert cb.cublasCreate_v2(ctypes.byref(CB)) == 0
assert cb.cublasSetStream_v2(CB, stream) == 0
assert cb.cublasSetWorkspace_v2(CB, ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(WS)) == 0
N, D, V, K = 8192, 2304, 256000, 1024
E = (torch.randn(N, D, device="cuda") * 0.14).bfloat16()
G = (torch.randn(K, V, device="cuda") * 1e-3).bfloat16()   # row-major K x V (ld V): col-major V x K
dC = torch.zeros(V, D, device="cuda")
# dC(row-major V x D) += G^T E  ==  col-major C(D x V) = E_cm(D x K) . G_cm(V x K)^T
probe("dC += G^T E, K=1024 (beta 1)", D, V, K, E.data_ptr(), 0, D, K, D, G.data_ptr(), 1, V, K, V, dC.data_ptr(), D, True)
probe("dC = G^T E, K=1024 (beta 0)", D, V, K, E.data_ptr(), 0, D, K, D, G.data_ptr(), 1, V, K, V, dC.data_ptr(), D, False)
# logits of the streamed mode: X(row-major 8192 x 1792) = E C^T == col-major X(1792 x 8192) = C_cm^T ... op T on C
C = (torch.randn(V, D, device="cuda") * 0.14).bfloat16()
X = torch.empty(N * 1792, device="cuda")
probe("logits 8192 x 1792 fp32", 1792, N, D, C.data_ptr(), 1, D, 1792, D, E.data_ptr(), 0, D, N, D, X.data_ptr(), 1792, False)
dE = torch.zeros(N, D, device="cuda")
Gs = (torch.randn(N, 2560, device="cuda") * 1e-3).bfloat16()
# dE(row-major N x D) += G(N x 2560) C(2560 x D) == col-major dE(D x N) = C_cm(D x 2560) G_cm(2560 x N)
probe("dE += G C, K=2560 (beta 1)", D, N, 2560, C.data_ptr(), 0, D, 2560, D, Gs.data_ptr(), 0, 2560, N, 2560, dE.data_ptr(), D, True)
