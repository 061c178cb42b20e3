// A diverging run stops with an error that names the step, and run.json records the failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GptModel } from "../../backend/engine/index.js";
import { train } from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

test("an exploding learning rate stops the run at the first non-finite loss or gradient, naming the step", async () => {
  const { dir, cleanup } = tempDir("nan");
  try {
    const config = {
      kind: "pretrain", tokenizer: "byte", threads: 2, model: { nLayer: 1, nHead: 2, dModel: 16, context: 32 }, batchSize: 2, steps: 50,
      optim: { lr: 1e37, warmupSteps: 0, gradClip: 0 }, logEvery: 1, evalEvery: 0, eval: { maxTokens: 0, maxQuestions: 0 },
    } as const;
    await assert.rejects(train(config, { outDir: dir, progress: false }), (err: unknown) => {
      assert.match((err as Error).message, /^step \d+: the (training loss|gradient norm) is (NaN|Infinity|-Infinity)/);
      return true;
    });
    const run = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
    assert.equal(run.status, "failed");
    assert.match(run.error, /^step \d+:/);
  } finally {
    cleanup();
  }
});

test("the engine reports a NaN loss instead of hiding it, and validates token ids before touching memory", () => {
  const m = GptModel.create({ nLayer: 1, nHead: 1, dModel: 4, context: 4, vocab: 5, tied: true }, { maxBatch: 1 });
  m.init(0);
  const batch = { inputs: Int32Array.from([1, 2, 3, 4]), targets: Int32Array.from([2, 3, 4, 0]), b: 1, t: 4 };
  assert.ok(Number.isFinite(m.forward(batch).lossSum));
  const p = m.getParams();
  p[3] = NaN;
  m.setParams(p);
  assert.ok(Number.isNaN(m.forward(batch).lossSum));
  m.zeroGrad();
  m.forwardBackward(batch);
  assert.ok(Number.isNaN(m.gradNorm().norm));
  assert.throws(() => m.forward({ ...batch, inputs: Int32Array.from([1, 2, 5, 0]) }), /inputs\[2\] = 5 is outside \[0, 5\)/);
  assert.throws(() => m.forward({ ...batch, targets: Int32Array.from([1, -7, 0, 0]) }), /targets\[1\] = -7 .* not ignoreIndex/);
  assert.throws(() => m.forward({ inputs: new Int32Array(8), targets: new Int32Array(8), b: 2, t: 4 }), /does not fit maxBatch × context = 1 × 4/);
  assert.throws(() => m.forward({ inputs: new Int32Array(5), targets: new Int32Array(5), b: 1, t: 5 }), /sequence length 5 is outside \[1, context = 4\]/);
  assert.throws(() => m.forward(batch, { labelSmoothing: 2 }), RangeError);
  assert.throws(() => m.adamw({ lr: -1, step: 1 }), /lr must be a finite number ≥ 0/);
  assert.throws(() => GptModel.create({ nLayer: 1, nHead: 3, dModel: 4, context: 4, vocab: 5, tied: true }, { maxBatch: 1 }), /nHead \(3\) must divide dModel \(4\)/);
  assert.throws(() => m.write("params", new Float32Array(3)), /params has 3 values/);
  m.free();
  assert.throws(() => m.forward(batch), /the model was freed/);
});
