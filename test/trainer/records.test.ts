// Arrow records of the trainer: train_log.arrow, tokens.arrow, questions.arrow as IPC *stream*
// files with exactly the columns and types of docs/records.md, written atomically.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC, RecordBatchStreamReader } from "apache-arrow";
import { readTrainLog, writeQuestions, writeTokens, writeTrainLog, type TokenRecords, type TrainLogRow } from "../../backend/records/index.js";
import { tempDir } from "./helpers.js";

function schema(path: string): string[] {
  const t = tableFromIPC(readFileSync(path));
  return t.schema.fields.map((f) => `${f.name}:${String(f.type)}`);
}

function isStream(path: string): boolean {
  const b = readFileSync(path);
  // the file format starts with the magic "ARROW1"; the stream format with a message (0xFFFFFFFF continuation)
  return b.subarray(0, 6).toString("latin1") !== "ARROW1" && b.readUInt32LE(0) === 0xffffffff && RecordBatchStreamReader.from(b) !== null;
}

test("train_log.arrow: columns and types of docs/records.md, round trip, atomic", () => {
  const { dir, cleanup } = tempDir("rec");
  try {
    const rows: TrainLogRow[] = [
      { run_id: "r1", phase: "pretrain", step: 10, epoch: 0.25, split: "train", loss: 3.25, lr: 1e-3, grad_norm: 0.5, tokens_per_s: 1234.5, entropy: 3.1, time_s: 12.125 },
      { run_id: "r1", phase: "pretrain", step: 10, epoch: 0.25, split: "validation", loss: 3.5, lr: 1e-3, grad_norm: NaN, tokens_per_s: NaN, entropy: 3.0, time_s: 13.5 },
    ];
    const path = join(dir, "train_log.arrow");
    writeTrainLog(path, rows);
    assert.deepEqual(schema(path), [
      "run_id:Utf8", "phase:Utf8", "step:Int32", "epoch:Float32", "split:Utf8", "loss:Float32", "lr:Float32",
      "grad_norm:Float32", "tokens_per_s:Float32", "entropy:Float32", "time_s:Float64",
    ]);
    assert.ok(isStream(path));
    const back = readTrainLog(path);
    assert.equal(back.length, 2);
    assert.equal(back[0]!.loss, 3.25);
    assert.equal(back[0]!.lr, Math.fround(1e-3));
    assert.ok(Number.isNaN(back[1]!.grad_norm));
    assert.equal(back[1]!.time_s, 13.5);
    assert.deepEqual(readdirSync(dir), ["train_log.arrow"], "no temporary file is left");
  } finally {
    cleanup();
  }
});

test("tokens.arrow: columns, top-5 unpacked per rank, correct = argmax == target, chunks concatenated", () => {
  const { dir, cleanup } = tempDir("rec");
  try {
    const chunk = (epoch: number, n: number): TokenRecords => ({
      epoch, split: "validation",
      doc: Int32Array.from({ length: n }, (_, i) => 100 + i), position: Int32Array.from({ length: n }, (_, i) => i),
      target: Int32Array.from({ length: n }, (_, i) => i % 3), argmax: Int32Array.from({ length: n }, () => 1),
      pTarget: Float32Array.from({ length: n }, () => 0.25), confidence: Float32Array.from({ length: n }, () => 0.5),
      entropy: Float32Array.from({ length: n }, () => 1.5), lse: Float32Array.from({ length: n }, () => 4),
      topIds: Int32Array.from({ length: n * 5 }, (_, i) => i), topP: Float32Array.from({ length: n * 5 }, (_, i) => 1 / (i + 2)),
    });
    const path = join(dir, "tokens.arrow");
    writeTokens(path, "run-x", [chunk(0, 3), chunk(2, 2)]);
    assert.deepEqual(schema(path), [
      "run_id:Utf8", "epoch:Int32", "split:Utf8", "doc:Int32", "position:Int32", "target:Int32", "argmax:Int32", "correct:Bool",
      "p_target:Float32", "confidence:Float32", "entropy:Float32", "lse:Float32",
      "top1_id:Int32", "top2_id:Int32", "top3_id:Int32", "top4_id:Int32", "top5_id:Int32",
      "top1_p:Float32", "top2_p:Float32", "top3_p:Float32", "top4_p:Float32", "top5_p:Float32",
    ]);
    assert.ok(isStream(path));
    const t = tableFromIPC(readFileSync(path));
    assert.equal(t.numRows, 5);
    const rows = t.toArray().map((r) => r.toJSON() as Record<string, unknown>);
    assert.deepEqual(rows.map((r) => r.epoch), [0, 0, 0, 2, 2]);
    assert.deepEqual(rows.map((r) => r.correct), [false, true, false, false, true]);
    assert.equal(rows[1]!.top1_id, 5);
    assert.equal(rows[1]!.top5_id, 9);
    assert.equal(rows[1]!.top3_p, Math.fround(1 / 9));
    assert.equal(rows[0]!.run_id, "run-x");
  } finally {
    cleanup();
  }
});

test("questions.arrow: columns, pred/correct/confidence/entropy derived from probs, nullable lm-eval columns", () => {
  const { dir, cleanup } = tempDir("rec");
  try {
    const path = join(dir, "questions.arrow");
    const probs = [0.1, 0.6, 0.2, 0.1];
    writeQuestions(path, "q", [
      { epoch: 1, split: "validation", task: "pos", id: "pos-1", doc: 7, gold: 1, logits: [0, 1.79, 0.69, 0], probs, vocabProbs: [0.01, 0.06, 0.02, 0.01] },
      { epoch: 1, split: "validation", task: "cloze", id: "cloze-2", doc: 8, gold: 3, logits: [2, 1, 0, -1], probs: [0.64, 0.24, 0.09, 0.03], vocabProbs: null, probsNorm: [0.1, 0.2, 0.3, 0.4] },
    ]);
    assert.deepEqual(schema(path), [
      "run_id:Utf8", "epoch:Int32", "split:Utf8", "task:Utf8", "id:Utf8", "doc:Int32", "n_options:Int32", "gold:Int32", "pred:Int32",
      "correct:Bool", "confidence:Float32", "entropy:Float32", "logits:List<Float32>", "probs:List<Float32>",
      "vocab_probs:List<Float32>", "probs_norm:List<Float32>", "confidence_norm:Float32", "correct_norm:Bool", "scoring:Utf8", "exposures:Int32",
    ]);
    assert.ok(isStream(path));
    const rows = tableFromIPC(readFileSync(path)).toArray().map((r) => r.toJSON() as Record<string, unknown>);
    assert.equal(rows[0]!.pred, 1);
    assert.equal(rows[0]!.correct, true);
    assert.equal(rows[0]!.confidence, Math.fround(0.6));
    const h = -probs.reduce((a, p) => a + p * Math.log(p), 0);
    assert.ok(Math.abs((rows[0]!.entropy as number) - h) < 1e-6);
    assert.equal(rows[0]!.probs_norm, null);
    assert.equal(rows[0]!.confidence_norm, null);
    assert.equal(rows[0]!.correct_norm, null);
    assert.equal(rows[1]!.correct, false);
    assert.equal(rows[1]!.vocab_probs, null);
    assert.equal(rows[1]!.confidence_norm, Math.fround(0.4));
    assert.equal(rows[1]!.correct_norm, true);
    assert.deepEqual(rows.map((r) => [r.scoring, r.exposures]), [["letter", null], ["letter", null]], "scoring defaults to letter, exposures to null");
    assert.deepEqual(Array.from((rows[0]!.probs as { toArray(): Float32Array }).toArray()), probs.map(Math.fround));
    assert.throws(() => writeQuestions(path, "q", [{ epoch: 0, split: "v", task: "pos", id: "x", doc: 0, gold: 4, logits: [0, 0], probs: [0.5, 0.5], vocabProbs: null }]), /gold 4/);
  } finally {
    cleanup();
  }
});
