// End to end on Brown text with the byte tokenizer: pretraining a tiny GPT for a few hundred
// steps brings the validation loss well below the unigram entropy; SFT on `pos` from that
// checkpoint (prompts right-aligned, the default) learns the answer format and lifts held-out
// accuracy above chance (one-sided binomial test, p < 0.01); the same seeds give bit-identical
// runs (weights, optimizer state, train logs) for pretraining and SFT.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { prepareSplits } from "../../backend/data/index.js";
import { readArrowStream, readTrainLog } from "../../backend/records/index.js";
import { train, type TrainConfigInput } from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

const PRETRAIN: TrainConfigInput = {
  kind: "pretrain", tokenizer: "byte", seed: 1, threads: 2,
  model: { nLayer: 2, nHead: 4, dModel: 64, context: 256 },
  batchSize: 10, steps: 300, contextWarmup: { steps: 200, length: 64 },
  optim: { lr: 3e-3, warmupSteps: 30, weightDecay: 0.1 },
  logEvery: 50, evalEvery: 100, evalWindows: 24,
  eval: { maxTokens: 1920, tasks: [], maxQuestions: 0, batchSize: 16 },
};

/** One-sided binomial tail P(X ≥ k) for X ~ Bin(n, p), in log space. */
export function binomialTail(k: number, n: number, p: number): number {
  let logPmf = n * Math.log(1 - p); // i = 0
  const terms: number[] = [];
  for (let i = 0; i <= n; i++) {
    if (i >= k) terms.push(logPmf);
    logPmf += Math.log((n - i) / (i + 1)) + Math.log(p / (1 - p));
  }
  const m = Math.max(...terms);
  return Math.exp(m) * terms.reduce((a, t) => a + Math.exp(t - m), 0);
}

test("binomial tail against hand-computed values", () => {
  assert.ok(Math.abs(binomialTail(2, 2, 0.5) - 0.25) < 1e-15);
  assert.ok(Math.abs(binomialTail(1, 3, 0.25) - (1 - 0.75 ** 3)) < 1e-15);
  assert.ok(Math.abs(binomialTail(0, 10, 0.3) - 1) < 1e-12);
});

test("Brown, byte tokenizer: pretraining beats the unigram entropy, SFT on pos, bit-identical reruns", async (t) => {
  const dirs = [tempDir("e2e"), tempDir("e2e")];
  try {
    // unigram baseline: cross-entropy of the validation bytes under the (add-one) training unigram
    const data = prepareSplits({ tokenizer: "byte", progress: false });
    const counts = new Float64Array(256);
    for (const x of data.splits.train.tokens) counts[x]!++;
    const n = data.splits.train.tokens.length;
    let unigram = 0;
    for (const x of data.splits.validation.tokens) unigram -= Math.log((counts[x]! + 1) / (n + 256));
    unigram /= data.splits.validation.tokens.length;

    const results = [];
    const t0 = performance.now();
    for (const { dir } of dirs) {
      const pt = await train(PRETRAIN, { outDir: join(dir, "pt"), runId: "pt", progress: false });
      const sft = await train({
        kind: "sft", init: join(dir, "pt", "checkpoint"), tasks: ["pos"], seed: 2, threads: 2, maxExamples: 4000, epochs: 3,
        batchSize: 16, optim: { lr: 3e-3, warmupSteps: 5 }, loss: { labelSmoothing: 0.1 }, logEvery: 10,
        eval: { maxTokens: 0, tasks: ["pos"], maxQuestions: 1200, batchSize: 32 },
      }, { outDir: join(dir, "sft"), runId: "sft", progress: false });
      results.push({ pt, sft });
      t.diagnostic(`run ${results.length}: pretraining ${pt.metrics.seconds!.toFixed(1)} s, SFT ${sft.metrics.seconds!.toFixed(1)} s (${((performance.now() - t0) / 1000).toFixed(1)} s so far)`);
    }
    const [a, b] = results as [typeof results[0], typeof results[0]];

    // pretraining: validation loss well below the unigram entropy, and falling
    const val = a.pt.log.filter((r) => r.split === "validation").map((r) => r.loss);
    t.diagnostic(`unigram cross-entropy ${unigram.toFixed(4)} nats; validation loss by 100 steps: ${val.map((v) => v.toFixed(4)).join(", ")}`);
    assert.equal(val.length, 3);
    assert.ok(val[2]! < unigram - 0.35, `final validation loss ${val[2]} is not well below the unigram entropy ${unigram}`);
    assert.ok(val[2]! < val[0]!);
    assert.ok(a.pt.metrics.token_nll! < unigram - 0.35);

    // SFT on pos: the held-out answer letter's NLL and the probability mass on A–D before/after
    const q = readArrowStream(join(dirs[0]!.dir, "sft", "questions.arrow")).toArray().map((r) => r.toJSON() as {
      epoch: number; gold: number; correct: boolean; vocab_probs: { toArray(): Float32Array };
    });
    const at = (e: number) => q.filter((r) => r.epoch === e);
    const before = at(0), after = at(3);
    assert.ok(before.length > 200 && before.length === after.length, `${before.length} evaluated questions`);
    const mass = (rows: typeof q) => rows.reduce((s, r) => s + r.vocab_probs.toArray().reduce((x, y) => x + y, 0), 0) / rows.length;
    const nll = (rows: typeof q) => rows.reduce((s, r) => s - Math.log(r.vocab_probs.toArray()[r.gold]!), 0) / rows.length;
    const correct = after.filter((r) => r.correct).length;
    const p = binomialTail(correct, after.length, 0.25);
    t.diagnostic(`pos, ${after.length} held-out questions: letter mass ${mass(before).toFixed(3)} → ${mass(after).toFixed(3)}, ` +
      `gold-letter NLL ${nll(before).toFixed(3)} → ${nll(after).toFixed(3)}, accuracy ${(correct / after.length).toFixed(3)} ` +
      `(one-sided binomial p vs 1/4: ${p.toExponential(2)})`);
    assert.ok(mass(before) < 0.25 && mass(after) > 0.75, "SFT moves the answer position's mass onto the four letters");
    assert.ok(p < 0.01, `held-out accuracy ${correct}/${after.length} is not significantly above chance (p = ${p})`);
    assert.ok(nll(after) < nll(before) - 2, "the held-out gold letter's NLL falls");

    // reproducibility: the second run is bit-identical
    for (const part of ["pt", "sft"]) {
      for (const f of ["model.safetensors", "optimizer.safetensors"]) {
        const x = readFileSync(join(dirs[0]!.dir, part, "checkpoint", f)), y = readFileSync(join(dirs[1]!.dir, part, "checkpoint", f));
        assert.ok(x.equals(y), `${part}/${f} differs between the two runs`);
      }
      const strip = (rows: ReturnType<typeof readTrainLog>) => rows.map(({ time_s: _t, tokens_per_s: _s, ...r }) => r);
      assert.deepEqual(strip(readTrainLog(join(dirs[0]!.dir, part, "train_log.arrow"))), strip(readTrainLog(join(dirs[1]!.dir, part, "train_log.arrow"))));
    }
    assert.deepEqual(a.sft.metrics.question_accuracy, b.sft.metrics.question_accuracy);
  } finally {
    for (const d of dirs) d.cleanup();
  }
});
