#!/usr/bin/env python3
"""The GPU acceptance check of calib_lce (issue 20), run by scripts/gpu/python-job.sh on the GPU machine.

Phases (each a subcommand, each writes <work>/<phase>.json; `summary` merges them into <out>/gpu_check.json and
prints the verdicts last):
  library    loads the engine library (carried, else built here with nvcc) and prints what it found
  numerics   linear_cross_entropy against F.cross_entropy(e.float() @ c.float().T, label_smoothing=ε) in fp32
             (TF32 off): loss ≤ 1e-5 relative, gradients ≤ 1e-4 (fp32), ≤ 5e-3 (bf16), ≤ 1e-3 (fp16: fp32 values,
             gradients rounded to fp16; or twice what that rounding alone costs, when more); ε ∈ {0, 0.1}, ignored tokens, temperature, softcap, bias, reductions
             none/sum/mean; the Llama-3.2-1B head shape (bf16); torch.compile (0 graph breaks in
             torch._dynamo.explain, compiled = eager); the scratch in torch.cuda.max_memory_allocated and none in
             the engine's own arena; a side stream; mean over no valid token = NaN; a bad target's error
  families   Llama, Qwen2, Mistral, Gemma 2 (its final soft-cap) small configs in fp32: patched vs unpatched
             loss and gradients within 1e-3 (ε = 0 against the stock loss, ε = 0.1 against the stock logits
             with F.cross_entropy(label_smoothing=0.1))
  sft        --variant hf|calib|liger|cce: transformers.Trainer, a random-weight Llama-3.2-1B-shaped model in
             bf16, context 2048, synthetic token sequences whose prompt part is labelled -100, ε = 0.1 —
             hf: unpatched (its logits; ForCausalLMLoss with F.cross_entropy(label_smoothing=ε)), calib: calib_lce.patch, liger: Liger's
             apply_liger_kernel_to_llama (fused linear cross-entropy only) with its label_smoothing, cce: Cut
             Cross-Entropy's linear_cross_entropy with ε emulated through return_lse (its cce_patch imports
             names transformers 5 no longer has); per-step loss, step time, tokens/s, peak memory
  fsdp       FSDP2 (fully_shard) on one GPU (world size 1, NCCL): the 1B model patched for a few steps, and a
             small untied model whose lm_head is sharded on its own, gradients against the unsharded model
Use --device cpu --smoke to run every phase on tiny shapes on a CPU (a check of this script, not of the GPU).
"""
import argparse
import contextlib
import copy
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

T0 = time.time()
MiB, GiB = 1 << 20, 1 << 30
EPS = 0.1
TOL_LOSS = 1e-5
TOL_GRAD = {"float32": 1e-4, "bfloat16": 5e-3, "float16": 1e-3}
LLAMA_1B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                num_key_value_heads=8, head_dim=64, vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0,
                rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192},
                tie_word_embeddings=True, max_position_embeddings=131072, bos_token_id=128000, eos_token_id=128001)
LLAMA_TINY = dict(LLAMA_1B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=512)


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, file=sys.stderr, flush=True)


def save(args, phase, data):
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data["phase"], data["seconds"] = phase, round(time.time() - T0, 1)
    tmp = work / f".{phase}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(work / f"{phase}.json")


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


# ============================================================================================ library
def phase_library(args):
    import torch

    import calib_lce
    from calib_lce import build

    data = {"torch": torch.__version__, "device": args.device}
    if args.device == "cuda":
        data["gpu"] = torch.cuda.get_device_name(0)
        data["capability"] = list(torch.cuda.get_device_capability(0))
    try:
        lib = calib_lce.load_library(torch.device(args.device))
    except (OSError, build.BuildError) as exc:  # e.g. a carried library built against another system's libraries
        data["error"] = f"{type(exc).__name__}: {exc}"
        log("library", data)
        save(args, "library", data)
        sys.exit(1)
    data["library"] = str(lib.path)
    data["stamp"] = build.read_stamp("cuda" if lib.cuda_built else "cpu", lib.path.parent)
    data["info"] = lib.info()
    try:
        import transformers

        data["transformers"] = transformers.__version__
    except ImportError:
        data["transformers"] = None
    log("library", data)
    save(args, "library", data)
    if args.device == "cuda" and not data["info"]["cuda_devices"]:
        sys.exit(1)


# ============================================================================================ numerics
def reference(e, c, t, bias, eps, reduction, temperature, softcap, grad_out):
    """fp32 PyTorch (TF32 off): loss, dE, dC, dbias of (loss · grad_out).sum()."""
    import torch
    import torch.nn.functional as F

    e32 = e.detach().float().requires_grad_()
    c32 = c.detach().float().requires_grad_()
    b32 = bias.detach().float().requires_grad_() if bias is not None else None
    z = e32 @ c32.T
    if b32 is not None:
        z = z + b32
    s = z / temperature
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    loss = temperature * F.cross_entropy(s, t, label_smoothing=eps, reduction=reduction)
    (loss * grad_out).sum().backward()
    out = {"loss": loss.detach(), "dE": e32.grad, "dC": c32.grad, "db": b32.grad if b32 is not None else None}
    del z, s
    return out


def make_inputs(N, D, V, dtype, device, seed, ignore=0.0, scale=1.0):
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    e = torch.randn(N, D, device=device, generator=g) * (scale * D ** -0.25)
    c = torch.randn(V, D, device=device, generator=g) * (scale * D ** -0.25)
    t = torch.randint(0, V, (N,), device=device, generator=g)
    t[torch.rand(N, device=device, generator=g) < ignore] = -100
    return e.to(dtype).requires_grad_(), c.to(dtype).requires_grad_(), t


def phase_numerics(args):
    import torch

    import calib_lce
    from calib_lce import ops

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = args.device
    checks, failures = [], []

    def record(name, ok, **values):
        checks.append(dict(name=name, ok=bool(ok), **values))
        if not ok:
            failures.append(name)
        log(("ok  " if ok else "FAIL"), name, {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in values.items()})

    small = (300, 64, 1000) if args.smoke else (3000, 512, 32000)
    configs = [
        ("mean", dict(reduction="mean")),
        ("mean, 30% ignored, T=0.7", dict(reduction="mean", ignore=0.3, temperature=0.7)),
        ("sum, softcap 5, ignored", dict(reduction="sum", ignore=0.2, softcap=5.0, scale=2.0)),
        ("none, per-token grad, bias, ignored", dict(reduction="none", ignore=0.3, bias=True)),
        ("mean, bias, softcap 30, T=1.5", dict(reduction="mean", bias=True, softcap=30.0, temperature=1.5)),
    ]
    seed = 0
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        dname = str(dtype).replace("torch.", "")
        for eps in (0.0, EPS):
            for cname, cfg in configs:
                seed += 1
                N, D, V = small
                e, c, t = make_inputs(N, D, V, dtype, dev, seed, cfg.get("ignore", 0.0), cfg.get("scale", 1.0))
                bias = (torch.randn(V, device=dev) * 0.5).requires_grad_() if cfg.get("bias") else None
                T, cap, red = cfg.get("temperature", 1.0), cfg.get("softcap"), cfg["reduction"]
                g = torch.randn(N, device=dev) if red == "none" else torch.tensor(0.7, device=dev)
                loss = calib_lce.linear_cross_entropy(e, c, t, bias=bias, label_smoothing=eps, reduction=red,
                                                      temperature=T, softcap=cap)
                (loss * g).sum().backward()
                ref = reference(e, c, t, bias, eps, red, T, cap, g)
                vals = dict(loss=rel(loss, ref["loss"]), dE=rel(e.grad, ref["dE"]), dC=rel(c.grad, ref["dC"]))
                if bias is not None:
                    vals["db"] = rel(bias.grad, ref["db"])
                tol = TOL_GRAD[dname]
                if dtype == torch.float16:
                    # gradients are returned in fp16: a mean over N tokens puts small entries among fp16's
                    # subnormals, where rounding alone costs more than 1e-3 — bound by twice that cost
                    floor = max(rel(ref[k].to(torch.float16), ref[k]) for k in ("dE", "dC"))
                    tol = max(tol, 2 * floor)
                    vals["fp16_rounding"] = floor
                ok = vals["loss"] <= TOL_LOSS and all(v <= tol for k, v in vals.items() if k not in ("loss", "fp16_rounding"))
                ok = ok and e.grad.dtype == dtype and c.grad.dtype == dtype
                record(f"{dname} ε={eps} {cname}", ok, **vals)
                del e, c, t, bias, loss, ref

    # the Llama-3.2-1B head: N = 8192 tokens of context 2048, bf16 (cuBLAS + the logit kernel on Hopper)
    N, D, V = (256, 64, 2000) if args.smoke else (8192, 2048, 128256)
    e, c, t = make_inputs(N, D, V, torch.bfloat16, dev, 99, ignore=0.25)
    loss = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS)
    loss.backward()
    ref = reference(e, c, t, None, EPS, "mean", 1.0, None, torch.tensor(1.0, device=dev))
    vals = dict(loss=rel(loss, ref["loss"]), dE=rel(e.grad, ref["dE"]), dC=rel(c.grad, ref["dC"]))
    record(f"bf16 ε=0.1 Llama-1B head {N}×{D}×{V}", vals["loss"] <= TOL_LOSS and max(vals["dE"], vals["dC"]) <= 5e-3,
           **vals)
    del ref

    # memory: the scratch comes from PyTorch's allocator (the engine's own arena stays empty)
    lib = calib_lce.load_library(torch.device(dev))
    if dev == "cuda":
        e.grad = c.grad = None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            loss = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS)
        torch.cuda.synchronize()
        peak_fwd = torch.cuda.max_memory_allocated() - base
        scratch_fwd = lib.cuda_stats()["last_scratch_bytes"]
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        loss = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        stats = lib.cuda_stats()
        # during the call the scratch and the engine's fp32 gradients are all allocated by PyTorch
        need = stats["last_scratch_bytes"] + (N + V) * D * 4
        ok = stats["scratch_capacity_bytes"] == 0 and peak_fwd >= scratch_fwd > 0 and peak >= need
        record("scratch in max_memory_allocated, engine arena empty", ok, forward_peak_mib=peak_fwd / MiB,
               forward_scratch_mib=scratch_fwd / MiB, peak_mib=peak / MiB, scratch_mib=stats["last_scratch_bytes"] / MiB,
               arena_bytes=stats["scratch_capacity_bytes"], logits_would_be_mib=N * V * 4 / MiB)
        # a side stream gives the same (deterministic) result
        e.grad = c.grad = None
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            l2 = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS)
        torch.cuda.current_stream().wait_stream(side)
        record("side stream: bitwise equal", torch.equal(l2, loss), loss=float(loss))
        del l2
    del e, c, t, loss

    # determinism: two calls give bitwise equal per-token losses
    e, c, t = make_inputs(*small, torch.bfloat16, dev, 5, ignore=0.3)
    a = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS, reduction="none")
    b = calib_lce.linear_cross_entropy(e, c, t, label_smoothing=EPS, reduction="none")
    record("deterministic: two calls bitwise equal", torch.equal(a, b))

    # mean over no valid token is NaN, as PyTorch; its gradients are zero
    e.grad = None
    nan = calib_lce.linear_cross_entropy(e, c, torch.full_like(t, -100), label_smoothing=EPS)
    nan.backward()
    record("mean over no valid token = NaN, zero gradients", bool(torch.isnan(nan)) and not e.grad.any())
    bad = t.clone()
    bad[7] = small[2] + 3
    try:
        calib_lce.linear_cross_entropy(e, c, bad)
        record("a bad target raises ValueError", False)
    except ValueError as exc:
        record("a bad target raises ValueError", "targets[7]" in str(exc), message=str(exc))

    # torch.compile: no graph break, the same values as eager
    def f(e, c, t):
        return calib_lce.linear_cross_entropy(e * 1.5, c, t, label_smoothing=EPS, softcap=20.0) * 2.0

    e, c, t = make_inputs(*small, torch.bfloat16, dev, 7, ignore=0.1)
    explain = torch._dynamo.explain(f)(e, c, t)
    eager = f(e, c, t)
    ge, gc = torch.autograd.grad(eager, (e, c))
    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager" if args.smoke else "inductor")
    out = compiled(e, c, t)
    ce, cc = torch.autograd.grad(out, (e, c))
    out2 = compiled(e, c, t)  # a second call reuses the compiled graph
    record("torch.compile: 0 graph breaks, compiled = eager",
           explain.graph_break_count == 0 and rel(out, eager) <= 1e-6 and rel(ce, ge) <= 1e-3 and rel(cc, gc) <= 1e-3
           and torch.equal(out, out2), graph_breaks=explain.graph_break_count,
           break_reasons=[str(r) for r in explain.break_reasons], loss=rel(out, eager), dE=rel(ce, ge), dC=rel(cc, gc))
    e, c, t = make_inputs(64, 32, 300, torch.bfloat16, dev, 11, ignore=0.2)
    bias = torch.randn(300, device=dev, requires_grad=True)
    try:
        for red in (0, 1, 2):
            torch.library.opcheck(ops._forward, (e, c, t, bias, EPS, -100, red, 1.0, 0.0, 0, True))
        opcheck = "ok"
    except Exception as exc:  # noqa: BLE001
        opcheck = f"{type(exc).__name__}: {exc}"
    record("torch.library.opcheck (schema, fake tensors, autograd registration)", opcheck == "ok", result=opcheck)
    save(args, "numerics", {"checks": checks, "failures": failures, "info": lib.info()})
    if failures:
        sys.exit(1)


# ============================================================================================ families
def family_configs(smoke):
    from transformers import (Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                              MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    common = dict(hidden_size=64 if smoke else 512, intermediate_size=128 if smoke else 1536, num_hidden_layers=2,
                  num_attention_heads=4 if smoke else 8, num_key_value_heads=2, max_position_embeddings=4096)
    return [
        ("llama", LlamaForCausalLM, LlamaConfig(**common, vocab_size=500 if smoke else 32000, tie_word_embeddings=True)),
        ("qwen2", Qwen2ForCausalLM, Qwen2Config(**common, vocab_size=500 if smoke else 151936, tie_word_embeddings=False)),
        ("mistral", MistralForCausalLM, MistralConfig(**common, vocab_size=500 if smoke else 32768)),
        ("gemma2", Gemma2ForCausalLM, Gemma2Config(**common, vocab_size=500 if smoke else 256000,
                                                   head_dim=16 if smoke else 64, final_logit_softcapping=30.0,
                                                   attn_logit_softcapping=50.0, query_pre_attn_scalar=64,
                                                   sliding_window=64)),
    ]


def phase_families(args):
    import torch
    import torch.nn.functional as F

    import calib_lce

    torch.backends.cuda.matmul.allow_tf32 = False
    dev = args.device
    rows, failures = [], []
    B, T = (2, 32) if args.smoke else (4, 256)
    for name, cls, config in family_configs(args.smoke):
        torch.manual_seed(0)
        with torch.device(dev):
            model = cls(config).float().train()
        g = torch.Generator(device=dev).manual_seed(1)
        ids = torch.randint(0, config.vocab_size, (B, T), device=dev, generator=g)
        labels = ids.clone()
        labels[:, : T // 4] = -100
        params = [p for p in model.parameters() if p.requires_grad]
        row = {"family": name, "vocab": config.vocab_size}
        for eps in (0.0, EPS):
            calib_lce.unpatch(model)
            out = model(input_ids=ids, labels=labels)
            if eps == 0.0:
                stock = out.loss
            else:  # the stock logits (Gemma 2: soft-capped) with PyTorch's label smoothing, as ForCausalLMLoss shifts
                shift = F.pad(labels, (0, 1), value=-100)[:, 1:]
                stock = F.cross_entropy(out.logits.float().reshape(-1, config.vocab_size), shift.reshape(-1),
                                        label_smoothing=eps)
            sg = torch.autograd.grad(stock, params)
            del out
            calib_lce.patch(model, label_smoothing=eps)
            ours = model(input_ids=ids, labels=labels)
            og = torch.autograd.grad(ours.loss, params)
            grad_err = max(rel(a, b) for a, b in zip(og, sg))
            row[f"eps{eps}"] = {"loss_rel": rel(ours.loss, stock), "grad_rel_max": grad_err, "loss": float(stock.detach()),
                                "logits_none": ours.logits is None}
            ok = row[f"eps{eps}"]["loss_rel"] <= 1e-3 and grad_err <= 1e-3 and ours.logits is None
            if not ok:
                failures.append(f"{name} ε={eps}")
            log(("ok  " if ok else "FAIL"), name, f"ε={eps}", row[f"eps{eps}"])
        if name == "gemma2":
            row["softcap"] = model._calib_lce.softcap
        rows.append(row)
        del model
        if dev == "cuda":
            torch.cuda.empty_cache()
    save(args, "families", {"rows": rows, "failures": failures})
    if failures:
        sys.exit(1)


# ============================================================================================ SFT
def llama_config(smoke):
    from transformers import LlamaConfig

    cfg = LlamaConfig.from_dict(LLAMA_TINY if smoke else LLAMA_1B)
    cfg._attn_implementation = "sdpa"
    return cfg


def synthetic_sft(n_seq, T, vocab, seed=0):
    """Token sequences drawn from a Zipf law over 16384 ids (so there is something to learn), each with a prompt
    of T/8..T/2 tokens labelled -100."""
    import torch

    g = torch.Generator().manual_seed(seed)
    k = min(16384, vocab)
    p = torch.arange(1, k + 1, dtype=torch.float64) ** -1.1
    ids = torch.multinomial((p / p.sum()).float(), n_seq * T, replacement=True, generator=g).view(n_seq, T)
    prompt = torch.randint(T // 8, T // 2, (n_seq,), generator=g)
    labels = ids.clone()
    labels[torch.arange(T)[None, :] < prompt[:, None]] = -100
    return [{"input_ids": ids[i], "labels": labels[i]} for i in range(n_seq)]


def hf_smoothed_loss(eps):
    """transformers' ForCausalLMLoss (fp32 logits, labels shifted left, sum / num_items_in_batch when given) with
    label smoothing passed to F.cross_entropy: the unpatched model's loss with ε."""
    import torch.nn.functional as F

    def loss_function(logits, labels, vocab_size, num_items_in_batch=None, ignore_index=-100, shift_labels=None,
                      **kwargs):
        if shift_labels is None:
            shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
        loss = F.cross_entropy(logits.float().reshape(-1, vocab_size), shift_labels.reshape(-1).to(logits.device),
                               ignore_index=ignore_index, label_smoothing=eps,
                               reduction="mean" if num_items_in_batch is None else "sum")
        return loss if num_items_in_batch is None else loss / num_items_in_batch

    return loss_function


def cce_forward_factory(eps):
    """A LlamaForCausalLM forward whose loss is Cut Cross-Entropy's linear_cross_entropy with label smoothing
    emulated through its log-sum-exp: (1−ε)·NLL + ε·(lse − mean_v z_v), mean_v z_v = h·Σ_v W_v / V."""
    import torch
    import torch.nn.functional as F
    from cut_cross_entropy import linear_cross_entropy
    from transformers.modeling_outputs import CausalLMOutputWithPast

    def forward(self, input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **kwargs):
        kwargs.pop("return_dict", None)
        h = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        if labels is None:
            return CausalLMOutputWithPast(logits=self.lm_head(h))
        h = h.reshape(-1, h.shape[-1])
        shift = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
        w = self.lm_head.weight
        nll, lse = linear_cross_entropy(h, w, shift, impl="cce", reduction="none", return_lse=True)
        nll, lse = nll.reshape(-1), lse.reshape(-1)
        zbar = (h.float() @ w.sum(0, dtype=torch.float32)) / w.shape[0]
        valid = shift != -100
        per = torch.where(valid, (1 - eps) * nll.float() + eps * (lse.float() - zbar), 0.0)
        n = num_items_in_batch.to(per.device) if num_items_in_batch is not None else valid.sum()
        return CausalLMOutputWithPast(loss=per.sum() / n)

    return forward


def phase_sft(args):
    import types

    import torch
    from transformers import LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

    dev = args.device
    variant = args.variant
    B, accum = 2, 2
    T = 128 if args.smoke else 2048
    steps = args.steps
    config = llama_config(args.smoke)
    data = synthetic_sft(steps * B * accum, T, config.vocab_size)
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(config)
    model.to(torch.bfloat16)
    note = ""
    if variant == "calib":
        import calib_lce

        calib_lce.patch(model, label_smoothing=EPS)
        note = "calib_lce.patch(model, label_smoothing=0.1)"
    elif variant == "liger":
        import functools

        import liger_kernel.transformers.functional as liger_functional
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        # Liger's patched forward calls functional.liger_fused_linear_cross_entropy with the kwargs it knows; its
        # label smoothing is a parameter of that function
        liger_functional.liger_fused_linear_cross_entropy = functools.partial(
            liger_functional.liger_fused_linear_cross_entropy, label_smoothing=EPS)
        apply_liger_kernel_to_llama(rope=False, rms_norm=False, swiglu=False, cross_entropy=False,
                                    fused_linear_cross_entropy=True, model=model)
        note = "apply_liger_kernel_to_llama(fused_linear_cross_entropy only), label_smoothing=0.1"
    elif variant == "cce":
        model.forward = types.MethodType(cce_forward_factory(EPS), model)
        note = "cut_cross_entropy.linear_cross_entropy(impl='cce'), ε emulated through return_lse"
    else:
        model.loss_function = hf_smoothed_loss(EPS)
        note = "unpatched: its logits, ForCausalLMLoss in fp32 with F.cross_entropy(label_smoothing=0.1)"
    if dev == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []

    class Recording(Trainer):
        micro = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.micro.append((out[0] if return_outputs else out).detach().float())
            return out

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if dev == "cuda":
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            if dev == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            losses.append(float(torch.stack(Recording.micro).sum()))
            Recording.micro.clear()

    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=B, gradient_accumulation_steps=accum, max_steps=steps,
            learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
            optim="adamw_torch", logging_steps=1, report_to=[], save_strategy="no", disable_tqdm=True, seed=0,
            data_seed=0, dataloader_num_workers=0, use_cpu=dev == "cpu", remove_unused_columns=False)
        trainer = Recording(model=model, args=targs, train_dataset=data, callbacks=[Clock()])
        accepts = trainer.model_accepts_loss_kwargs
        trainer.train()
    warm = min(5, max(1, steps // 3))
    step_s = statistics.median(times[warm:]) if len(times) > warm else float("nan")
    tokens = B * accum * T
    result = {"variant": variant, "note": note, "steps": steps, "losses": losses, "step_times": times,
              "step_ms": step_s * 1e3, "tokens_per_step": tokens, "tokens_per_s": tokens / step_s,
              "peak_gib": torch.cuda.max_memory_allocated() / GiB if dev == "cuda" else None,
              "model_accepts_loss_kwargs": accepts, "params": sum(p.numel() for p in model.parameters()),
              "config": {"context": T, "batch": B, "accumulation": accum, "dtype": "bfloat16", "eps": EPS}}
    log(f"sft {variant}: loss {losses[0]:.4f} → {losses[-1]:.4f}, {step_s * 1e3:.0f} ms/step, "
        f"{tokens / step_s:,.0f} tokens/s, peak {result['peak_gib'] or 0:.1f} GiB")
    save(args, f"sft_{variant}", result)


# ============================================================================================ FSDP2
@contextlib.contextmanager
def single_process_group(dev):
    import torch
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    if dev == "cuda":
        torch.cuda.set_device(0)
    dist.init_process_group("nccl" if dev == "cuda" else "gloo", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def phase_fsdp(args):
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from transformers import LlamaConfig, LlamaForCausalLM

    import calib_lce

    dev = args.device
    result, failures = {}, []
    with single_process_group(dev):
        # 1. the 1B model, fp32 master weights sharded with bf16 compute, patched before sharding (as a trainer would)
        config = llama_config(args.smoke)
        T = 128 if args.smoke else 2048
        torch.manual_seed(0)
        with torch.device(dev):
            model = LlamaForCausalLM(config)
        data = synthetic_sft(2 * args.steps, T, config.vocab_size, seed=1)
        # the reference of the first step: the same weights unsharded and unpatched in bf16 (FSDP2's param
        # dtype), transformers' own loss with ε — the sharded patched model must start from the same loss
        with torch.no_grad():
            plain = copy.deepcopy(model).to(torch.bfloat16)
            plain.loss_function = hf_smoothed_loss(EPS)
            ids0 = torch.stack([b["input_ids"] for b in data[:2]]).to(dev)
            labels0 = torch.stack([b["labels"] for b in data[:2]]).to(dev)
            first_ref = float(plain(input_ids=ids0, labels=labels0).loss)
            del plain, ids0, labels0
        calib_lce.patch(model, label_smoothing=EPS)
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        for layer in model.model.layers:
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        losses, times = [], []
        for step in range(args.steps):
            t0 = time.perf_counter()
            batch = data[2 * step: 2 * step + 2]
            ids = torch.stack([b["input_ids"] for b in batch]).to(dev)
            labels = torch.stack([b["labels"] for b in batch]).to(dev)
            out = model(input_ids=ids, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            losses.append(float(out.loss.detach()))
            times.append(time.perf_counter() - t0)
            if out.logits is not None:
                failures.append("logits were materialized under FSDP2")
        # a few steps at lr 3e-4 from random weights need not go down (the unpatched Trainer run rises over
        # its first steps too): the run must complete with finite losses and start where the plain model does
        first_rel = abs(losses[0] - first_ref) / abs(first_ref)
        result["llama"] = {"losses": losses, "step_times": times, "root_class": type(model).__name__,
                           "patched": calib_lce.is_patched(model), "first_loss_unsharded_bf16": first_ref,
                           "first_loss_rel": first_rel}
        if not all(math.isfinite(x) for x in losses):
            failures.append("FSDP2 1B run: a non-finite loss")
        if not first_rel <= 1e-2:
            failures.append(f"FSDP2 1B run: first loss {losses[0]:.5f} vs {first_ref:.5f} unsharded (bf16)")
        log("fsdp llama", result["llama"])
        del model, opt
        if dev == "cuda":
            torch.cuda.empty_cache()

        # 2. an untied model whose lm_head is sharded on its own (the patch calls it through FSDP's hooks),
        #    fp32, gradients against the same model unsharded
        small = LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, vocab_size=4000 if args.smoke else 32000, tie_word_embeddings=False)
        torch.manual_seed(0)
        with torch.device(dev):
            model = LlamaForCausalLM(small).float()
        ref = copy.deepcopy(model)
        calib_lce.patch(model, label_smoothing=EPS)
        calib_lce.patch(ref, label_smoothing=EPS)
        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model.lm_head)
        fully_shard(model)
        g = torch.Generator(device=dev).manual_seed(3)
        ids = torch.randint(0, small.vocab_size, (2, 64), device=dev, generator=g)
        labels = ids.clone()
        labels[:, :16] = -100
        a = model(input_ids=ids, labels=labels).loss
        a.backward()
        b = ref(input_ids=ids, labels=labels).loss
        b.backward()
        grads = {}
        for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
            full = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            grads[name] = rel(full, q.grad)
        worst = max(grads, key=grads.get)
        result["sharded_lm_head"] = {"loss_rel": rel(a, b), "grad_rel_max": grads[worst], "worst": worst,
                                     "lm_head_grad_rel": grads["lm_head.weight"],
                                     "lm_head_class": type(model.lm_head).__name__}
        if not (rel(a, b) <= 1e-5 and grads[worst] <= 1e-4):
            failures.append("FSDP2 with lm_head sharded on its own: gradients differ from the unsharded model")
        log("fsdp sharded lm_head", result["sharded_lm_head"])
    result["failures"] = failures
    save(args, "fsdp", result)
    if failures:
        sys.exit(1)


# ============================================================================================ summary
def phase_summary(args):
    work, out = Path(args.work), Path(args.out)
    phases = {}
    for p in sorted(work.glob("*.json")):
        try:
            phases[p.stem] = json.loads(p.read_text())
        except ValueError:
            phases[p.stem] = {"error": f"unreadable {p.name}"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(phases, indent=1, default=str))
    verdicts = []

    def verdict(name, ok, detail):
        verdicts.append((name, ok))
        print(f"  {'PASS' if ok else ('FAIL' if ok is False else 'n/a ')}  {name:<44} {detail}")

    lib = phases.get("library", {})
    print(f"================ calib_lce GPU check: {lib.get('gpu', lib.get('device', '?'))}, torch {lib.get('torch')}, "
          f"transformers {lib.get('transformers')}")
    if lib:
        info = lib.get("info", {})
        print(f"  library {lib.get('library')} (sm_{','.join((lib.get('stamp') or {}).get('archs') or ['?'])}): "
              f"{info.get('cuda_message')}")
    num = phases.get("numerics")
    if num:
        checks = num["checks"]
        grid = [c for c in checks if c["name"].startswith(("float32", "bfloat16", "float16")) and "dE" in c]
        worst = {d: max(max(c["dE"], c["dC"], c.get("db", 0.0)) for c in grid if c["name"].startswith(d))
                 for d in TOL_GRAD}
        verdict("numerics vs fp32 F.cross_entropy", all(c["ok"] for c in grid),
                f"{sum(c['ok'] for c in grid)}/{len(grid)} within tolerance; worst loss "
                f"{max(c['loss'] for c in grid):.1e}; worst grads fp32 {worst['float32']:.1e}, bf16 "
                f"{worst['bfloat16']:.1e}, fp16 {worst['float16']:.1e}")
        for c in checks:
            if c not in grid:
                extra = {k: v for k, v in c.items() if k not in ("name", "ok", "break_reasons")}
                verdict(c["name"], c["ok"], ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                           for k, v in extra.items()))
    else:
        verdict("numerics", None, "did not finish (see job.log)")
    fam = phases.get("families")
    if fam:
        for r in fam["rows"]:
            e0, e1 = r["eps0.0"], r[f"eps{EPS}"]
            verdict(f"patch {r['family']} fp32 (V={r['vocab']})", f"{r['family']} ε=0.0" not in fam["failures"]
                    and f"{r['family']} ε={EPS}" not in fam["failures"],
                    f"ε=0: loss {e0['loss_rel']:.1e} grads {e0['grad_rel_max']:.1e}; ε=0.1: loss {e1['loss_rel']:.1e} "
                    f"grads {e1['grad_rel_max']:.1e}" + (f"; softcap {r['softcap']}" if "softcap" in r else ""))
    else:
        verdict("patch families", None, "did not finish")
    sft = {v: phases.get(f"sft_{v}") for v in ("hf", "calib", "liger", "cce")}
    print("  SFT, Llama-3.2-1B shape (random init), bf16, context 2048, 2 × 2 sequences a step, ε = 0.1:")
    print(f"    {'variant':<7} {'steps':>5} {'first':>8} {'last':>8} {'step ms':>8} {'tokens/s':>9} {'peak GiB':>8}  how")
    for v, r in sft.items():
        if not r:
            print(f"    {v:<7} not run or failed (see job.log)")
            continue
        print(f"    {v:<7} {r['steps']:>5} {r['losses'][0]:>8.4f} {r['losses'][-1]:>8.4f} {r['step_ms']:>8.0f} "
              f"{r['tokens_per_s']:>9,.0f} {(r['peak_gib'] or 0):>8.1f}  {r['note']}")
    if sft["hf"] and sft["calib"]:
        a, b = sft["calib"]["losses"], sft["hf"]["losses"]
        diffs = [abs(x - y) / abs(y) for x, y in zip(a, b)]
        verdict("50-step curve: patched vs unpatched", len(a) == len(b) >= 50 and max(diffs) <= 0.01,
                f"max relative difference {max(diffs):.2e} over {len(diffs)} steps (≤ 1e-2)")
    else:
        verdict("50-step curve: patched vs unpatched", False, "a run is missing")
    fs = phases.get("fsdp")
    if fs:
        ll, sh = fs.get("llama", {}), fs.get("sharded_lm_head", {})
        verdict("FSDP2 world size 1", not fs["failures"],
                f"1B: {len(ll.get('losses', []))} steps {ll.get('losses', [0])[0]:.3f} → {ll.get('losses', [0])[-1]:.3f}; "
                f"lm_head sharded alone: grads {sh.get('grad_rel_max', float('nan')):.1e} vs unsharded")
    else:
        verdict("FSDP2 world size 1", None, "did not finish")
    failed = [n for n, ok in verdicts if ok is False]
    missing = [n for n, ok in verdicts if ok is None]
    print(f"RESULT: {'FAIL' if failed else 'PASS'} ({len(verdicts) - len(failed) - len(missing)} passed, "
          f"{len(failed)} failed, {len(missing)} not run)" + (f"; failed: {', '.join(failed)}" if failed else ""))
    print("  not run: several GPUs (world size > 1 for DDP / FSDP2)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", choices=["library", "numerics", "families", "sft", "fsdp", "summary"])
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/calib-gpu-out"))
    ap.add_argument("--work", help="where the phases' JSON goes (default: <out>/../calib_lce_gpu_work)")
    ap.add_argument("--variant", choices=["hf", "calib", "liger", "cce"], default="calib")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes (with --device cpu: a check of this script)")
    args = ap.parse_args()
    if args.work is None:
        args.work = str(Path(tempfile.gettempdir()) / "calib_lce_gpu_work")
    try:
        globals()[f"phase_{args.phase}"](args)
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
