"""Times variants of our loss that differ only in environment settings (CALIB_LOGITS=slab,
CALIB_TMA_PAIR, CALIB_TMA_SPLITS, ...), interleaved round-robin so that all of them see the same
clock and power state (see lce_bench.interleaved), with the 8NDV floor (four cuBLAS GEMMs) as
the same-job baseline. One line per variant: median ms and ratio to the first variant.

  python3 dev/cuda/env_ab.py --lib .device/libcalib.so --pass fwd \
      --variants 'slab:CALIB_LOGITS=slab' 'regs:' 'regs-pair1:CALIB_TMA_PAIR=1'

A record, not a tool for the current engine: the switches it toggles (CALIB_LOGITS, CALIB_PACKED,
CALIB_MODE, CALIB_TMA_PAIR, CALIB_TMA_SPLITS) were read by the engine up to commit 852f294 and are
removed after it (issue 17: no environment variable changes the plan). On a later engine every
variant runs the same plan. To repeat a measurement, check out 852f294 (see dev/README.md).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "gpu"))
from lce_bench import Ours, fwd_bwd, gemm_floor, interleaved, make_inputs, peer_fns, with_env  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--shape", default="8192,2304,256000")
    ap.add_argument("--pass", dest="pas", choices=("fwd", "fwd+bwd"), default="fwd+bwd")
    ap.add_argument("--workspace", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--variants", nargs="+", required=True, help="name:VAR=value,VAR=value (empty: defaults)")
    ap.add_argument("--eager", action="store_true", help="also time PyTorch eager (fwd+bwd) in the rounds")
    args = ap.parse_args()
    N, D, V = (int(x) for x in args.shape.split(","))
    E, C, t = make_inputs(N, D, V, "flat", 3)
    t32 = t.int()
    ours = Ours(args.lib)
    grad = args.pas == "fwd+bwd"
    out = ours.run(E, C, t32, grad, workspace=args.workspace)
    floor, scale = gemm_floor(E, V, 4 if grad else 1)  # 8NDV (fwd+bwd) or 2NDV (fwd)

    def variant(settings):
        env = dict(kv.split("=", 1) for kv in settings.split(",") if kv)
        return with_env(env, lambda: ours.run(E, C, t32, grad, workspace=args.workspace, out=out if grad else None))

    fns = {"floor": floor}
    if args.eager and grad:
        fns["torch_eager"] = fwd_bwd(peer_fns("torch_eager", V), E, C, t)[0]
    for spec in args.variants:
        name, _, settings = spec.partition(":")
        fns[name] = variant(settings)
    med, _ = interleaved(fns, 1, args.rounds)
    med["floor"] *= scale  # the floor GEMM ran on the padded vocabulary
    first = args.variants[0].partition(":")[0]
    print(f"{torch.cuda.get_device_name(0)}; (N, D, V) = ({N}, {D}, {V}); {args.pas}; workspace {args.workspace}; "
          f"{args.rounds} interleaved rounds")
    for k, v in med.items():
        print(f"  {k:24s} {v:8.2f} ms   x{v / med[first]:.3f} of {first}   x{v / med['floor']:.3f} of floor")


if __name__ == "__main__":
    main()
