"""Shared by the CPU tests: paths, the C compiler, one CPU-only build of the engine per test run, and an
independent float64 reference of the loss (numpy, written from the definition in native/include/calib.h)."""
from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent
REPO = PYTHON_DIR.parent
NATIVE = REPO / "native"
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

_tmp = tempfile.TemporaryDirectory(prefix="calib_lce_test_")
TMP = Path(_tmp.name)
# where the tests' engine builds go (the package's own loader looks here too: see calib_lce.build.library_dir)
LIB_DIR = TMP / "lib"
os.environ["CALIB_LCE_LIB_DIR"] = str(LIB_DIR)


def c_compiler():
    return shutil.which(os.environ.get("CC") or "gcc") or shutil.which("cc")


@functools.lru_cache(maxsize=None)
def cpu_library():
    """The CPU-only engine built by the package's build script from native/ (once per test run)."""
    from calib_lce import _capi, build

    with contextlib.redirect_stderr(io.StringIO()):
        return _capi.Library(build.ensure("cpu", out=LIB_DIR))


def reference(E, C, targets, *, bias=None, eps=0.0, ignore_index=-100, temperature=1.0, softcap=0.0,
              reduction="mean", grad_output=None):
    """float64: loss (scalar or per token), dE, dC, dbias of reduce(loss)·g, and the valid count."""
    import numpy as np

    E = np.asarray(E, np.float64)
    C = np.asarray(C, np.float64)
    N, V = E.shape[0], C.shape[0]
    z = E @ C.T + (np.asarray(bias, np.float64) if bias is not None else 0.0)
    u = z / temperature
    if softcap > 0:
        t = np.tanh(u / softcap)
        s, kappa = softcap * t, 1 - t * t
    else:
        s, kappa = u, np.ones_like(u)
    m = s.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(s - m).sum(axis=1, keepdims=True)))[:, 0]
    valid = targets != ignore_index
    y = np.where(valid, targets, 0)
    per = temperature * (lse - (1 - eps) * s[np.arange(N), y] - eps / V * s.sum(axis=1))
    per = np.where(valid, per, 0.0)
    count = int(valid.sum())
    if reduction == "none":
        loss = per
        w = np.asarray(grad_output, np.float64) if grad_output is not None else np.ones(N)
    else:
        g = 1.0 if grad_output is None else float(grad_output)
        loss = per.sum() / count if reduction == "mean" and count else (per.sum() if reduction == "sum" else np.nan)
        w = np.full(N, g / count if reduction == "mean" and count else g)
    w = np.where(valid, w, 0.0)
    p = np.exp(s - lse[:, None])
    q = np.full_like(p, eps / V)
    q[np.arange(N), y] += 1 - eps
    G = (p - q) * kappa * w[:, None]  # d(loss)/dz: T·(p − q)·κ/T
    G[~valid] = 0
    return {"loss": loss, "dE": G @ C, "dC": G.T @ E, "dbias": G.sum(axis=0), "valid": count}
