#!/usr/bin/env python3
"""Where the time of one forward+backward goes: CUPTI kernel records (torch.profiler) of ours
(default, 1 GiB workspace, the fused kernels) and PyTorch eager at the headline shape, grouped
by kernel, with the GPU's idle time between consecutive kernels.

  python3 bench/gpu/lce_profile.py --lib .device/libcalib.so [--shape 8192,2304,256000]

Prints a text report (scripts/gpu/job.sh saves it as data/bench/kernels_profile.txt).
"""
import argparse
import collections
import os
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lce_bench import EPS, GEMMS, Ours, make_inputs  # noqa: E402


def kernel_records(fn):
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    ev = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sorted(ev, key=lambda e: e.time_range.start)


def group(name):
    """A readable class for a kernel name."""
    if name.startswith("nvjet"):  # nvjet_sm90_tss_<tile>_..._<layouts>: group by kind and operand layouts
        parts = name.split("_")
        return f"cuBLAS {parts[2]} {parts[-1]}"
    if "gemm" in name.lower() or "splitK" in name:
        return "cuBLAS " + name[:40]
    if name.startswith("Memset") or name.startswith("Memcpy"):
        return name.split(" (")[0]
    if "logit_tma_kernel<" in name:  # template argument: the pass (linear_ce_tma.cuh LtMode)
        mode = name.split("logit_tma_kernel<", 1)[1][:1]
        return "logit_tma " + {"0": "statistics", "1": "gradient block", "2": "statistics+packed"}.get(mode, mode)
    for key in ("slab_stats", "slab_grad", "packed_grad_kernel", "lse_kernel", "gtile_kernel", "grad_kernel", "colsum", "merge_kernel",
                "SoftMaxForward", "SoftMaxBackward", "elementwise", "reduce_kernel", "nll_loss"):
        if key in name:
            return key
    return name[:40]


def report(label, ev, flops8=None):
    span = ev[-1].time_range.end - ev[0].time_range.start
    # time with at least one kernel running (kernels of two streams overlap)
    busy, end = 0, ev[0].time_range.start
    for e in ev:
        a, b = max(e.time_range.start, end), e.time_range.end
        if b > a:
            busy += b - a
            end = b
    print(f"\n== {label}: {len(ev)} kernels, span {span / 1e3:.2f} ms, GPU busy {busy / 1e3:.2f} ms, idle {(span - busy) / 1e3:.2f} ms")
    tot, cnt = collections.defaultdict(float), collections.Counter()
    for e in ev:
        g = group(e.name)
        tot[g] += e.time_range.end - e.time_range.start
        cnt[g] += 1
    print(f"   {'kernel':<44} {'calls':>6} {'ms':>9} {'share':>7}")
    for g, t in sorted(tot.items(), key=lambda kv: -kv[1]):
        if t / busy < 0.002:
            continue
        print(f"   {g:<44} {cnt[g]:>6} {t / 1e3:>9.2f} {t / busy:>7.1%}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--shape", default="8192,2304,256000")
    args = ap.parse_args()
    N, D, V = (int(x) for x in args.shape.split(","))
    print(f"device {torch.cuda.get_device_name(0)}; torch {torch.__version__}; (N, D, V) = ({N}, {D}, {V}), bf16, eps {EPS}, flat")
    E, C, t = make_inputs(N, D, V, "flat", 3)
    t32 = t.int()
    ours = Ours(args.lib)
    for label, ws, impl in (("ours, default", 0, "auto"), ("ours, 1 GiB workspace", 1 << 30, "auto"), ("ours, fused kernels", 0, "fused")):
        out = ours.run(E, C, t32, True, workspace=ws, impl=impl)
        ev = kernel_records(lambda: ours.run(E, C, t32, True, workspace=ws, impl=impl, out=out))
        st = ours.stats()
        report(f"{label} (mode {['fwd', 'streamed', 'chunked'][st['last_mode']]}, block {st['last_block_rows']}x{st['last_block_cols']}, "
               f"{GEMMS[st['last_gemm']]}, scratch {st['last_scratch_bytes'] / 2**20:.1f} MiB)", ev)
        del out
        ours.release()
    Eg, Cg = E.clone().requires_grad_(), C.clone().requires_grad_()

    def fb():
        Eg.grad = Cg.grad = None
        F.cross_entropy(Eg @ Cg.T, t, label_smoothing=EPS).backward()
    report("PyTorch eager", kernel_records(fb))


if __name__ == "__main__":
    main()
