"""linear_cross_entropy: the engine's fused linear + label-smoothed cross-entropy as a PyTorch operator.

    loss = T · CE_ε(softcap(z / T)),  z = e · cᵀ + bias          (the C API's definition, native/include/calib.h)

which for T = 1 and no softcap is F.cross_entropy(e @ c.T + bias, targets, label_smoothing=ε,
ignore_index=…, reduction=…), computed without storing the N × V logits.

Two torch.library custom ops carry it, so torch.compile traces through without a graph break:
  calib_lce::linear_cross_entropy           forward; for mean/sum with gradients wanted it also returns dE, dC
                                            (and dbias) for a unit upstream gradient — the backward only scales
                                            them by the incoming scalar (no second pass over the vocabulary);
  calib_lce::linear_cross_entropy_backward  reduction 'none': runs the kernel again with the per-token upstream
                                            gradient.
Both run on torch.cuda.current_stream() and take their scratch from PyTorch's caching allocator (the size from
calib_lce_cuda_workspace_size), so the memory shows in torch.cuda.max_memory_allocated. CPU tensors run the
engine's CPU path. The engine returns once its work on the stream is done (it reads a few status words back).
"""
from __future__ import annotations

import inspect
import math
import threading
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _capi, build

_FLOATS = (torch.float32, torch.bfloat16, torch.float16)
_INTS = (torch.int64, torch.int32)
_NONE = _capi.CALIB_REDUCE_NONE

# The engine keeps one cuBLAS handle and its kernels' shared-memory settings per process, made on the first GPU it
# runs on: one CUDA device per process (as torchrun / DDP / FSDP start them).
_device_lock = threading.Lock()
_device_index: Optional[int] = None
_libraries = {}  # device → loaded library
# The op reads a few status words back and waits for its stream, so CUDA graphs cannot capture it: the tag keeps it
# out of torch.compile's CUDA graphs (mode="reduce-overhead") where this PyTorch knows the tag.
_TAGS = ({"tags": (torch.Tag.cudagraph_unsafe,)} if hasattr(torch.Tag, "cudagraph_unsafe")
         and "tags" in inspect.signature(torch.library.custom_op).parameters else {})


def load_library(device=None) -> _capi.Library:
    """The engine library for a device (default: the current CUDA device when there is one, else the CPU), built
    from native/ first when it is missing or stale. Returns the loaded library (its .info() tells what it found)."""
    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    lib = _libraries.get(device)
    if lib is None:
        if device.type == "cuda":
            lib = _capi.load("cuda", arch=build.arch_of_capability(*torch.cuda.get_device_capability(device.index)))
        else:
            lib = _capi.load("cpu")
        _libraries[device] = lib
    return lib


def _claim(device: torch.device) -> int:
    global _device_index
    index = device.index if device.index is not None else torch.cuda.current_device()
    with _device_lock:
        if _device_index is None:
            # cuBLAS as PyTorch loaded it: the engine opens libcublas by its soname and gets this copy
            torch.cuda.current_blas_handle()
            _device_index = index
        elif _device_index != index:
            raise RuntimeError(
                f"calib_lce runs on one CUDA device per process: this process first used cuda:{_device_index}, now "
                f"cuda:{index} (the engine keeps one cuBLAS handle and kernel settings per process). Start one "
                "process per GPU (torchrun, DDP, FSDP) or keep the loss on one device.")
    return index


def _engine_view(x: Tensor) -> Tuple[Tensor, int]:
    """x as the engine reads it: bf16 stays bf16; fp16 becomes fp32 (exact); row-major."""
    if x.dtype == torch.bfloat16:
        return x.contiguous(), _capi.CALIB_BF16
    return x.float().contiguous(), _capi.CALIB_F32


def _run(e: Tensor, c: Tensor, targets: Tensor, bias: Optional[Tensor], label_smoothing: float, ignore_index: int,
         reduction: int, temperature: float, softcap: float, workspace_bytes: int, grad_output: Optional[Tensor],
         want_grad: bool):
    """One engine call on e (N×D), c (V×D), targets (N). Returns loss and fp32 dE, dC, dbias (None when not asked)."""
    device = e.device
    e_, dtype = _engine_view(e)
    c_, _ = _engine_view(c)
    t_ = targets.to(torch.int32).contiguous()
    b_ = bias.float().contiguous() if bias is not None else None
    g_ = grad_output.float().contiguous() if grad_output is not None else None
    n, d = e_.shape
    v = c_.shape[0]
    f32 = {"dtype": torch.float32, "device": device}
    loss = torch.empty((n,) if reduction == _NONE else (), **f32)
    de = torch.empty((n, d), **f32) if want_grad else None
    dc = torch.empty((v, d), **f32) if want_grad else None
    db = torch.empty((v,), **f32) if want_grad and b_ is not None else None

    a = _capi.LceArgs()
    a.n, a.d, a.v = n, d, v
    a.dtype = dtype
    a.e, a.c, a.targets = e_.data_ptr(), c_.data_ptr(), t_.data_ptr()
    a.bias = b_.data_ptr() if b_ is not None else None
    a.label_smoothing, a.ignore_index, a.reduction = label_smoothing, ignore_index, reduction
    a.temperature, a.softcap = temperature, softcap
    a.impl = _capi.CALIB_IMPL_FUSED
    a.workspace_bytes = workspace_bytes
    a.deterministic = 1
    a.loss = loss.data_ptr()
    a.grad_output = g_.data_ptr() if g_ is not None else None
    if want_grad:
        a.grad_e, a.grad_c = de.data_ptr(), dc.data_ptr()
        a.grad_bias = db.data_ptr() if db is not None else None
    if device.type == "cuda":
        a.device, a.memory = _capi.CALIB_DEVICE_CUDA, _capi.CALIB_MEM_DEVICE
        with torch.cuda.device(device):
            _claim(device)
            lib = load_library(device)
            o = _capi.CudaOptions()
            o.stream = torch.cuda.current_stream(device).cuda_stream
            size = lib.workspace_size(a, o)
            workspace = torch.empty((size,), dtype=torch.uint8, device=device)
            o.workspace, o.workspace_size = workspace.data_ptr(), size
            lib.linear_cross_entropy_cuda(a, o)
            del workspace  # stream-ordered free: the engine's work on this stream is done
    else:
        a.device, a.memory = _capi.CALIB_DEVICE_CPU, _capi.CALIB_MEM_HOST
        load_library(device).linear_cross_entropy(a)
    return loss, de, dc, db


# ------------------------------------------------------------------------------------------- the custom ops
@torch.library.custom_op("calib_lce::linear_cross_entropy", mutates_args=(), **_TAGS)
def _forward(e: Tensor, c: Tensor, targets: Tensor, bias: Optional[Tensor], label_smoothing: float,
             ignore_index: int, reduction: int, temperature: float, softcap: float, workspace_bytes: int,
             compute_grad: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    want = compute_grad and reduction != _NONE
    loss, de, dc, db = _run(e, c, targets, bias, label_smoothing, ignore_index, reduction, temperature, softcap,
                            workspace_bytes, None, want)
    empty = e.new_empty(0)
    if not want:
        return loss, empty, c.new_empty(0), empty.clone()
    return loss, de.to(e.dtype), dc.to(c.dtype), db.to(bias.dtype) if db is not None else empty


@_forward.register_fake
def _forward_fake(e, c, targets, bias, label_smoothing, ignore_index, reduction, temperature, softcap,
                  workspace_bytes, compute_grad):
    want = compute_grad and reduction != _NONE
    loss = e.new_empty((e.shape[0],) if reduction == _NONE else (), dtype=torch.float32)
    if not want:
        return loss, e.new_empty(0), c.new_empty(0), e.new_empty(0)
    db = bias.new_empty(bias.shape) if bias is not None else e.new_empty(0)
    return loss, e.new_empty(e.shape), c.new_empty(c.shape), db


@torch.library.custom_op("calib_lce::linear_cross_entropy_backward", mutates_args=(), **_TAGS)
def _backward_none(grad_loss: Tensor, e: Tensor, c: Tensor, targets: Tensor, bias: Optional[Tensor],
                   label_smoothing: float, ignore_index: int, temperature: float, softcap: float,
                   workspace_bytes: int) -> Tuple[Tensor, Tensor, Tensor]:
    _, de, dc, db = _run(e, c, targets, bias, label_smoothing, ignore_index, _NONE, temperature, softcap,
                         workspace_bytes, grad_loss, True)
    return de.to(e.dtype), dc.to(c.dtype), db.to(bias.dtype) if db is not None else e.new_empty(0)


@_backward_none.register_fake
def _backward_none_fake(grad_loss, e, c, targets, bias, label_smoothing, ignore_index, temperature, softcap,
                        workspace_bytes):
    db = bias.new_empty(bias.shape) if bias is not None else e.new_empty(0)
    return e.new_empty(e.shape), c.new_empty(c.shape), db


def _setup_context(ctx, inputs, output):
    e, c, targets, bias, label_smoothing, ignore_index, reduction, temperature, softcap, workspace, grad = inputs
    ctx.reduction = reduction
    ctx.has_bias = bias is not None
    ctx.computed = grad
    ctx.options = (label_smoothing, ignore_index, temperature, softcap, workspace)
    if reduction == _NONE:
        ctx.save_for_backward(e, c, targets, bias)
    else:
        _, de, dc, db = output
        ctx.save_for_backward(de, dc, db)


def _backward(ctx, grad_loss, _grad_de, _grad_dc, _grad_db):
    need_e, need_c, _, need_b = ctx.needs_input_grad[:4]
    if ctx.reduction == _NONE:
        e, c, targets, bias = ctx.saved_tensors
        ls, ii, temperature, softcap, workspace = ctx.options
        de, dc, db = _backward_none(grad_loss, e, c, targets, bias, ls, ii, temperature, softcap, workspace)
    else:
        if not ctx.computed:
            raise RuntimeError("calib_lce: the forward ran without gradients (no input required grad when it ran)")
        de, dc, db = ctx.saved_tensors
        # the gradients of a unit upstream gradient, scaled (a 0-dim fp32 factor keeps their dtype)
        de, dc = de * grad_loss, dc * grad_loss
        db = db * grad_loss if ctx.has_bias else None
    return (de if need_e else None, dc if need_c else None, None, db if need_b and ctx.has_bias else None,
            None, None, None, None, None, None, None)


_forward.register_autograd(_backward, setup_context=_setup_context)


# ------------------------------------------------------------------------------------------- the public function
def _check_tensor(name: str, x, dtypes) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype {' or '.join(str(d).replace('torch.', '') for d in dtypes)}, "
                        f"got {str(x.dtype).replace('torch.', '')}")


def _check_number(name: str, x, ok: bool, rule: str) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    if not ok:
        raise ValueError(f"{name} must be {rule} (got {x})")


def linear_cross_entropy(e: Tensor, c: Tensor, targets: Tensor, *, bias: Optional[Tensor] = None,
                         label_smoothing: float = 0.0, ignore_index: int = -100, reduction: str = "mean",
                         temperature: float = 1.0, softcap: Optional[float] = None,
                         workspace_bytes: int = 0) -> Tensor:
    """Cross-entropy of the logits e · cᵀ (+ bias) against targets, without storing the logits.

    e: (..., D) hidden states; c: (V, D) classifier weight (an nn.Linear's weight); targets: (...) class indices
    (int64 or int32) or ignore_index; bias: (V,) or None. bf16 inputs run the engine's bf16 kernels, fp32 its fp32
    kernels, fp16 is computed exactly as fp32; accumulation is fp32 or wider; gradients come back in the inputs'
    dtypes and the loss in float32. Any strides (copied only when not row-major).

    Semantics (the C API's): s = softcap(z / T), softcap(u) = cap·tanh(u / cap); per token
    loss = T·(logsumexp(s) − (1 − ε)·s_y − ε/V·Σ_v s_v); reduction 'mean' divides by the tokens whose target is
    not ignore_index (NaN when there are none, as PyTorch), 'sum' adds them, 'none' returns one value per token
    (0 for ignored ones). With T = 1 and no softcap this is F.cross_entropy(e @ c.T + bias, targets,
    label_smoothing=ε, ignore_index=…, reduction=…).

    workspace_bytes: the engine's logit budget (0 = fully streamed, O(N + V) extra memory; ≥ min(1024, N)·V·4
    computes the logits once, in chunks). Under autocast the inputs are cast to the autocast dtype, as nn.Linear's are.
    """
    _check_tensor("e", e, _FLOATS)
    _check_tensor("c", c, _FLOATS)
    _check_tensor("targets", targets, _INTS)
    if bias is not None:
        _check_tensor("bias", bias, _FLOATS)
    if not isinstance(reduction, str) or reduction not in _capi.REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none' (got {reduction!r})")
    _check_number("label_smoothing", label_smoothing, 0.0 <= label_smoothing <= 1.0, "in [0, 1]")
    _check_number("temperature", temperature, math.isfinite(temperature) and temperature > 0, "a finite number > 0")
    if softcap is not None:
        _check_number("softcap", softcap, math.isfinite(softcap) and softcap > 0, "None or a finite number > 0")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or not -2**31 <= ignore_index < 2**31:
        raise TypeError(f"ignore_index must be a 32-bit integer (got {ignore_index!r})")
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, int) or workspace_bytes < 0:
        raise ValueError(f"workspace_bytes must be an integer ≥ 0 (got {workspace_bytes!r})")
    if e.dim() < 1 or e.shape[-1] < 1:
        raise ValueError(f"e must have shape (..., D) with D ≥ 1, got {tuple(e.shape)}")
    if c.dim() != 2 or c.shape[1] != e.shape[-1] or c.shape[0] < 1:
        raise ValueError(f"c must have shape (V, D) with V ≥ 1 and D = e.shape[-1] = {e.shape[-1]}, got {tuple(c.shape)}")
    if tuple(targets.shape) != tuple(e.shape[:-1]):
        raise ValueError(f"targets must have shape {tuple(e.shape[:-1])} (e's without its last dimension), "
                         f"got {tuple(targets.shape)}")
    if bias is not None and tuple(bias.shape) != (c.shape[0],):
        raise ValueError(f"bias must have shape ({c.shape[0]},) (one value per row of c), got {tuple(bias.shape)}")
    for name, x in (("c", c), ("targets", targets), ("bias", bias)):
        if x is not None and x.device != e.device:
            raise ValueError(f"{name} is on {x.device} but e is on {e.device}: every tensor must be on one device")
    if e.device.type not in ("cuda", "cpu"):
        raise ValueError(f"e is on {e.device}: calib_lce runs on CUDA and CPU tensors")
    if torch.is_autocast_enabled(e.device.type):
        dt = torch.get_autocast_dtype(e.device.type)
        e, c = e.to(dt), c.to(dt)
    if e.dtype != c.dtype:
        raise TypeError(f"e and c must have the same dtype (got {str(e.dtype).replace('torch.', '')} and "
                        f"{str(c.dtype).replace('torch.', '')})")
    lead = e.shape[:-1]
    grad = torch.is_grad_enabled() and (e.requires_grad or c.requires_grad or (bias is not None and bias.requires_grad))
    loss = _forward(e.reshape(-1, e.shape[-1]), c, targets.reshape(-1), bias, float(label_smoothing),
                    int(ignore_index), _capi.REDUCTIONS[reduction], float(temperature),
                    float(softcap) if softcap is not None else 0.0, int(workspace_bytes), grad)[0]
    return loss.reshape(lead) if reduction == "none" else loss
