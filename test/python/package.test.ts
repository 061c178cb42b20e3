// The Python package's CPU tests (python/tests/test_cpu*.py, unittest) under `npm test`: the ctypes structs
// against native/include/calib.h, the planner through calib_lce_cuda_describe, the CPU engine against a float64
// reference, the build script (commands, errors, a real CPU build, the CUDA build where nvcc exists) and, where
// PyTorch is installed, the operator and the Hugging Face patch on CPU. Prints one line naming what was skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

const python = process.env.PYTHON ?? "python3";

test("python/tests: the calib_lce package's CPU tests pass", (t) => {
  if (spawnSync(python, ["--version"]).status !== 0) {
    t.skip(`${python} not found: the Python package's tests did not run`);
    return;
  }
  const r = spawnSync(python, ["-m", "unittest", "discover", "-v", "-s", "python/tests", "-p", "test_cpu*.py"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-6000));
  const ran = /^Ran (\d+) tests? in/m.exec(out);
  assert.ok(ran && Number(ran[1]) > 0, `no test ran:\n${out.slice(-2000)}`);
  const reasons = new Set([...out.matchAll(/skipped '([^']*)'/g)].map((m) => m[1]));
  const skipped = [...out.matchAll(/\.\.\. skipped '/g)].length;
  t.diagnostic(`python: ${ran[1]} tests, ${skipped} skipped${reasons.size ? ` (${[...reasons].join("; ")})` : ""}`);
  console.log(`python/tests: ${ran[1]} tests, ${skipped} skipped${reasons.size ? `: ${[...reasons].join("; ")}` : ""}`);
});
