"""ctypes bindings of the engine's C API (native/include/calib.h): the structs field for field, the status codes,
and a thin Library wrapper whose calls raise Python errors carrying the engine's message:
CALIB_ERR_TYPE → TypeError, CALIB_ERR_RANGE → ValueError, CALIB_ERR_DEVICE / CALIB_ERR_RUNTIME → RuntimeError.

Pure Python (no torch, no numpy): tests check every size and offset against the header with a C compiler.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading
from pathlib import Path
from typing import Dict, Optional

# ------------------------------------------------------------------------------------------- enums (calib.h)
CALIB_OK, CALIB_ERR_TYPE, CALIB_ERR_RANGE, CALIB_ERR_DEVICE, CALIB_ERR_RUNTIME = 0, 1, 2, 3, 4
CALIB_F32, CALIB_BF16 = 0, 1
CALIB_REDUCE_MEAN, CALIB_REDUCE_SUM, CALIB_REDUCE_NONE = 0, 1, 2
CALIB_DEVICE_CPU, CALIB_DEVICE_CUDA = 0, 1
CALIB_IMPL_FUSED, CALIB_IMPL_NAIVE = 0, 1
CALIB_MEM_HOST, CALIB_MEM_DEVICE = 0, 1
CALIB_LCE_GEMM_AUTO, CALIB_LCE_GEMM_FUSED, CALIB_LCE_GEMM_CUBLAS = 0, 1, 2
CALIB_ERRLEN = 512
# Every constant above, by its C name (the struct test compares them with the header's values).
CONSTANTS = {k: v for k, v in dict(globals()).items() if k.startswith("CALIB_")}

REDUCTIONS = {"mean": CALIB_REDUCE_MEAN, "sum": CALIB_REDUCE_SUM, "none": CALIB_REDUCE_NONE}
ENGINES = ("fused", "cublas")
MODES = ("forward", "streamed", "chunked")
LOGITS = ("slab", "registers", "packed")

_c_enum = ctypes.c_int  # a C enum is an int on every ABI the engine builds for
_p = ctypes.c_void_p


# ------------------------------------------------------------------------------------------- structs (calib.h)
class LceArgs(ctypes.Structure):
    """calib_lce_args"""
    _fields_ = [
        ("n", ctypes.c_int64), ("d", ctypes.c_int64), ("v", ctypes.c_int64),
        ("dtype", _c_enum), ("device", _c_enum), ("memory", _c_enum),
        ("e", _p), ("c", _p), ("targets", _p), ("bias", _p),
        ("label_smoothing", ctypes.c_float), ("ignore_index", ctypes.c_int32), ("reduction", _c_enum),
        ("temperature", ctypes.c_float), ("softcap", ctypes.c_float), ("impl", _c_enum),
        ("workspace_bytes", ctypes.c_int64), ("threads", ctypes.c_int32), ("deterministic", ctypes.c_int32),
        ("check_finite", ctypes.c_int32),
        ("loss", _p), ("lse", _p),
        ("grad_output", _p), ("grad_e", _p), ("grad_c", _p), ("grad_bias", _p),
        ("valid_count", ctypes.c_int64),
    ]


class Info(ctypes.Structure):
    """calib_info"""
    _fields_ = [("cuda_built", ctypes.c_int32), ("cuda_devices", ctypes.c_int32),
                ("cuda_message", ctypes.c_char * 256), ("cpu_threads", ctypes.c_int32)]


class CudaOptions(ctypes.Structure):
    """calib_lce_cuda_options"""
    _fields_ = [("skip_threshold", ctypes.c_float), ("gemm_impl", ctypes.c_int32), ("stream", _p),
                ("workspace", _p), ("workspace_size", ctypes.c_int64)]


class CudaDeviceDesc(ctypes.Structure):
    """calib_cuda_device_desc"""
    _fields_ = [("sms", ctypes.c_int32), ("cc_major", ctypes.c_int32), ("blas_available", ctypes.c_int32)]


class LcePlan(ctypes.Structure):
    """calib_lce_cuda_plan"""
    _fields_ = [("engine", ctypes.c_int32), ("mode", ctypes.c_int32), ("logits", ctypes.c_int32),
                ("wgmma", ctypes.c_int32), ("splits", ctypes.c_int32), ("grad_splits", ctypes.c_int32),
                ("block_rows", ctypes.c_int64), ("block_cols", ctypes.c_int64),
                ("scratch_bytes", ctypes.c_int64), ("workspace_bound", ctypes.c_int64)]


class CudaStats(ctypes.Structure):
    """calib_cuda_stats"""
    _fields_ = [("scratch_capacity_bytes", ctypes.c_int64), ("scratch_peak_bytes", ctypes.c_int64),
                ("last_scratch_bytes", ctypes.c_int64), ("last_mode", ctypes.c_int32),
                ("last_splits", ctypes.c_int32), ("last_block_rows", ctypes.c_int64),
                ("last_block_cols", ctypes.c_int64), ("last_tiles", ctypes.c_int64),
                ("last_tiles_skipped", ctypes.c_int64), ("last_gemm", ctypes.c_int32), ("reserved", ctypes.c_int32)]


# C struct name → its ctypes mirror (the struct test walks this).
STRUCTS = {"calib_lce_args": LceArgs, "calib_info": Info, "calib_lce_cuda_options": CudaOptions,
           "calib_cuda_device_desc": CudaDeviceDesc, "calib_lce_cuda_plan": LcePlan, "calib_cuda_stats": CudaStats}


# ------------------------------------------------------------------------------------------- errors
_ERRORS = {CALIB_ERR_TYPE: TypeError, CALIB_ERR_RANGE: ValueError}
# The engine names options as the JavaScript facade does; Python callers know them in snake_case.
_NAMES = {"labelSmoothing": "label_smoothing", "ignoreIndex": "ignore_index", "workspaceBytes": "workspace_bytes",
          "gradOutput": "grad_output", "validCount": "valid_count"}
_NAME_RE = re.compile(r"\b(" + "|".join(_NAMES) + r")\b")


def error_for(status: int, message: str) -> Exception:
    """The Python exception of a calib_status and the engine's message."""
    msg = _NAME_RE.sub(lambda m: _NAMES[m.group(1)], message) or f"calib_status {status}"
    return _ERRORS.get(status, RuntimeError)(msg)


def _check(status: int, err: ctypes.Array) -> None:
    if status != CALIB_OK:
        raise error_for(status, err.value.decode("utf-8", "replace"))


# ------------------------------------------------------------------------------------------- the library
class Library:
    """One loaded build of the C API. Thread-safe: every call has its own error buffer (the engine serializes
    CUDA calls itself)."""

    def __init__(self, path: os.PathLike):
        self.path = Path(path)
        lib = ctypes.CDLL(str(self.path))  # RTLD_LOCAL: nothing of it leaks into other libraries
        self._lib = lib
        args, opts, err = ctypes.POINTER(LceArgs), ctypes.POINTER(CudaOptions), ctypes.c_char_p
        lib.calib_linear_cross_entropy.restype = ctypes.c_int
        lib.calib_linear_cross_entropy.argtypes = [args, err]
        lib.calib_get_info.restype = None
        lib.calib_get_info.argtypes = [ctypes.POINTER(Info)]
        lib.calib_lce_cuda_describe.restype = ctypes.c_int
        lib.calib_lce_cuda_describe.argtypes = [args, opts, ctypes.POINTER(CudaDeviceDesc), ctypes.c_int64,
                                                ctypes.POINTER(LcePlan), err]
        self.cuda_built = hasattr(lib, "calib_linear_cross_entropy_cuda")
        if self.cuda_built:
            lib.calib_linear_cross_entropy_cuda.restype = ctypes.c_int
            lib.calib_linear_cross_entropy_cuda.argtypes = [args, opts, err]
            lib.calib_lce_cuda_workspace_size.restype = ctypes.c_int
            lib.calib_lce_cuda_workspace_size.argtypes = [args, opts, ctypes.POINTER(ctypes.c_int64), err]
            lib.calib_cuda_get_stats.restype = None
            lib.calib_cuda_get_stats.argtypes = [ctypes.POINTER(CudaStats)]

    def info(self) -> Dict[str, object]:
        i = Info()
        self._lib.calib_get_info(ctypes.byref(i))
        return {"cuda_built": bool(i.cuda_built), "cuda_devices": i.cuda_devices,
                "cuda_message": i.cuda_message.decode("utf-8", "replace"), "cpu_threads": i.cpu_threads}

    def linear_cross_entropy(self, args: LceArgs) -> None:
        """calib_linear_cross_entropy (host memory; CPU, or CUDA with copies)."""
        err = ctypes.create_string_buffer(CALIB_ERRLEN)
        _check(self._lib.calib_linear_cross_entropy(ctypes.byref(args), err), err)

    def _need_cuda(self, what: str) -> None:
        if not self.cuda_built:
            raise RuntimeError(f"{what}: {self.path.name} was built without CUDA (build the CUDA library: "
                               "python -m calib_lce.build)")

    def linear_cross_entropy_cuda(self, args: LceArgs, options: CudaOptions) -> None:
        self._need_cuda("calib_linear_cross_entropy_cuda")
        err = ctypes.create_string_buffer(CALIB_ERRLEN)
        _check(self._lib.calib_linear_cross_entropy_cuda(ctypes.byref(args), ctypes.byref(options), err), err)

    def workspace_size(self, args: LceArgs, options: CudaOptions) -> int:
        """calib_lce_cuda_workspace_size: device scratch bytes the call may need."""
        self._need_cuda("calib_lce_cuda_workspace_size")
        err = ctypes.create_string_buffer(CALIB_ERRLEN)
        out = ctypes.c_int64(0)
        _check(self._lib.calib_lce_cuda_workspace_size(ctypes.byref(args), ctypes.byref(options), ctypes.byref(out),
                                                       err), err)
        return int(out.value)

    def describe(self, args: LceArgs, options: Optional[CudaOptions], device: CudaDeviceDesc,
                 valid_count: int) -> Dict[str, object]:
        """calib_lce_cuda_describe: the plan of a CUDA call, computed without a GPU (every build has it)."""
        err = ctypes.create_string_buffer(CALIB_ERRLEN)
        out = LcePlan()
        opt = ctypes.byref(options) if options is not None else None
        _check(self._lib.calib_lce_cuda_describe(ctypes.byref(args), opt, ctypes.byref(device), int(valid_count),
                                                 ctypes.byref(out), err), err)
        return {
            "engine": ENGINES[out.engine], "mode": MODES[out.mode], "logits": LOGITS[out.logits],
            "gemm": "cublas" if out.engine == 1 else ("wgmma" if out.wgmma else "mma.sync"),
            "splits": out.splits, "grad_splits": out.grad_splits, "block_rows": out.block_rows,
            "block_cols": out.block_cols, "scratch_bytes": out.scratch_bytes, "workspace_bound": out.workspace_bound,
        }

    def cuda_stats(self) -> Dict[str, int]:
        self._need_cuda("calib_cuda_get_stats")
        s = CudaStats()
        self._lib.calib_cuda_get_stats(ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in CudaStats._fields_}


# ------------------------------------------------------------------------------------------- loading
_loaded: Dict[str, Library] = {}
_load_lock = threading.Lock()


def load(variant: str = "cuda", *, arch: Optional[str] = None, out: Optional[os.PathLike] = None) -> Library:
    """The C API, built first when needed (calib_lce.build.ensure). variant 'cuda' needs nvcc to build; 'cpu'
    takes a fresh CUDA build when there is one (it has the CPU engine too), else builds the CPU-only library."""
    from . import build

    with _load_lock:
        key = f"{variant}:{out}"
        if key in _loaded:
            return _loaded[key]
        if variant == "cpu" and build.staleness("cuda", out=out) is None:
            path = build.library_dir(out) / build.LIBRARY_NAMES["cuda"]
        else:
            path = build.ensure(variant, out=out, arch=arch)
        lib = Library(path)
        _loaded[key] = lib
        return lib
