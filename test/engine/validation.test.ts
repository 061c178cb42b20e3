// Bad input to the loss never crashes the process: it throws TypeError/RangeError naming the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addon, linearCrossEntropy } from "../../backend/engine/index.js";
import { integers, normals, rng } from "../helpers/random.js";

const r = rng(5);
const N = 8, D = 4, V = 10;
const E = normals(r, N * D), C = normals(r, V * D);
const T = integers(r, N, V);
const e = { data: E, rows: N, cols: D }, c = { data: C, rows: V, cols: D };

function throwsWith(fn: () => unknown, kind: typeof TypeError | typeof RangeError, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof kind, `expected ${kind.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test("wrong lengths", () => {
  throwsWith(() => linearCrossEntropy({ data: E.subarray(1), rows: N, cols: D }, c, T), TypeError, /E\.data has 31 elements/);
  throwsWith(() => linearCrossEntropy(e, { data: C, rows: V, cols: D + 1 }, T), TypeError, /C\.data has 40 elements/);
  throwsWith(() => linearCrossEntropy(e, c, T.subarray(2)), TypeError, /targets has 6 entries/);
  throwsWith(() => linearCrossEntropy(e, c, T, { bias: new Float32Array(V - 1) }), TypeError, /bias has 9 elements/);
  throwsWith(() => linearCrossEntropy(e, c, T, { reduction: "none", gradOutput: new Float32Array(3), grad: true }), TypeError, /gradOutput has 3/);
});

test("NaN or Inf in inputs", () => {
  const bad = E.slice(); bad[13] = NaN;
  throwsWith(() => linearCrossEntropy({ data: bad, rows: N, cols: D }, c, T), RangeError, /E contains NaN or Inf at row 3, column 1/);
  const badC = C.slice(); badC[5] = Infinity;
  throwsWith(() => linearCrossEntropy(e, { data: badC, rows: V, cols: D }, T), RangeError, /C contains NaN or Inf at row 1/);
  const bias = new Float32Array(V).fill(0.5); bias[2] = -Infinity;
  throwsWith(() => linearCrossEntropy(e, c, T, { bias }), RangeError, /bias contains NaN or Inf at index 2/);
  throwsWith(() => linearCrossEntropy(e, c, T, { grad: true, gradOutput: NaN }), RangeError, /gradOutput\[0\] is not finite/);
});

test("targets out of range", () => {
  const t = T.slice(); t[4] = V;
  throwsWith(() => linearCrossEntropy(e, c, t), RangeError, /targets\[4\] = 10 is outside \[0, 10\)/);
  t[4] = -1;
  throwsWith(() => linearCrossEntropy(e, c, t), RangeError, /targets\[4\] = -1/);
});

test("options out of range", () => {
  throwsWith(() => linearCrossEntropy(e, c, T, { labelSmoothing: 1.5 }), RangeError, /labelSmoothing must be in \[0, 1\]/);
  throwsWith(() => linearCrossEntropy(e, c, T, { labelSmoothing: -0.1 }), RangeError, /labelSmoothing/);
  throwsWith(() => linearCrossEntropy(e, c, T, { labelSmoothing: NaN }), RangeError, /labelSmoothing/);
  throwsWith(() => linearCrossEntropy(e, c, T, { temperature: 0 }), RangeError, /temperature must be a finite number > 0/);
  throwsWith(() => linearCrossEntropy(e, c, T, { softcap: -2 }), RangeError, /softcap/);
  throwsWith(() => linearCrossEntropy(e, c, T, { threads: 2000 }), RangeError, /threads/);
});

test("wrong types", () => {
  throwsWith(() => linearCrossEntropy({ data: new Float64Array(N * D) as unknown as Float32Array, rows: N, cols: D }, c, T), TypeError, /Float32Array \(float32\) or Uint16Array/);
  throwsWith(() => linearCrossEntropy(e, c, new Float32Array(N) as unknown as Int32Array), TypeError, /targets must be an Int32Array/);
  throwsWith(() => linearCrossEntropy(e, { data: new Uint16Array(V * D), rows: V, cols: D }, T), TypeError, /same dtype/);
  throwsWith(() => linearCrossEntropy(e, c, T, { reduction: "avg" as "mean" }), TypeError, /reduction must be one of 'mean', 'sum', 'none'/);
  throwsWith(() => linearCrossEntropy(e, c, T, { smoothing: 0.1 } as never), TypeError, /unknown option 'smoothing'/);
  throwsWith(() => linearCrossEntropy(e, c, T, { gradOutput: new Float32Array(1) as never, grad: true }), TypeError, /gradOutput must be a number/);
});

test("the raw binding checks its arguments too", () => {
  const raw = addon();
  throwsWith(() => raw.linearCrossEntropy(undefined as never), TypeError, /expects one options object/);
  throwsWith(() => raw.linearCrossEntropy({ e: E, c: C, targets: T, n: N, d: D }), TypeError, /n, d and v are required/);
  throwsWith(() => raw.linearCrossEntropy({ e: E, c: C, targets: T, n: N, d: D, v: 2.5 }), TypeError, /v must be an integer/);
  throwsWith(() => raw.linearCrossEntropy({ e: E, c: C, targets: T, n: N, d: D, v: V, labelSmoothing: "0.1" }), TypeError, /labelSmoothing must be a number/);
  throwsWith(() => raw.linearCrossEntropy({ e: C, c: C, targets: T, n: N, d: D, v: V }), TypeError, /e has 40 elements, expected 32/);
  throwsWith(() => raw.linearCrossEntropy({ e: E, c: C, targets: new Uint32Array(N), n: N, d: D, v: V }), TypeError, /targets must be a Int32Array, got Uint32Array/);
  throwsWith(() => raw.linearCrossEntropy({ e: E, c: C, targets: T, n: N, d: D, v: V, device: "tpu" }), TypeError, /device must be one of/);
  // after all of that the engine still works
  const ok = linearCrossEntropy(e, c, T);
  assert.ok(Number.isFinite(ok.loss) && ok.loss > 0);
});

test("device 'cuda' without a GPU is a clear error; 'auto' falls back to the CPU", (t) => {
  const info = addon().info();
  if (info.cudaBuilt && info.cudaDevices > 0) return t.skip("a GPU is present");
  assert.throws(() => linearCrossEntropy(e, c, T, { device: "cuda" }), /device 'cuda' is not available/);
  assert.equal(linearCrossEntropy(e, c, T, { device: "auto" }).device, "cpu");
});
