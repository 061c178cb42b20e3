"""calib_lce.patch: a Hugging Face causal LM whose loss is the fused label-smoothed cross-entropy.

    calib_lce.patch(model, label_smoothing=0.1)     # LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM,
                                                    # Gemma2ForCausalLM (also inside PeftModel, DDP, torch.compile)

The patch replaces the instance's forward (not the class's), in the spirit of Liger's apply_liger_kernel_to_*:
  * with labels (or shift_labels): the decoder runs as before, then the loss is computed from the last hidden
    states and the LM head's weight by calib_lce.linear_cross_entropy — transformers' ForCausalLMLoss semantics
    (labels shifted left by one, ignore_index −100, mean over supervised tokens, or sum / num_items_in_batch when
    the Trainer passes num_items_in_batch for gradient accumulation) with label smoothing ε, temperature T and
    softcap (Gemma 2's final_logit_softcapping by default). In training the logits are never materialized:
    outputs.logits is None. In eval mode the logits are computed as the model does (they are returned), the loss
    by the fused op (the same loss as in training);
  * without labels: the original forward runs unchanged (generation, evaluation returning logits).
The signature and the return type (CausalLMOutputWithPast, or a tuple with return_dict=False) stay those of the
model, so transformers.Trainer, TRL's SFTTrainer and open-instruct's finetune.py call it unchanged. Patch before
handing the model to a trainer. Distributed: the op is local to each rank; under FSDP2 a separately sharded
lm_head is called through its module, so its weight is gathered as for its own forward.
"""
from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F

from .ops import _check_number, linear_cross_entropy, load_library

SUPPORTED = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "Gemma2ForCausalLM")


@dataclass
class _State:
    label_smoothing: float
    temperature: float
    softcap: Optional[float]  # None: none
    ignore_index: int
    reduction: str
    workspace_bytes: int
    family: str
    original: Optional[Callable]  # an instance-level forward that was there before the patch, else None
    enabled: bool = True


def _supported_classes():
    import transformers

    return {name: getattr(transformers, name) for name in SUPPORTED if hasattr(transformers, name)}


def _find(model) -> Tuple[torch.nn.Module, str]:
    """The supported causal LM in model (itself, or inside PeftModel / DDP / torch.compile wrappers)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    classes = _supported_classes()
    for module in model.modules():
        for name, cls in classes.items():
            if isinstance(module, cls):
                if type(module).forward is not cls.forward:
                    raise TypeError(f"{type(module).__name__} subclasses {name} with its own forward; calib_lce.patch "
                                    "would bypass it (call calib_lce.linear_cross_entropy in that forward instead)")
                return module, name
    raise TypeError(f"calib_lce.patch supports {', '.join(SUPPORTED)} (also wrapped by PeftModel, DDP or "
                    f"torch.compile); {type(model).__name__} contains none of them")


def patch(model, label_smoothing: float = 0.1, temperature: float = 1.0, softcap: Optional[float] = None, *,
          ignore_index: int = -100, reduction: str = "mean", workspace_bytes: int = 0):
    """Makes the model's loss the fused label-smoothed cross-entropy (see the module docstring); returns model.

    softcap: None = the model's own (Gemma 2: config.final_logit_softcapping; others: none); 0 = none; c > 0 = c.
    reduction: 'mean' (transformers' default) or 'sum' (the token sum, e.g. for open-instruct's --reduce_loss sum);
    either way a num_items_in_batch passed by the trainer gives sum / num_items_in_batch, as transformers does.
    Patching a patched model updates its options. The engine library is built now if it is missing, so a missing
    compiler shows before training starts.
    """
    _check_number("label_smoothing", label_smoothing, 0.0 <= label_smoothing <= 1.0, "in [0, 1]")
    _check_number("temperature", temperature, temperature == temperature and 0 < temperature < float("inf"),
                  "a finite number > 0")
    if softcap is not None:
        _check_number("softcap", softcap, 0 <= softcap < float("inf"), "None, 0 (none) or a finite number > 0")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an integer (got {ignore_index!r})")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum' (got {reduction!r})")
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, int) or workspace_bytes < 0:
        raise ValueError(f"workspace_bytes must be an integer ≥ 0 (got {workspace_bytes!r})")
    target, family = _find(model)
    cap = softcap
    if cap is None and family == "Gemma2ForCausalLM":
        cap = getattr(target.config, "final_logit_softcapping", None)
    cap = float(cap) if cap else None
    options = dict(label_smoothing=float(label_smoothing), temperature=float(temperature), softcap=cap,
                   ignore_index=ignore_index, reduction=reduction, workspace_bytes=workspace_bytes, family=family)
    state = target.__dict__.get("_calib_lce")
    if state is not None:
        for k, v in options.items():
            setattr(state, k, v)
        state.enabled = True
    else:
        target._calib_lce = _State(original=target.__dict__.get("forward"), **options)
        target.forward = types.MethodType(_forward, target)
    load_library()
    return model


def unpatch(model):
    """Restores the model's own forward; returns model. A forward wrapped by someone else after the patch (e.g.
    accelerate's autocast wrapper) cannot be unwrapped: then the patch is switched off and passes every call
    through to the original forward."""
    target, _ = _find(model)
    state = target.__dict__.get("_calib_lce")
    if state is None:
        return model
    bound = target.__dict__.get("forward")
    if getattr(bound, "__func__", None) is _forward and getattr(bound, "__self__", None) is target:
        if state.original is None:
            del target.forward
        else:
            target.forward = state.original
        del target._calib_lce
    else:
        state.enabled = False
    return model


def is_patched(model) -> bool:
    """Whether model's causal LM computes its loss with calib_lce (patched and not switched off)."""
    target, _ = _find(model)
    state = target.__dict__.get("_calib_lce")
    return state is not None and state.enabled


# ------------------------------------------------------------------------------------------- the patched forward
def _forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, inputs_embeds=None,
             labels=None, use_cache=None, logits_to_keep=0, **kwargs):
    state: _State = self._calib_lce
    if not state.enabled or (labels is None and kwargs.get("shift_labels") is None):
        original = state.original or type(self).forward.__get__(self, type(self))
        return original(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        past_key_values=past_key_values, inputs_embeds=inputs_embeds, labels=labels,
                        use_cache=use_cache, logits_to_keep=logits_to_keep, **kwargs)
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return_dict = kwargs.pop("return_dict", None)
    shift_labels = kwargs.pop("shift_labels", None)
    num_items_in_batch = kwargs.pop("num_items_in_batch", None)
    ignore_index = kwargs.pop("ignore_index", state.ignore_index)
    outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs)
    hidden = getattr(outputs, "last_hidden_state", None)
    if hidden is None:
        hidden = outputs[0]
    keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
    hidden = hidden[:, keep, :]
    loss = _causal_lm_loss(self, state, hidden, labels, shift_labels, num_items_in_batch, ignore_index)
    logits = None if self.training else _logits(self, state, hidden)
    out = CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=getattr(outputs, "past_key_values", None),
                                 hidden_states=getattr(outputs, "hidden_states", None),
                                 attentions=getattr(outputs, "attentions", None))
    if return_dict is None:
        return_dict = getattr(self.config, "return_dict", True)
    return out if return_dict is not False else out.to_tuple()


def _logits(self, state: _State, hidden):
    """The model's own logits (its LM head, and Gemma 2's final soft-cap from its config)."""
    logits = self.lm_head(hidden)
    cap = getattr(self.config, "final_logit_softcapping", None) if state.family == "Gemma2ForCausalLM" else None
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _causal_lm_loss(self, state: _State, hidden, labels, shift_labels, num_items_in_batch, ignore_index):
    if shift_labels is None:
        # transformers' ForCausalLMLoss: position t predicts labels[t + 1]; the last position has no target
        shift_labels = F.pad(labels.to(hidden.device), (0, 1), value=ignore_index)[..., 1:]
    shift_labels = shift_labels.to(hidden.device)
    reduction = "sum" if num_items_in_batch is not None else state.reduction

    def loss_of(head, h):
        weight, bias = head.weight, getattr(head, "bias", None)
        _refuse_dtensor(weight, h)
        return linear_cross_entropy(h, weight, shift_labels, bias=bias, label_smoothing=state.label_smoothing,
                                    ignore_index=ignore_index, reduction=reduction, temperature=state.temperature,
                                    softcap=state.softcap, workspace_bytes=state.workspace_bytes)

    loss = _through_module(_lm_head(self), loss_of, hidden)
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    return loss


def _lm_head(self):
    head = self.get_output_embeddings()
    # PEFT: lm_head listed in modules_to_save → the active adapter's trainable copy
    if hasattr(head, "modules_to_save") and hasattr(head, "original_module"):
        active = getattr(head, "active_adapters", None) or [getattr(head, "active_adapter", None)]
        active = active[0] if isinstance(active, (list, tuple)) else active
        disabled = getattr(head, "disable_adapters", False)
        head = head.original_module if disabled or active not in head.modules_to_save else head.modules_to_save[active]
    if hasattr(head, "lora_A") or hasattr(head, "base_layer"):
        raise TypeError("calib_lce.patch cannot fuse a LoRA adapter on lm_head (its low-rank update would have to "
                        "be merged into the weight each step); list lm_head in modules_to_save or leave it frozen")
    if not hasattr(head, "weight"):
        raise TypeError(f"the LM head ({type(head).__name__}) has no weight")
    return head


def _through_module(head, fn, hidden):
    """fn(module, hidden), run inside head's own call when FSDP manages it, so that its hooks gather the weight
    (and schedule its gradient's reduction) as for its forward; a plain call otherwise."""
    inner = None
    try:
        from torch.distributed.fsdp import FSDPModule  # FSDP2 (fully_shard)

        if isinstance(head, FSDPModule):
            inner = head
    except ImportError:
        pass
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel  # FSDP1

        if isinstance(head, FullyShardedDataParallel):
            inner = head.module
    except ImportError:
        pass
    if inner is None:
        return fn(head, hidden)
    saved = inner.__dict__.get("forward")

    def restore():
        if saved is not None:
            inner.forward = saved
        elif "forward" in inner.__dict__:
            del inner.forward

    def redirected(h, *args, **kwargs):
        restore()
        return fn(inner, h)

    inner.forward = redirected
    try:
        return head(hidden)
    finally:
        if inner.__dict__.get("forward") is redirected:
            restore()


def _refuse_dtensor(weight, hidden) -> None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return
    for name, x in (("lm_head.weight", weight), ("the hidden states", hidden)):
        if isinstance(x, DTensor):
            raise TypeError(f"{name} is a DTensor ({x.placements}): calib_lce's op is local to a rank; tensor or "
                            "sequence parallel LM heads are not supported (FSDP2 is: its weight is gathered for the "
                            "call)")
