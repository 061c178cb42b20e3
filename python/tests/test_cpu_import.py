"""The package's pure-Python parts import without PyTorch (a child interpreter where importing torch fails, whether
or not torch is installed here), and the PyTorch parts say what they need."""
import subprocess
import sys
import textwrap
import unittest

from _support import PYTHON_DIR

NO_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("No module named 'torch' (blocked by the test)")
    sys.meta_path.insert(0, NoTorch())
    sys.path.insert(0, {path!r})
""")


def run_without_torch(body: str):
    code = NO_TORCH.format(path=str(PYTHON_DIR)) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


class ImportWithoutTorch(unittest.TestCase):
    def test_pure_python_parts_import(self):
        r = run_without_torch("""
            import calib_lce, calib_lce.build, calib_lce._capi
            assert "torch" not in sys.modules
            print(calib_lce.__version__, sorted(calib_lce._capi.STRUCTS), calib_lce.build.DEFAULT_ARCH)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("calib_lce_args", r.stdout)
        self.assertIn("90a", r.stdout)

    def test_torch_parts_raise_a_clear_import_error(self):
        r = run_without_torch("""
            import calib_lce
            for name in ("linear_cross_entropy", "patch"):
                try:
                    getattr(calib_lce, name)
                except ImportError as exc:
                    print(name, "->", exc)
                else:
                    raise SystemExit(name + " imported without torch")
            try:
                calib_lce.no_such_thing
            except AttributeError as exc:
                print("AttributeError", exc)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("linear_cross_entropy -> calib_lce.linear_cross_entropy needs PyTorch", r.stdout)
        self.assertIn("patch -> calib_lce.patch needs PyTorch", r.stdout)
        self.assertIn("AttributeError module 'calib_lce' has no attribute 'no_such_thing'", r.stdout)

    def test_the_build_command_line_runs_without_torch(self):
        r = run_without_torch("""
            from calib_lce import build
            sys.argv = ["calib_lce.build", "--help"]
            try:
                build.main()
            except SystemExit as exc:
                assert exc.code == 0, exc.code
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--arch", r.stdout)
        self.assertIn("--cpu", r.stdout)


if __name__ == "__main__":
    unittest.main()
