// `calib train` on a knowledge world: pretraining on its per-epoch streams with the word-level
// vocabulary (resume across epochs of different lengths is bit-identical), SFT on its chat
// conversations (assistant-only, packed), the held-out questions scored without a template before
// SFT and with it after, checkpoints that carry the world, `calib eval` of a world checkpoint,
// config errors — and Brown configs keep their hashes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Table } from "apache-arrow";
import { buildWorld, lmWindowCount, worldQuestions, worldStream } from "../../backend/data/index.js";
import { readArrowStream } from "../../backend/records/index.js";
import {
  CheckpointError, configHash, evaluateCheckpointDir, loadCheckpoint, parseTrainConfig, train, type TrainConfigInput,
} from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

const WORLD = { seed: 11, people: 48, attributes: { birth_city: 8, employer: 8, birth_year: 10 }, exposures: { min: 1, max: 6 } };
const PRETRAIN: TrainConfigInput = {
  kind: "pretrain", tokenizer: "word", seed: 2, threads: 2, world: { config: WORLD, scoring: ["option", "letter"] },
  model: { nLayer: 1, nHead: 2, dModel: 32, context: 64 }, batchSize: 4, steps: 30,
  optim: { lr: 3e-3, warmupSteps: 5 }, logEvery: 5, evalEvery: 10, evalWindows: 4, eval: { maxTokens: 256, maxQuestions: 24, batchSize: 8 },
};
const opts = { runId: "w", progress: false };

const column = (t: Table, name: string) => Array.from(t.getChild(name)!.toArray() as ArrayLike<unknown>);
const lists = (t: Table, name: string) => Array.from({ length: t.numRows }, (_, i) => Array.from((t.getChild(name)!.get(i) as { toArray(): Float32Array }).toArray()));

test("Brown configs keep their config hashes (the world block is absent)", () => {
  const hashes = [
    { kind: "pretrain" }, { kind: "sft", init: "x" },
    { kind: "pretrain", tokenizer: "r50k", model: { dModel: 64, nHead: 4 }, steps: 10, loss: { labelSmoothing: 0.1 } },
    { kind: "sft", init: "x", tasks: ["pos"], epochs: 2, eval: { promptAlign: "left" } },
  ].map((c) => configHash(parseTrainConfig(c)));
  // the hashes of these configs before knowledge worlds existed (commit 201bad9)
  assert.deepEqual(hashes, ["6a48ec659a8e541b", "125e27ed3cbd4ba0", "ce80bef23ac1bb28", "bf637ed93e5902f7"]);
  assert.notEqual(configHash(parseTrainConfig(PRETRAIN)), hashes[0]);
});

test("config errors name the field", () => {
  assert.throws(() => parseTrainConfig({ kind: "pretrain", tokenizer: "word" }), { name: "TypeError", message: /tokenizer: the word-level tokenizer needs a world/ });
  assert.throws(() => parseTrainConfig({ kind: "pretrain", world: { config: { people: 2 } } }), { name: "TypeError", message: /world\.config/ });
  assert.throws(() => parseTrainConfig({ kind: "pretrain", world: { scoring: ["vibes"] } }), { name: "TypeError", message: /world\.scoring\.0/ });
  assert.throws(() => parseTrainConfig({ kind: "sft", init: "x", world: { pack: "yes" } }), { name: "TypeError", message: /world\.pack/ });
});

test("world: pretrain (resumed across epochs = uninterrupted), SFT on conversations, option/letter records, eval of the checkpoints", async () => {
  const whole = tempDir("world"), parts = tempDir("world"), sftDir = tempDir("world"), evalDir = tempDir("world");
  try {
    const world = buildWorld(WORLD);
    const epochBatches = [0, 1].map((e) => Math.floor(lmWindowCount(worldStream({ world, tokenizer: "word", stream: e, progress: false }).tokens.length, 64) / 4));
    assert.ok(epochBatches[0]! < 30 && epochBatches[0]! + epochBatches[1]! > 30, `30 steps span two epochs (${epochBatches})`);
    const a = await train(PRETRAIN, { outDir: whole.dir, ...opts });
    assert.ok(Number.isFinite(a.metrics.accuracy_world_option!) && Number.isFinite(a.metrics.accuracy_norm_world!) && Number.isFinite(a.metrics.accuracy_world_letter!));
    await train(PRETRAIN, { outDir: parts.dir, stopAfterSteps: epochBatches[0]! + 2, ...opts });
    await train(PRETRAIN, { outDir: parts.dir, resume: true, ...opts });
    assert.ok(readFileSync(join(whole.dir, "checkpoint", "model.safetensors")).equals(readFileSync(join(parts.dir, "checkpoint", "model.safetensors"))), "resumed weights differ");

    const ck = loadCheckpoint(join(whole.dir, "checkpoint"));
    assert.equal(ck.config.tokenizer, "word");
    assert.equal(ck.config.training.world_hash, world.hash);
    const pq = readArrowStream(join(whole.dir, "questions.arrow"));
    const qs = worldQuestions(world, { limit: 24 });
    assert.equal(pq.numRows, 48);
    assert.deepEqual(column(pq, "scoring"), [...qs.map(() => "option"), ...qs.map(() => "letter")]);
    assert.deepEqual(column(pq, "exposures"), [...qs, ...qs].map((q) => q.exposures));
    assert.deepEqual(column(pq, "id"), [...qs, ...qs].map((q) => q.id));
    assert.deepEqual(new Set(column(pq, "split")), new Set(["held-out"]));
    assert.deepEqual(new Set(column(readArrowStream(join(whole.dir, "tokens.arrow")), "split")), new Set(["validation"]));

    const sftCfg: TrainConfigInput = {
      kind: "sft", init: join(whole.dir, "checkpoint"), seed: 1, threads: 2, epochs: 1, batchSize: 4, maxExamples: 40,
      world: { scoring: ["option"], pack: true }, eval: { maxTokens: 0, maxQuestions: 24, batchSize: 8 },
    };
    const s = await train(sftCfg, { outDir: sftDir.dir, ...opts });
    assert.ok(s.steps >= 2);
    const sq = readArrowStream(join(sftDir.dir, "questions.arrow"));
    const epochs = column(sq, "epoch");
    assert.deepEqual(epochs, [...qs.map(() => 0), ...qs.map(() => 1)]);
    // epoch 0 is the pretrained model scored like pretraining did (no chat template): the same numbers
    assert.deepEqual(lists(sq, "logits").slice(0, 24), lists(pq, "logits").slice(0, 24));
    const sck = loadCheckpoint(join(sftDir.dir, "checkpoint"));
    assert.equal(sck.config.training.kind, "sft");
    assert.equal(sck.config.training.chat_template, "calib-chat/1");
    // calib eval of the SFT checkpoint scores with its chat template: the epoch-1 rows again
    const ev = evaluateCheckpointDir({ checkpoint: join(sftDir.dir, "checkpoint"), outDir: evalDir.dir, eval: { maxTokens: 128, maxQuestions: 24, batchSize: 8 }, progress: false, threads: 2 });
    assert.deepEqual(ev.artifacts, ["tokens.arrow", "questions.arrow"]);
    const eq = readArrowStream(join(evalDir.dir, "questions.arrow"));
    assert.deepEqual(lists(eq, "logits"), lists(sq, "logits").slice(24));
    const log = JSON.parse(readFileSync(join(sftDir.dir, "run.json"), "utf8")) as { config: { world: unknown } };
    assert.ok(log.config.world, "run.json records the world block");

    // another world, or a checkpoint without one, is refused with a clear error
    await assert.rejects(train({ ...sftCfg, world: { config: { ...WORLD, seed: 12 } } }, { outDir: sftDir.dir, ...opts }), (e: Error) => e instanceof CheckpointError && /pretrained on world/.test(e.message));
  } finally {
    for (const d of [whole, parts, sftDir, evalDir]) d.cleanup();
  }
});
