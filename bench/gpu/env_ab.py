"""Times variants of our loss that differ only in environment settings (CALIB_LOGITS=slab,
CALIB_TMA_PAIR, CALIB_TMA_SPLITS, ...), interleaved round-robin so that all of them see the same
clock and power state (see lce_bench.interleaved), with the 8NDV floor (four cuBLAS GEMMs) as
the same-job baseline. One line per variant: median ms and ratio to the first variant.

  python3 bench/gpu/env_ab.py --lib .device/libcalib.so --pass fwd \
      --variants 'slab:CALIB_LOGITS=slab' 'regs:' 'regs-pair1:CALIB_TMA_PAIR=1'
"""
import argparse
import os

import torch

import torch.nn.functional as F

from lce_bench import EPS, Ours, interleaved, make_inputs


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
    B = torch.randn((V + 63) // 64 * 64, D, device="cuda").bfloat16()

    def floor():  # 8NDV (fwd+bwd) or 2NDV (fwd) of cuBLAS GEMMs of the logits' shape
        for _ in range(4 if grad else 1):
            E @ B.T

    def variant(settings):
        pairs = [kv.split("=", 1) for kv in settings.split(",") if kv]

        def f():
            old = {k: os.environ.get(k) for k, _ in pairs}
            os.environ.update(dict(pairs))
            try:
                ours.run(E, C, t32, grad, workspace=args.workspace, out=out if grad else None)
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return f

    fns = {"floor": floor}
    if args.eager and grad:
        Eg, Cg = E.clone().requires_grad_(), C.clone().requires_grad_()

        def eager():
            Eg.grad = None
            Cg.grad = None
            F.cross_entropy(Eg @ Cg.T, t, label_smoothing=EPS).backward()  # as lce_bench.peer_fns
        fns["torch_eager"] = eager
    for spec in args.variants:
        name, _, settings = spec.partition(":")
        fns[name] = variant(settings)
    med, _ = interleaved(fns, 1, args.rounds)
    first = args.variants[0].partition(":")[0]
    print(f"{torch.cuda.get_device_name(0)}; (N, D, V) = ({N}, {D}, {V}); {args.pas}; workspace {args.workspace}; "
          f"{args.rounds} interleaved rounds")
    for k, v in med.items():
        print(f"  {k:24s} {v:8.2f} ms   x{v / med[first]:.3f} of {first}   x{v / med['floor']:.3f} of floor")


if __name__ == "__main__":
    main()
