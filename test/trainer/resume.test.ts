// Resume: a run stopped at a checkpoint and continued equals the uninterrupted run bit for bit
// (weights, AdamW moments, the logged losses / norms, the evaluation records), for pretraining
// and for SFT; and resume refuses a checkpoint written by another config.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readArrowStream, readTrainLog, type TrainLogRow } from "../../backend/records/index.js";
import { CheckpointError, train, type TrainConfigInput } from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

const PRETRAIN: TrainConfigInput = {
  kind: "pretrain", tokenizer: "byte", seed: 3, threads: 2,
  model: { nLayer: 1, nHead: 2, dModel: 16, context: 256 },
  batchSize: 2, gradAccum: 2, steps: 12, logEvery: 2, evalEvery: 4, evalWindows: 2,
  contextWarmup: { steps: 4, length: 64 }, // 8 windows of 64 per micro-batch for 4 steps, then 2 of 256
  optim: { lr: 3e-3, warmupSteps: 3 }, loss: { labelSmoothing: 0.1 },
  eval: { maxTokens: 512, tasks: [], maxQuestions: 0, batchSize: 2 },
};

const same = (a: TrainLogRow[], b: TrainLogRow[]) =>
  assert.deepEqual(a.map(({ time_s: _t, tokens_per_s: _s, ...r }) => r), b.map(({ time_s: _t, tokens_per_s: _s, ...r }) => r));

function sameFiles(a: string, b: string, files: string[]): void {
  for (const f of files) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs`);
}

function sameTable(a: string, b: string): void {
  const ta = readArrowStream(a), tb = readArrowStream(b);
  assert.equal(ta.numRows, tb.numRows);
  assert.ok(ta.numRows > 0);
  const plain = (t: typeof ta) => t.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>)
    .map(([k, v]) => [k, v && typeof v === "object" && "toArray" in v ? Array.from((v as { toArray(): ArrayLike<number> }).toArray()) : v])));
  assert.deepEqual(plain(ta), plain(tb));
}

test("pretraining (with a sequence-length warm-up): stop at step 5 + resume = uninterrupted run, bit for bit; then SFT likewise", async () => {
  const whole = tempDir("resume"), parts = tempDir("resume");
  try {
    const opts = { runId: "r", progress: false };
    const full = await train(PRETRAIN, { outDir: whole.dir, ...opts });
    assert.equal(full.completed, true);
    const first = await train(PRETRAIN, { outDir: parts.dir, stopAfterSteps: 5, ...opts });
    assert.equal(first.completed, false);
    assert.equal(first.steps, 5);
    const state = JSON.parse(readFileSync(join(parts.dir, "checkpoint", "trainer_state.json"), "utf8"));
    assert.equal(state.step, 5);
    assert.equal(state.microBatches, 10);
    assert.equal(state.batchInEpoch, 2, "8 warm-up micro-batches (4 steps × 2), then 2 of full length");
    const rest = await train(PRETRAIN, { outDir: parts.dir, resume: true, ...opts });
    assert.equal(rest.completed, true);
    assert.equal(rest.steps, 12);
    sameFiles(join(whole.dir, "checkpoint"), join(parts.dir, "checkpoint"), ["model.safetensors", "optimizer.safetensors"]);
    same(readTrainLog(join(whole.dir, "train_log.arrow")), readTrainLog(join(parts.dir, "train_log.arrow")));
    assert.equal(readTrainLog(join(parts.dir, "train_log.arrow")).filter((r) => r.split === "validation").length, 3);
    sameTable(join(whole.dir, "tokens.arrow"), join(parts.dir, "tokens.arrow"));

    // SFT from that checkpoint: stop in the middle of epoch 1, resume
    const sft: TrainConfigInput = {
      kind: "sft", init: join(whole.dir, "checkpoint"), tasks: ["pos"], maxExamples: 40, epochs: 2, seed: 4, threads: 2,
      batchSize: 4, gradAccum: 2, logEvery: 1, optim: { lr: 1e-3, warmupSteps: 1 }, loss: { labelSmoothing: 0.1, temperature: 0.8 },
      eval: { maxTokens: 0, tasks: ["pos"], maxQuestions: 12, batchSize: 4 },
    };
    const s1 = tempDir("resume"), s2 = tempDir("resume");
    try {
      const a = await train(sft, { outDir: s1.dir, ...opts });
      assert.ok(a.totalSteps >= 4, `${a.totalSteps} steps`);
      const b = await train(sft, { outDir: s2.dir, stopAfterSteps: Math.floor(a.totalSteps / 2) + 1, ...opts });
      assert.equal(b.completed, false);
      await train(sft, { outDir: s2.dir, resume: true, ...opts });
      sameFiles(join(s1.dir, "checkpoint"), join(s2.dir, "checkpoint"), ["model.safetensors", "optimizer.safetensors"]);
      same(readTrainLog(join(s1.dir, "train_log.arrow")), readTrainLog(join(s2.dir, "train_log.arrow")));
      sameTable(join(s1.dir, "questions.arrow"), join(s2.dir, "questions.arrow"));
      const epochs = readArrowStream(join(s2.dir, "questions.arrow")).getChild("epoch")!.toArray() as Int32Array;
      assert.deepEqual([...new Set(epochs)], [0, 1, 2]);
    } finally {
      s1.cleanup();
      s2.cleanup();
    }

    // resuming with another config is refused
    await assert.rejects(
      train({ ...PRETRAIN, optim: { lr: 1e-3, warmupSteps: 3 } }, { outDir: parts.dir, resume: true, ...opts }),
      (err: unknown) => err instanceof CheckpointError && /written by a different config/.test((err as Error).message),
    );
  } finally {
    whole.cleanup();
    parts.cleanup();
  }
});
