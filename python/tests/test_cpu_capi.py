"""The ctypes bindings against the C API: struct layouts and constants against native/include/calib.h (printed by
a C program compiled here), the planner's documented plans through calib_lce_cuda_describe, the CPU engine's loss
and gradients against a float64 reference, and the mapping of calib_status to Python errors."""
import ctypes
import subprocess
import unittest

from _support import NATIVE, TMP, c_compiler, cpu_library, reference

from calib_lce import _capi

MiB = 1 << 20


def header_layout():
    """{'struct': size, 'struct.field': offset, 'struct.field.size': size, 'CONSTANT': value} as the C compiler sees calib.h."""
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "calib.h"', "int main(void) {"]
    for cname, cls in _capi.STRUCTS.items():
        lines.append(f'  printf("{cname} %zu\\n", sizeof({cname}));')
        for field, _ in cls._fields_:
            lines.append(f'  printf("{cname}.{field} %zu\\n", offsetof({cname}, {field}));')
            lines.append(f'  printf("{cname}.{field}.size %zu\\n", sizeof((({cname}*)0)->{field}));')
    for name in _capi.CONSTANTS:
        lines.append(f'  printf("{name} %d\\n", (int)({name}));')
    lines += ["  return 0;", "}"]
    src, exe = TMP / "layout.c", TMP / "layout"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([c_compiler(), "-std=c11", "-Wall", "-Werror", "-I", str(NATIVE / "include"), str(src), "-o",
                    str(exe)], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


class StructLayout(unittest.TestCase):
    @unittest.skipUnless(c_compiler(), "gcc not found: struct layouts not compared with calib.h")
    def test_structs_and_constants_match_the_header(self):
        c = header_layout()
        for cname, cls in _capi.STRUCTS.items():
            self.assertEqual(ctypes.sizeof(cls), c[cname], f"sizeof({cname})")
            for field, _ in cls._fields_:
                self.assertEqual(getattr(cls, field).offset, c[f"{cname}.{field}"], f"offsetof({cname}, {field})")
                self.assertEqual(getattr(cls, field).size, c[f"{cname}.{field}.size"], f"sizeof {cname}.{field}")
        for name, value in _capi.CONSTANTS.items():
            self.assertEqual(value, c[name], name)
        # the test walks what the module declares: make sure that is everything the op passes
        self.assertIn("calib_lce_args", c)
        self.assertGreaterEqual(len(_capi.LceArgs._fields_), 27)


def args_for(n, d, v, *, dtype=_capi.CALIB_BF16, grad=True, eps=0.1, softcap=0.0, workspace=0, bias=False,
             aligned=True):
    """calib_lce_args as a device call would give them (fake, never dereferenced pointers: the planner only
    reads their alignment)."""
    a = _capi.LceArgs()
    a.n, a.d, a.v, a.dtype = n, d, v, dtype
    a.device, a.memory = _capi.CALIB_DEVICE_CUDA, _capi.CALIB_MEM_DEVICE
    base = 0x10000 + (8 if not aligned else 0)
    a.e, a.c, a.targets, a.loss = base, base, 0x10000, 0x10000
    a.label_smoothing, a.temperature, a.softcap, a.workspace_bytes = eps, 1.0, softcap, workspace
    a.ignore_index = -100
    if grad:
        a.grad_e, a.grad_c = 0x10000, 0x10000
    if bias:
        a.bias = 0x10000
        if grad:
            a.grad_bias = 0x10000
    return a


def device(sms=132, cc_major=9, blas=True):
    return _capi.CudaDeviceDesc(sms, cc_major, 1 if blas else 0)


def options(gemm=_capi.CALIB_LCE_GEMM_AUTO, skip=0.0):
    o = _capi.CudaOptions()
    o.gemm_impl, o.skip_threshold = gemm, skip
    return o


def pad256(v):
    return (v + 255) // 256 * 256


class Planner(unittest.TestCase):
    """calib_lce_cuda_describe through ctypes, against the rules documented in linear_ce_plan.{h,cc}."""

    @classmethod
    def setUpClass(cls):
        cls.lib = cpu_library()

    def plan(self, a, valid=None, dev=None, opts=None):
        return self.lib.describe(a, opts or options(), dev or device(), a.n if valid is None else valid)

    def test_bf16_on_hopper_keeps_logits_in_registers_with_a_56_mib_slab(self):
        N, D, V = 8192, 2304, 256000
        p = self.plan(args_for(N, D, V))
        self.assertEqual((p["engine"], p["mode"], p["logits"], p["gemm"]), ("cublas", "streamed", "registers", "cublas"))
        self.assertEqual(p["block_rows"], N)
        self.assertEqual(p["block_cols"], (56 * MiB) // (2 * N) // 256 * 256)  # bf16 gradient blocks
        self.assertLess(p["scratch_bytes"], 64 * MiB)
        cost = lambda s: -(-(N // 128) * s // 132) * -(-(V // 256) // s)  # waves × tiles per CTA, 132 SMs
        self.assertEqual(p["splits"], min(range(1, 65), key=lambda s: (cost(s), s)))
        fwd = self.plan(args_for(N, D, V, grad=False))
        self.assertEqual((fwd["mode"], fwd["logits"]), ("forward", "registers"))

    def test_the_fp32_slab_off_hopper_and_for_d_not_a_multiple_of_8(self):
        N, V = 4096, 50257
        for label, D, dev, aligned in (("A100", 1024, device(108, 8), True), ("D = 1004", 1004, device(), True),
                                       ("misaligned", 1024, device(), False)):
            p = self.plan(args_for(N, D, V, aligned=aligned), dev=dev)
            self.assertEqual((p["engine"], p["logits"], p["splits"]), ("cublas", "slab", 0), label)
            self.assertEqual(p["block_cols"], min(pad256(V), (56 * MiB) // (4 * N) // 256 * 256), label)

    def test_chunked_mode_packs_logits_without_a_softcap(self):
        N, D, V, ws = 8192, 2304, 256000, 1 << 30
        packed = self.plan(args_for(N, D, V, workspace=ws))
        self.assertEqual((packed["mode"], packed["logits"]), ("chunked", "packed"))
        row = pad256(V) * 2 + -(-V // 256) * 4
        self.assertEqual(packed["block_rows"], ws // row // 128 * 128)
        capped = self.plan(args_for(N, D, V, workspace=ws, softcap=30.0))
        self.assertEqual((capped["mode"], capped["logits"], capped["block_rows"]),
                         ("chunked", "slab", ws // (pad256(V) * 4) // 128 * 128))
        self.assertEqual(self.plan(args_for(N, D, V, workspace=1024 * pad256(V) * 4 - 1))["mode"], "streamed")

    def test_fused_kernels_for_fp32_skipping_and_mostly_ignored_tokens(self):
        N, D, V = 3000, 512, 32000
        f32 = self.plan(args_for(N, D, V, dtype=_capi.CALIB_F32))
        self.assertEqual((f32["engine"], f32["gemm"]), ("fused", "mma.sync"))
        skip = self.plan(args_for(N, D, V), opts=options(skip=-1.0))
        self.assertEqual((skip["engine"], skip["gemm"]), ("fused", "wgmma"))
        # auto takes cuBLAS only when at least a third of the tokens are valid
        self.assertEqual(self.plan(args_for(N, D, V), valid=1000)["engine"], "cublas")
        self.assertEqual(self.plan(args_for(N, D, V), valid=999)["engine"], "fused")
        self.assertEqual(self.plan(args_for(N, D, V), dev=device(blas=False))["engine"], "fused")
        fused = self.plan(args_for(N, D, V), opts=options(gemm=_capi.CALIB_LCE_GEMM_FUSED))
        self.assertEqual((fused["engine"], fused["mode"]), ("fused", "streamed"))
        self.assertEqual((fused["block_rows"] % 128, fused["block_cols"] % 256), (0, 0))
        self.assertLessEqual(fused["block_rows"] * fused["block_cols"] * 2, 32 * MiB)

    def test_the_workspace_bound_holds_every_valid_count(self):
        for N, D, V, dtype, bias in ((300, 40, 3000, _capi.CALIB_F32, False), (300, 40, 3000, _capi.CALIB_BF16, True)):
            a = args_for(N, D, V, dtype=dtype, bias=bias)
            bound = self.plan(a)["workspace_bound"]
            sizes = [self.plan(a, valid=k)["scratch_bytes"] for k in range(N + 1)]
            self.assertLessEqual(max(sizes), bound)
            self.assertEqual(max(sizes), bound)

    def test_options_the_inputs_cannot_take_raise_named_errors(self):
        with self.assertRaisesRegex(TypeError, r"impl 'cublas' needs bfloat16"):
            self.plan(args_for(8, 16, 32, dtype=_capi.CALIB_F32), opts=options(gemm=_capi.CALIB_LCE_GEMM_CUBLAS))
        with self.assertRaisesRegex(RuntimeError, r"impl 'cublas': cuBLAS could not be loaded"):
            self.plan(args_for(8, 16, 32), opts=options(gemm=_capi.CALIB_LCE_GEMM_CUBLAS), dev=device(blas=False))
        with self.assertRaisesRegex(ValueError, r"valid_count must be in \[0, N = 8\] \(got 9\)"):
            self.plan(args_for(8, 16, 32), valid=9)
        with self.assertRaisesRegex(ValueError, r"label_smoothing must be in \[0, 1\]"):
            self.plan(args_for(8, 16, 32, eps=1.5))


class CpuEngine(unittest.TestCase):
    """The CPU engine through the same structs the PyTorch op fills, against the float64 reference."""

    @classmethod
    def setUpClass(cls):
        try:
            import numpy  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("numpy not installed: the CPU engine is not compared with the reference")
        cls.lib = cpu_library()

    def run_engine(self, E, C, t, *, bias=None, eps=0.0, ignore_index=-100, temperature=1.0, softcap=0.0,
                   reduction="mean", grad_output=None, grad=True):
        import numpy as np

        N, D = E.shape
        V = C.shape[0]
        E, C = np.ascontiguousarray(E, np.float32), np.ascontiguousarray(C, np.float32)
        t = np.ascontiguousarray(t, np.int32)
        loss = np.zeros(N if reduction == "none" else 1, np.float32)
        dE, dC, db = np.zeros((N, D), np.float32), np.zeros((V, D), np.float32), np.zeros(V, np.float32)
        b = np.ascontiguousarray(bias, np.float32) if bias is not None else None
        g = np.ascontiguousarray(np.atleast_1d(grad_output), np.float32) if grad_output is not None else None
        a = _capi.LceArgs()
        a.n, a.d, a.v, a.dtype = N, D, V, _capi.CALIB_F32
        a.device, a.memory = _capi.CALIB_DEVICE_CPU, _capi.CALIB_MEM_HOST
        a.e, a.c, a.targets, a.loss = E.ctypes.data, C.ctypes.data, t.ctypes.data, loss.ctypes.data
        a.bias = b.ctypes.data if b is not None else None
        a.label_smoothing, a.ignore_index, a.reduction = eps, ignore_index, _capi.REDUCTIONS[reduction]
        a.temperature, a.softcap = temperature, softcap
        a.grad_output = g.ctypes.data if g is not None else None
        if grad:
            a.grad_e, a.grad_c = dE.ctypes.data, dC.ctypes.data
            a.grad_bias = db.ctypes.data if b is not None else None
        self.lib.linear_cross_entropy(a)
        return {"loss": loss if reduction == "none" else loss[0], "dE": dE, "dC": dC, "dbias": db,
                "valid": a.valid_count}

    def inputs(self, N, D, V, seed, ignore=0.0, ignore_index=-100):
        import numpy as np

        r = np.random.default_rng(seed)
        E = r.standard_normal((N, D)).astype(np.float32)
        C = (r.standard_normal((V, D)) / np.sqrt(D)).astype(np.float32)
        t = r.integers(0, V, N)
        t[r.random(N) < ignore] = ignore_index
        return E, C, t

    def assert_close(self, got, want, tol, what):
        import numpy as np

        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
        self.assertLessEqual(err, tol, f"{what}: relative error {err:.2e}")

    def test_loss_and_gradients_against_the_float64_reference(self):
        import numpy as np

        cases = [
            dict(name="plain mean, ε = 0", N=37, D=19, V=301, opts={}),
            dict(name="ε = 0.1, ignored tokens", N=60, D=20, V=260, ignore=0.4, opts=dict(eps=0.1)),
            dict(name="temperature, sum, g = 0.7", N=40, D=24, V=200, opts=dict(eps=0.05, temperature=2.0,
                                                                            reduction="sum", grad_output=0.7)),
            dict(name="softcap + temperature + bias", N=30, D=12, V=259, bias=True,
                 opts=dict(eps=0.2, softcap=5.0, temperature=0.7)),
            dict(name="none with per-token gradient", N=31, D=10, V=150, ignore=0.3,
                 opts=dict(eps=0.1, reduction="none"), per_token=True),
            dict(name="custom ignore_index", N=25, D=9, V=70, ignore=0.4, ignore_index=3, opts=dict(eps=0.1)),
        ]
        for i, case in enumerate(cases):
            ii = case.get("ignore_index", -100)
            E, C, t = self.inputs(case["N"], case["D"], case["V"], 10 + i, case.get("ignore", 0.0), ii)
            opts = dict(case["opts"], ignore_index=ii)
            if case.get("bias"):
                opts["bias"] = np.random.default_rng(i).standard_normal(case["V"]).astype(np.float32) * 0.5
            if case.get("per_token"):
                opts["grad_output"] = np.random.default_rng(i).standard_normal(case["N"]).astype(np.float32)
            got = self.run_engine(E, C, t, **opts)
            want = reference(E, C, t, **opts)
            with self.subTest(case["name"]):
                self.assertEqual(got["valid"], want["valid"])
                self.assert_close(got["loss"], want["loss"], 1e-5, "loss")
                self.assert_close(got["dE"], want["dE"], 1e-4, "dE")
                self.assert_close(got["dC"], want["dC"], 1e-4, "dC")
                if "bias" in opts:
                    self.assert_close(got["dbias"], want["dbias"], 1e-4, "dbias")

    def test_mean_over_no_valid_token_is_nan_with_zero_gradients(self):
        import numpy as np

        E, C, t = self.inputs(6, 4, 9, 3)
        got = self.run_engine(E, C, np.full(6, -100), eps=0.1)
        self.assertTrue(np.isnan(got["loss"]))
        self.assertEqual(got["valid"], 0)
        self.assertFalse(got["dE"].any() or got["dC"].any())

    def test_statuses_become_python_errors_with_the_engines_message(self):
        import numpy as np

        E, C, t = self.inputs(4, 8, 32, 5)
        t[1] = 40
        with self.assertRaisesRegex(ValueError, r"targets\[1\] = 40 is outside \[0, 32\) and is not ignore_index \(-100\)"):
            self.run_engine(E, C, t)
        t[1] = 2
        with self.assertRaisesRegex(ValueError, r"label_smoothing must be in \[0, 1\] \(got 1.5\)"):
            self.run_engine(E, C, t, eps=1.5)
        with self.assertRaisesRegex(ValueError, r"temperature must be a finite number > 0"):
            self.run_engine(E, C, t, temperature=0.0)
        a = _capi.LceArgs()
        a.n, a.d, a.v, a.dtype = 1, 1, 1, 7
        with self.assertRaisesRegex(TypeError, r"unknown dtype 7"):
            self.lib.linear_cross_entropy(a)
        a.dtype, a.device, a.memory = _capi.CALIB_F32, _capi.CALIB_DEVICE_CUDA, _capi.CALIB_MEM_HOST
        one = np.ones(1, np.float32)
        zero = np.zeros(1, np.int32)
        a.e, a.c, a.targets, a.loss, a.temperature = one.ctypes.data, one.ctypes.data, zero.ctypes.data, one.ctypes.data, 1.0
        with self.assertRaisesRegex(RuntimeError, r"no CUDA path"):  # CALIB_ERR_DEVICE in a CPU-only build
            self.lib.linear_cross_entropy(a)
        with self.assertRaisesRegex(RuntimeError, r"built without CUDA"):
            self.lib.workspace_size(a, _capi.CudaOptions())

    def test_error_mapping(self):
        self.assertIsInstance(_capi.error_for(_capi.CALIB_ERR_TYPE, "x"), TypeError)
        self.assertIsInstance(_capi.error_for(_capi.CALIB_ERR_RANGE, "x"), ValueError)
        self.assertIsInstance(_capi.error_for(_capi.CALIB_ERR_DEVICE, "x"), RuntimeError)
        self.assertIsInstance(_capi.error_for(_capi.CALIB_ERR_RUNTIME, "x"), RuntimeError)
        self.assertEqual(str(_capi.error_for(_capi.CALIB_ERR_RANGE, "gradOutput[3] is not finite")),
                         "grad_output[3] is not finite")
        info = self.lib.info()
        self.assertFalse(info["cuda_built"])
        self.assertIn("built without CUDA", info["cuda_message"])


if __name__ == "__main__":
    unittest.main()
