// The CUDA trainer (issue 9) against the CPU engine (issue 5, itself checked against float64
// references and finite differences): the same initial weights and batches must give the same
// loss, per-tensor gradients, gradient norms, AdamW updates and evaluation records — in fp32 to
// float rounding, in bf16 mixed precision to bf16 tolerances. Also gradient accumulation,
// bitwise determinism, buffer round trips, partial batches (b < maxBatch, t < context) and the
// errors. Without a GPU only the error tests run; on the GPU machine scripts/gpu/job.sh runs
// this file bundled (.device/b/model-test.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GptModel, cudaAvailable, engineInfo, type Batch, type EvalResult, type LossOptions, type ModelConfig } from "../../backend/engine/index.js";
import { addon } from "../../backend/engine/addon.js";
import { integers, relError, rng } from "../helpers/random.js";

const GPU = cudaAvailable();
const needGpu = GPU ? false : engineInfo().cudaMessage;

interface Case {
  name: string;
  cfg: ModelConfig;
  loss: LossOptions;
}

const CASES: Case[] = [
  { name: "tied, ε=0.1", cfg: { nLayer: 2, nHead: 3, dModel: 24, context: 16, vocab: 101, tied: true }, loss: { labelSmoothing: 0.1 } },
  { name: "untied, T=0.7, softcap 5, ε=0", cfg: { nLayer: 2, nHead: 4, dModel: 64, context: 16, vocab: 300, tied: false }, loss: { temperature: 0.7, softcap: 5 } },
  { name: "one layer, ε=0.2, T=1.5", cfg: { nLayer: 1, nHead: 2, dModel: 32, context: 20, vocab: 257, tied: true }, loss: { labelSmoothing: 0.2, temperature: 1.5 } },
];

function batch(seed: number, b: number, t: number, V: number, ignoreFraction = 0.2): Batch {
  const r = rng(seed);
  const inputs = integers(r, b * t, V);
  const targets = integers(r, b * t, V);
  for (let i = 0; i < targets.length; i++) if (r() < ignoreFraction) targets[i] = -100;
  targets[0] = 1; // at least one supervised token
  return { inputs, targets, b, t };
}

function pair(c: Case, precision: "float32" | "bfloat16", maxBatch = 4, headWorkspaceBytes?: number): { cpu: GptModel; gpu: GptModel } {
  const cpu = GptModel.create(c.cfg, { maxBatch, device: "cpu" });
  cpu.init(7);
  const gpu = GptModel.create(c.cfg, { maxBatch, device: "cuda", precision, headWorkspaceBytes });
  gpu.setParams(cpu.getParams());
  return { cpu, gpu };
}

function tensorErrors(cpu: GptModel, a: Float32Array | Float64Array, b: Float32Array | Float64Array): { name: string; err: number }[] {
  return cpu.tensors().map((t) => ({
    name: t.name,
    err: relError(a.subarray(t.offset, t.offset + t.numel), b.subarray(t.offset, t.offset + t.numel)),
  }));
}

function assertTensors(label: string, cpu: GptModel, got: Float32Array | Float64Array, want: Float32Array | Float64Array, tol: number): void {
  for (const { name, err } of tensorErrors(cpu, got, want)) {
    assert.ok(err <= tol, `${label}: tensor ${name}: relative error ${err.toExponential(2)} > ${tol}`);
  }
}

test("device 'cuda' without a usable GPU is a clear error; bfloat16 needs CUDA", { skip: GPU ? "a GPU is present" : false }, () => {
  const cfg = CASES[0]!.cfg;
  assert.throws(() => GptModel.create(cfg, { maxBatch: 1, device: "cuda" }), /device 'cuda' is not available/);
  const Model = addon().Model as new (o: Record<string, unknown>) => unknown;
  assert.throws(() => new Model({ ...cfg, maxBatch: 1, device: "cuda" }), (e: Error) => e.constructor === Error && /CUDA|cuBLAS/.test(e.message));
  assert.throws(() => new Model({ ...cfg, maxBatch: 1, device: "cpu", precision: "bfloat16" }), TypeError);
  assert.throws(() => GptModel.create(cfg, { maxBatch: 1, precision: "float16" as "float32" }), TypeError);
  // the CPU model still works in the same process
  const m = GptModel.create(cfg, { maxBatch: 1 });
  m.init(1);
  const r = m.forward(batch(3, 1, 4, cfg.vocab));
  assert.ok(Number.isFinite(r.lossSum) && r.lossSum > 0);
  m.free();
});

// The LM head's loss keeps its logits in chunks by default (a workspace of 4 GiB); with none it
// streams them (computed twice).
const VARIANTS: { label: string; headWorkspaceBytes?: number }[] = [
  { label: "" },
  { label: ", LM head streamed (headWorkspaceBytes 0)", headWorkspaceBytes: 0 },
];

for (const c of CASES) {
  for (const variant of VARIANTS) {
    test(`fp32 CUDA = CPU: loss, gradients, norms, AdamW (${c.name}${variant.label})`, { skip: needGpu }, () => {
      const { cpu, gpu } = pair(c, "float32", 4, variant.headWorkspaceBytes);
      assert.equal(gpu.compute, "float32");
      assert.equal(gpu.precision, "float32");
      for (const t of [12, 16]) { // b < maxBatch and t < context
        cpu.zeroGrad();
        gpu.zeroGrad();
        const bt = batch(11 + t, 3, t, c.cfg.vocab);
        const a = cpu.forwardBackward(bt, c.loss);
        const b = gpu.forwardBackward(bt, c.loss);
        assert.equal(b.validCount, a.validCount);
        assert.ok(Math.abs(b.lossSum - a.lossSum) <= 1e-5 * Math.abs(a.lossSum), `t=${t}: loss ${b.lossSum} vs ${a.lossSum}`);
        assertTensors(`t=${t}: gradient`, cpu, gpu.getGrads(), cpu.getGrads(), 1e-4);
      }
      const na = cpu.gradNorm(), nb = gpu.gradNorm();
      assert.ok(Math.abs(nb.norm - na.norm) <= 1e-5 * na.norm, `norm ${nb.norm} vs ${na.norm}`);
      for (let i = 0; i < na.tensorNorms.length; i++) {
        assert.ok(Math.abs(nb.tensorNorms[i]! - na.tensorNorms[i]!) <= 1e-4 * na.tensorNorms[i]! + 1e-12, `tensor norm ${i}`);
      }
      // AdamW on the same gradients (Adam normalises every entry, so gradients that agree to float
      // rounding but are ~0 — the key bias, whose exact gradient is 0 — would move differently)
      gpu.write("grads", cpu.getGrads());
      for (const step of [1, 2]) {
        const opt = { lr: 1e-2, weightDecay: 0.1, gradScale: 0.5, step };
        cpu.adamw(opt);
        gpu.adamw(opt);
      }
      assertTensors("params after AdamW", cpu, gpu.getParams(), cpu.getParams(), 1e-6);
      assertTensors("AdamW m", cpu, gpu.read("m"), cpu.read("m"), 1e-6);
      assertTensors("AdamW v", cpu, gpu.read("v"), cpu.read("v"), 1e-6);
      // a forward-only call leaves the gradients alone
      const before = gpu.getGrads();
      gpu.forward(batch(12, 4, 16, c.cfg.vocab), c.loss);
      assert.deepEqual(gpu.getGrads(), before);
      cpu.free();
      gpu.free();
    });
  }
}

test("fp32 CUDA = CPU with the causal products in query blocks (T = 130: 2 blocks, T = 520: 4)", { skip: needGpu }, () => {
  const c: Case = { name: "long context", cfg: { nLayer: 1, nHead: 2, dModel: 16, context: 520, vocab: 50, tied: true }, loss: { labelSmoothing: 0.1 } };
  const { cpu, gpu } = pair(c, "float32", 1);
  for (const t of [130, 520]) {
    cpu.zeroGrad();
    gpu.zeroGrad();
    const bt = batch(90 + t, 1, t, c.cfg.vocab);
    const a = cpu.forwardBackward(bt, c.loss);
    const b = gpu.forwardBackward(bt, c.loss);
    assert.ok(Math.abs(b.lossSum - a.lossSum) <= 1e-5 * Math.abs(a.lossSum), `t=${t}: loss ${b.lossSum} vs ${a.lossSum}`);
    assertTensors(`t=${t}: gradient`, cpu, gpu.getGrads(), cpu.getGrads(), 1e-4);
  }
  cpu.free();
  gpu.free();
});

function compareEval(label: string, got: EvalResult, want: EvalResult, tol: number, exact: boolean): void {
  const close = (name: string, g: Float32Array, w: Float32Array) => {
    assert.equal(g.length, w.length, `${label} ${name} length`);
    for (let i = 0; i < g.length; i++) {
      if (Number.isNaN(w[i]!)) {
        assert.ok(Number.isNaN(g[i]!), `${label} ${name}[${i}]: ${g[i]} where the CPU has NaN`);
        continue;
      }
      assert.ok(Math.abs(g[i]! - w[i]!) <= tol * Math.max(1, Math.abs(w[i]!)), `${label} ${name}[${i}]: ${g[i]} vs ${w[i]}`);
    }
  };
  close("lse", got.lse, want.lse);
  close("entropy", got.entropy, want.entropy);
  close("pMax", got.pMax, want.pMax);
  close("pTarget", got.pTarget!, want.pTarget!);
  close("nll", got.nll!, want.nll!);
  close("topP", got.topP, want.topP);
  close("optionLogits", got.optionLogits!, want.optionLogits!);
  if (exact) {
    assert.deepEqual(got.argmax, want.argmax, `${label} argmax`);
    assert.deepEqual(got.topIds, want.topIds, `${label} topIds`);
  } else {
    let same = 0;
    for (let i = 0; i < got.argmax.length; i++) same += got.argmax[i] === want.argmax[i] ? 1 : 0;
    assert.ok(same >= 0.8 * got.argmax.length, `${label} argmax agrees on ${same} of ${got.argmax.length}`);
  }
}

for (const precision of ["float32", "bfloat16"] as const) {
  test(`${precision} CUDA evaluation = CPU evaluation (rows, targets, top-k, options, T, softcap)`, { skip: needGpu }, () => {
    const c = CASES[1]!;
    const { cpu, gpu } = pair(c, precision);
    const bt = batch(21, 4, 16, c.cfg.vocab, 0.3);
    const rows = Int32Array.from([0, 5, 17, 18, 40, 63, 33]);
    const opts = { rows, topK: 7, optionIds: Int32Array.from([3, 7, 11, 299]), temperature: 0.8, softcap: 4 };
    const want = cpu.evaluate(bt, opts);
    const got = gpu.evaluate(bt, opts);
    compareEval(precision, got, want, precision === "float32" ? 1e-4 : 3e-2, precision === "float32");
    // all rows, no softcap, topK 16 (the largest), V not a multiple of anything
    const all = { topK: 16, optionIds: Int32Array.from([0, 1, 2]) };
    compareEval(`${precision} all rows`, gpu.evaluate(bt, all), cpu.evaluate(bt, all), precision === "float32" ? 1e-4 : 3e-2, precision === "float32");
    cpu.free();
    gpu.free();
  });
}

test("bf16 mixed precision tracks the fp32 CPU model (loss, gradients, a few AdamW steps; LM head chunked and streamed)", { skip: needGpu }, () => {
  for (const [c, head] of CASES.flatMap((c) => [[c, "chunked"], [c, "streamed"]] as const)) {
    const { cpu, gpu } = pair(c, "bfloat16", 4, head === "streamed" ? 0 : undefined);
    assert.equal(gpu.compute, "bfloat16");
    assert.equal(gpu.precision, "float32");
    const bt = batch(31, 4, 16, c.cfg.vocab);
    const a = cpu.forwardBackward(bt, c.loss);
    const b = gpu.forwardBackward(bt, c.loss);
    const name = `${c.name} (${head} head)`;
    assert.ok(Math.abs(b.lossSum - a.lossSum) <= 1e-2 * Math.abs(a.lossSum), `${name}: loss ${b.lossSum} vs ${a.lossSum}`);
    const ea = relError(gpu.getGrads(), cpu.getGrads());
    assert.ok(ea <= 5e-2, `${name}: gradient relative error ${ea}`);
    assertTensors(`${name} bf16 gradient`, cpu, gpu.getGrads(), cpu.getGrads(), 0.2);
    for (let s = 1; s <= 5; s++) {
      for (const m of [cpu, gpu]) {
        m.zeroGrad();
        m.forwardBackward(batch(40 + s, 4, 16, c.cfg.vocab), c.loss);
        const { norm } = m.gradNorm();
        m.adamw({ lr: 3e-3, weightDecay: 0.1, gradScale: Math.min(1, 1 / (norm + 1e-6)), step: s });
      }
    }
    const la = cpu.forward(bt, c.loss).lossSum, lb = gpu.forward(bt, c.loss).lossSum;
    assert.ok(Math.abs(lb - la) <= 2e-2 * la, `${name}: loss after 5 steps ${lb} vs ${la}`);
    cpu.free();
    gpu.free();
  }
});

test("bf16 attention on the flash kernel's tensor cores (head size 64, T = 100 over two key blocks, b < maxBatch) tracks the fp32 CPU model", { skip: needGpu }, () => {
  const c: Case = { name: "head 64", cfg: { nLayer: 2, nHead: 2, dModel: 128, context: 128, vocab: 211, tied: true }, loss: { labelSmoothing: 0.1 } };
  const { cpu, gpu } = pair(c, "bfloat16", 4);
  const bt = batch(61, 3, 100, c.cfg.vocab);
  const a = cpu.forwardBackward(bt, c.loss);
  const b = gpu.forwardBackward(bt, c.loss);
  assert.equal(b.validCount, a.validCount);
  assert.ok(Math.abs(b.lossSum - a.lossSum) <= 1e-2 * Math.abs(a.lossSum), `loss ${b.lossSum} vs ${a.lossSum}`);
  const ea = relError(gpu.getGrads(), cpu.getGrads());
  assert.ok(ea <= 5e-2, `gradient relative error ${ea}`);
  assertTensors("head 64 bf16 gradient", cpu, gpu.getGrads(), cpu.getGrads(), 0.1);
  // deterministic: the same step again gives the same bits
  const g1 = gpu.getGrads();
  gpu.zeroGrad();
  assert.equal(gpu.forwardBackward(bt, c.loss).lossSum, b.lossSum);
  assert.deepEqual(gpu.getGrads(), g1);
  cpu.free();
  gpu.free();
});

for (const precision of ["float32", "bfloat16"] as const) {
  test(`${precision}: gradient accumulation over micro-batches = one batch; bitwise determinism`, { skip: needGpu }, () => {
    const c = CASES[0]!;
    const m = GptModel.create(c.cfg, { maxBatch: 4, device: "cuda", precision });
    m.init(3);
    const full = batch(51, 4, 16, c.cfg.vocab);
    const half = (k: number): Batch => ({
      inputs: full.inputs.subarray(k * 32, (k + 1) * 32), targets: full.targets.subarray(k * 32, (k + 1) * 32), b: 2, t: 16,
    });
    let n = 0;
    for (const y of full.targets) n += y !== -100 ? 1 : 0;
    m.zeroGrad();
    const r = m.forwardBackward(full, c.loss, 1 / n);
    const one = m.getGrads();
    m.zeroGrad();
    const r0 = m.forwardBackward(half(0), c.loss, 1 / n), r1 = m.forwardBackward(half(1), c.loss, 1 / n);
    const acc = m.getGrads();
    assert.equal(r0.validCount + r1.validCount, r.validCount);
    assert.ok(Math.abs(r0.lossSum + r1.lossSum - r.lossSum) <= (precision === "float32" ? 1e-5 : 1e-2) * r.lossSum);
    const err = relError(acc, one);
    assert.ok(err <= (precision === "float32" ? 1e-5 : 1e-2), `accumulated vs one batch: ${err}`);
    // the same call twice gives the same bits
    m.zeroGrad();
    const again = m.forwardBackward(full, c.loss, 1 / n);
    assert.equal(again.lossSum, r.lossSum);
    assert.deepEqual(m.getGrads(), one);
    m.free();
  });
}

test("buffers round-trip through the GPU; zeroGrad; write refreshes the bf16 weights", { skip: needGpu }, () => {
  const c = CASES[0]!;
  const m = GptModel.create(c.cfg, { maxBatch: 2, device: "cuda", precision: "bfloat16" });
  const r = rng(5);
  const p = new Float32Array(m.numParams).map(() => r() - 0.5);
  for (const name of ["params", "grads", "m", "v"] as const) {
    m.write(name, p);
    assert.deepEqual(m.read(name), p, name);
  }
  m.zeroGrad();
  assert.ok(m.getGrads().every((x) => x === 0));
  // different weights give a different loss: the compute copy follows write()
  const bt = batch(61, 2, 8, c.cfg.vocab);
  const l1 = m.forward(bt).lossSum;
  m.init(9);
  const l2 = m.forward(bt).lossSum;
  assert.notEqual(l1, l2);
  const cpu = GptModel.create(c.cfg, { maxBatch: 2 });
  cpu.init(9);
  assert.deepEqual(m.getParams(), cpu.getParams()); // the same seeded init on either device
  assert.ok(Math.abs(l2 - cpu.forward(bt).lossSum) <= 1e-2 * l2);
  // validation happens before the GPU is touched
  assert.throws(() => m.forward({ ...bt, inputs: bt.inputs.map((x, i) => (i === 3 ? c.cfg.vocab : x)) }), RangeError);
  m.free();
  cpu.free();
});
