#!/usr/bin/env python3
"""transformers' own training step on one GPU, the peer of bench/gpu/llama-train.ts (issues 19 and 21).

The shapes of a real model (every layer, random weights: from_config), float32 weights under
torch.autocast(bfloat16), ε = 0.1 label smoothing, torch.optim.AdamW(fused=True), clipping at 1, random token
ids at batch × context. Variants (each in its own process):
  sdpa     attn_implementation="sdpa"; the logits in fp32 through F.cross_entropy(label_smoothing=0.1)
  liger    Liger's RoPE, RMSNorm, SwiGLU and fused linear cross-entropy (label_smoothing=0.1), sdpa attention
  compile  sdpa + torch.compile(model) (the loss as in sdpa)
Prints one JSON line: median step time, tokens/s, torch.cuda.max_memory_allocated / reserved, and the GPU memory
the process holds after the steps (nvidia-smi, minus what was in use before; comparable to ours).
  python3 bench/gpu/llama_step.py --model llama-3.2-1b --variant sdpa [--batch 4] [--context 2048] [--steps 12]
"""
import argparse
import functools
import json
import statistics
import subprocess
import time

# the real configurations (bench/gpu/real_models.json, as hf_parity.py reads it), here with every layer
from hf_parity import REAL_MODELS

REAL = {name: (m["model_type"], dict(m["config"], num_hidden_layers=m["num_hidden_layers"]))
        for name, m in REAL_MODELS.items() if name in ("llama-3.2-1b", "qwen2.5-0.5b")}
EPS = 0.1
GiB = 2 ** 30


def gpu_mib():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[0])


def process_mib():
    """This process's GPU memory as nvidia-smi lists it (None where the container hides the process list)."""
    import os
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.strip().splitlines():
        pid, mib = (int(x.strip()) for x in line.split(","))
        if pid == os.getpid():
            return mib
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(REAL), default="llama-3.2-1b")
    p.add_argument("--variant", choices=["sdpa", "liger", "compile"], default="sdpa")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--context", type=int, default=2048)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--out")
    a = p.parse_args()
    before = gpu_mib()
    import torch
    import torch.nn.functional as F
    from transformers import AutoConfig, AutoModelForCausalLM

    mt, fields = REAL[a.model]
    config = AutoConfig.for_model(mt, **fields)
    torch.manual_seed(0)
    if a.variant == "liger":
        import liger_kernel.transformers.functional as lf
        from liger_kernel.transformers import apply_liger_kernel_to_llama, apply_liger_kernel_to_qwen2
        # the patched forward calls liger_fused_linear_cross_entropy with the kwargs it knows: ε is bound here
        lf.liger_fused_linear_cross_entropy = functools.partial(lf.liger_fused_linear_cross_entropy, label_smoothing=EPS)
        (apply_liger_kernel_to_llama if mt == "llama" else apply_liger_kernel_to_qwen2)(
            rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=True)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    model.train()
    step_model = torch.compile(model) if a.variant == "compile" else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.1, fused=True)
    g = torch.Generator(device="cuda").manual_seed(7)
    B, T, V = a.batch, a.context, config.vocab_size
    batches = [(torch.randint(0, V, (B, T), device="cuda", generator=g), torch.randint(0, V, (B, T), device="cuda", generator=g))
               for _ in range(3)]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for s in range(1, a.steps + 1):
        x, y = batches[s % 3]
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if a.variant == "liger":
                # transformers shifts labels by one; give it ids whose shift is y
                labels = torch.cat([torch.full((B, 1), -100, device="cuda", dtype=y.dtype), y[:, :-1]], dim=1)
                loss = step_model(input_ids=x, labels=labels, use_cache=False).loss
            else:
                logits = step_model(input_ids=x, use_cache=False).logits
                loss = F.cross_entropy(logits.float().view(-1, V), y.view(-1), label_smoothing=EPS)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    held, own = gpu_mib(), process_mib()
    warm = min(3, a.steps - 1)
    step_s = statistics.median(times[warm:])
    res = dict(engine=f"transformers+{a.variant}", model=a.model, params=sum(p.numel() for p in model.parameters()), batch=B, context=T,
               steps=a.steps, step_ms=step_s * 1e3, tokens_per_s=B * T / step_s, gpu_mib=own if own is not None else held - before,
               gpu_mib_source="process" if own is not None else "device total − before",
               max_allocated_gib=torch.cuda.max_memory_allocated() / GiB, max_reserved_gib=torch.cuda.max_memory_reserved() / GiB,
               losses=losses, step_times_s=times, torch=torch.__version__)
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
