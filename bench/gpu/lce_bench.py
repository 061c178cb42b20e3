#!/usr/bin/env python3
"""Fused linear + label-smoothed cross-entropy on one GPU: ours against the peers.

Every implementation runs in this one process on the same tensors:
  ours          the engine's C API (calib_linear_cross_entropy_cuda) through ctypes, with
                torch's device pointers (memory = DEVICE): streamed default, tile skipping,
                and a workspace sweep;
  torch         F.cross_entropy(E @ C.T, t, label_smoothing=ε), eager and torch.compile;
  liger         LigerFusedLinearCrossEntropyFunction with label_smoothing (Liger-Kernel);
  cce           Cut Cross-Entropy, ε emulated through return_lse (impl "cce" and "cce_exact").
Reference: fp32 PyTorch (TF32 off) on the same inputs. Timings are medians of CUDA-event
times; memory is the peak above inputs (and above the gradients for forward+backward).
The cuBLAS bf16 GEMM E·Cᵀ timed here gives the 6NDV and 8NDV floors.

Writes one JSON file (rows + metadata); bench/loss_cuda.ts turns it into Arrow + tables.
Progress goes to stderr.
"""
import argparse
import ctypes
import json
import math
import random
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

EPS = 0.1
MiB = 1 << 20
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- ours (ctypes)
class LceArgs(ctypes.Structure):
    _fields_ = [
        ("n", ctypes.c_int64), ("d", ctypes.c_int64), ("v", ctypes.c_int64),
        ("dtype", ctypes.c_int), ("device", ctypes.c_int), ("memory", ctypes.c_int),
        ("e", ctypes.c_void_p), ("c", ctypes.c_void_p), ("targets", ctypes.c_void_p), ("bias", ctypes.c_void_p),
        ("label_smoothing", ctypes.c_float), ("ignore_index", ctypes.c_int32), ("reduction", ctypes.c_int),
        ("temperature", ctypes.c_float), ("softcap", ctypes.c_float), ("impl", ctypes.c_int),
        ("workspace_bytes", ctypes.c_int64), ("threads", ctypes.c_int32), ("deterministic", ctypes.c_int32),
        ("check_finite", ctypes.c_int32),
        ("loss", ctypes.c_void_p), ("lse", ctypes.c_void_p), ("grad_output", ctypes.c_void_p),
        ("grad_e", ctypes.c_void_p), ("grad_c", ctypes.c_void_p), ("grad_bias", ctypes.c_void_p),
        ("valid_count", ctypes.c_int64),
    ]


class CudaOptions(ctypes.Structure):
    _fields_ = [("skip_threshold", ctypes.c_float), ("gemm_impl", ctypes.c_int32), ("stream", ctypes.c_void_p),
                ("workspace", ctypes.c_void_p), ("workspace_size", ctypes.c_int64)]


IMPLS = {"auto": 0, "fused": 1, "cublas": 2}
GEMMS = ["mma.sync", "wgmma", "cublas"]


class CudaStats(ctypes.Structure):
    _fields_ = [
        ("scratch_capacity_bytes", ctypes.c_int64), ("scratch_peak_bytes", ctypes.c_int64),
        ("last_scratch_bytes", ctypes.c_int64), ("last_mode", ctypes.c_int32), ("last_splits", ctypes.c_int32),
        ("last_block_rows", ctypes.c_int64), ("last_block_cols", ctypes.c_int64),
        ("last_tiles", ctypes.c_int64), ("last_tiles_skipped", ctypes.c_int64),
        ("last_gemm", ctypes.c_int32), ("reserved", ctypes.c_int32),
    ]


class Ours:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.calib_linear_cross_entropy_cuda.restype = ctypes.c_int
        self.lib.calib_linear_cross_entropy_cuda.argtypes = [ctypes.POINTER(LceArgs), ctypes.POINTER(CudaOptions), ctypes.c_char_p]
        self.lib.calib_cuda_get_stats.argtypes = [ctypes.POINTER(CudaStats)]
        self.lib.calib_cuda_release_scratch.argtypes = [ctypes.c_char_p]
        self.err = ctypes.create_string_buffer(512)

    def run(self, E, C, t32, grad, workspace=0, skip=0.0, out=None, check_finite=False, impl="auto"):
        N, D = E.shape
        V = C.shape[0]
        dev = E.device
        if out is None:
            out = {"loss": torch.empty(1, device=dev), "lse": torch.empty(N, device=dev)}
            if grad:
                out["dE"] = torch.empty(N, D, device=dev)
                out["dC"] = torch.empty(V, D, device=dev)
        a = LceArgs()
        a.n, a.d, a.v = N, D, V
        a.dtype = 1 if E.dtype == torch.bfloat16 else 0
        a.device, a.memory = 1, 1
        a.e, a.c, a.targets = E.data_ptr(), C.data_ptr(), t32.data_ptr()
        a.label_smoothing, a.ignore_index, a.reduction = EPS, -100, 0
        a.temperature, a.softcap, a.impl = 1.0, 0.0, 0
        a.workspace_bytes, a.deterministic, a.check_finite = int(workspace), 1, int(check_finite)
        a.loss, a.lse = out["loss"].data_ptr(), out["lse"].data_ptr()
        if grad:
            a.grad_e, a.grad_c = out["dE"].data_ptr(), out["dC"].data_ptr()
        o = CudaOptions()
        o.skip_threshold = skip
        o.gemm_impl = IMPLS[impl]
        st = self.lib.calib_linear_cross_entropy_cuda(ctypes.byref(a), ctypes.byref(o), self.err)
        if st != 0:
            raise RuntimeError(f"calib error {st}: {self.err.value.decode()}")
        return out

    def stats(self):
        s = CudaStats()
        self.lib.calib_cuda_get_stats(ctypes.byref(s))
        return {f: getattr(s, f) for f, _ in CudaStats._fields_}

    def release(self):
        self.lib.calib_cuda_release_scratch(self.err)


# --------------------------------------------------------------------------- helpers
def event_ms(fn):
    """One call of fn, timed with CUDA events on the current stream (ms)."""
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


def timed(fn, warmup, iters):
    """(median, all) ms of iters calls after warmup untimed ones."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = [event_ms(fn) for _ in range(iters)]
    return statistics.median(ts), ts


def interleaved(fns, warmup, rounds, seed=0):
    """Median ms of each callable, timed round-robin (one call of each per round, in a shuffled
    order) so that every one runs in the same clock and power state: under sustained load the
    H100 caps its power and lowers its clock (1.98 → ~1.5–1.7 GHz), so back-to-back blocks of
    one callable would each see a different state."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    ts = {k: [] for k in fns}
    order = list(fns)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for k in order:
            ts[k].append(event_ms(fns[k]))
    return {k: statistics.median(v) for k, v in ts.items()}, ts


def gemm_floor(E, V, count):
    """count cuBLAS GEMMs of the logits' shape (E·Bᵀ with B of V rows rounded up to 64), and the
    factor that scales their time to V rows."""
    Vg = (V + 63) // 64 * 64
    B = torch.randn(Vg, E.shape[1], device="cuda").bfloat16()

    def floor():
        for _ in range(count):
            E @ B.T
    return floor, V / Vg


def fwd_bwd(f, E, C, t):
    """A peer's forward+backward on its own leaf copies of E and C: (callable returning the loss, Eg, Cg)."""
    Eg, Cg = E.clone().requires_grad_(), C.clone().requires_grad_()

    def fb():
        Eg.grad = None
        Cg.grad = None
        loss = f(Eg, Cg, t)
        loss.backward()
        return loss
    return fb, Eg, Cg


def peak_above(fn):
    """Peak bytes torch allocates during fn above what was allocated before, and what stays."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base, torch.cuda.memory_allocated() - base


def rel(a, b):
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())


def make_inputs(N, D, V, regime, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    s = D ** -0.25  # logit std ≈ 1
    E = torch.randn(N, D, device="cuda", generator=g) * s
    C = torch.randn(V, D, device="cuda", generator=g) * s
    t = torch.randint(0, V, (N,), device="cuda", generator=g)
    if regime == "peaked":
        # pull each hidden state toward its target row: the target logit gains β on top of
        # logits of std 1, so p(target) ≈ σ(β − ln V − ½); β aims at a median p of 0.4
        beta = math.log(V) + 0.5 + math.log(0.4 / 0.6)
        Ct = C[t]
        E = E + beta * Ct / (Ct * Ct).sum(1, keepdim=True)
    return E.bfloat16().contiguous(), C.bfloat16().contiguous(), t


def reference(E, C, t):
    """fp32 PyTorch with TF32 off: loss, dE, dC, lse, p(target)."""
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    E32 = E.float().requires_grad_()
    C32 = C.float().requires_grad_()
    z = E32 @ C32.T
    loss = F.cross_entropy(z, t, label_smoothing=EPS)
    loss.backward()
    with torch.no_grad():
        lse = torch.logsumexp(z, 1)
        zt = z.gather(1, t[:, None])[:, 0]
        p_t = torch.exp(zt - lse)
    out = {"loss": loss.detach(), "dE": E32.grad, "dC": C32.grad, "lse": lse, "p_median": float(p_t.median()),
           "p_mean": float(p_t.mean())}
    del z, E32, C32
    torch.backends.cuda.matmul.allow_tf32 = prev
    return out


# --------------------------------------------------------------------------- peers
def peer_fns(name, V):
    """(forward, forward+backward) callables of a peer on (E, C, t): each returns the loss."""
    if name == "torch_eager":
        def f(E, C, t):
            return F.cross_entropy(E @ C.T, t, label_smoothing=EPS)
        return f
    if name == "torch_compile":
        return torch.compile(lambda E, C, t: F.cross_entropy(E @ C.T, t, label_smoothing=EPS), dynamic=False)
    if name == "liger":
        from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction as L

        def f(E, C, t):
            out = L.apply(E, C, t, None, None, -100, 0.0, EPS, "mean", None, False, None, False, False, False)
            return out[0] if isinstance(out, tuple) else out
        return f
    if name in ("cce", "cce_exact"):
        from cut_cross_entropy import linear_cross_entropy

        def f(E, C, t):
            nll, lse = linear_cross_entropy(E, C, t, impl=name, return_lse=True)
            # ε emulated (no ignored tokens): (1−ε)·NLL + ε·mean(lse − mean_v z_v)
            return (1 - EPS) * nll + EPS * (lse.float() - (E @ C.sum(0)).float() / V).mean()
        return f
    raise ValueError(name)


def interleaved_round(meta, ours, compiled, shape, regime, E, C, t, t32, args):
    """The headline comparisons timed round-robin in one clock state: the 8NDV floor (four
    cuBLAS GEMMs of the logits' shape), ours (default and 1 GiB) and PyTorch."""
    N, D, V = shape
    floor8, scale = gemm_floor(E, V, 4)
    out = ours.run(E, C, t32, True)
    fns = {"floor8": floor8, "ours": lambda: ours.run(E, C, t32, True, out=out),
           "ours_1GiB": lambda: ours.run(E, C, t32, True, workspace=1 << 30, out=out)}
    for peer in ("torch_eager", "torch_compile"):
        f = compiled.get((peer, shape))
        if f is not None:
            fns[peer] = fwd_bwd(f, E, C, t)[0]
    med, ts = interleaved(fns, 1, args.rounds)
    med["floor8"] *= scale  # the floor GEMM ran on the padded vocabulary
    ts["floor8"] = [x * scale for x in ts["floor8"]]
    meta.setdefault("interleaved", []).append({"n": N, "d": D, "v": V, "regime": regime, "rounds": args.rounds,
                                               "ms": med, "times_ms": ts})
    log(f" interleaved ({args.rounds} rounds, {regime}): " + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
        + f"; ours / floor8 {med['ours'] / med['floor8']:.3f}")
    del fns, out, floor8
    torch.cuda.empty_cache()


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shapes", default="8192,2304,256000;8192,4096,128256;4096,2048,50257")
    ap.add_argument("--regimes", default="flat,peaked")
    ap.add_argument("--peers", default="torch_eager,torch_compile,liger,cce,cce_exact")
    ap.add_argument("--sweep", default="33554432,67108864,268435456,1073741824,4294967296", help="workspace bytes (headline shape)")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15, help="rounds of the interleaved headline comparison")
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip remaining peer runs after this many seconds")
    ap.add_argument("--quick", action="store_true", help="headline shape, flat regime, eager only")
    ap.add_argument("--once", action="store_true", help="one forward+backward of ours on the first shape (for profilers)")
    args = ap.parse_args()
    if args.once:
        N, D, V = (int(x) for x in args.shapes.split(";")[0].split(","))
        E, C, t = make_inputs(N, D, V, "flat", 3)
        o = Ours(args.lib)
        o.run(E, C, t.int(), True)
        torch.cuda.synchronize()
        json.dump({"meta": {"once": [N, D, V], "stats": o.stats()}, "rows": []}, open(args.out, "w"))
        log(f"once: N={N} D={D} V={V} stats {o.stats()}")
        return
    if args.quick:
        args.shapes, args.regimes, args.peers = "8192,2304,256000", "flat", "torch_eager"
    torch.manual_seed(0)
    dev = torch.cuda.get_device_properties(0)
    card = torch.cuda.get_device_name(0)
    log(f"device {card}, {dev.multi_processor_count} SMs, {dev.total_memory / 2**30:.1f} GiB; torch {torch.__version__}")
    ours = Ours(args.lib)
    rows = []
    meta = {"card": card, "torch": torch.__version__, "eps": EPS, "iters": args.iters, "warmup": args.warmup,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "floors": [], "skipped": [], "errors": []}
    try:
        import triton
        meta["triton"] = triton.__version__
    except Exception:
        pass
    shapes = [tuple(int(x) for x in s.split(",")) for s in args.shapes.split(";") if s]
    regimes = args.regimes.split(",")
    peers = [p for p in args.peers.split(",") if p]
    sweep = [int(x) for x in args.sweep.split(",") if x]
    compiled = {}

    def add(impl, shape, regime, pas, workspace, ms, ts, extra_bytes, ref=None, loss=None, dE=None, dC=None, note=""):
        N, D, V = shape
        row = {"impl": impl, "n": N, "d": D, "v": V, "regime": regime, "pass": pas, "workspace_bytes": workspace,
               "time_ms": ms, "times_ms": ts, "extra_bytes": extra_bytes, "card": card, "note": note,
               "loss_rel_err": None, "de_rel_err": None, "dc_rel_err": None}
        if ref is not None and loss is not None:
            row["loss_rel_err"] = abs(float(loss) - float(ref["loss"])) / abs(float(ref["loss"]))
        if ref is not None and dE is not None:
            row["de_rel_err"] = rel(dE, ref["dE"])
            row["dc_rel_err"] = rel(dC, ref["dC"])
        rows.append(row)
        err = "" if row["de_rel_err"] is None else f"  dE {row['de_rel_err']:.2e} dC {row['dc_rel_err']:.2e}"
        lerr = "" if row["loss_rel_err"] is None else f"  loss {row['loss_rel_err']:.1e}"
        log(f"  {impl:<22} {pas:<7} {regime:<6} {ms:9.2f} ms  extra {extra_bytes / MiB:9.1f} MiB{lerr}{err} {note}")

    for si, shape in enumerate(shapes):
        N, D, V = shape
        headline = si == 0
        # cuBLAS bf16 GEMM floor
        # V rounded up to 64: cuBLAS takes a slow path for an unaligned output width (seen at
        # V = 50257: 100 TFLOP/s); the rate of the aligned GEMM sets the floor
        Vg = (V + 63) // 64 * 64
        A = torch.randn(N, D, device="cuda").bfloat16()
        B = torch.randn(Vg, D, device="cuda").bfloat16()
        ms, _ = timed(lambda: A @ B.T, 3, 5)
        tflops = 2 * N * D * Vg / ms / 1e9
        ms = 2 * N * D * V / tflops / 1e9
        meta["floors"].append({"n": N, "d": D, "v": V, "gemm_ms": ms, "tflops": tflops, "floor6_ms": 3 * ms, "floor8_ms": 4 * ms})
        log(f"shape N={N} D={D} V={V}: cuBLAS bf16 GEMM {ms:.2f} ms = {tflops:.0f} TFLOP/s; 6NDV {3 * ms:.1f} ms, 8NDV {4 * ms:.1f} ms")
        del A, B
        for regime in regimes:
            E, C, t = make_inputs(N, D, V, regime, seed=1000 * si + (7 if regime == "peaked" else 3))
            t32 = t.int()
            ref = reference(E, C, t)
            meta.setdefault("regimes", []).append({"n": N, "d": D, "v": V, "regime": regime, "p_target_median": ref["p_median"], "p_target_mean": ref["p_mean"]})
            log(f" regime {regime}: median p(target) {ref['p_median']:.3g}, fp32 loss {float(ref['loss']):.5f}")
            in_bytes = E.numel() * E.element_size() + C.numel() * C.element_size() + t.numel() * 12
            grad_bytes = (N + V) * D * 4
            # ---- ours
            # ours: default (auto: cuBLAS for bf16), the fused kernels, tile skipping (fused), workspaces
            variants = [("ours", 0, 0.0, "auto"), ("ours_fused", 0, 0.0, "fused"), ("ours_skip", 0, -1.0, "auto")]
            if headline:
                variants += [(f"ours_ws", ws, 0.0, "auto") for ws in sweep]
            else:
                variants += [("ours_ws", 1 << 30, 0.0, "auto")]
            for name, impl in (("ours", "auto"), ("ours_fused", "fused")):
                free0 = torch.cuda.mem_get_info()[0]
                out_f = ours.run(E, C, t32, False, impl=impl)
                torch.cuda.synchronize()
                if si == 0 and regime == regimes[0] and impl == "auto":
                    # device memory the first call took (scratch arena + cuBLAS handle and kernels), cudaMemGetInfo
                    meta["ours_first_call_device_bytes"] = free0 - torch.cuda.mem_get_info()[0]
                ms, ts = timed(lambda: ours.run(E, C, t32, False, out=out_f, impl=impl), args.warmup, args.iters)
                st = ours.stats()
                add(name, shape, regime, "fwd", 0, ms, ts, st["last_scratch_bytes"] + (N + 1) * 4, ref, loss=out_f["loss"],
                    note=f"gemm={GEMMS[st['last_gemm']]}")
            out_b = None
            for name, ws, skip, impl in variants:
                if time.time() - T0 > args.budget_s and name != "ours":
                    meta["skipped"].append(f"{name} ws={ws} {shape} {regime}: time budget")
                    continue
                try:
                    out_b = ours.run(E, C, t32, True, workspace=ws, skip=skip, out=out_b, impl=impl)
                    st = ours.stats()
                    ms, ts = timed(lambda: ours.run(E, C, t32, True, workspace=ws, skip=skip, out=out_b, impl=impl),
                                   args.warmup, args.iters)
                    note = (f"mode={['fwd', 'streamed', 'chunked'][st['last_mode']]} block={st['last_block_rows']}x{st['last_block_cols']}"
                            f" gemm={GEMMS[st['last_gemm']]}")
                    if skip:
                        note += f" skipped {st['last_tiles_skipped']}/{st['last_tiles']} tiles"
                    add(name, shape, regime, "fwd+bwd", ws, ms, ts, st["last_scratch_bytes"] + (N + 1) * 4, ref,
                        loss=out_b["loss"], dE=out_b["dE"], dC=out_b["dC"], note=note)
                except Exception as ex:
                    meta["errors"].append(f"{name} ws={ws} {shape} {regime}: {ex}")
                    log(f"  {name} failed: {ex}")
            del out_b, out_f
            torch.cuda.empty_cache()
            # ---- peers
            for peer in peers:
                if time.time() - T0 > args.budget_s:
                    meta["skipped"].append(f"{peer} {shape} {regime}: time budget")
                    continue
                try:
                    key = (peer, shape)
                    if key not in compiled:
                        compiled[key] = peer_fns(peer, V)
                    f = compiled[key]
                    with torch.no_grad():
                        f(E, C, t)  # compile / JIT outside the timing
                        peak, _ = peak_above(lambda: f(E, C, t))
                        ms, ts = timed(lambda: f(E, C, t), args.warmup, args.iters)
                    add(peer, shape, regime, "fwd", 0, ms, ts, peak)
                    fb, Eg, Cg = fwd_bwd(f, E, C, t)
                    loss = fb()
                    dE, dC = Eg.grad.float(), Cg.grad.float()
                    lossv = float(loss)
                    Eg.grad = None
                    Cg.grad = None
                    peak, stay = peak_above(fb)
                    gb = Eg.grad.numel() * Eg.grad.element_size() + Cg.grad.numel() * Cg.grad.element_size()
                    ms, ts = timed(fb, args.warmup, args.iters)
                    add(peer, shape, regime, "fwd+bwd", 0, ms, ts, peak - gb, ref, loss=lossv, dE=dE, dC=dC)
                    del Eg, Cg, dE, dC
                except Exception as ex:
                    meta["errors"].append(f"{peer} {shape} {regime}: {type(ex).__name__}: {ex}")
                    log(f"  {peer} failed: {type(ex).__name__}: {ex}")
                    traceback.print_exc(file=sys.stderr)
                torch.cuda.empty_cache()
            if headline and time.time() - T0 < args.budget_s:
                interleaved_round(meta, ours, compiled, shape, regime, E, C, t, t32, args)
            del E, C, t, t32, ref
            torch.cuda.empty_cache()
            ours.release()
        meta["elapsed_s"] = time.time() - T0
        with open(args.out, "w") as fh:  # after every shape, so a cut-off run keeps what it measured
            json.dump({"meta": meta, "rows": rows}, fh)
    log(f"done in {time.time() - T0:.0f} s; {len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
