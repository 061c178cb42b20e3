#!/usr/bin/env python3
"""Plan choices of ours (default mode, and the 1 GiB workspace) at the headline shape, timed
round-robin with the 8NDV floor and PyTorch eager so that all share one clock/power state.
The engine's planning knobs ($CALIB_LCE_PARTS, $CALIB_LCE_BLOCKS, $CALIB_LCE_UNROLL, $CALIB_LCE_GEMMEX) are set
per call; see native/src/loss/linear_ce_cuda.cu (plan_blas).

  python3 bench/gpu/lce_sweep.py --lib .device/libcalib.so [--rounds 11]

Prints a text report (scripts/gpu/job.sh saves it as data/bench/kernels_sweep.txt).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lce_bench import EPS, F, GEMMEX, ONE_PART, PREVIOUS, Ours, interleaved, make_inputs, with_env  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--shape", default="8192,2304,256000")
    args = ap.parse_args()
    N, D, V = (int(x) for x in args.shape.split(","))
    ours = Ours(args.lib)
    E, C, t = make_inputs(N, D, V, "flat", 3)
    t32 = t.int()
    out = ours.run(E, C, t32, True)

    def run(ws=0):
        return lambda: ours.run(E, C, t32, True, out=out, workspace=ws)

    def floor8():
        for _ in range(4):
            E @ C.T
    Eg, Cg = E.clone().requires_grad_(), C.clone().requires_grad_()

    def eager():
        Eg.grad = None
        Cg.grad = None
        F.cross_entropy(Eg @ Cg.T, t, label_smoothing=EPS).backward()
    fns = {
        "floor8 (4 cuBLAS GEMMs)": floor8,
        "default": run(),
        "cublasGemmEx": with_env(run(), GEMMEX),
        "one part (one stream)": with_env(run(), ONE_PART),
        "row kernels 2,1 segments": with_env(run(), {"CALIB_LCE_UNROLL": "2,1"}),
        "blocks 1792 / 1792+768": with_env(run(), {"CALIB_LCE_BLOCKS": "1792,1792,768"}),
        "pass-1 blocks 1024": with_env(run(), {"CALIB_LCE_BLOCKS": "1024,1536,1024"}),
        "previous plan": with_env(run(), PREVIOUS),
        "1 GiB": run(1 << 30),
        "1 GiB, one part": with_env(run(1 << 30), ONE_PART),
        "1 GiB, cublasGemmEx": with_env(run(1 << 30), GEMMEX),
        "PyTorch eager": eager,
    }
    med, ts = interleaved(fns, 1, args.rounds)
    f8 = med["floor8 (4 cuBLAS GEMMs)"]
    print(f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}; (N, D, V) = ({N}, {D}, {V}), bf16, eps {EPS}, flat, "
          f"forward+backward; {args.rounds} rounds, one call of each per round in a shuffled order")
    print(f"  {'variant':<28} {'median ms':>10} {'x floor8':>9} {'min':>8} {'max':>8}")
    for k, v in med.items():
        print(f"  {k:<28} {v:10.2f} {v / f8:9.3f} {min(ts[k]):8.2f} {max(ts[k]):8.2f}")


if __name__ == "__main__":
    main()
