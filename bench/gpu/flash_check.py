#!/usr/bin/env python3
"""Flash attention (calib_attention_forward / _backward) on one GPU: correctness, determinism, timing.

    python3 bench/gpu/flash_check.py [--lib .device/libcalib_flash.so] [--small] [--no-bench] [--json out.json]

The engine's C API is loaded through ctypes from the library scripts/gpu/flash-bundle.sh builds; every call runs
on torch's device pointers and current stream (memory = DEVICE, workspace from torch).
Checks, one verdict line each (PASS/FAIL):
  numerics     B = 2, T ∈ {128, 1000, 2048}, (Hq, Hkv) ∈ {(8, 8), (32, 8)}, Dh ∈ {64, 128}, variants plain,
               soft-cap 5 (harsher than Gemma 2's 50, so the tanh matters), window T/4 + 3, both. Reference: fp32
               eager attention (TF32 off) on the same bf16 inputs with explicit masks, its gradients by autograd.
               Error = ‖ours − ref‖_F / ‖ref‖_F over the whole tensor; bound 2e-2 for O, dQ, dK, dV (bf16 outputs,
               P and dS rounded to bf16), 1e-4 for the fp32 LSE. For plain cases the error of torch SDPA (bf16)
               against the same reference is printed beside ours.
  determinism  two forward+backward calls give bitwise-equal O, LSE, dQ, dK, dV (every numerics case).
  errors       a head size of 96 and a misaligned pointer are refused with messages naming the field.
Timing (skipped by --no-bench and --small): median CUDA-event ms of ours vs
torch.nn.functional.scaled_dot_product_attention with the flash backend (causal; GQA through enable_gqa, or k/v
expanded beforehand when the backend refuses it), forward and forward+backward, for (B 4, T 2048, Hq 32, Hkv 8,
Dh 64) and (B 16, T 1024, H 12, Dh 64). TFLOP/s count the causal half: forward 2·2·B·Hq·T²·Dh / 2, backward 2.5×.
--small: tiny shapes (T ∈ {1, 70, 130}), no timing, for compute-sanitizer:
    compute-sanitizer --tool memcheck python3 bench/gpu/flash_check.py --small
    compute-sanitizer --tool racecheck python3 bench/gpu/flash_check.py --small
Exit status 1 when any check fails. Progress and verdicts go to stdout; it finishes in well under 120 s on an H100.
"""
import argparse
import ctypes
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

from lce_bench import timed  # median CUDA-event time after warm-up calls (bench/gpu/, beside this script)

T0 = time.time()
RESULTS = []


def verdict(name, ok, detail):
    RESULTS.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"[{time.time() - T0:6.1f}s] {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


# --------------------------------------------------------------------------- ours (ctypes)
class AttnArgs(ctypes.Structure):
    _fields_ = [
        ("b", ctypes.c_int64), ("t", ctypes.c_int64), ("hq", ctypes.c_int64), ("hkv", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("dtype", ctypes.c_int), ("device", ctypes.c_int), ("memory", ctypes.c_int),
        ("scale", ctypes.c_float), ("softcap", ctypes.c_float), ("window", ctypes.c_int64),
        ("threads", ctypes.c_int32), ("stream", ctypes.c_void_p), ("workspace", ctypes.c_void_p),
        ("workspace_size", ctypes.c_int64),
        ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p), ("o", ctypes.c_void_p),
        ("lse", ctypes.c_void_p), ("grad_o", ctypes.c_void_p), ("grad_q", ctypes.c_void_p),
        ("grad_k", ctypes.c_void_p), ("grad_v", ctypes.c_void_p),
    ]


class Ours:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        for fn in ("calib_attention_forward", "calib_attention_backward"):
            getattr(self.lib, fn).restype = ctypes.c_int
            getattr(self.lib, fn).argtypes = [ctypes.POINTER(AttnArgs), ctypes.c_char_p]
        self.lib.calib_attention_workspace_size.restype = ctypes.c_int
        self.lib.calib_attention_workspace_size.argtypes = [ctypes.POINTER(AttnArgs), ctypes.POINTER(ctypes.c_int64),
                                                            ctypes.c_char_p]
        self.err = ctypes.create_string_buffer(512)
        self.ws = None

    def args(self, q, k, v, scale, softcap, window):
        B, T, Hq, D = q.shape
        a = AttnArgs()
        a.b, a.t, a.hq, a.hkv, a.head_dim = B, T, Hq, k.shape[2], D
        a.dtype, a.device, a.memory = 1, 1, 1  # bf16, cuda, device memory
        a.scale, a.softcap, a.window = scale, softcap, window
        a.stream = torch.cuda.current_stream().cuda_stream
        a.q, a.k, a.v = q.data_ptr(), k.data_ptr(), v.data_ptr()
        return a

    def call(self, fn, a):
        st = getattr(self.lib, fn)(ctypes.byref(a), self.err)
        if st != 0:
            raise RuntimeError(f"calib error {st}: {self.err.value.decode()}")

    def forward(self, q, k, v, scale, softcap=0.0, window=0, out=None):
        B, T, Hq, D = q.shape
        if out is None:
            out = (torch.empty_like(q), torch.empty(B, Hq, T, device=q.device, dtype=torch.float32))
        a = self.args(q, k, v, scale, softcap, window)
        a.o, a.lse = out[0].data_ptr(), out[1].data_ptr()
        self.call("calib_attention_forward", a)
        return out

    def backward(self, q, k, v, o, lse, do, scale, softcap=0.0, window=0, out=None):
        if out is None:
            out = (torch.empty_like(q), torch.empty_like(k), torch.empty_like(v))
        a = self.args(q, k, v, scale, softcap, window)
        a.o, a.lse, a.grad_o = o.data_ptr(), lse.data_ptr(), do.data_ptr()
        a.grad_q, a.grad_k, a.grad_v = (x.data_ptr() for x in out)
        need = ctypes.c_int64()
        if self.lib.calib_attention_workspace_size(ctypes.byref(a), ctypes.byref(need), self.err) != 0:
            raise RuntimeError(self.err.value.decode())
        if self.ws is None or self.ws.numel() < need.value:
            self.ws = torch.empty(need.value, dtype=torch.uint8, device=q.device)
        a.workspace, a.workspace_size = self.ws.data_ptr(), self.ws.numel()
        self.call("calib_attention_backward", a)
        return out


# --------------------------------------------------------------------------- reference
def reference(q, k, v, do, scale, softcap, window):
    """fp32 eager attention on [B, T, H, D] inputs: (o, lse, dq, dk, dv), gradients by autograd."""
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    B, T, Hq, D = q.shape
    rep = Hq // k.shape[2]
    q32, k32, v32 = (x.float().requires_grad_() for x in (q, k, v))
    qh = q32.transpose(1, 2)
    kh = k32.repeat_interleave(rep, dim=2).transpose(1, 2)
    vh = v32.repeat_interleave(rep, dim=2).transpose(1, 2)
    s = (qh @ kh.transpose(-1, -2)) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(T, device=q.device)[:, None]
    j = torch.arange(T, device=q.device)[None, :]
    mask = j <= i
    if window > 0:
        mask &= j > i - window
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    o = (torch.softmax(s, dim=-1) @ vh).transpose(1, 2)
    o.backward(do.float())
    torch.backends.cuda.matmul.allow_tf32 = prev
    out = (o.detach(), lse.detach(), q32.grad, k32.grad, v32.grad)
    del s, q32, k32, v32
    return out


def rel(a, b, floor=None):
    """‖a − b‖ / ‖b‖; with `floor`, the denominator is at least ‖floor‖ (a reference that is exactly zero, as
    dQ and dK are at T = 1, where softmax over one key has no gradient: both kernels leave a rounding residue)"""
    a, b = a.float(), b.float()
    den = b.norm() if floor is None else torch.maximum(b.norm(), floor.float().norm())
    return float((a - b).norm() / den)


def bits_equal(a, b):
    return torch.equal(a.contiguous().view(torch.int16 if a.element_size() == 2 else torch.int32),
                       b.contiguous().view(torch.int16 if b.element_size() == 2 else torch.int32))


def sdpa(q, k, v, grad=None, force_expand=False):
    """torch SDPA (flash backend, causal) on [B, T, H, D] tensors viewed as [B, H, T, D]; GQA via enable_gqa
    or, when refused, k/v expanded (outside any timing by the caller through force_expand)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    rep = q.shape[2] // k.shape[2]
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        if rep > 1 and not force_expand:
            return F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, enable_gqa=True).transpose(1, 2)
        return F.scaled_dot_product_attention(qh, kh, vh, is_causal=True).transpose(1, 2)


# --------------------------------------------------------------------------- checks
def make(B, T, Hq, Hkv, D, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    # q twice the size of k: logits of std ≈ 2 at scale 1/√D, so the softmax is far from uniform
    q = (2 * torch.randn(B, T, Hq, D, device="cuda", generator=g)).bfloat16()
    k = torch.randn(B, T, Hkv, D, device="cuda", generator=g).bfloat16()
    v = torch.randn(B, T, Hkv, D, device="cuda", generator=g).bfloat16()
    do = torch.randn(B, T, Hq, D, device="cuda", generator=g).bfloat16()
    return q, k, v, do


def check_case(ours, B, T, Hq, Hkv, D, variant, seed):
    softcap = 5.0 if "softcap" in variant else 0.0
    window = T // 4 + 3 if "window" in variant else 0
    scale = 1.0 / math.sqrt(D)
    q, k, v, do = make(B, T, Hq, Hkv, D, seed)
    o, lse = ours.forward(q, k, v, scale, softcap, window)
    dq, dk, dv = ours.backward(q, k, v, o, lse, do, scale, softcap, window)
    torch.cuda.synchronize()
    ro, rlse, rdq, rdk, rdv = reference(q, k, v, do, scale, softcap, window)
    errs = {"o": rel(o, ro), "lse": rel(lse, rlse), "dq": rel(dq, rdq, rdv), "dk": rel(dk, rdk, rdv), "dv": rel(dv, rdv)}
    finite = all(bool(torch.isfinite(x).all()) for x in (o, lse, dq, dk, dv))
    ok = finite and errs["lse"] <= 1e-4 and all(errs[x] <= 2e-2 for x in ("o", "dq", "dk", "dv"))
    name = f"numerics B={B} T={T} Hq={Hq} Hkv={Hkv} Dh={D} {variant}" + (f" (window {window})" if window else "")
    detail = " ".join(f"{key} {e:.1e}" for key, e in errs.items())
    if not finite:
        detail += " NON-FINITE"
    if variant == "plain":
        try:
            qs, ks, vs = (x.detach().clone().requires_grad_() for x in (q, k, v))
            so = sdpa(qs, ks, vs)
            so.backward(do)
            detail += (f" | sdpa: o {rel(so, ro):.1e} dq {rel(qs.grad, rdq, rdv):.1e} dk {rel(ks.grad, rdk, rdv):.1e}"
                       f" dv {rel(vs.grad, rdv):.1e}")
        except Exception as ex:  # noqa: BLE001 — SDPA's own limits are not ours
            detail += f" | sdpa: {type(ex).__name__}"
    verdict(name, ok, detail)
    # determinism: a second forward+backward into fresh buffers, bitwise
    o2, lse2 = ours.forward(q, k, v, scale, softcap, window)
    dq2, dk2, dv2 = ours.backward(q, k, v, o2, lse2, do, scale, softcap, window)
    torch.cuda.synchronize()
    same = [key for key, a, b in (("o", o, o2), ("lse", lse, lse2), ("dq", dq, dq2), ("dk", dk, dk2), ("dv", dv, dv2))
            if not bits_equal(a, b)]
    verdict(f"determinism B={B} T={T} Hq={Hq} Hkv={Hkv} Dh={D} {variant}", not same,
            "bitwise equal" if not same else f"differ: {', '.join(same)}")
    del q, k, v, do, o, lse, dq, dk, dv, ro, rlse, rdq, rdk, rdv, o2, lse2, dq2, dk2, dv2
    torch.cuda.empty_cache()


def check_errors(ours):
    q, k, v, _ = make(1, 16, 2, 2, 96, 1)
    try:
        ours.forward(q, k, v, 0.1)
        verdict("errors head_dim 96", False, "accepted")
    except RuntimeError as ex:
        verdict("errors head_dim 96", "head_dim 96" in str(ex), str(ex))
    q, k, v, _ = make(1, 16, 2, 2, 64, 1)
    flat = torch.empty(q.numel() + 8, dtype=torch.bfloat16, device="cuda")
    qm = flat[1:1 + q.numel()].view(q.shape)  # 2-byte offset
    try:
        ours.forward(qm, k, v, 0.1)
        verdict("errors misaligned q", False, "accepted")
    except RuntimeError as ex:
        verdict("errors misaligned q", "q must be 16-byte aligned" in str(ex), str(ex))


# --------------------------------------------------------------------------- timing
def median_ms(fn, warmup=3, iters=15):
    return timed(fn, warmup, iters)[0]


def bench(ours, rows):
    print(f"\n{'shape':<34} {'impl':<22} {'fwd ms':>8} {'TFLOP/s':>8} {'fwd+bwd ms':>11} {'TFLOP/s':>8}")
    for B, T, Hq, Hkv, D in ((4, 2048, 32, 8, 64), (16, 1024, 12, 12, 64)):
        q, k, v, do = make(B, T, Hq, Hkv, D, 7)
        scale = 1.0 / math.sqrt(D)
        fwd_flop = 4 * B * Hq * T * T * D / 2
        shape = f"B={B} T={T} Hq={Hq} Hkv={Hkv} Dh={D}"
        fo = ours.forward(q, k, v, scale)
        bo = ours.backward(q, k, v, fo[0], fo[1], do, scale)

        def ours_fb():
            ours.forward(q, k, v, scale, out=fo)
            ours.backward(q, k, v, fo[0], fo[1], do, scale, out=bo)
        impls = {"ours": (lambda: ours.forward(q, k, v, scale, out=fo), ours_fb)}
        qs, ks, vs = (x.detach().clone().requires_grad_() for x in (q, k, v))
        note = "sdpa flash"
        try:
            sdpa(q, k, v)
            expand = False
        except Exception:  # noqa: BLE001 — the flash backend may refuse enable_gqa: expand k/v beforehand
            expand, note = True, "sdpa flash (k/v expanded)"
            rep = Hq // Hkv
            ks = k.repeat_interleave(rep, dim=2).detach().requires_grad_()
            vs = v.repeat_interleave(rep, dim=2).detach().requires_grad_()

        def sdpa_f():
            with torch.no_grad():
                sdpa(q if not expand else qs.detach(), ks.detach(), vs.detach(), force_expand=expand)

        def sdpa_fb():
            qs.grad = ks.grad = vs.grad = None
            sdpa(qs, ks, vs, force_expand=expand).backward(do)
        impls[note] = (sdpa_f, sdpa_fb)
        for name, (f, fb) in impls.items():
            try:
                mf, mfb = median_ms(f), median_ms(fb)
                rows.append({"shape": shape, "impl": name, "fwd_ms": mf, "fwd_bwd_ms": mfb})
                print(f"{shape:<34} {name:<22} {mf:8.3f} {fwd_flop / mf / 1e9:8.1f} {mfb:11.3f} "
                      f"{3.5 * fwd_flop / mfb / 1e9:8.1f}", flush=True)
            except Exception as ex:  # noqa: BLE001
                print(f"{shape:<34} {name:<22} failed: {type(ex).__name__}: {ex}", flush=True)
        del q, k, v, do, qs, ks, vs, fo, bo
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=".device/libcalib_flash.so")
    ap.add_argument("--small", action="store_true", help="tiny shapes, no timing (compute-sanitizer)")
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--json", default=None, help="write verdicts and timings here")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"device {torch.cuda.get_device_name(0)}; torch {torch.__version__}; lib {args.lib}", flush=True)
    ours = Ours(args.lib)
    variants = ("plain", "softcap", "window", "softcap+window")
    if args.small:
        cases = [(1, T, Hq, Hkv, D) for T in (1, 70, 130) for Hq, Hkv in ((2, 2), (4, 2)) for D in (64, 128)]
    else:
        cases = [(2, T, Hq, Hkv, D) for T in (128, 1000, 2048) for Hq, Hkv in ((8, 8), (32, 8)) for D in (64, 128)]
    seed = 0
    for case in cases:
        for variant in variants:
            seed += 1
            try:
                check_case(ours, *case, variant, seed)
            except Exception as ex:  # noqa: BLE001 — one failing case must not hide the others
                verdict(f"numerics {case} {variant}", False, f"{type(ex).__name__}: {ex}")
    check_errors(ours)
    rows = []
    if not args.small and not args.no_bench:
        bench(ours, rows)
    failed = [r for r in RESULTS if not r["ok"]]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks pass; {time.time() - T0:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "checks": RESULTS,
                       "timing": rows}, fh, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
