"""The build script up to the missing GPU: architecture rules, the errors when nvcc is missing, the exact commands
of a CUDA build (with a stand-in toolkit, so this runs where there is no nvcc), a real CPU-only build with its
freshness rules (a source edit recompiles that source alone), and — where nvcc exists — the real CUDA build, which
must link with no undefined symbol, export only the C API and load on a machine without a GPU."""
import io
import os
import shutil
import stat
import subprocess
import unittest
from contextlib import redirect_stderr
from pathlib import Path

from _support import NATIVE, TMP

from calib_lce import _capi, build


class Architectures(unittest.TestCase):
    def test_capabilities_map_to_nvcc_targets(self):
        self.assertEqual(build.arch_of_capability(9, 0), "90a")  # wgmma and TMA need the 'a' target
        self.assertEqual(build.arch_of_capability(8, 0), "80")
        self.assertEqual(build.arch_of_capability(8, 9), "89")
        self.assertEqual(build.arch_of_capability(10, 0), "100")
        with self.assertRaisesRegex(build.BuildError, r"compute capability 7.5 is too old"):
            build.arch_of_capability(7, 5)

    def test_arch_arguments_are_normalized_and_checked(self):
        self.assertEqual(build.normalize_archs(None), ["90a"])
        self.assertEqual(build.normalize_archs("sm_90a, 8.0,90a"), ["90a", "80"])
        self.assertEqual(build.normalize_archs("compute_86"), ["86"])
        for bad in ("75", "abc", "9.x", ""):
            with self.assertRaises(build.BuildError, msg=bad):
                build.normalize_archs(bad)


def fake_toolkit(root: Path) -> Path:
    """A stand-in CUDA toolkit: an nvcc that only answers --version, and an (empty) libcudart_static.a."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "lib64").mkdir(exist_ok=True)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.88'\n")
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IEXEC)
    (root / "lib64" / "libcudart_static.a").write_bytes(b"")
    return nvcc


class CommandsAndErrors(unittest.TestCase):
    def test_a_missing_nvcc_is_named(self):
        with self.assertRaisesRegex(build.BuildError, r"^nvcc not found: tried /nonexistent/nvcc\. .*--cpu"):
            build.plan("cuda", nvcc="/nonexistent/nvcc", out=TMP / "none")
        err = io.StringIO()
        with redirect_stderr(err):
            code = build.main(["--nvcc", "/nonexistent/nvcc", "--dry-run", "--out", str(TMP / "none")])
        self.assertEqual(code, 2)
        self.assertIn("error: nvcc not found: tried /nonexistent/nvcc", err.getvalue())
        # the CPU variant needs no nvcc
        self.assertEqual(build.plan("cpu", nvcc="/nonexistent/nvcc", out=TMP / "none").variant, "cpu")

    def test_a_toolkit_without_the_static_runtime_is_named(self):
        nvcc = fake_toolkit(TMP / "no-cudart")
        (TMP / "no-cudart" / "lib64" / "libcudart_static.a").unlink()
        with self.assertRaisesRegex(build.BuildError, r"libcudart_static\.a not found next to"):
            build.cudart_static_dir(str(nvcc))

    def test_missing_native_sources_are_named(self):
        with self.assertRaisesRegex(build.BuildError, r"native sources not found: .*pip install -e python/"):
            build.find_native(TMP / "nowhere")

    def test_cuda_build_commands(self):
        nvcc = fake_toolkit(TMP / "toolkit")
        p = build.plan("cuda", nvcc=str(nvcc), arch="90a,80", march="x86-64-v3", out=TMP / "plan")
        by_source = {str(c.source.relative_to(NATIVE / "src")): c for c in p.compiles}
        expect = sorted(f"{d}/{n}" for d in ("common", "loss", "cuda") for n in os.listdir(NATIVE / "src" / d)
                        if n.endswith(".cu") or (n.endswith(".cc") and d != "cuda"))
        self.assertEqual(sorted(by_source), expect)  # every loss, common and cuda source; nothing of model/ or napi/
        for rel, c in by_source.items():
            self.assertEqual(c.command[-4:], ["-c", str(NATIVE / "src" / rel), "-o", str(c.object)])
            self.assertIn("-DCALIB_WITH_CUDA=1", c.command)
            self.assertIn(str(NATIVE / "include"), c.command)
            if rel.endswith(".cu"):
                self.assertEqual(c.command[0], str(nvcc))
                self.assertEqual(c.command[1:7], ["-std=c++17", "-O3", "--use_fast_math", "-lineinfo", "-Xcompiler",
                                                  "-fPIC"])
                gencode = c.command[c.command.index("-gencode"):c.command.index("-c")]
                self.assertEqual(gencode, ["-gencode", "arch=compute_90a,code=sm_90a", "-gencode",
                                           "arch=compute_80,code=sm_80"])
            else:
                self.assertIn("-fPIC", c.command)
                self.assertIn("-march=x86-64-v3", c.command)
        self.assertEqual(len({c.object for c in p.compiles}), len(p.compiles))
        link = p.link
        self.assertEqual(link[1:4], ["-shared", "-o", str(p.library)])
        self.assertEqual(p.library.name, "libcalib_lce_cuda.so")
        for flag in ("-lcudart_static", "-Wl,--no-undefined", "-Wl,--exclude-libs,ALL",
                     f"-Wl,--version-script={p.out / 'exports.map'}"):
            self.assertIn(flag, link)
        self.assertEqual(link[link.index("-L") + 1], str(TMP / "toolkit" / "lib64"))
        self.assertEqual(p.stamp["archs"], ["90a", "80"])
        self.assertEqual(p.stamp["nvcc"], "Cuda compilation tools, release 13.0, V13.0.88")
        # a dry run prints the same commands and touches nothing
        out = io.StringIO()
        from contextlib import redirect_stdout

        with redirect_stdout(out):
            code = build.main(["--nvcc", str(nvcc), "--arch", "90a,80", "--march", "x86-64-v3", "--dry-run",
                               "--out", str(TMP / "plan")])
        self.assertEqual(code, 0)
        self.assertEqual(out.getvalue().splitlines()[-1], " ".join(link))
        self.assertFalse((TMP / "plan").exists())

    def test_cpu_build_commands(self):
        p = build.plan("cpu", out=TMP / "plan-cpu")
        self.assertTrue(all(c.tool == "c++" and "-DCALIB_WITH_CUDA=0" in c.command for c in p.compiles))
        self.assertNotIn("-lcudart_static", p.link)
        self.assertEqual(p.library.name, "libcalib_lce_cpu.so")


def copy_native(dst: Path) -> Path:
    for sub in ("include", "src/common", "src/loss", "src/cuda"):
        shutil.copytree(NATIVE / sub, dst / sub)
    return dst


class CpuBuildAndFreshness(unittest.TestCase):
    def test_build_then_an_edit_rebuilds_only_what_it_touches(self):
        native = copy_native(TMP / "native-copy")
        out = TMP / "fresh"
        self.assertIn("does not exist", build.staleness("cpu", out=out, native=native))
        lib = build.ensure("cpu", out=out, native=native)
        self.assertEqual(lib, out / "libcalib_lce_cpu.so")
        self.assertIsNone(build.staleness("cpu", out=out, native=native))
        objects = {p.name: p.stat().st_mtime_ns for p in (out / "obj-cpu").glob("*.o")}
        self.assertEqual(len(objects), len(build.plan("cpu", out=out, native=native).compiles))
        # file times are not trusted: touching every source changes nothing
        for p in native.rglob("*"):
            os.utime(p)
        self.assertIsNone(build.staleness("cpu", out=out, native=native))
        # an edit of one source makes the library stale and recompiles that source only
        with open(native / "src" / "common" / "status.cc", "a") as fh:
            fh.write("// an edit\n")
        self.assertIn("native sources changed", build.staleness("cpu", out=out, native=native))
        err = io.StringIO()
        with redirect_stderr(err):
            build.ensure("cpu", out=out, native=native)
        self.assertIn("compiling 1 of", err.getvalue())
        self.assertIsNone(build.staleness("cpu", out=out, native=native))
        after = {p.name: p.stat().st_mtime_ns for p in (out / "obj-cpu").glob("*.o")}
        changed = set(after) ^ set(objects)
        self.assertEqual(len(changed), 2)  # status.cc's old object gone, its new one there
        self.assertTrue(all(name.startswith("common__status.cc.") for name in changed))
        lib = _capi.Library(out / "libcalib_lce_cpu.so")
        self.assertEqual(lib.info()["cuda_built"], False)
        # a header edit recompiles everything
        with open(native / "src" / "loss" / "linear_ce.h", "a") as fh:
            fh.write("// an edit\n")
        err = io.StringIO()
        with redirect_stderr(err):
            build.ensure("cpu", out=out, native=native)
        self.assertIn(f"compiling {len(objects)} of {len(objects)}", err.getvalue())

    def test_a_compiler_error_is_reported_and_leaves_no_library(self):
        native = copy_native(TMP / "native-broken")
        with open(native / "src" / "loss" / "linear_ce_plan.cc", "a") as fh:
            fh.write("this is not C++;\n")
        out = TMP / "broken"
        with redirect_stderr(io.StringIO()):
            with self.assertRaisesRegex(build.BuildError, r"c\+\+ failed on linear_ce_plan\.cc \(exit 1\)"):
                build.ensure("cpu", out=out, native=native)
        self.assertFalse((out / "libcalib_lce_cpu.so").exists())
        self.assertFalse(list((out / "obj-cpu").glob("*linear_ce_plan*")))


@unittest.skipUnless(shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc"),
                     "nvcc not found: the CUDA build is not run here (a GPU-machine step: python -m calib_lce.build)")
class CudaBuild(unittest.TestCase):
    def test_the_cuda_library_links_exports_the_c_api_and_loads_without_a_gpu(self):
        out = TMP / "cuda"
        with redirect_stderr(io.StringIO()):
            lib_path = build.ensure("cuda", out=out, arch="90a")
        symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib_path)], capture_output=True, text=True,
                                 check=True).stdout.split()
        exported = sorted(s for s in symbols if s.startswith("calib_"))
        self.assertIn("calib_linear_cross_entropy_cuda", exported)
        self.assertIn("calib_lce_cuda_workspace_size", exported)
        self.assertFalse([s for s in symbols if s.startswith("cuda")], "the static CUDA runtime must stay private")
        lib = _capi.Library(lib_path)
        info = lib.info()
        self.assertTrue(lib.cuda_built and info["cuda_built"])
        if info["cuda_devices"] == 0:
            a = _capi.LceArgs()
            a.n, a.d, a.v, a.temperature = 8, 16, 32, 1.0
            a.device, a.memory = _capi.CALIB_DEVICE_CUDA, _capi.CALIB_MEM_DEVICE
            a.e = a.c = a.targets = a.loss = 0x10000
            with self.assertRaisesRegex(RuntimeError, r"no CUDA device"):
                lib.workspace_size(a, _capi.CudaOptions())


if __name__ == "__main__":
    unittest.main()
