#!/usr/bin/env python3
"""Our Llama-family engine (CPU in float32; CUDA in bf16 mixed precision) against transformers: the PyTorch side
of issue 19's GPU acceptance. The job is scripts/gpu/hf-job.sh; our side is scripts/gpu/hf-parity.ts (bundled);
docs/hf.md, "Checking against transformers", says how to run it.

Subcommands (every one reads and writes under --work; only make, ref and sft need PyTorch):
  make    Hugging Face folders with the REAL shapes of Llama-3.2-1B, Qwen2.5-0.5B, SmolLM2-135M and
          Gemma-2-2B but only LAYERS (2) layers: AutoModelForCausalLM.from_config, random weights
          from a fixed seed (see reinit: scaled so that attention and the soft-caps matter),
          save_pretrained in float32; a bfloat16 copy of the Qwen2.5 one; Gemma 2 once more with
          sliding_window 8 (the real 4096 never bites at 24 tokens; same weights); one byte-level
          BPE tokenizer trained with `tokenizers` on the chat data, with tokenizer_config.json
          (ChatML template). Also fixed token ids per model, the chat JSONL and the `calib train`
          config of the SFT curve (HP below: one place for both sides).
  ref     transformers' logits on the fixed ids in float32, float64 and bfloat16 (eager attention, TF32 off),
          and the label-smoothed loss (F.cross_entropy, label_smoothing=0.1): ref/<case>.*
  sft     the SFT curve in PyTorch: the SmolLM2-shaped model, our batches (sft/batches, written by
          hf-parity.mjs sft-batches), torch.optim.AdamW with our weight-decay groups, the same
          clipping and learning-rate schedule, float32; then the trained weights against our export
  report  (no PyTorch) compares everything that exists, prints one table per phase and writes
          hf_parity.json to --out
  check   (no PyTorch) self-checks of this file: the case table, the schedule, the metrics

Definitions (report): logits error = max |ours − ref| / max |ref| over every position and vocabulary
entry of the case (relative to the logits' scale; target ≤ 1e-4); loss difference = |ours − ref| of
the mean ε = 0.1 loss over the supervised positions (target ≤ 1e-3); curve difference = max over
steps of |ours − torch| / |torch| (target ≤ 2%).
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np

LAYERS = 2
SEED = 1234
EPS = 0.1
IDS_SHAPE = (2, 24)          # [B, T] of the fixed token ids
LOGIT_STD = 4.0              # std of the random logits (tied embeddings: N(0, LOGIT_STD²/d))
TARGETS = {"logits": 1e-4, "loss": 1e-3, "curve": 0.02, "export": 1e-4, "logits_bf16": 2e-2}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]   # ids 0, 1, 2
SPECIAL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# The real configurations (their config.json files; bench/gpu/real_models.json, which the benchmarks
# llama_step.py and llama-train.ts read too), with num_hidden_layers cut to LAYERS here and the special ids set
# to our tokenizer's; everything else as published. name → (hub id, model_type, config fields).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_models.json")) as _f:
    REAL_MODELS = json.load(_f)
REAL = {name: (m["hub"], m["model_type"], m["config"]) for name, m in REAL_MODELS.items()}

# The folders `make` writes: (case, real model, dtype, change from the real configuration).
CASES = [
    ("llama-3.2-1b", "llama-3.2-1b", "float32", None),
    ("qwen2.5-0.5b", "qwen2.5-0.5b", "float32", None),
    ("smollm2-135m", "smollm2-135m", "float32", None),
    ("gemma-2-2b", "gemma-2-2b", "float32", None),
    ("gemma-2-2b-window8", "gemma-2-2b", "float32", {"sliding_window": 8}),
    ("qwen2.5-0.5b-bf16", "qwen2.5-0.5b", "bfloat16", None),
]
SFT_CASE = "smollm2-135m"
ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma2": "Gemma2ForCausalLM"}
# The SFT curve's hyper-parameters: written into the `calib train` config and used by the PyTorch loop.
HP = dict(batch_size=4, grad_accum=1, lr=3e-4, min_lr_ratio=0.1, warmup_steps=10, beta1=0.9, beta2=0.95,
          eps=1e-8, weight_decay=0.1, grad_clip=1.0, label_smoothing=EPS, seed=0)


def log(msg):
    print(f"[hf_parity {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def jdump(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def jload(path):
    with open(path) as f:
        return json.load(f)


def need_torch(what):
    """PyTorch + transformers, or one clear line and exit status 3 (the job shows it as skipped)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        print(f"hf_parity {what}: skipped: {e} (PyTorch and transformers are needed; `report` and `check` are not)")
        sys.exit(3)


def pick_device(name):
    import torch
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    # float32 means float32: no TF32 in matmuls or convolutions
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.backends.fp32_precision = "ieee"
    except Exception:
        pass
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "8")))
    return torch.device(name)


def model_config(case):
    """config.json fields of a case: the real ones, LAYERS layers, our special ids, the change."""
    real, dtype, change = next((r, d, c) for n, r, d, c in CASES if n == case)
    hub, model_type, fields = REAL[real]
    cfg = dict(fields, model_type=model_type, num_hidden_layers=LAYERS, **SPECIAL_IDS)
    cfg.update(change or {})
    return hub, model_type, cfg, dtype, change


# ---------------------------------------------------------------------------------------------- data

WORDS = ["apple", "river", "stone", "cloud", "garden", "window", "yellow", "silver", "planet", "candle", "forest", "bridge"]


def conversations(n, seed=SEED):
    """n short chats (deterministic): arithmetic, reversed words, word lengths; a third with a system turn, some with two exchanges."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 3
        a, b = int(rng.integers(2, 60)), int(rng.integers(2, 60))
        w = WORDS[int(rng.integers(len(WORDS)))]
        if kind == 0:
            turn = (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.")
        elif kind == 1:
            turn = (f"Spell {w} backwards.", f"{w[::-1]}")
        else:
            turn = (f"How many letters are in {w}?", f"{w} has {len(w)} letters.")
        msgs = []
        if i % 3 == 1:
            msgs.append({"role": "system", "content": "Answer briefly."})
        msgs += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
        if i % 5 == 0:
            msgs += [{"role": "user", "content": f"And {b} plus {a}?"}, {"role": "assistant", "content": f"Also {a + b}."}]
        out.append({"messages": msgs})
    return out


def build_tokenizer(folder, texts):
    """A byte-level BPE (512 ids) trained on `texts` with the `tokenizers` library, plus tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=512, min_frequency=1, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    for s, i in zip(SPECIALS, range(3)):
        assert tok.token_to_id(s) == i, f"special token {s} has id {tok.token_to_id(s)}, expected {i}"
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    jdump(os.path.join(folder, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "model_max_length": 8192, "clean_up_tokenization_spaces": False,
        "chat_template": CHATML,
        "added_tokens_decoder": {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for i, s in enumerate(SPECIALS)},
    })
    return tok.get_vocab_size()


def reinit(model, family, seed):
    """Every parameter from N(0, ·) with a fixed seed: matmuls 1/√fan_in (attention far from uniform),
    embeddings LOGIT_STD/√d (logits of std ≈ LOGIT_STD, so Gemma's soft-cap 30 bends the largest),
    norms 1 + N(0, 0.1²) (Gemma: N(0, 0.1²), applied as 1 + w), biases N(0, 0.5²)."""
    import torch
    dev = next(model.parameters()).device
    g = torch.Generator(device=dev).manual_seed(seed)
    d = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32)
            if p.dim() == 1 and "norm" in name:
                p.copy_(0.1 * r if family == "gemma2" else 1 + 0.1 * r)
            elif name.endswith(".bias"):
                p.copy_(0.5 * r)
            elif "embed_tokens" in name:
                p.copy_(r * (LOGIT_STD / math.sqrt(d)))
            else:
                p.copy_(r / math.sqrt(p.shape[1]))


def cmd_make(a):
    need_torch("make")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    dev = pick_device(a.device)
    W = a.work
    torch.manual_seed(SEED)
    chats = conversations(a.sft_steps * HP["batch_size"] * HP["grad_accum"])
    texts = [m["content"] for c in chats for m in c["messages"]] + ["system", "user", "assistant"]
    tokdir = os.path.join(W, "tokenizer")
    vocab = build_tokenizer(tokdir, texts)
    os.makedirs(os.path.join(W, "sft"), exist_ok=True)
    with open(os.path.join(W, "sft", "chat.jsonl"), "w") as f:
        for c in chats:
            f.write(json.dumps(c) + "\n")
    made, rng = {}, np.random.default_rng(SEED)
    os.makedirs(os.path.join(W, "inputs"), exist_ok=True)
    for case, real, dtype, change in CASES:
        t0 = time.time()
        hub, model_type, cfg, _, _ = model_config(case)
        folder = os.path.join(W, "models", case)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        src = next((n for n, r, d, c in CASES if r == real and n in made), None)
        if src and change and dtype == "float32":
            # the same weights, another config.json: link the safetensors
            for f in os.listdir(os.path.join(W, "models", src)):
                if f.endswith(".safetensors") or f.endswith(".index.json"):
                    os.symlink(os.path.abspath(os.path.join(W, "models", src, f)), os.path.join(folder, f))
            conf = jload(os.path.join(W, "models", src, "config.json"))
            conf.update(change)
            jdump(os.path.join(folder, "config.json"), conf)
        else:
            # config.json as the Hub has it (legacy rope_scaling included), read as transformers reads a downloaded one
            jdump(os.path.join(folder, "config.json"), dict(cfg, architectures=[ARCH[model_type]]))
            config = AutoConfig.from_pretrained(folder)
            try:
                with torch.device(dev):
                    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
            except Exception as e:  # noqa: BLE001 — construct on the CPU instead
                log(f"{case}: from_config on {dev} failed ({e}); on the CPU")
                model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
            model = model.float()
            reinit(model, model_type, SEED + list(REAL).index(real))  # a bf16 copy rounds the same weights
            if dtype == "bfloat16":
                model = model.to(torch.bfloat16)
            model.save_pretrained(folder)
            del model
        for f in os.listdir(tokdir):
            shutil.copy(os.path.join(tokdir, f), folder)
        V = cfg["vocab_size"]
        ids = rng.integers(0, V, size=IDS_SHAPE).astype(np.int64)
        targets = np.concatenate([ids[:, 1:], rng.integers(0, V, size=(IDS_SHAPE[0], 1))], axis=1).astype(np.int64)
        targets[:, ::7] = -100
        np.save(os.path.join(W, "inputs", f"{case}.ids.npy"), ids)
        np.save(os.path.join(W, "inputs", f"{case}.targets.npy"), targets)
        made[case] = dict(real=hub, family=model_type, dtype=dtype, change=change, layers=LAYERS, vocab=V,
                          seconds=round(time.time() - t0, 1))
        log(f"{case}: {hub} shapes, {LAYERS} layers, {dtype}{f', {change}' if change else ''} ({made[case]['seconds']} s)")
    # the SFT run of `calib train` (our side) with HP; the PyTorch loop reads HP from here too
    run = {"kind": "sft", "name": "hf-parity-sft", "init": {"hf": os.path.abspath(os.path.join(W, "models", SFT_CASE))},
           "data": {"jsonl": os.path.abspath(os.path.join(W, "sft", "chat.jsonl"))}, "seed": HP["seed"], "device": "cpu",
           "threads": int(os.environ.get("CALIB_THREADS", "0")), "batchSize": HP["batch_size"], "gradAccum": HP["grad_accum"],
           "epochs": 1, "logEvery": 1, "loss": {"labelSmoothing": HP["label_smoothing"]},
           "optim": {"lr": HP["lr"], "minLrRatio": HP["min_lr_ratio"], "warmupSteps": HP["warmup_steps"], "beta1": HP["beta1"],
                     "beta2": HP["beta2"], "eps": HP["eps"], "weightDecay": HP["weight_decay"], "gradClip": HP["grad_clip"]},
           "eval": {"batchSize": HP["batch_size"]}}
    jdump(os.path.join(W, "sft", "run.json"), run)
    import tokenizers
    import transformers
    jdump(os.path.join(W, "make.json"), dict(cases=made, sft_case=SFT_CASE, layers=LAYERS, seed=SEED, tokenizer_vocab=vocab, conversations=len(chats),
                                            sft_steps=a.sft_steps, hp=HP, device=str(dev), torch=torch.__version__,
                                            transformers=transformers.__version__, tokenizers=tokenizers.__version__))


# ---------------------------------------------------------------------------------------------- ref

def made_cases(W):
    """The cases `make` wrote (make.json; a dry run may bring other folders) and the SFT case."""
    p = os.path.join(W, "make.json")
    if os.path.exists(p):
        m = jload(p)
        return list(m["cases"]), m.get("sft_case", SFT_CASE)
    return [c for c, *_ in CASES], SFT_CASE


def smoothed_loss(logits, targets, eps=EPS):
    """PyTorch's mean label-smoothed cross-entropy over the targets ≠ -100 (in the logits' dtype)."""
    import torch.nn.functional as F
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, label_smoothing=eps).item()


def hf_logits(folder, ids, targets, dev):
    """transformers' logits and loss on float32 and float64 copies of the same (upcast) weights."""
    import torch
    from transformers import AutoModelForCausalLM
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
    x, y = torch.from_numpy(ids).to(dev), torch.from_numpy(targets).to(dev)
    out = {}
    with torch.no_grad():
        for name, dtype in (("f32", torch.float32), ("f64", torch.float64), ("bf16", torch.bfloat16)):
            model = model.to(dtype)
            z = model(input_ids=x, use_cache=False).logits
            out[name] = (z.float() if dtype == torch.bfloat16 else z).cpu().numpy()
            out[f"loss_{name}"] = smoothed_loss(z, y)
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    out["seconds"] = round(time.time() - t0, 1)
    return out


def cmd_ref(a):
    need_torch("ref")
    dev = pick_device(a.device)
    W = a.work
    names, sft_case = made_cases(W)
    jobs = [(c, os.path.join(W, "models", c), c) for c in names] if not a.only else []
    if a.only == "trained" or a.trained:
        jobs.append(("trained", os.path.join(W, "sft", "export"), sft_case))
    for name, folder, ids_of in jobs:
        if not os.path.isdir(folder):
            log(f"{name}: {folder} is missing: skipped")
            continue
        ids = np.load(os.path.join(W, "inputs", f"{ids_of}.ids.npy"))
        targets = np.load(os.path.join(W, "inputs", f"{ids_of}.targets.npy"))
        r = hf_logits(folder, ids, targets, dev)
        os.makedirs(os.path.join(W, "ref"), exist_ok=True)
        np.save(os.path.join(W, "ref", f"{name}.f32.npy"), r["f32"].astype(np.float32))
        np.save(os.path.join(W, "ref", f"{name}.f64.npy"), r["f64"].astype(np.float64))
        np.save(os.path.join(W, "ref", f"{name}.bf16.npy"), r["bf16"].astype(np.float32))
        info = dict(loss_f32=r["loss_f32"], loss_f64=r["loss_f64"], loss_bf16=r["loss_bf16"], seconds=r["seconds"], device=str(dev))
        if name == "trained":
            info.update(weights_diff(folder, os.path.join(W, "torch", "trained.npz")))
        jdump(os.path.join(W, "ref", f"{name}.json"), info)
        log(f"{name}: transformers fp32 / fp64 loss {r['loss_f32']:.6f} / {r['loss_f64']:.6f} ({r['seconds']} s)")


def weights_diff(export_dir, torch_npz):
    """max over tensors of max |ours − torch| / max |torch|: our trained weights (calib export) against PyTorch's (sft)."""
    if not os.path.exists(torch_npz):
        return {}
    from safetensors.numpy import load_file
    ours = {}
    for f in sorted(os.listdir(export_dir)):
        if f.endswith(".safetensors"):
            ours.update(load_file(os.path.join(export_dir, f)))
    theirs = np.load(torch_npz)
    worst, where = 0.0, None
    for n in theirs.files:
        if n not in ours:
            continue
        pt = theirs[n].astype(np.float64)
        e = float(np.abs(ours[n].astype(np.float64) - pt).max() / max(1e-30, np.abs(pt).max()))
        if e > worst:
            worst, where = e, n
    return dict(weights_max_rel_diff=worst, weights_worst_tensor=where)


# ---------------------------------------------------------------------------------------------- sft

def learning_rate(step, total, hp=HP):
    """backend/train/schedule.ts: linear warm-up over warmup_steps, then cosine to lr·min_lr_ratio at the last step."""
    lr, w = hp["lr"], hp["warmup_steps"]
    if w > 0 and step <= w:
        return lr * step / w
    lo = lr * hp["min_lr_ratio"]
    if total <= w:
        return lr
    progress = min(1.0, (step - w) / (total - w))
    return lo + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - lo)


def cmd_sft(a):
    need_torch("sft")
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM
    dev = pick_device(a.device)
    W = a.work
    bdir = os.path.join(W, "sft", "batches")
    inputs, targets = np.load(os.path.join(bdir, "inputs.npy")), np.load(os.path.join(bdir, "targets.npy"))
    micro = jload(os.path.join(bdir, "micro.json"))
    run = jload(os.path.join(W, "sft", "run.json"))
    o = run["optim"]
    hp = dict(HP, lr=o["lr"], min_lr_ratio=o["minLrRatio"], warmup_steps=o["warmupSteps"], beta1=o["beta1"], beta2=o["beta2"],
              eps=o["eps"], weight_decay=o["weightDecay"], grad_clip=o["gradClip"], label_smoothing=run["loss"]["labelSmoothing"])
    steps = micro["steps"] if a.steps <= 0 else min(a.steps, micro["steps"])
    bf16 = a.precision == "bfloat16"
    if bf16 and dev.type != "cuda":
        raise SystemExit("hf_parity sft: --precision bfloat16 needs a CUDA device (our bf16 side runs on CUDA)")
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(os.path.join(W, "models", made_cases(W)[1]), dtype=torch.float32, attn_implementation="eager").to(dev)
    model.train()
    params = dict(model.named_parameters())
    decay = micro["decay"]
    if set(params) != set(decay):
        raise SystemExit(f"hf_parity sft: parameter names differ: ours only {sorted(set(decay) - set(params))}, transformers only {sorted(set(params) - set(decay))}")
    groups = [{"params": [p for n, p in params.items() if decay[n]], "weight_decay": hp["weight_decay"]},
              {"params": [p for n, p in params.items() if not decay[n]], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], foreach=False)
    X, Y = torch.from_numpy(inputs.astype(np.int64)).to(dev), torch.from_numpy(targets.astype(np.int64)).to(dev)
    curve, norms, lrs = [], [], []
    for step in range(1, steps + 1):
        ms = [m for m, e in enumerate(micro["micro"]) if e["step"] == step]
        total = sum(int((Y[m, :micro["micro"][m]["rows"], :micro["micro"][m]["t"]] != -100).sum()) for m in ms)
        lr = learning_rate(step, micro["steps"], hp)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for m in ms:
            r, t = micro["micro"][m]["rows"], micro["micro"][m]["t"]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):  # fp32 master weights, bf16 products
                z = model(input_ids=X[m, :r, :t], use_cache=False).logits.float()
            ls = F.cross_entropy(z.reshape(-1, z.shape[-1]), Y[m, :r, :t].reshape(-1), ignore_index=-100,
                                 label_smoothing=hp["label_smoothing"], reduction="sum")
            (ls / max(1, total)).backward()
            loss_sum += ls.item()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"]) if hp["grad_clip"] > 0 else \
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        opt.step()
        curve.append(loss_sum / max(1, total))
        norms.append(float(norm))
        lrs.append(lr)
        if step % 10 == 0 or step == steps:
            log(f"torch step {step}/{steps}: loss {curve[-1]:.5f}, |g| {norms[-1]:.4f}, lr {lr:.3e}")
    res = dict(steps=steps, planned_steps=micro["steps"], loss=curve, grad_norm=norms, lr=lrs, seconds=round(time.time() - t0, 1),
               device=str(dev), hp=hp, precision=a.precision)
    os.makedirs(os.path.join(W, "torch"), exist_ok=True)
    if bf16:
        jdump(os.path.join(W, "torch", "sft_bf16.json"), res)
        return
    # the trained weights, for `ref --only trained` to hold against our export
    if steps == micro["steps"]:
        np.savez(os.path.join(W, "torch", "trained.npz"), **{n: p.detach().float().cpu().numpy() for n, p in params.items()})
    jdump(os.path.join(W, "torch", "sft.json"), res)


# ---------------------------------------------------------------------------------------------- report

def logits_error(ours, ref):
    """max |ours − ref| / max |ref| (relative to the logits' scale)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if ours.shape != ref.shape:
        raise ValueError(f"shapes differ: {ours.shape} vs {ref.shape}")
    return float(np.abs(ours - ref).max() / max(1e-30, np.abs(ref).max()))


def smoothed_loss_np(logits, targets, eps=EPS):
    """The mean ε-smoothed cross-entropy in float64 (NumPy): (1−ε)·nll + ε·mean_v(−log p_v) over targets ≠ -100."""
    z = np.asarray(logits, np.float64).reshape(-1, logits.shape[-1])
    y = np.asarray(targets).reshape(-1)
    keep = y != -100
    z, y = z[keep], y[keep]
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    nll = lse - z[np.arange(len(y)), y]
    uniform = lse - z.mean(axis=1)
    return float(((1 - eps) * nll + eps * uniform).mean())


def curve_error(ours, ref):
    n = min(len(ours), len(ref))
    if n == 0:
        return float("nan"), -1
    d = [abs(ours[i] - ref[i]) / abs(ref[i]) for i in range(n)]
    i = int(np.argmax(d))
    return float(d[i]), i + 1


def _ok(x, target):
    return bool(x is not None and math.isfinite(x) and x <= target)


def _fmt(x, spec=".2e"):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def case_files(W, name, ours_stem, ref_dtype):
    """A case's logits (ours, ref) and their JSON, or a 'not run' row naming the missing files."""
    ours_p, ref_p = os.path.join(W, "ours", f"{ours_stem}.logits.npy"), os.path.join(W, "ref", f"{name}.{ref_dtype}.npy")
    if not (os.path.exists(ours_p) and os.path.exists(ref_p)):
        return None, dict(case=name, status="not run", missing=[p for p in (ours_p, ref_p) if not os.path.exists(p)])
    return (np.load(ours_p), np.load(ref_p), jload(os.path.join(W, "ours", f"{ours_stem}.json")),
            jload(os.path.join(W, "ref", f"{name}.json"))), None


def logits_rows(W, names, sft_case):
    rows = []
    for name in names:
        files, missing = case_files(W, name, name, "f32")
        if missing:
            rows.append(missing)
            continue
        ours, ref32, o, r = files
        row = dict(case=name, shape=list(ours.shape), scale=float(np.abs(ref32).max()), err_vs_f32=logits_error(ours, ref32),
                   loss_ours=o["loss"], loss_f32=r["loss_f32"], loss_f64=r.get("loss_f64"))
        ref64_p = os.path.join(W, "ref", f"{name}.f64.npy")
        if os.path.exists(ref64_p):
            ref64 = np.load(ref64_p)
            row["err_vs_f64"] = logits_error(ours, ref64)
            row["err_torch_f32_vs_f64"] = logits_error(ref32, ref64)
        # our loss against the float64 loss of our own logits: the engine's loss path alone
        tg = os.path.join(W, "inputs", f"{sft_case if name == 'trained' else name}.targets.npy")
        if os.path.exists(tg) and o["loss"] is not None:
            row["loss_ours_vs_own_logits"] = abs(o["loss"] - smoothed_loss_np(ours, np.load(tg)))
        row["loss_diff"] = abs(o["loss"] - r["loss_f32"]) if o["loss"] is not None else None
        row["loss_diff_f64"] = abs(o["loss"] - r["loss_f64"]) if o["loss"] is not None and r.get("loss_f64") is not None else None
        row["pass"] = _ok(row["err_vs_f32"], TARGETS["logits"]) and _ok(row.get("err_vs_f64", 0.0), TARGETS["logits"]) and \
            (row["loss_diff"] is None or _ok(row["loss_diff"], TARGETS["loss"]))
        row["status"] = "pass" if row["pass"] else "FAIL"
        rows.append(row)
    return rows


def cuda_rows(W, names):
    """Our CUDA engine (bf16 mixed precision) against transformers in bfloat16 (same dtype) and float32."""
    rows = []
    for name in names:
        files, missing = case_files(W, name, f"{name}.cuda", "bf16")
        if missing:
            rows.append(missing)
            continue
        ours, ref16, o, r = files
        ref32 = np.load(os.path.join(W, "ref", f"{name}.f32.npy"))
        row = dict(case=name, scale=float(np.abs(ref32).max()), err_vs_bf16=logits_error(ours, ref16), err_vs_f32=logits_error(ours, ref32),
                   err_torch_bf16_vs_f32=logits_error(ref16, ref32), loss_ours=o["loss"], loss_bf16=r.get("loss_bf16"), loss_f32=r["loss_f32"])
        row["loss_diff_f32"] = abs(o["loss"] - r["loss_f32"]) if o["loss"] is not None else None
        row["pass"] = _ok(row["err_vs_bf16"], TARGETS["logits_bf16"])
        row["status"] = "pass" if row["pass"] else "FAIL"
        rows.append(row)
    return rows


def sft_result(W, bf16=False):
    """The fp32 curve (ours on the CPU against transformers in fp32), or with bf16 the bf16 one (ours on CUDA in bf16 mixed
    precision against transformers under bf16 autocast, both with fp32 master weights)."""
    ours_p = os.path.join(W, "ours", "sft_log_bf16.json" if bf16 else "sft_log.json")
    torch_p = os.path.join(W, "torch", "sft_bf16.json" if bf16 else "sft.json")
    if not (os.path.exists(ours_p) and os.path.exists(torch_p)):
        return dict(status="not run", missing=[p for p in (ours_p, torch_p) if not os.path.exists(p)])
    ours, ref = jload(ours_p), jload(torch_p)
    err, at = curve_error(ours["loss"], ref["loss"])
    n = min(len(ours["loss"]), len(ref["loss"]))
    lr_err = max((abs(a - b) / b for a, b in zip(ours["lr"][:n], ref["lr"][:n]) if b > 0), default=float("nan"))
    res = dict(steps=n, planned_steps=ref.get("planned_steps"), max_rel_diff=err, at_step=at, lr_max_rel_diff=lr_err,
               first=[ours["loss"][0], ref["loss"][0]] if n else None, last=[ours["loss"][n - 1], ref["loss"][n - 1]] if n else None,
               torch_device=ref.get("device"), torch_seconds=ref.get("seconds"))
    tj = os.path.join(W, "ref", "trained.json")
    if os.path.exists(tj) and not bf16:
        res.update({k: v for k, v in jload(tj).items() if k.startswith("weights_")})
    res["pass"] = _ok(err, TARGETS["curve"]) and n == ref.get("planned_steps", n)
    res["status"] = "pass" if res["pass"] else "FAIL"
    res["curve"] = dict(step=list(range(1, n + 1)), ours=ours["loss"][:n], torch=ref["loss"][:n])
    return res


def cmd_report(a):
    W = a.work
    make = jload(os.path.join(W, "make.json")) if os.path.exists(os.path.join(W, "make.json")) else {}
    names, sft_case = made_cases(W)
    res = dict(layers=LAYERS, note=f"real shapes, {LAYERS} layers only; random weights (seed {SEED}, see hf_parity.py reinit)",
               targets=TARGETS, definitions=dict(
                   logits="max |ours − ref| / max |ref| over every position and vocabulary entry",
                   loss="|ours − ref| of the mean label-smoothed (ε = 0.1) cross-entropy over the supervised positions",
                   curve="max over steps of |ours − torch| / |torch| of the per-step training loss"),
               make=make, sft_case=sft_case, logits=logits_rows(W, names, sft_case), cuda=cuda_rows(W, names), sft=sft_result(W),
               sft_bf16=sft_result(W, bf16=True), export=logits_rows(W, ["trained"], sft_case)[0])
    for extra in ("job.json",):
        p = os.path.join(W, extra)
        if os.path.exists(p):
            res[extra[:-5]] = jload(p)
    os.makedirs(a.out, exist_ok=True)
    jdump(os.path.join(a.out, "hf_parity.json"), res)
    # curve CSVs (one file each: step, ours, torch)
    for key, name in (("sft", "sft_curve.csv"), ("sft_bf16", "sft_curve_bf16.csv")):
        c = res[key].get("curve")
        if c:
            with open(os.path.join(a.out, name), "w") as f:
                f.write("step,ours,torch\n")
                for s, o, t in zip(c["step"], c["ours"], c["torch"]):
                    f.write(f"{s},{o:.7f},{t:.7f}\n")
    print_report(res)
    return res


def print_report(res):
    print(f"\n== transformers parity: {res['note']}")
    shape = next((r["shape"][:2] for r in res["logits"] if "shape" in r), list(IDS_SHAPE))
    print(f"(b) logits and ε = {EPS} loss on fixed random ids [B, T] = {shape}; ours: our CPU engine in fp32; torch32 / torch64: "
          f"transformers in fp32 / fp64; err = max|Δ| / max|ref|. (d): ours on the trained checkpoint, ref on `calib export`'s folder")
    print(f"{'case':20s} {'|z|max':>7s} {'vs torch32':>10s} {'vs torch64':>10s} {'t32 vs t64':>10s} {'loss ours':>10s} {'Δ loss32':>9s} {'Δ loss64':>9s}  status")
    for r in res["logits"] + [dict(res["export"], case="(d) trained export")]:
        if r.get("status") == "not run":
            print(f"{r['case']:20s} not run (missing {', '.join(os.path.basename(p) for p in r['missing'])})")
            continue
        print(f"{r['case']:20s} {r['scale']:7.2f} {_fmt(r['err_vs_f32']):>10s} {_fmt(r.get('err_vs_f64')):>10s} {_fmt(r.get('err_torch_f32_vs_f64')):>10s} "
              f"{_fmt(r['loss_ours'], '.5f'):>10s} {_fmt(r['loss_diff']):>9s} {_fmt(r.get('loss_diff_f64')):>9s}  {r['status']}")
    print(f"(b, bf16) ours: our CUDA engine in bf16 mixed precision; err = max|Δ| / max|ref| against transformers in bf16 and fp32 "
          f"(target ≤ {TARGETS['logits_bf16']} against bf16)")
    print(f"{'case':20s} {'vs torch16':>10s} {'vs torch32':>10s} {'t16 vs t32':>10s} {'loss ours':>10s} {'loss t16':>10s} {'Δ loss32':>9s}  status")
    for r in res.get("cuda", []):
        if r.get("status") == "not run":
            print(f"{r['case']:20s} not run (missing {', '.join(os.path.basename(p) for p in r['missing'])})")
            continue
        print(f"{r['case']:20s} {_fmt(r['err_vs_bf16']):>10s} {_fmt(r['err_vs_f32']):>10s} {_fmt(r['err_torch_bf16_vs_f32']):>10s} "
              f"{_fmt(r['loss_ours'], '.5f'):>10s} {_fmt(r['loss_bf16'], '.5f'):>10s} {_fmt(r['loss_diff_f32']):>9s}  {r['status']}")
    def curve_line(s, extra=""):
        if s["status"] == "not run":
            print(f"    not run (missing {', '.join(os.path.basename(p) for p in s['missing'])})")
            return
        print(f"    steps {s['steps']}/{s['planned_steps']}: max rel diff {_fmt(s['max_rel_diff'])} at step {s['at_step']} "
              f"(target {TARGETS['curve']}); first {s['first'][0]:.5f} / {s['first'][1]:.5f}, last {s['last'][0]:.5f} / "
              f"{s['last'][1]:.5f}{extra}  {s['status']}")
    s = res["sft"]
    print(f"(c) SFT curve ({res['sft_case']} shapes, {LAYERS} layers): ours `calib train` vs transformers + torch.optim.AdamW, fp32")
    curve_line(s, "" if s["status"] == "not run" else f"; lr schedule max rel diff {_fmt(s['lr_max_rel_diff'])}; weights after: "
               f"max rel diff {_fmt(s.get('weights_max_rel_diff'))}")
    print("(c, bf16) the same curve, ours `calib train` on CUDA in bf16 vs transformers under bf16 autocast on CUDA")
    curve_line(res.get("sft_bf16", {"status": "not run", "missing": ["sft_log_bf16.json"]}))
    print(f"targets: logits ≤ {TARGETS['logits']}, loss ≤ {TARGETS['loss']}, curve ≤ {TARGETS['curve']}, export ≤ {TARGETS['export']}")


# ---------------------------------------------------------------------------------------------- check

def cmd_check(a):
    """Self-checks that need no PyTorch: the case table, the schedule, the metrics."""
    problems = []
    for name, (hub, mt, f) in REAL.items():
        hd = f.get("head_dim", f["hidden_size"] // f["num_attention_heads"])
        if f["num_attention_heads"] % f["num_key_value_heads"]:
            problems.append(f"{name}: kv heads do not divide heads")
        if "head_dim" not in f and f["hidden_size"] % f["num_attention_heads"]:
            problems.append(f"{name}: heads do not divide hidden_size")
        if hd % 2:
            problems.append(f"{name}: odd head_dim {hd}")
    for name, real, dtype, change in CASES:
        if real not in REAL or dtype not in ("float32", "bfloat16"):
            problems.append(f"case {name}: bad real model or dtype")
    # schedule: warm-up, peak, cosine floor (hand values)
    hp = dict(HP, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    for step, want in ((1, 0.1), (10, 1.0), (100, 0.1), (55, 0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))):
        got = learning_rate(step, 100, hp)
        if abs(got - want) > 1e-12:
            problems.append(f"learning_rate({step}) = {got}, expected {want}")
    # the smoothed loss: uniform logits give log V for any ε; a one-hot margin by hand
    V = 7
    if abs(smoothed_loss_np(np.zeros((1, 3, V)), np.array([[1, -100, 4]])) - math.log(V)) > 1e-12:
        problems.append("smoothed_loss_np of uniform logits is not log V")
    z = np.zeros((1, 1, V))
    z[0, 0, 2] = 3.0
    lse = math.log(math.exp(3.0) + V - 1)
    want = (1 - EPS) * (lse - 3.0) + EPS * (lse - 3.0 / V)
    if abs(smoothed_loss_np(z, np.array([[2]])) - want) > 1e-12:
        problems.append("smoothed_loss_np differs from the hand value")
    if abs(logits_error(np.array([1.0, -4.0]), np.array([1.0, -4.0004])) - 0.0004 / 4.0004) > 1e-12:
        problems.append("logits_error differs from the hand value")
    c, at = curve_error([1.0, 2.1, 3.0], [1.0, 2.0, 3.0])
    if abs(c - 0.05) > 1e-12 or at != 2:
        problems.append("curve_error differs from the hand value")
    have = []
    for mod in ("torch", "transformers", "tokenizers", "safetensors"):
        try:
            m = __import__(mod)
            have.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            have.append(f"{mod} missing")
    print(f"hf_parity check: {len(REAL)} real configurations, {len(CASES)} cases; {'; '.join(have)}")
    for p in problems:
        print(f"  problem: {p}")
    print("hf_parity check: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("make", "ref", "sft", "report", "check"):
        s = sub.add_parser(name)
        s.add_argument("--work", default=os.environ.get("HF_PARITY_WORK", "/tmp/hf-parity"))
        s.add_argument("--out", default=os.environ.get("OUT", "/tmp/hf-parity-out"))
        s.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
        s.add_argument("--sft-steps", type=int, default=100, help="make: conversations for this many steps (batch 4, one epoch)")
        s.add_argument("--steps", type=int, default=0, help="sft: stop after this many steps (0: all)")
        s.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                       help="sft: float32, or bfloat16 autocast on CUDA (writes torch/sft_bf16.json)")
        s.add_argument("--only", choices=["trained"], default=None, help="ref: only the exported, trained model")
        s.add_argument("--trained", action="store_true", help="ref: the exported, trained model as well")
    a = p.parse_args()
    fn = {"make": cmd_make, "ref": cmd_ref, "sft": cmd_sft, "report": cmd_report, "check": cmd_check}[a.cmd]
    r = fn(a)
    sys.exit(r if isinstance(r, int) else 0)


if __name__ == "__main__":
    main()
