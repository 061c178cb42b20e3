#!/usr/bin/env python3
"""The engine's GPT in PyTorch (nanoGPT naming; loads our safetensors checkpoints), and the
issue-9 harness that compares the CUDA trainer with it on one GPU.

The model: token + learned position embeddings, pre-LayerNorm blocks (causal multi-head attention
through F.scaled_dot_product_attention, GELU(tanh) MLP), final LayerNorm, LM head tied to wte
unless the checkpoint has lm_head.weight. Weight names and shapes are those of
backend/train/checkpoint.ts (transformer.h.{i}.attn.c_attn.weight [3C, C], ...).

Modes (every result is JSON on --out; progress on stderr):
  numerics  logits of one checkpoint (or a seeded init) and batch: ours fp32 / bf16 / CPU fp32
            against PyTorch's fp32 forward (TF32 off); relative Frobenius error
  curve     the first S steps of a run with ε = 0.1, same init (ours → torch), same batches,
            same AdamW / clipping / weight-decay groups: ours bf16 vs torch bf16 autocast,
            ours fp32 vs torch fp32
  bench     tokens/s and peak memory of one (impl, config) in this process: impl ∈ ours | eager | compile
            (ours = the engine's CUDA model in bf16, through ctypes, the fused loss as the LM head with a
            4 GiB logit workspace, as the trainer runs it; eager / compile =
            this module with bf16 autocast, fused AdamW, F.cross_entropy(label_smoothing=0.1))
  benchall  runs `bench` for every impl × config, each in a fresh process (clean peak memory)

Ours goes through the engine's C API (calib_model_*) in .device/libcalib_model.so (ctypes).
"""
import argparse
import ctypes
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

T0 = time.time()
MiB = 1 << 20
GiB = 1 << 30


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, file=sys.stderr, flush=True)


# =============================================================================== PyTorch model
def torch_gpt():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, C, NH):
            super().__init__()
            self.n_head = NH
            self.ln_1 = nn.LayerNorm(C)
            self.attn = nn.Module()
            self.attn.c_attn = nn.Linear(C, 3 * C)
            self.attn.c_proj = nn.Linear(C, C)
            self.ln_2 = nn.LayerNorm(C)
            self.mlp = nn.Module()
            self.mlp.c_fc = nn.Linear(C, 4 * C)
            self.mlp.c_proj = nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
            sh = lambda z: z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            y = F.scaled_dot_product_attention(sh(q), sh(k), sh(v), is_causal=True)
            x = x + self.attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, n_layer, n_head, d_model, context, vocab, tied=True):
            super().__init__()
            self.cfg = dict(nLayer=n_layer, nHead=n_head, dModel=d_model, context=context, vocab=vocab, tied=tied)
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(vocab, d_model), wpe=nn.Embedding(context, d_model),
                h=nn.ModuleList([Block(d_model, n_head) for _ in range(n_layer)]), ln_f=nn.LayerNorm(d_model)))
            self.lm_head = nn.Linear(d_model, vocab, bias=False)
            if tied:
                self.lm_head.weight = self.transformer.wte.weight

        def hidden(self, idx):
            T = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T, device=idx.device))
            for b in self.transformer.h:
                x = b(x)
            return self.transformer.ln_f(x)

        def forward(self, idx):
            return self.lm_head(self.hidden(idx))

        def decay_groups(self, wd):
            """AdamW groups as the engine: decay on the matmul weights (and an untied head) only."""
            decay, rest = [], []
            for n, p in self.named_parameters():
                is_w = n.endswith("weight") and (".attn." in n or ".mlp." in n or n == "lm_head.weight")
                (decay if is_w else rest).append(p)
            return [dict(params=decay, weight_decay=wd), dict(params=rest, weight_decay=0.0)]

    return GPT


def load_checkpoint(path, device="cuda"):
    """A GPT with the weights of one of our checkpoint directories (config.json + model.safetensors)."""
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(path, "config.json")))["model"]
    GPT = torch_gpt()
    m = GPT(cfg["nLayer"], cfg["nHead"], cfg["dModel"], cfg["context"], cfg["vocab"], cfg["tied"])
    sd = load_file(os.path.join(path, "model.safetensors"))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    allowed = {"lm_head.weight"} if cfg["tied"] else set()
    if set(missing) - allowed or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return m.to(device), cfg, sd


# =============================================================================== ours (ctypes)
c_i32, c_i64, c_f32, c_f64, c_p = ctypes.c_int32, ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_void_p


class LlamaConfig(ctypes.Structure):  # calib_llama_config (unused by the GPT: zeros)
    _fields_ = [("n_kv_head", c_i32), ("head_dim", c_i32), ("d_ff", c_i32), ("norm_eps", c_f32), ("norm_plus_one", c_i32),
                ("post_norms", c_i32), ("qkv_bias", c_i32), ("mlp_act", ctypes.c_int), ("embed_scale", c_f32),
                ("rope_theta", c_f32), ("rope_type", ctypes.c_int), ("rope_factor", c_f32), ("rope_low_freq_factor", c_f32),
                ("rope_high_freq_factor", c_f32), ("rope_original_context", c_i32), ("attn_scale", c_f32),
                ("attn_softcap", c_f32), ("sliding_window", c_i32), ("sliding_period", c_i32)]


class Config(ctypes.Structure):  # calib_model_config
    _fields_ = [("n_layer", c_i32), ("n_head", c_i32), ("d_model", c_i32), ("context", c_i32), ("vocab", c_i32),
                ("tied", c_i32), ("max_batch", c_i32), ("device", ctypes.c_int), ("precision", ctypes.c_int),
                ("threads", c_i32), ("arch", ctypes.c_int), ("llama", LlamaConfig), ("head_workspace_bytes", c_i64)]


HEAD_WORKSPACE_BYTES = 4 * GiB  # the trainer's default (backend/engine/model.ts DEFAULT_HEAD_WORKSPACE_BYTES)


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 24), ("offset", c_i64), ("numel", c_i64), ("ndim", c_i32),
                ("shape", c_i64 * 3), ("per_layer", c_i32), ("decay", c_i32)]


class StepArgs(ctypes.Structure):
    _fields_ = [("b", c_i32), ("t", c_i32), ("inputs", c_p), ("targets", c_p), ("label_smoothing", c_f32),
                ("temperature", c_f32), ("softcap", c_f32), ("ignore_index", c_i32), ("backward", c_i32),
                ("grad_scale", c_f32), ("loss_sum", c_f64), ("valid_count", c_i64)]


class AdamArgs(ctypes.Structure):
    _fields_ = [("lr", c_f32), ("beta1", c_f32), ("beta2", c_f32), ("eps", c_f32), ("weight_decay", c_f32),
                ("grad_scale", c_f32), ("step", c_i64)]


class EvalArgs(ctypes.Structure):
    _fields_ = [("b", c_i32), ("t", c_i32), ("inputs", c_p), ("targets", c_p), ("ignore_index", c_i32),
                ("rows", c_p), ("n_rows", c_i64), ("temperature", c_f32), ("softcap", c_f32), ("top_k", c_i32),
                ("option_ids", c_p), ("n_options", c_i32),
                ("argmax", c_p), ("p_target", c_p), ("nll", c_p), ("p_max", c_p), ("entropy", c_p), ("lse", c_p),
                ("top_ids", c_p), ("top_p", c_p), ("option_logits", c_p)]


PRECISION = {"float32": 0, "bfloat16": 2}
NANO = {"ln1w": "ln_1.weight", "ln1b": "ln_1.bias", "qkvw": "attn.c_attn.weight", "qkvb": "attn.c_attn.bias",
        "attprojw": "attn.c_proj.weight", "attprojb": "attn.c_proj.bias", "ln2w": "ln_2.weight",
        "ln2b": "ln_2.bias", "fcw": "mlp.c_fc.weight", "fcb": "mlp.c_fc.bias", "fcprojw": "mlp.c_proj.weight",
        "fcprojb": "mlp.c_proj.bias"}
GLOBAL = {"wte": "transformer.wte.weight", "wpe": "transformer.wpe.weight", "lnfw": "transformer.ln_f.weight",
          "lnfb": "transformer.ln_f.bias", "lm_head": "lm_head.weight"}


def ptr(a):
    return a.ctypes.data_as(c_p) if a is not None else None


class Engine:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.calib_model_create.argtypes = [ctypes.POINTER(Config), ctypes.POINTER(c_p), ctypes.c_char_p]
        L.calib_model_free.argtypes = [c_p]
        L.calib_model_num_params.argtypes = [c_p]
        L.calib_model_num_params.restype = c_i64
        L.calib_model_num_tensors.argtypes = [c_p]
        L.calib_model_tensor_info.argtypes = [c_p, c_i32, ctypes.POINTER(TensorInfo), ctypes.c_char_p]
        L.calib_model_read.argtypes = [c_p, ctypes.c_int, c_i64, c_i64, c_p, ctypes.c_char_p]
        L.calib_model_write.argtypes = [c_p, ctypes.c_int, c_i64, c_i64, c_p, ctypes.c_char_p]
        L.calib_model_init.argtypes = [c_p, ctypes.c_uint64, c_f32, ctypes.c_char_p]
        L.calib_model_step.argtypes = [c_p, ctypes.POINTER(StepArgs), ctypes.c_char_p]
        L.calib_model_zero_grad.argtypes = [c_p, ctypes.c_char_p]
        L.calib_model_grad_norm.argtypes = [c_p, ctypes.POINTER(c_f64), c_p, ctypes.c_char_p]
        L.calib_model_adamw.argtypes = [c_p, ctypes.POINTER(AdamArgs), ctypes.c_char_p]
        L.calib_model_eval.argtypes = [c_p, ctypes.POINTER(EvalArgs), ctypes.c_char_p]
        L.calib_cuda_mem_info.argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t),
                                          ctypes.c_char_p]
        L.calib_cuda_synchronize.argtypes = [ctypes.c_char_p]

    def check(self, st, err, what):
        if st != 0:
            raise RuntimeError(f"{what}: status {st}: {err.value.decode(errors='replace')}")

    def mem_free(self):
        f, t, err = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.create_string_buffer(512)
        self.check(self.lib.calib_cuda_mem_info(ctypes.byref(f), ctypes.byref(t), err), err, "mem_info")
        return f.value


class OurModel:
    def __init__(self, eng, cfg, max_batch, device="cuda", precision="bfloat16"):
        self.e, self.L = eng, eng.lib
        c = Config(cfg["nLayer"], cfg["nHead"], cfg["dModel"], cfg["context"], cfg["vocab"], int(cfg["tied"]),
                   max_batch, 1 if device == "cuda" else 0, PRECISION[precision], 0)
        c.head_workspace_bytes = HEAD_WORKSPACE_BYTES
        self.h = c_p()
        err = ctypes.create_string_buffer(512)
        eng.check(self.L.calib_model_create(ctypes.byref(c), ctypes.byref(self.h), err), err, "create")
        self.cfg, self.n = cfg, self.L.calib_model_num_params(self.h)
        self.tensors = []
        for i in range(self.L.calib_model_num_tensors(self.h)):
            t = TensorInfo()
            eng.check(self.L.calib_model_tensor_info(self.h, i, ctypes.byref(t), err), err, "tensor_info")
            self.tensors.append(dict(name=t.name.decode(), offset=t.offset, numel=t.numel,
                                     shape=list(t.shape)[:t.ndim], per_layer=bool(t.per_layer), decay=bool(t.decay)))

    def free(self):
        if self.h:
            self.L.calib_model_free(self.h)
            self.h = None

    def _err(self):
        return ctypes.create_string_buffer(512)

    def read(self, which=0):
        out = np.empty(self.n, np.float32)
        err = self._err()
        self.e.check(self.L.calib_model_read(self.h, which, 0, self.n, ptr(out), err), err, "read")
        return out

    def write(self, flat, which=0):
        flat = np.ascontiguousarray(flat, np.float32)
        err = self._err()
        self.e.check(self.L.calib_model_write(self.h, which, 0, self.n, ptr(flat), err), err, "write")

    def init(self, seed):
        err = self._err()
        self.e.check(self.L.calib_model_init(self.h, seed, 0.0, err), err, "init")

    def step(self, x, y, eps=0.1, backward=True, grad_scale=0.0):
        x, y = np.ascontiguousarray(x, np.int32), np.ascontiguousarray(y, np.int32)
        a = StepArgs(x.shape[0], x.shape[1], ptr(x), ptr(y), eps, 1.0, 0.0, -100, int(backward), grad_scale, 0.0, 0)
        err = self._err()
        self.e.check(self.L.calib_model_step(self.h, ctypes.byref(a), err), err, "step")
        return a.loss_sum, a.valid_count

    def zero_grad(self):
        err = self._err()
        self.e.check(self.L.calib_model_zero_grad(self.h, err), err, "zero_grad")

    def grad_norm(self):
        n, err = c_f64(), self._err()
        self.e.check(self.L.calib_model_grad_norm(self.h, ctypes.byref(n), None, err), err, "grad_norm")
        return n.value

    def adamw(self, lr, step, wd=0.1, grad_scale=1.0, betas=(0.9, 0.95), eps=1e-8):
        a = AdamArgs(lr, betas[0], betas[1], eps, wd, grad_scale, step)
        err = self._err()
        self.e.check(self.L.calib_model_adamw(self.h, ctypes.byref(a), err), err, "adamw")

    def logits(self, x):
        """All logits (B·T × V) through calib_model_eval with every token as an option."""
        x = np.ascontiguousarray(x, np.int32)
        V = self.cfg["vocab"]
        ids = np.arange(V, dtype=np.int32)
        n = x.size
        out = np.empty((n, V), np.float32)
        am = np.empty(n, np.int32)
        a = EvalArgs(x.shape[0], x.shape[1], ptr(x), None, -100, None, 0, 1.0, 0.0, 0, ptr(ids), V,
                     ptr(am), None, None, None, None, None, None, None, ptr(out))
        err = self._err()
        self.e.check(self.L.calib_model_eval(self.h, ctypes.byref(a), err), err, "eval")
        return out

    # nanoGPT state dict ↔ flat buffer
    def names(self):
        for t in self.tensors:
            if t["per_layer"]:
                per = t["numel"] // t["shape"][0]
                for i in range(t["shape"][0]):
                    yield f"transformer.h.{i}.{NANO[t['name']]}", t["offset"] + i * per, per, t["shape"][1:]
            else:
                yield GLOBAL[t["name"]], t["offset"], t["numel"], t["shape"]

    def flat_from(self, sd):
        flat = np.empty(self.n, np.float32)
        for name, off, numel, shape in self.names():
            v = sd[name]
            v = v.detach().float().cpu().numpy() if hasattr(v, "detach") else np.asarray(v, np.float32)
            assert list(v.shape) == list(shape), (name, v.shape, shape)
            flat[off:off + numel] = v.reshape(-1)
        return flat

    def state_dict(self, flat):
        import torch
        return {name: torch.from_numpy(flat[off:off + numel].reshape(shape).copy())
                for name, off, numel, shape in self.names()}


# =============================================================================== data
def batches(tokens, B, T, steps, seed=0):
    """(x, y) windows of T+1 tokens at seeded random offsets: the same for both implementations."""
    rng = np.random.default_rng(seed)
    n = len(tokens) - T - 1
    for _ in range(steps):
        o = rng.integers(0, n, size=B)
        w = np.stack([tokens[i:i + T + 1] for i in o]).astype(np.int32)
        yield w[:, :-1], w[:, 1:]


def load_tokens(path, V, n=1 << 21, seed=0):
    if path and os.path.exists(path):
        # .npy, or the token cache's raw little-endian int32 <split>.tokens (backend/data/cache.ts)
        t = np.fromfile(path, dtype="<i4") if path.endswith(".tokens") else np.load(path).astype(np.int32)
        assert t.max() < V, (t.max(), V)
        return t
    return np.random.default_rng(seed).integers(0, V, size=n, dtype=np.int32)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


# =============================================================================== modes
def mode_numerics(args):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    eng = Engine(args.lib)
    if args.checkpoint:
        ref, cfg, sd = load_checkpoint(args.checkpoint)
        src = f"checkpoint {args.checkpoint}"
    else:
        cfg = dict(nLayer=args.layers, nHead=args.heads, dModel=args.d, context=args.context, vocab=args.vocab,
                   tied=True)
        tmp = OurModel(eng, cfg, 1, device="cpu", precision="float32")
        tmp.init(args.seed)
        sd = tmp.state_dict(tmp.read())
        tmp.free()
        ref = torch_gpt()(cfg["nLayer"], cfg["nHead"], cfg["dModel"], cfg["context"], cfg["vocab"], True)
        ref.load_state_dict(sd, strict=False)
        ref = ref.cuda()
        src = f"seeded init {args.seed}"
    ref.eval()
    V, T = cfg["vocab"], cfg["context"]
    tokens = load_tokens(args.tokens, V)
    x, _ = next(batches(tokens, args.batch, T, 1, seed=args.seed + 1))
    with torch.no_grad():
        want = ref(torch.from_numpy(x).long().cuda()).float().reshape(-1, V).cpu().numpy()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            torch_bf16 = ref(torch.from_numpy(x).long().cuda()).float().reshape(-1, V).cpu().numpy()
    rows = [dict(impl="torch bf16 autocast", rel_err=rel(torch_bf16, want))]
    for device, precision in (("cuda", "float32"), ("cuda", "bfloat16"), ("cpu", "float32")):
        m = OurModel(eng, cfg, args.batch, device=device, precision=precision)
        m.write(m.flat_from(sd))
        t = time.time()
        got = m.logits(x)
        ms = (time.time() - t) * 1e3
        m.free()
        r = rel(got, want)
        rows.append(dict(impl=f"ours {device} {precision}", rel_err=r, max_abs=float(np.max(np.abs(got - want))),
                         argmax_agree=float(np.mean(got.argmax(1) == want.argmax(1))), ms=ms))
        log(f"numerics: ours {device} {precision}: rel err {r:.3e}")
    return dict(mode="numerics", source=src, config=cfg, batch=args.batch, rows=rows,
                logit_rms=float(np.sqrt(np.mean(want.astype(np.float64) ** 2))))


def torch_step_fn(model, opt, compile_=False, eps=0.1, autocast=True):
    import torch
    import torch.nn.functional as F

    def loss_fn(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), label_smoothing=eps)

    f = torch.compile(loss_fn) if compile_ else loss_fn

    def step(x, y, lr, clip=1.0):
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = f(x, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss, norm

    return step


def lr_at(s, warmup, lr):
    return lr * min(1.0, (s + 1) / warmup) if warmup > 0 else lr


def mode_curve(args):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    eng = Engine(args.lib)
    cfg = dict(nLayer=args.layers, nHead=args.heads, dModel=args.d, context=args.context, vocab=args.vocab, tied=True)
    tokens = load_tokens(args.tokens, args.vocab)
    B, T, S = args.batch, args.context, args.steps
    data = list(batches(tokens, B, T, S, seed=args.seed + 2))
    out = dict(mode="curve", config=cfg, batch=B, steps=S, lr=args.lr, warmup=args.warmup, eps=0.1, runs={})
    for precision in args.precisions.split(","):
        ours = OurModel(eng, cfg, B, device="cuda", precision=precision)
        ours.init(args.seed)
        init = ours.read()
        ref = torch_gpt()(cfg["nLayer"], cfg["nHead"], cfg["dModel"], cfg["context"], cfg["vocab"], True)
        ref.load_state_dict(ours.state_dict(init), strict=False)
        ref = ref.cuda()
        opt = torch.optim.AdamW(ref.decay_groups(0.1), lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
        step = torch_step_fn(ref, opt, autocast=precision == "bfloat16")
        lo, lt, no, nt = [], [], [], []
        t_ours = t_torch = 0.0
        for s, (x, y) in enumerate(data):
            lr = lr_at(s, args.warmup, args.lr)
            t = time.time()
            ours.zero_grad()
            ls, nv = ours.step(x, y, eps=0.1)
            norm = ours.grad_norm()
            ours.adamw(lr, s + 1, wd=0.1, grad_scale=min(1.0, 1.0 / (norm + 1e-6)))
            t_ours += time.time() - t
            lo.append(ls / nv)
            no.append(norm)
            t = time.time()
            loss, n = step(torch.from_numpy(x).long().cuda(), torch.from_numpy(y).long().cuda(), lr)
            lt.append(float(loss))
            nt.append(float(n))
            t_torch += time.time() - t
        ours.free()
        d = [abs(a - b) / b for a, b in zip(lo, lt)]
        out["runs"][precision] = dict(ours=lo, torch=lt, ours_norm=no, torch_norm=nt, max_rel=max(d),
                                      mean_rel=float(np.mean(d)), final_ours=lo[-1], final_torch=lt[-1],
                                      seconds_ours=t_ours, seconds_torch=t_torch)
        log(f"curve {precision}: max rel diff {max(d):.4f}, mean {np.mean(d):.4f}; loss {lo[0]:.3f} → {lo[-1]:.3f} "
            f"(torch {lt[0]:.3f} → {lt[-1]:.3f})")
        del ref, opt
        torch.cuda.empty_cache()
    return out


CONFIGS = {
    "gpt2-124m": dict(nLayer=12, nHead=12, dModel=768, context=1024, vocab=50257, tied=True, batch=16),
    "d256-v200k": dict(nLayer=4, nHead=4, dModel=256, context=256, vocab=200019, tied=True, batch=64),
}


def mode_bench(args):
    cfg = dict(CONFIGS[args.config])
    B = cfg.pop("batch")
    T, V = cfg["context"], cfg["vocab"]
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, V, size=(B, T), dtype=np.int32), rng.integers(0, V, size=(B, T), dtype=np.int32))
            for _ in range(4)]
    W, S = args.warmup_steps, args.timed_steps
    times = []
    row = dict(impl=args.impl, config=args.config, n_layer=cfg["nLayer"], n_head=cfg["nHead"], d_model=cfg["dModel"],
               context=T, vocab=V, batch=B, tokens_per_step=B * T)
    if args.impl.startswith("ours"):
        eng = Engine(args.lib)
        free0 = eng.mem_free()
        m = OurModel(eng, cfg, B, device="cuda", precision=args.precision)
        m.init(0)
        def one(s):
            x, y = data[s % len(data)]
            m.zero_grad()
            ls, nv = m.step(x, y, eps=0.1)
            norm = m.grad_norm()
            m.adamw(3e-4, s + 1, wd=0.1, grad_scale=min(1.0, 1.0 / (norm + 1e-6)))
            err = ctypes.create_string_buffer(512)
            eng.check(eng.lib.calib_cuda_synchronize(err), err, "synchronize")
            return ls / nv
        for s in range(W + S):
            t = time.perf_counter()
            loss = one(s)
            if s >= W:
                times.append(time.perf_counter() - t)
        row["peak_mib"] = (free0 - eng.mem_free()) / MiB
        row["loss"] = loss
        row["precision"] = args.precision
        if args.profile_out:
            kernel_profile(lambda s: one(W + S + s), args.profile_out, f"{args.impl} {args.config}")
        m.free()
    else:
        import torch
        GPT = torch_gpt()
        torch.manual_seed(0)
        model = GPT(cfg["nLayer"], cfg["nHead"], cfg["dModel"], T, V, True).cuda()
        opt = torch.optim.AdamW(model.decay_groups(0.1), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
        step = torch_step_fn(model, opt, compile_=args.impl == "compile")
        dev = [(torch.from_numpy(x).long().cuda(), torch.from_numpy(y).long().cuda()) for x, y in data]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        tc = time.time()
        for s in range(W + S):
            x, y = dev[s % len(dev)]
            t = time.perf_counter()
            loss, _ = step(x, y, 3e-4)
            torch.cuda.synchronize()
            if s == 0:
                row["first_step_s"] = time.time() - tc
            if s >= W:
                times.append(time.perf_counter() - t)
        row["peak_mib"] = torch.cuda.max_memory_allocated() / MiB
        row["loss"] = float(loss)
        row["precision"] = "bf16 autocast"
        if args.profile_out:
            def one(s):
                x, y = dev[s % len(dev)]
                step(x, y, 3e-4)
                torch.cuda.synchronize()
            kernel_profile(one, args.profile_out, f"{args.impl} {args.config}")
    med = float(np.median(times))
    row.update(step_ms=med * 1e3, step_ms_min=float(np.min(times)) * 1e3, tokens_per_s=B * T / med,
               timed_steps=len(times))
    return row


def kernel_profile(one, path, title, steps=3):
    """GPU kernels of `steps` more training steps under torch.profiler (CUPTI: every kernel of the process, ours
    included), summed by kernel name, in ms per step, largest first; appended to path as text."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for s in range(steps):
            one(s)
    tot = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            n, c = tot.get(e.name, (0.0, 0))
            us = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
            tot[e.name] = (n + us, c + 1)
    rows = sorted(tot.items(), key=lambda kv: -kv[1][0])
    total = sum(v[0] for v in tot.values())
    with open(path, "a") as f:
        f.write(f"== {title}: GPU kernel time per step (torch.profiler over {steps} steps) {total / steps / 1e3:.2f} ms\n")
        f.write(f"{'ms/step':>8s} {'share':>6s} {'calls':>6s}  kernel\n")
        for name, (us, c) in rows[:40]:
            f.write(f"{us / steps / 1e3:8.3f} {us / total:6.1%} {c // steps:6d}  {name[:140]}\n")
        f.write("\n")


def mode_benchall(args):
    rows = []
    # the card without a CUDA context in this process (each row's process has its own)
    card, driver = gpu_info()
    head = dict(mode="bench", started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), card=card, driver=driver,
                torch=importlib.metadata.version("torch"))

    def save():  # after every row: a job stopped at its deadline keeps what finished
        if args.out != "-":
            with open(args.out, "w") as f:
                json.dump(dict(head, rows=rows, partial=True), f, indent=1)

    for config in args.configs.split(","):
        for impl in args.impls.split(","):
            cmd = [sys.executable, __file__, "bench", "--impl", impl, "--config", config, "--lib", args.lib,
                   "--warmup-steps", str(args.warmup_steps), "--timed-steps", str(args.timed_steps),
                   "--out", "-", "--precision", args.precision]
            log("bench:", impl, config)
            env = dict(os.environ, CALIB_PROFILE="1")
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
                sys.stderr.write(r.stderr[-2000:])
                prof = [ln for ln in r.stderr.splitlines() if ln.startswith("calib profile")]
                if r.returncode != 0:
                    rows.append(dict(impl=impl, config=config, error=r.stderr.strip().splitlines()[-1:]))
                    save()
                    continue
                rows.append(json.loads(r.stdout))
                if prof:
                    rows[-1]["profile"] = prof[-1]
                log(f"  {impl} {config}: {rows[-1]['tokens_per_s'] / 1e3:.1f}k tok/s, {rows[-1]['peak_mib']:.0f} MiB")
            except subprocess.TimeoutExpired:
                rows.append(dict(impl=impl, config=config, error=f"timeout after {args.timeout} s"))
                log(f"  {impl} {config}: timeout")
            save()
    return dict(head, rows=rows)


def gpu_info():
    """(name, driver version) of the first GPU from nvidia-smi, or (None, None)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.splitlines()
        name, driver = (x.strip() for x in out[0].split(","))
        return name, driver
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None, None


def mode_summary(args):
    """Short tables from the JSON files of one GPU job (scripts/gpu/trainer-job.sh) in args.dir."""
    def load(name):
        path = os.path.join(args.dir, name)
        try:
            return json.load(open(path))
        except Exception as e:  # noqa: BLE001 - a missing or broken file is reported, not fatal
            print(f"{name}: {type(e).__name__}: {e}")
            return None
    for name in ("numerics.json", "numerics_ckpt.json"):
        n = load(name)
        if n:
            print(f"\n{name} ({n['source']}, {n['device']}): logits vs torch fp32 (rms {n['logit_rms']:.3f})")
            for r in n["rows"]:
                extra = f"  max|Δ| {r['max_abs']:.2e}  argmax agree {r['argmax_agree']:.4f}" if "max_abs" in r else ""
                print(f"  {r['impl']:<22} rel err {r['rel_err']:.2e}{extra}")
    c = load("curve.json")
    if c:
        print(f"\ncurve: {c['steps']} steps, ε = 0.1, batch {c['batch']}, {c['config']}")
        for prec, r in c["runs"].items():
            print(f"  {prec:<9} max rel {r['max_rel']:.4f} mean rel {r['mean_rel']:.4f}  loss ours {r['ours'][0]:.3f}→{r['final_ours']:.3f}"
                  f" torch {r['torch'][0]:.3f}→{r['final_torch']:.3f}  ({r['seconds_ours']:.1f}s vs {r['seconds_torch']:.1f}s)")
    b = load("bench.json")
    if b:
        print(f"\nthroughput ({b.get('device')}, torch {b.get('torch')})")
        print(f"  {'config':<11} {'impl':<10} {'tok/s':>10} {'step ms':>8} {'peak MiB':>9}")
        for r in b["rows"]:
            if "error" in r:
                print(f"  {r['config']:<11} {r['impl']:<10} ERROR {r['error']}")
            else:
                print(f"  {r['config']:<11} {r['impl']:<10} {r['tokens_per_s']:>10.0f} {r['step_ms']:>8.1f} {r['peak_mib']:>9.0f}")
        for r in b["rows"]:
            if r.get("profile"):
                print(f"  {r['config']} {r['impl']}: {r['profile']}")
    p = load("pipeline.json")
    if p:
        print(f"\npipeline ({p['precision']}): " + ", ".join(f"{k} {v:.1f}" for k, v in p["timings"].items()))
        for r in p["runs"]:
            m = r["metrics"]
            keys = [k for k in ("validation_loss", "question_accuracy", "accuracy_pos", "token_nll") if k in m]
            print(f"  {r['kind']:<8} {r['id']}: " + ", ".join(f"{k} {m[k]:.4f}" for k in keys))
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["numerics", "curve", "bench", "benchall", "summary"])
    p.add_argument("--dir", default=".", help="summary: the folder of the job's JSON files")
    p.add_argument("--lib", default=".device/libcalib_model.so")
    p.add_argument("--out", default="-")
    p.add_argument("--checkpoint")
    p.add_argument("--tokens", help=".npy or data/cache/.../<split>.tokens of token ids (default: uniform random tokens)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--precisions", default="bfloat16,float32")
    p.add_argument("--impl", default="ours")
    p.add_argument("--config", default="d256-v200k")
    p.add_argument("--precision", default="bfloat16")
    p.add_argument("--configs", default="gpt2-124m,d256-v200k")
    p.add_argument("--impls", default="ours,eager,compile")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--timed-steps", type=int, default=10)
    p.add_argument("--timeout", type=int, default=240)
    p.add_argument("--profile-out", help="bench: also profile 3 more steps' GPU kernels (torch.profiler), appended to this file")
    args = p.parse_args()
    res = dict(numerics=mode_numerics, curve=mode_curve, bench=mode_bench, benchall=mode_benchall,
               summary=mode_summary)[args.mode](args)
    if res is None:
        return
    if args.mode != "bench":
        import torch
        res["device"] = torch.cuda.get_device_name(0)
        res["torch"] = torch.__version__
    text = json.dumps(res, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
