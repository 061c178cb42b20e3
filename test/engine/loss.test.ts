// The fused linear + label-smoothed cross-entropy on the CPU against an independent float64
// reference (test/engine/reference.ts), across shapes, options and both implementations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { linearCrossEntropy, toBf16, fromBf16, type Matrix } from "../../backend/engine/index.js";
import { referenceLoss, type RefOptions } from "./reference.js";
import { relError } from "../helpers/random.js";
import { CASES, makeInputs, type Case } from "./cases.js";

function check(c: Case, impl: "fused" | "naive", dtype: "float32" | "bfloat16", seed: number) {
  const inp = makeInputs(c, seed);
  const reduction = c.reduction ?? "mean";
  // bf16: the engine sees rounded inputs; the reference gets exactly the same values.
  const E32 = dtype === "bfloat16" ? fromBf16(toBf16(inp.E)) : inp.E;
  const C32 = dtype === "bfloat16" ? fromBf16(toBf16(inp.C)) : inp.C;
  const e: Matrix = { data: dtype === "bfloat16" ? toBf16(inp.E) : inp.E, rows: c.N, cols: c.D };
  const cm: Matrix = { data: dtype === "bfloat16" ? toBf16(inp.C) : inp.C, rows: c.V, cols: c.D };
  const out = linearCrossEntropy(e, cm, inp.targets, {
    labelSmoothing: c.eps, temperature: c.temperature ?? 1, softcap: c.softcap ?? null,
    bias: inp.bias ?? null, reduction: reduction as "mean", grad: true, gradOutput: inp.gradOutput,
    ignoreIndex: inp.ignoreIndex, impl,
  });
  const opts: RefOptions = {
    eps: c.eps, ignoreIndex: inp.ignoreIndex, temperature: c.temperature ?? 1, softcap: c.softcap ?? 0,
    bias: inp.bias, reduction, gradOutput: inp.gradOutput,
  };
  const ref = referenceLoss(E32, C32, inp.targets, c.N, c.D, c.V, opts);
  const label = `${c.name} [${impl}, ${dtype}]`;
  assert.equal(out.validCount, ref.valid, `${label}: valid count`);
  if (reduction === "none") {
    assert.ok((out.loss as unknown) instanceof Float32Array);
    assert.ok(relError(out.loss as unknown as Float32Array, ref.loss as Float64Array) <= 1e-5, `${label}: per-token loss`);
  } else {
    // relative error, except where the exact loss is 0 (V = 1): then absolute, against 1
    const rel = Math.abs((out.loss as number) - (ref.loss as number)) / Math.max(1, Math.abs(ref.loss as number));
    assert.ok(rel <= 1e-5, `${label}: loss ${out.loss} vs ${ref.loss} (rel ${rel})`);
  }
  for (let i = 0; i < c.N; i++) {
    if (Number.isNaN(ref.lse[i])) assert.ok(Number.isNaN(out.lse[i]), `${label}: lse[${i}] of an ignored token is NaN`);
    else assert.ok(Math.abs(out.lse[i]! - ref.lse[i]!) <= 1e-5 * Math.max(1, Math.abs(ref.lse[i]!)), `${label}: lse[${i}]`);
  }
  // Relative Frobenius error; where the exact gradient is 0 (V = 1) an absolute bound instead.
  const gradOk = (a: Float32Array, b: Float64Array) => {
    const zero = b.every((x) => x === 0);
    return zero ? a.every((x) => Math.abs(x) < 1e-6) : relError(a, b) <= 1e-4;
  };
  assert.ok(gradOk(out.dE!, ref.dE), `${label}: dE relative error ${relError(out.dE!, ref.dE)}`);
  assert.ok(gradOk(out.dC!, ref.dC), `${label}: dC relative error ${relError(out.dC!, ref.dC)}`);
  if (inp.bias) assert.ok(gradOk(out.dBias!, ref.dBias), `${label}: dBias`);
  else assert.equal(out.dBias, undefined);
}

for (const [k, c] of CASES.entries()) {
  test(`loss matches the float64 reference: ${c.name}`, () => {
    check(c, "fused", "float32", 1000 + k);
    check(c, "naive", "float32", 1000 + k);
  });
}

test("bfloat16 inputs accumulate in fp32 (same tolerance on the rounded values)", () => {
  check(CASES[2]!, "fused", "bfloat16", 7);
  check(CASES[8]!, "fused", "bfloat16", 8);
  check(CASES[11]!, "naive", "bfloat16", 9);
});

test("label smoothing 0.1 equals (1−ε)·NLL + ε·(lse − mean logit), PyTorch's definition", () => {
  const c = { N: 13, D: 7, V: 97 };
  const { E, C, targets } = makeInputs({ name: "", ...c, eps: 0 }, 42);
  const e = { data: E, rows: c.N, cols: c.D }, cm = { data: C, rows: c.V, cols: c.D };
  const nll = linearCrossEntropy(e, cm, targets, { reduction: "none" });
  const smooth = linearCrossEntropy(e, cm, targets, { reduction: "none", labelSmoothing: 0.1 });
  for (let i = 0; i < c.N; i++) {
    let mean = 0;
    for (let v = 0; v < c.V; v++) {
      let z = 0;
      for (let k = 0; k < c.D; k++) z += E[i * c.D + k]! * C[v * c.D + k]!;
      mean += z / c.V;
    }
    const expected = 0.9 * nll.loss[i]! + 0.1 * (nll.lse[i]! - mean);
    assert.ok(Math.abs(smooth.loss[i]! - expected) < 1e-5 * Math.abs(expected), `token ${i}`);
  }
});

test("all targets ignored: mean is NaN (as PyTorch), sum is 0, gradients are zero", () => {
  const c = { N: 6, D: 4, V: 11 };
  const { E, C } = makeInputs({ name: "", ...c, eps: 0.1 }, 3);
  const targets = new Int32Array(c.N).fill(-100);
  const e = { data: E, rows: c.N, cols: c.D }, cm = { data: C, rows: c.V, cols: c.D };
  const mean = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, grad: true });
  assert.ok(Number.isNaN(mean.loss));
  assert.equal(mean.validCount, 0);
  assert.ok(mean.dE!.every((x) => x === 0) && mean.dC!.every((x) => x === 0));
  assert.ok(mean.lse.every((x) => Number.isNaN(x)));
  const sum = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, reduction: "sum" });
  assert.equal(sum.loss, 0);
  const none = linearCrossEntropy(e, cm, targets, { reduction: "none" });
  assert.ok(none.loss.every((x) => x === 0));
});

test("thread counts give the same result within fp32 rounding", () => {
  const c: Case = { name: "", N: 100, D: 20, V: 700, eps: 0.1 };
  const { E, C, targets } = makeInputs(c, 11);
  const e = { data: E, rows: c.N, cols: c.D }, cm = { data: C, rows: c.V, cols: c.D };
  const one = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, grad: true, threads: 1 });
  const two = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, grad: true, threads: 2 });
  const three = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, grad: true, threads: 3 });
  for (const other of [two, three]) {
    assert.ok(Math.abs(other.loss - one.loss) <= 1e-6 * Math.abs(one.loss));
    assert.ok(relError(other.dE!, one.dE!) < 1e-6 && relError(other.dC!, one.dC!) < 1e-6);
  }
  // and the same thread count twice is bit-identical (deterministic schedule, no atomics)
  const again = linearCrossEntropy(e, cm, targets, { labelSmoothing: 0.1, grad: true, threads: 2 });
  assert.deepEqual(again.dC, two.dC);
  assert.deepEqual(again.dE, two.dE);
});
