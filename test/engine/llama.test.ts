// The Llama family in the engine (arch 'llama', CPU) against the independent float64 reference of
// test/engine/llama-reference.ts, for tiny random models of each variant: Llama 3 (GQA, llama3
// rope scaling), Qwen2 (q/k/v biases, multi-query), a Mistral-like model (sliding window, linear
// rope scaling) and Gemma 2 (post-norms, 1 + w norms, GeGLU, embedding scale, attention soft-cap,
// final soft-cap, sliding window on alternate layers); tied and untied heads.
//   forward   the float64 engine's loss to 1e-10 of the reference, its logits / lse / p(target) /
//             argmax through eval; the float32 engine with float32 tolerances
//   gradients the float64 engine's gradients against central differences of its own loss (every
//             element) and of the reference's loss (a sample of every tensor); float32 gradients
//             against the float64 ones
import { test } from "node:test";
import assert from "node:assert/strict";
import { addon, countParams, GptModel, validateModelConfig, type LossOptions, type ModelConfig, type TensorInfo } from "../../backend/engine/index.js";
import { ints, norm, normal, rng } from "../trainer/helpers.js";
import { invFrequencies, llamaReference, type Tensors } from "./llama-reference.js";

interface Variant {
  name: string;
  cfg: ModelConfig;
  loss: LossOptions;
  b: number;
  t: number;
}

const f = Math.fround;
const VARIANTS: Variant[] = [
  {
    name: "llama 3 (GQA 4/2, headDim 8 ≠ dModel/nHead, llama3 rope scaling, tied)",
    cfg: {
      arch: "llama", nLayer: 2, nHead: 4, dModel: 12, context: 12, vocab: 19, tied: true,
      llama: { nKvHead: 2, headDim: 8, dFf: 20, normEps: 1e-5, ropeTheta: 100, ropeType: "llama3", ropeFactor: 8, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalContext: 64 },
    },
    loss: { labelSmoothing: 0.1 },
    b: 2, t: 10,
  },
  {
    name: "qwen2 (q/k/v biases, multi-query 4/1, θ 1e6, untied)",
    cfg: {
      arch: "llama", nLayer: 2, nHead: 4, dModel: 16, context: 9, vocab: 23, tied: false,
      llama: { nKvHead: 1, dFf: 24, qkvBias: true, ropeTheta: 1e6 },
    },
    loss: { labelSmoothing: 0.2, temperature: 0.8 },
    b: 2, t: 9,
  },
  {
    name: "mistral-like (sliding window 3 on every layer, linear rope ×2, untied)",
    cfg: {
      arch: "llama", nLayer: 2, nHead: 2, dModel: 12, context: 9, vocab: 17, tied: false,
      llama: { nKvHead: 1, headDim: 6, dFf: 16, ropeType: "linear", ropeFactor: 2, slidingWindow: 3, slidingPeriod: 1 },
    },
    loss: {},
    b: 2, t: 9,
  },
  {
    name: "gemma 2 (post-norms, 1 + w, GeGLU, embed ×√d, attention soft-cap 2, final soft-cap 3, window 3 on even layers, tied)",
    cfg: {
      arch: "llama", nLayer: 2, nHead: 4, dModel: 12, context: 9, vocab: 19, tied: true,
      llama: {
        nKvHead: 2, headDim: 8, dFf: 20, normPlusOne: true, postNorms: true, mlpAct: "gelu_tanh", embedScale: f(Math.sqrt(12)),
        attnScale: 0.25, attnSoftcap: 2, slidingWindow: 3, slidingPeriod: 2,
      },
    },
    loss: { labelSmoothing: 0.1, softcap: 3 },
    b: 2, t: 9,
  },
];

const isNorm = (name: string) => name.endsWith("norm") || name === "norm_f";

/** Random parameters (float32 values): matrices N(0, 0.8²/fan_in), norms around 1 (around 0 with 1 + w), biases N(0, 0.3²). */
function randomParams(tensors: TensorInfo[], numParams: number, plusOne: boolean, seed: number): Float64Array {
  const rand = rng(seed);
  const p = new Float64Array(numParams);
  for (const t of tensors) {
    const base = isNorm(t.name) ? (plusOne ? 0 : 1) : 0;
    const scale = isNorm(t.name) || t.name.endsWith("bias") ? 0.3 : t.name === "embed" ? 1 : 0.8 / Math.sqrt(t.shape[t.shape.length - 1]!);
    for (let i = 0; i < t.numel; i++) p[t.offset + i] = f(base + scale * normal(rand));
  }
  return p;
}

function named(tensors: TensorInfo[], params: Float64Array): Tensors {
  return new Map(tensors.map((t) => [t.name, { shape: t.shape, data: params.subarray(t.offset, t.offset + t.numel) }]));
}

interface Problem {
  model: GptModel;
  cfg: ModelConfig;
  params: Float64Array;
  batch: { inputs: Int32Array; targets: Int32Array; b: number; t: number };
}

function problem(v: Variant, precision: "float32" | "float64", seed: number, shape?: { b: number; t: number }, threads = 2): Problem {
  const cfg = validateModelConfig(v.cfg);
  const { b, t } = shape ?? v;
  const model = GptModel.create({ ...cfg, context: Math.max(cfg.context, t) }, { maxBatch: b, precision, threads });
  const params = randomParams(model.tensors(), model.numParams, cfg.llama!.normPlusOne!, seed);
  model.setParams(precision === "float64" ? params : Float32Array.from(params));
  const rand = rng(seed + 17);
  const inputs = ints(rand, b * t, cfg.vocab);
  const targets = ints(rand, b * t, cfg.vocab);
  for (let i = 3; i < targets.length; i += 5) targets[i] = -100;
  return { model, cfg: model.config, params, batch: { inputs, targets, b, t } };
}

/** The reference's loss of the batch; the loss options rounded to float32 as the C API takes them. */
function reference(p: Problem, loss: LossOptions, params = p.params) {
  const { inputs, targets, b, t } = p.batch;
  const o = { labelSmoothing: f(loss.labelSmoothing ?? 0), temperature: f(loss.temperature ?? 1), softcap: f(loss.softcap ?? 0) };
  return llamaReference(p.cfg, named(p.model.tensors(), params), inputs, targets, b, t, o);
}

test("layout: the tensors, shapes and decay flags of calib.h's Llama section; countParams = numParams", () => {
  for (const v of VARIANTS) {
    const cfg = validateModelConfig(v.cfg);
    const m = cfg.llama!;
    const model = GptModel.create(cfg, { maxBatch: 1, precision: "float64" });
    const L = cfg.nLayer, D = cfg.dModel, Q = cfg.nHead * m.headDim!, K = m.nKvHead! * m.headDim!, F = m.dFf, V = cfg.vocab;
    const want: Array<[string, number[], boolean]> = [
      ["embed", [V, D], false], ["attn_norm", [L, D], false], ["q", [L, Q, D], true], ["k", [L, K, D], true], ["v", [L, K, D], true],
      ...(m.qkvBias ? [["q_bias", [L, Q], false], ["k_bias", [L, K], false], ["v_bias", [L, K], false]] as Array<[string, number[], boolean]> : []),
      ["o", [L, D, Q], true],
      ...(m.postNorms ? [["attn_post_norm", [L, D], false]] as Array<[string, number[], boolean]> : []),
      ["mlp_norm", [L, D], false], ["gate", [L, F, D], true], ["up", [L, F, D], true], ["down", [L, D, F], true],
      ...(m.postNorms ? [["mlp_post_norm", [L, D], false]] as Array<[string, number[], boolean]> : []),
      ["norm_f", [D], false],
      ...(cfg.tied ? [] : [["lm_head", [V, D], true]] as Array<[string, number[], boolean]>),
    ];
    const got = model.tensors();
    assert.deepEqual(got.map((t) => [t.name, t.shape, t.decay]), want, v.name);
    let offset = 0;
    for (const t of got) {
      assert.equal(t.offset, offset, `${v.name}: ${t.name} offset`);
      assert.equal(t.perLayer, t.shape.length > 1 && !["embed", "lm_head"].includes(t.name), `${v.name}: ${t.name} perLayer`);
      offset += t.numel;
    }
    assert.equal(model.numParams, offset);
    assert.equal(countParams(v.cfg), model.numParams, `${v.name}: countParams`);
    model.free();
  }
});

test("rotary frequencies: transformers' llama3 and linear rules on a config that has all three llama3 bands", () => {
  // θ = 100, headDim 8: inv_freq 1, 0.316, 0.1, 0.0316 → wavelengths 6.3 (< 64/4: kept), 19.9 and 62.8 (between:
  // smoothed), 198.7 (> 64/1: divided by the factor). Hand-computed from the formulas of _compute_llama3_parameters.
  const base = { nKvHead: 4, headDim: 8, dFf: 4, normEps: 1e-6, normPlusOne: false, postNorms: false, qkvBias: false, mlpAct: "silu" as const, embedScale: 1, ropeTheta: 100, ropeFactor: 8, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalContext: 64, attnScale: 1, attnSoftcap: 0, slidingWindow: 0, slidingPeriod: 1 };
  const plain = [1, 100 ** -0.25, 0.1, 100 ** -0.75];
  const smooth = (inv: number) => {
    const s = (64 / ((2 * Math.PI) / inv) - 1) / 3;
    return (1 - s) * (inv / 8) + s * inv;
  };
  const want = [plain[0]!, smooth(plain[1]!), smooth(plain[2]!), plain[3]! / 8];
  const got = invFrequencies({ ...base, ropeType: "llama3" });
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-7 * want[i]!, `llama3 inv_freq[${i}] ${g} vs ${want[i]}`));
  const linear = invFrequencies({ ...base, ropeType: "linear", ropeFactor: 2 });
  linear.forEach((g, i) => assert.ok(Math.abs(g - plain[i]! / 2) <= 1e-7 * plain[i]!, `linear inv_freq[${i}]`));
});

for (const v of VARIANTS) {
  test(`forward, float64: loss to 1e-10 of the reference and eval's logits, lse, p(target), argmax — ${v.name}`, (t) => {
    const p = problem(v, "float64", 11);
    const ref = reference(p, v.loss);
    const got = p.model.forward(p.batch, v.loss);
    assert.equal(got.validCount, ref.valid);
    const rel = Math.abs(got.lossSum - ref.lossSum) / Math.abs(ref.lossSum);
    t.diagnostic(`loss ${got.lossSum} vs reference ${ref.lossSum}: relative error ${rel.toExponential(2)}`);
    assert.ok(rel < 1e-10, `loss relative error ${rel}`);

    const V = p.cfg.vocab, n = p.batch.b * p.batch.t;
    const all = Int32Array.from({ length: V }, (_, i) => i);
    const raw = p.model.evaluate(p.batch, { optionIds: all, topK: 0 });
    let worst = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < V; k++) {
      const z = ref.logits[i]![k]!;
      worst = Math.max(worst, Math.abs(raw.optionLogits![i * V + k]! - z) / Math.max(1, Math.abs(z)));
    }
    t.diagnostic(`logits (float32 outputs of eval): largest relative error ${worst.toExponential(2)}`);
    assert.ok(worst < 2e-7, `logits: relative error ${worst} (float32 outputs)`);
    const ev = p.model.evaluate(p.batch, { temperature: v.loss.temperature, softcap: v.loss.softcap, topK: 1 });
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(ev.lse[i]! - ref.lse[i]!) <= 2e-7 * Math.max(1, Math.abs(ref.lse[i]!)), `lse[${i}] ${ev.lse[i]} vs ${ref.lse[i]}`);
      const y = p.batch.targets[i]!;
      const T = f(v.loss.temperature ?? 1), cap = f(v.loss.softcap ?? 0);
      const s = ref.logits[i]!.map((z) => (cap > 0 ? cap * Math.tanh(z / T / cap) : z / T));
      if (y === -100) assert.ok(Number.isNaN(ev.pTarget![i]!), `pTarget[${i}] of an ignored target is NaN`);
      else assert.ok(Math.abs(ev.pTarget![i]! - Math.exp(s[y]! - ref.lse[i]!)) <= 1e-6, `pTarget[${i}]`);
      const best = s.indexOf(Math.max(...s));
      assert.equal(ev.argmax[i], best, `argmax[${i}]`);
      assert.equal(ev.topIds[i], best, `top-1 id[${i}]`);
    }
    p.model.free();
  });

  test(`forward, float32: loss and eval within float32 tolerances of the reference — ${v.name}`, (t) => {
    const p = problem(v, "float32", 12);
    const ref = reference(p, v.loss);
    const got = p.model.forward(p.batch, v.loss);
    const rel = Math.abs(got.lossSum - ref.lossSum) / ref.lossSum;
    assert.ok(rel < 1e-5, `loss ${got.lossSum} vs ${ref.lossSum}`);
    const ev = p.model.evaluate(p.batch, { temperature: v.loss.temperature, softcap: v.loss.softcap, topK: 0 });
    let worst = 0;
    for (let i = 0; i < ev.lse.length; i++) {
      const err = Math.abs(ev.lse[i]! - ref.lse[i]!) / Math.max(1, Math.abs(ref.lse[i]!));
      assert.ok(err <= 1e-5, `lse[${i}] ${ev.lse[i]} vs ${ref.lse[i]}`);
      worst = Math.max(worst, err);
    }
    t.diagnostic(`loss relative error ${rel.toExponential(2)}, lse ${worst.toExponential(2)}`);
    p.model.free();
  });
}

/** Worst ratio of |analytic − finite difference| to the tolerance 1e-7 + 1e-6·|analytic| over the picked elements. */
function gradcheck(p: Problem, grad: Float64Array, lossAt: (x: Float64Array) => number, pick: (t: TensorInfo) => number[]) {
  const h = 1e-5;
  const x = p.params.slice();
  let worst = 0, where = "", checked = 0;
  for (const t of p.model.tensors()) {
    const g = grad.subarray(t.offset, t.offset + t.numel);
    assert.ok(g.some((v) => Math.abs(v) > 1e-6), `${t.name}: the analytic gradient is all zero`);
    for (const k of pick(t)) {
      const i = t.offset + k;
      x[i] = p.params[i]! + h;
      const up = lossAt(x);
      x[i] = p.params[i]! - h;
      const down = lossAt(x);
      x[i] = p.params[i]!;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - grad[i]!) / (1e-7 + 1e-6 * Math.abs(grad[i]!));
      if (err > worst) [worst, where] = [err, `${t.name}[${k}]: finite difference ${fd}, analytic ${grad[i]}`];
      checked++;
    }
  }
  return { worst, where, checked };
}

function analytic(p: Problem, loss: LossOptions): Float64Array {
  p.model.setParams(p.params);
  p.model.zeroGrad();
  p.model.forwardBackward(p.batch, loss, 1);
  return p.model.getGrads() as Float64Array;
}

/** Up to `count` distinct elements of a tensor, seeded by its place. */
const sample = (count: number) => (ti: TensorInfo) => {
  const r = rng(ti.numel * 13 + ti.offset + count);
  return [...new Set(Array.from({ length: Math.min(count, ti.numel) }, () => Math.floor(r() * ti.numel)))];
};
const everyElement = (ti: TensorInfo) => Array.from({ length: ti.numel }, (_, i) => i);

for (const [k, v] of VARIANTS.entries()) {
  const all = k === VARIANTS.length - 1;  // Gemma 2 has every kind of tensor: all its elements, 48 of every other's
  test(`gradients, float64: ${all ? "every element" : "48 elements of every tensor"} against central differences of the engine's loss, 6 against the reference's — ${v.name}`, (t) => {
    const p = problem(v, "float64", 21, { b: 2, t: Math.min(v.t, 7) }, 1);
    const grad = analytic(p, v.loss);
    const own = gradcheck(p, grad, (x) => {
      p.model.setParams(x);
      return p.model.forward(p.batch, v.loss).lossSum;
    }, all ? everyElement : sample(48));
    const indep = gradcheck(p, grad, (x) => reference(p, v.loss, x).lossSum, sample(6));
    t.diagnostic(`${own.checked} elements: worst ${own.worst.toFixed(3)}× the tolerance (${own.where}); reference, ${indep.checked} elements: worst ${indep.worst.toFixed(3)}× (${indep.where})`);
    if (all) assert.equal(own.checked, p.params.length);
    assert.ok(own.worst < 1, `engine finite differences: ${own.worst}× the tolerance at ${own.where}`);
    assert.ok(indep.worst < 1, `reference finite differences: ${indep.worst}× the tolerance at ${indep.where}`);
    p.model.free();
  });
}

test("across the kernels' block boundaries (T = 31 > 24-row attention blocks, window 5, GQA, soft-caps): float64 loss = reference, gradients = its central differences", (t) => {
  const gemma = VARIANTS[3]!;
  const v: Variant = { ...gemma, cfg: { ...gemma.cfg, llama: { ...gemma.cfg.llama!, slidingWindow: 5 } } };
  const p = problem(v, "float64", 31, { b: 2, t: 31 });
  const ref = reference(p, v.loss);
  const got = p.model.forward(p.batch, v.loss);
  assert.ok(Math.abs(got.lossSum - ref.lossSum) < 1e-10 * ref.lossSum, `loss ${got.lossSum} vs ${ref.lossSum}`);
  const grad = analytic(p, v.loss);
  const { worst, where, checked } = gradcheck(p, grad, (x) => reference(p, v.loss, x).lossSum, sample(4));
  t.diagnostic(`${checked} elements: worst ${worst.toFixed(3)}× the tolerance (${where})`);
  assert.ok(worst < 1, `${worst}× the tolerance at ${where}`);
  p.model.free();
});

for (const v of [VARIANTS[0]!, VARIANTS[3]!]) {
  test(`float32 training path: gradients within 2e-4 (per tensor) of the float64 ones at T = 40 — ${v.name}`, (t) => {
    const big: Variant = { ...v, cfg: { ...v.cfg, dModel: 32, llama: { ...v.cfg.llama!, dFf: 48, slidingWindow: v.cfg.llama!.slidingWindow ? 7 : 0 } } };
    const p64 = problem(big, "float64", 41, { b: 2, t: 40 });
    const p32 = problem(big, "float32", 41, { b: 2, t: 40 });
    const r64 = p64.model.forwardBackward(p64.batch, v.loss);
    const r32 = p32.model.forwardBackward(p32.batch, v.loss);
    assert.ok(Math.abs(r32.lossSum - r64.lossSum) / r64.lossSum < 1e-5, `loss ${r32.lossSum} vs ${r64.lossSum}`);
    const g64 = p64.model.getGrads(), g32 = p32.model.getGrads();
    let worst = 0;
    for (const ti of p64.model.tensors()) {
      const a = g64.subarray(ti.offset, ti.offset + ti.numel), b = g32.subarray(ti.offset, ti.offset + ti.numel);
      const rel = norm(Array.from(a, (x, i) => x - b[i]!)) / norm(a);
      assert.ok(rel < 2e-4, `${ti.name}: relative error ${rel} of the float32 gradient`);
      worst = Math.max(worst, rel);
    }
    t.diagnostic(`largest per-tensor relative error of the float32 gradients: ${worst.toExponential(2)}`);
    p64.model.free();
    p32.model.free();
  });
}

test("float32 results do not depend on the thread count (1 vs 3 threads, bit for bit)", () => {
  const v = VARIANTS[3]!;
  const runs = [1, 3].map((threads) => {
    const p = problem(v, "float32", 51, { b: 2, t: 31 }, threads);
    const r = p.model.forwardBackward(p.batch, v.loss);
    const out = { loss: r.lossSum, grads: p.model.getGrads(), lse: p.model.evaluate(p.batch).lse };
    p.model.free();
    return out;
  });
  assert.equal(runs[0]!.loss, runs[1]!.loss);
  assert.deepEqual(runs[0]!.grads, runs[1]!.grads);
  assert.deepEqual(runs[0]!.lse, runs[1]!.lse);
});

test("init: seeded N(0, std) matrices and embedding, norms 1 (0 with 1 + w), biases 0; the same values at every precision", () => {
  for (const v of [VARIANTS[1]!, VARIANTS[3]!]) {
    const cfg = validateModelConfig(v.cfg);
    const a = GptModel.create(cfg, { maxBatch: 1 }), b = GptModel.create(cfg, { maxBatch: 1, precision: "float64" });
    a.init(5, 0.5);
    b.init(5, 0.5);
    const pa = a.getParams(), pb = b.getParams();
    assert.deepEqual(Float64Array.from(pa), pb);
    for (const t of a.tensors()) {
      const x = pa.subarray(t.offset, t.offset + t.numel);
      if (isNorm(t.name)) assert.ok(x.every((e) => e === (cfg.llama!.normPlusOne ? 0 : 1)), `${t.name} = ${x[0]}`);
      else if (t.name.endsWith("bias")) assert.ok(x.every((e) => e === 0), t.name);
      else {
        const sd = norm(x) / Math.sqrt(x.length);
        assert.ok(Math.abs(sd - 0.5) < 0.1, `${t.name}: standard deviation ${sd}`);
      }
    }
    a.init(6, 0.5);
    assert.notDeepEqual(a.getParams(), pa);
    a.free();
    b.free();
  }
});

test("training steps lower the loss (AdamW on the decay flags), eval rows and ignored targets", () => {
  const v = VARIANTS[0]!;
  const p = problem(v, "float32", 61);
  const before = p.model.forward(p.batch).lossSum;
  for (let step = 1; step <= 20; step++) {
    p.model.zeroGrad();
    p.model.forwardBackward(p.batch, v.loss);
    p.model.adamw({ lr: 0.01, weightDecay: 0.1, step });
  }
  const after = p.model.forward(p.batch).lossSum;
  assert.ok(after < 0.7 * before, `loss ${before} → ${after}`);
  const all = p.model.evaluate(p.batch, { topK: 3 });
  const rows = Int32Array.from([0, 3, 17]);
  const some = p.model.evaluate(p.batch, { rows, topK: 3 });
  rows.forEach((r, i) => {
    assert.equal(some.lse[i], all.lse[r]);
    assert.deepEqual(some.topIds.subarray(3 * i, 3 * i + 3), all.topIds.subarray(3 * r, 3 * r + 3));
    assert.ok(r === 3 ? Number.isNaN(some.pTarget![i]!) : some.pTarget![i] === all.pTarget![r]);
  });
  p.model.free();
});

test("configuration errors name the field (TypeScript and the engine); CUDA is refused with a clear error", () => {
  const base = VARIANTS[0]!.cfg;
  const bad = (llama: object, msg: RegExp, Err: typeof TypeError | typeof RangeError = RangeError) =>
    assert.throws(() => validateModelConfig({ ...base, llama: { ...base.llama!, ...llama } }), (e: Error) => e instanceof Err && msg.test(e.message), JSON.stringify(llama));
  bad({ nKvHead: 3 }, /llama\.nKvHead \(3\) must divide nHead \(4\)/);
  bad({ headDim: 7 }, /llama\.headDim must be even/);
  bad({ ropeFactor: 0 }, /llama\.ropeFactor must be a finite number > 0/);
  bad({ ropeHighFreqFactor: 0.5 }, /llama\.ropeHighFreqFactor \(0\.5\) must be greater than llama\.ropeLowFreqFactor/);
  bad({ mlpAct: "relu" }, /llama\.mlpAct must be one of 'silu', 'gelu_tanh'/, TypeError);
  bad({ ropeTheda: 5 }, /llama\.ropeTheda is not a Llama option/, TypeError);
  bad({ attnSoftcap: -1 }, /llama\.attnSoftcap/);
  assert.throws(() => validateModelConfig({ ...base, llama: { nKvHead: 2, headDim: 8 } as never }), /llama\.dFf .* is required/);
  assert.throws(() => validateModelConfig({ ...base, llama: { dFf: 8, headDim: 8, ropeType: "linear" } }), /llama\.ropeFactor is required for ropeType 'linear'/);
  assert.throws(() => validateModelConfig({ ...base, arch: "gpt2" }), /llama options are only for arch 'llama'/);
  assert.throws(() => validateModelConfig({ ...base, arch: "t5" as never }), /arch must be one of 'gpt2', 'llama'/);

  // The engine checks the same fields itself (the binding's object straight to calib_model_create).
  const Model = addon().Model as new (o: Record<string, unknown>) => { free(): void };
  const raw = { arch: "llama", nLayer: 1, nHead: 4, dModel: 16, context: 8, vocab: 11, maxBatch: 1 };
  const engine = (llama: object, msg: RegExp, extra: object = {}) =>
    assert.throws(() => new Model({ ...raw, ...extra, llama: { dFf: 8, ...llama } }), msg, JSON.stringify(llama));
  engine({ nKvHead: 3 }, /nKvHead must be ≥ 1 and divide nHead \(got nKvHead 3, nHead 4\)/);
  engine({ headDim: 5 }, /headDim must be an even number/);
  engine({ normEps: 0 }, /normEps must be a finite number > 0/);
  engine({ ropeType: "llama3", ropeFactor: 8, ropeLowFreqFactor: 4, ropeHighFreqFactor: 1, ropeOriginalContext: 64 }, /ropeHighFreqFactor must be a finite number > ropeLowFreqFactor/);
  engine({ ropeType: "llama3", ropeFactor: 8 }, /ropeLowFreqFactor is required for ropeType 'llama3'/);
  engine({ ropeType: "yarn" }, /ropeType must be one of 'default', 'linear', 'llama3'/);
  engine({ qkvBias: 1 }, /qkvBias must be a boolean/);
  engine({ slidingWindow: 4, slidingPeriod: 0 }, /slidingPeriod = 0 is out of range/);
  engine({ attnScale: -1 }, /attnScale must be a finite number > 0/);
  assert.throws(() => new Model({ ...raw, nHead: 5, llama: { dFf: 8 } }), /headDim is required when nHead does not divide dModel/);
  assert.throws(() => new Model({ ...raw }), /llama \(the Llama family's options\) is required/);
  assert.throws(() => new Model({ ...raw, arch: "gpt2", llama: { dFf: 8 } }), /llama options are only for arch 'llama'/);
  // CUDA trains the family in bfloat16 only (refused before any device work), and needs a usable GPU
  assert.throws(() => new Model({ ...raw, device: "cuda", precision: "float32", llama: { dFf: 8 } }),
    /on CUDA trains in bfloat16 mixed precision|no CUDA path/);
  assert.throws(() => new Model({ ...raw, device: "cuda", precision: "bfloat16", llama: { dFf: 8, headDim: 258 } }), /head_dim ≤ 256 .*got 258|no CUDA path/);
  assert.throws(() => new Model({ ...raw, checkpointLayers: 3, llama: { dFf: 8 } }), /checkpointLayers must be in \[0, nLayer = 1\] \(got 3\)/);
  const ok = new Model({ ...raw, nHead: 5, llama: { dFf: 8, headDim: 4, nKvHead: 5 } });
  ok.free();
});
