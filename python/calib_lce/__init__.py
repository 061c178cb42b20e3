"""calib_lce: the Calibration Lab engine's fused linear + label-smoothed cross-entropy for PyTorch.

    import calib_lce
    loss = calib_lce.linear_cross_entropy(hidden, lm_head.weight, targets, label_smoothing=0.1)
    calib_lce.patch(model, label_smoothing=0.1)     # Llama, Qwen2, Mistral, Gemma 2 from transformers

The PyTorch parts (linear_cross_entropy, patch, unpatch, is_patched) load on first use, so `import calib_lce`
works without torch (the build script and the ctypes bindings are pure Python). The engine's shared library is
built from the repository's native/ sources on first use when missing or stale (python -m calib_lce.build).
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["linear_cross_entropy", "patch", "unpatch", "is_patched", "load_library", "__version__"]

_LAZY = {"linear_cross_entropy": "ops", "load_library": "ops", "patch": "hf", "unpatch": "hf", "is_patched": "hf"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calib_lce' has no attribute {name!r}")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"calib_lce.{name} needs PyTorch (pip install torch); the build script "
                          "(python -m calib_lce.build) and the ctypes bindings (calib_lce._capi) work without it") from exc
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
