// Gradient check of the engine's GPT model: every parameter tensor's analytic gradient
// (float64 reference model, the same blocked kernels as the fp32 path) against central finite
// differences of the float64 loss, with and without label smoothing, temperature and softcap,
// tied and untied heads, ignored targets. Then the fp32 training path (fused loss op, SIMD
// kernels) against the float64 gradients of the same parameters.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GptModel, type LossOptions, type ModelConfig } from "../../backend/engine/index.js";
import { ints, norm, normal, rng } from "./helpers.js";

interface Problem {
  model: GptModel;
  batch: { inputs: Int32Array; targets: Int32Array; b: number; t: number };
  params: Float64Array;
}

/** A model with random parameters (LayerNorm weights around 1) and a batch with some ignored targets. */
function problem(config: ModelConfig, b: number, t: number, seed: number, precision: "float32" | "float64" = "float64"): Problem {
  const model = GptModel.create(config, { maxBatch: b, precision, threads: 2 });
  const rand = rng(seed);
  const params = new Float64Array(model.numParams);
  for (const ti of model.tensors()) {
    const isLnW = ti.name.startsWith("ln") && ti.name.endsWith("w");
    for (let i = 0; i < ti.numel; i++) params[ti.offset + i] = Math.fround((isLnW ? 1 : 0) + 0.35 * normal(rand));
  }
  model.setParams(precision === "float64" ? params : Float32Array.from(params));
  const inputs = ints(rand, b * t, config.vocab);
  const targets = ints(rand, b * t, config.vocab);
  for (let i = 0; i < targets.length; i += 4) targets[i] = -100;
  return { model, batch: { inputs, targets, b, t }, params };
}

function lossAt(p: Problem, loss: LossOptions, params: Float64Array): number {
  p.model.setParams(params);
  return p.model.forward(p.batch, loss).lossSum;
}

/**
 * Checks the elements `pick(tensor)` of every tensor; returns the worst ratio of the error to
 * the tolerance 1e-7 + 1e-6·|analytic| (pass: < 1). The absolute part covers elements whose
 * gradient is exactly zero (the key bias: softmax ignores a constant shift), where the finite
 * difference is rounding noise of the float64 loss (~1e-10).
 */
function check(p: Problem, loss: LossOptions, pick: (numel: number) => number[]): { worst: number; where: string; checked: number } {
  p.model.setParams(p.params);
  p.model.zeroGrad();
  p.model.forwardBackward(p.batch, loss, 1);
  const grad = p.model.getGrads();
  const h = 1e-5;
  let worst = 0, where = "", checked = 0;
  const x = p.params.slice();
  for (const t of p.model.tensors()) {
    for (const k of pick(t.numel)) {
      const i = t.offset + k;
      x[i] = p.params[i]! + h;
      const up = lossAt(p, loss, x);
      x[i] = p.params[i]! - h;
      const down = lossAt(p, loss, x);
      x[i] = p.params[i]!;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - grad[i]!) / (1e-7 + 1e-6 * Math.abs(grad[i]!));
      if (err > worst) {
        worst = err;
        where = `${t.name}[${k}]: finite difference ${fd}, analytic ${grad[i]}`;
      }
      checked++;
    }
    const tn = grad.subarray(t.offset, t.offset + t.numel);
    assert.ok(tn.some((g) => Math.abs(g) > 1e-6), `${t.name}: the analytic gradient is all zero`);
  }
  p.model.setParams(p.params);
  return { worst, where, checked };
}

const TINY: ModelConfig = { nLayer: 2, nHead: 2, dModel: 8, context: 7, vocab: 13, tied: false };
const everyElement = (n: number) => Array.from({ length: n }, (_, i) => i);
const sample = (count: number) => (n: number) => {
  const r = rng(n * 7 + count);
  return Array.from(new Set(Array.from({ length: Math.min(n, count) }, () => Math.floor(r() * n))));
};

test("every element of every tensor: analytic gradient = central differences (float64, ε=0.1, T=0.7, softcap 2, untied)", (t) => {
  const p = problem(TINY, 2, 6, 1);
  const { worst, where, checked } = check(p, { labelSmoothing: 0.1, temperature: 0.7, softcap: 2 }, everyElement);
  p.model.free();
  t.diagnostic(`${checked} elements of ${p.model.tensors().length} tensors; worst error ${worst.toFixed(3)}× the tolerance 1e-7 + 1e-6·|g| (${where})`);
  assert.equal(checked, p.params.length);
  assert.ok(worst < 1, `error ${worst}× the tolerance at ${where}`);
});

const LOSSES: Array<[string, LossOptions]> = [
  ["plain cross-entropy", {}],
  ["label smoothing 0.2", { labelSmoothing: 0.2 }],
  ["temperature 1.8", { temperature: 1.8 }],
  ["temperature 0.5 with ε=0.1", { labelSmoothing: 0.1, temperature: 0.5 }],
  ["softcap 0.9", { softcap: 0.9 }],
  ["softcap 3, ε=1", { softcap: 3, labelSmoothing: 1 }],
];

for (const tied of [true, false]) {
  for (const [name, loss] of LOSSES) {
    test(`gradient check (${tied ? "tied" : "untied"} head, ${name}): ≥ 12 elements of every tensor`, () => {
      const p = problem({ ...TINY, tied, nHead: 4 }, 3, 7, tied ? 2 : 3);
      const { worst, where } = check(p, loss, sample(12));
      p.model.free();
      assert.ok(worst < 1, `error ${worst}× the tolerance at ${where}`);
    });
  }
}

test("gradient check across the kernels' block boundaries (T = 31 > 24-row attention blocks, 93 rows > 48-row matmul tiles)", () => {
  const cfg: ModelConfig = { nLayer: 1, nHead: 2, dModel: 12, context: 31, vocab: 17, tied: true };
  const p = problem(cfg, 3, 31, 4);
  const { worst, where } = check(p, { labelSmoothing: 0.1, softcap: 4 }, sample(6));
  p.model.free();
  assert.ok(worst < 1, `error ${worst}× the tolerance at ${where}`);
});

test("fp32 training path (fused loss, SIMD kernels) matches the float64 gradients of the same parameters", (t) => {
  let worst32 = 0;
  const cfg: ModelConfig = { nLayer: 2, nHead: 4, dModel: 32, context: 40, vocab: 70, tied: true };
  for (const loss of [{}, { labelSmoothing: 0.1, temperature: 0.6, softcap: 5 }] as LossOptions[]) {
    const p64 = problem(cfg, 3, 40, 5, "float64");
    const p32 = problem(cfg, 3, 40, 5, "float32");
    assert.deepEqual(Float64Array.from(p32.model.getParams()), p64.model.getParams());
    p64.model.zeroGrad();
    p32.model.zeroGrad();
    const r64 = p64.model.forwardBackward(p64.batch, loss);
    const r32 = p32.model.forwardBackward(p32.batch, loss);
    assert.equal(r32.validCount, r64.validCount);
    assert.ok(Math.abs(r32.lossSum - r64.lossSum) / r64.lossSum < 1e-5, `loss ${r32.lossSum} vs ${r64.lossSum}`);
    const g64 = p64.model.getGrads(), g32 = p32.model.getGrads();
    for (const t of p64.model.tensors()) {
      const a = g64.subarray(t.offset, t.offset + t.numel), b = g32.subarray(t.offset, t.offset + t.numel);
      const diff = norm(Array.from(a, (x, i) => x - b[i]!));
      assert.ok(norm(a) > 0, `${t.name} has a zero gradient`);
      assert.ok(diff / norm(a) < 2e-4, `${t.name}: relative error ${diff / norm(a)} of the fp32 gradient`);
      worst32 = Math.max(worst32, diff / norm(a));
    }
    p64.model.free();
    p32.model.free();
  }
  t.diagnostic(`largest per-tensor relative error of the fp32 gradients: ${worst32.toExponential(2)}`);
});

test("gradient accumulation: two micro-batches with gradScale 1/total = one batch of both", () => {
  const cfg: ModelConfig = { ...TINY, tied: true };
  const p = problem(cfg, 2, 6, 6);
  const { inputs, targets } = p.batch;
  const valid = targets.reduce((a, y) => a + (y !== -100 ? 1 : 0), 0);
  p.model.zeroGrad();
  const whole = p.model.forwardBackward(p.batch, { labelSmoothing: 0.1 }, 1 / valid);
  const gWhole = p.model.getGrads();
  p.model.zeroGrad();
  let sum = 0;
  for (const r of [0, 1]) {
    const part = { inputs: inputs.subarray(r * 6, r * 6 + 6), targets: targets.subarray(r * 6, r * 6 + 6), b: 1, t: 6 };
    sum += p.model.forwardBackward(part, { labelSmoothing: 0.1 }, 1 / valid).lossSum;
  }
  const gParts = p.model.getGrads();
  assert.ok(Math.abs(sum - whole.lossSum) < 1e-12 * Math.abs(whole.lossSum));
  for (let i = 0; i < gWhole.length; i++) assert.ok(Math.abs(gWhole[i]! - gParts[i]!) < 1e-13 + 1e-10 * Math.abs(gWhole[i]!), `element ${i}`);
  p.model.free();
});

test("global gradient norm and per-tensor norms equal a float64 sum of squares", () => {
  const p = problem(TINY, 2, 6, 7);
  p.model.zeroGrad();
  p.model.forwardBackward(p.batch, { labelSmoothing: 0.05 });
  const g = p.model.getGrads();
  const { norm: total, tensorNorms } = p.model.gradNorm();
  assert.ok(Math.abs(total - norm(g)) < 1e-12 * norm(g));
  p.model.tensors().forEach((t, i) => {
    const want = norm(g.subarray(t.offset, t.offset + t.numel));
    assert.ok(Math.abs(tensorNorms[i]! - want) <= 1e-12 * want, t.name);
  });
  p.model.free();
});

test("AdamW step equals PyTorch's formula (decay on matmul weights only), written out in float64", () => {
  const p = problem(TINY, 2, 6, 8);
  const rand = rng(80);
  const n = p.params.length;
  const m0 = Float64Array.from({ length: n }, () => 0.01 * normal(rand));
  const v0 = Float64Array.from({ length: n }, () => 1e-4 * rand());
  p.model.write("m", m0);
  p.model.write("v", v0);
  p.model.zeroGrad();
  p.model.forwardBackward(p.batch, {});
  const g = p.model.getGrads();
  // the C API takes float32 hyperparameters: the reference uses the same rounded values
  const f = Math.fround;
  const o = { lr: f(0.01), beta1: f(0.8), beta2: f(0.9), eps: f(1e-6), weightDecay: f(0.3), gradScale: 0.5, step: 3 };
  p.model.adamw(o);
  const got = p.model.getParams(), gm = p.model.read("m"), gv = p.model.read("v");
  const decay = new Uint8Array(n);
  for (const t of p.model.tensors()) if (t.decay) decay.fill(1, t.offset, t.offset + t.numel);
  assert.deepEqual(p.model.tensors().filter((t) => t.decay).map((t) => t.name), ["qkvw", "attprojw", "fcw", "fcprojw", "lm_head"]);
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * o.gradScale;
    const m = o.beta1 * m0[i]! + (1 - o.beta1) * gi;
    const v = o.beta2 * v0[i]! + (1 - o.beta2) * gi * gi;
    const denom = Math.sqrt(v) / Math.sqrt(1 - o.beta2 ** o.step) + o.eps;
    const want = p.params[i]! * (decay[i] ? 1 - o.lr * o.weightDecay : 1) - (o.lr / (1 - o.beta1 ** o.step)) * (m / denom);
    assert.ok(Math.abs(got[i]! - want) < 1e-13, `param ${i}: ${got[i]} vs ${want}`);
    assert.ok(Math.abs(gm[i]! - m) < 1e-15 && Math.abs(gv[i]! - v) < 1e-15, `moments ${i}`);
  }
  p.model.free();
});
