// Publishing a study (backend/study/publish.ts) and installing published parts (main.ts): the
// per-token subsample (first k rows of every checkpoint), the epoch-0 dedup (only when the SFT
// run's epoch-0 records equal its parent's bit for bit), run.json rewrites, replacement of the
// previous publication, and the merge of a study published in two parts.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readArrowStream } from "../../backend/records/arrow.js";
import { writeQuestions, type QuestionRow } from "../../backend/records/questions.js";
import { writeTokens, type TokenRecords } from "../../backend/records/tokens.js";
import { writeRunJson } from "../../backend/records/run.js";
import { planStudy } from "../../backend/study/definition.js";
import { epoch0Duplicate, firstRowsPerEpoch, publishStudy, readManifest } from "../../backend/study/publish.js";
import { installPublished } from "../../backend/study/publish.js";

const tmp = mkdtempSync(join(tmpdir(), "calib-study-publish-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const plan = planStudy({
  kind: "study", name: "p", device: "cpu",
  pretrain: { base: { model: { nLayer: 1, nHead: 2, context: 64 }, steps: 2 }, grid: { "model.dModel": [32] } },
  sft: { base: { tasks: ["pos"], epochs: 2 }, arms: [{ name: "a", grid: { "loss.labelSmoothing": [0, 0.1] } }] },
  publish: { tokensPerCheckpoint: 3, pretrainTokens: 5 },
});

function questions(epochs: number[], salt: number, n = 6): QuestionRow[] {
  const rows: QuestionRow[] = [];
  for (const epoch of epochs) for (let i = 0; i < n; i++) {
    const l = [0.1 * i + salt * (epoch > 0 ? 1 : 0), 0.2, -0.3 * epoch, 0.05 * i];
    const m = Math.max(...l), ex = l.map((x) => Math.exp(x - m)), s = ex.reduce((a, b) => a + b);
    rows.push({ epoch, split: "validation", task: "pos", id: `pos-0-q${i}`, doc: i, gold: i % 4, logits: l, probs: ex.map((x) => x / s), vocabProbs: ex.map((x) => x / s / 2) });
  }
  return rows;
}

function tokens(epoch: number, n: number): TokenRecords {
  const f = (k: number) => Float32Array.from({ length: n * k }, (_, i) => (i % 7) / 10 + epoch);
  const g = (k: number) => Int32Array.from({ length: n * k }, (_, i) => i + 100 * epoch);
  return { epoch, split: "validation", doc: g(1), position: g(1), target: g(1), argmax: g(1), pTarget: f(1), confidence: f(1), entropy: f(1), lse: f(1), topIds: g(5), topP: f(5) };
}

function makeRun(root: string, id: string, kind: "pretrain" | "sft", epochs: number[], salt: number, e0Bump = 0): void {
  const dir = join(root, id);
  mkdirSync(join(dir, "checkpoint"), { recursive: true });
  writeFileSync(join(dir, "checkpoint", "model.safetensors"), "x");
  const run = plan.runs.find((r) => r.id === id)!;
  writeRunJson(join(dir, "run.json"), { id, name: id, kind, status: "succeeded", created_at: "2026-01-01T00:00:00Z", started_at: null, finished_at: null, config: { ...run.config, init: kind === "sft" ? `/somewhere/${run.parent}/checkpoint` : undefined }, metrics: { question_accuracy: 0.5 }, artifacts: [] });
  const q = questions(epochs, salt);
  if (e0Bump) q[0]!.probs = Array.from(q[0]!.probs, (p, j) => (j === 0 ? p + e0Bump : p));
  writeQuestions(join(dir, "questions.arrow"), id, q);
  writeTokens(join(dir, "tokens.arrow"), id, epochs.map((e) => tokens(e, 8)));
  writeFileSync(join(dir, "calibration.arrow"), "not read by publish");
  writeFileSync(join(dir, "job.log"), "log\n");
}

test("firstRowsPerEpoch keeps the first k rows of every epoch, in order", () => {
  const root = join(tmp, "rows");
  mkdirSync(root, { recursive: true });
  writeTokens(join(root, "t.arrow"), "r", [tokens(0, 8), tokens(1, 8), tokens(2, 2)]);
  const t = firstRowsPerEpoch(readArrowStream(join(root, "t.arrow")), 3);
  assert.deepEqual([...t.getChild("epoch")!.toArray()], [0, 0, 0, 1, 1, 1, 2, 2]);
  assert.deepEqual([...t.getChild("target")!.toArray()], [0, 1, 2, 100, 101, 102, 200, 201]);
  assert.equal(firstRowsPerEpoch(readArrowStream(join(root, "t.arrow")), 0).numRows, 18);
});

test("publish: subsampled tokens, epoch 0 dropped only when bit-identical to the parent's, init rewritten, checkpoints left out", () => {
  const stage = join(tmp, "stage"), data = join(tmp, "data");
  const [pt, s0, s1] = plan.runs.map((r) => r.id) as [string, string, string];
  makeRun(stage, pt, "pretrain", [0], 0);
  makeRun(stage, s0, "sft", [0, 1, 2], 0.5);        // epoch 0 identical to the parent's
  makeRun(stage, s1, "sft", [0, 1, 2], 0.7, 1e-6);  // epoch 0 differs in one probability
  const m = publishStudy(plan, null, { runsRoot: stage, dataDir: data, source: "p.json", device: "test" });
  assert.deepEqual(m.runs.map((r) => [r.id, r.published]), [[pt, true], [s0, true], [s1, true]]);
  const q0 = readArrowStream(join(data, "runs", s0, "questions.arrow"));
  assert.deepEqual([...new Set(q0.getChild("epoch")!.toArray())], [1, 2], "identical epoch 0 dropped");
  const q1 = readArrowStream(join(data, "runs", s1, "questions.arrow"));
  assert.deepEqual([...new Set(q1.getChild("epoch")!.toArray())], [0, 1, 2], "different epoch 0 kept");
  const j0 = JSON.parse(readFileSync(join(data, "runs", s0, "run.json"), "utf8"));
  assert.equal(j0.metrics.epoch0_from_parent, 6);
  assert.equal(j0.config.init, `data/runs/${pt}/checkpoint`);
  assert.equal(JSON.parse(readFileSync(join(data, "runs", s1, "run.json"), "utf8")).metrics.epoch0_from_parent, undefined);
  assert.equal(readArrowStream(join(data, "runs", s0, "tokens.arrow")).numRows, 9, "3 tokens × 3 checkpoints");
  assert.equal(readArrowStream(join(data, "runs", pt, "tokens.arrow")).numRows, 5, "pretrainTokens");
  assert.ok(!existsSync(join(data, "runs", pt, "checkpoint")));
  assert.deepEqual(j0.artifacts, ["train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"].filter((f) => existsSync(join(data, "runs", s0, f))));
  assert.equal(readManifest(data, "p")!.bytes > 0, true);
  // epoch0Duplicate on its own: equal → n rows, any other parent → 0
  const parentQ = readArrowStream(join(data, "runs", pt, "questions.arrow"));
  assert.equal(epoch0Duplicate(readArrowStream(join(stage, s0, "questions.arrow")), parentQ), 6);
  assert.equal(epoch0Duplicate(readArrowStream(join(stage, s1, "questions.arrow")), parentQ), 0);
});

test("republishing replaces the study's previous runs; installing two parts merges them", () => {
  const data = join(tmp, "data");
  writeFileSync(join(data, "runs", "unrelated.txt"), "kept");
  // a second publication with only the pretrained run removes the SFT runs of the first
  const stage2 = join(tmp, "stage2");
  makeRun(stage2, plan.runs[0]!.id, "pretrain", [0], 0);
  publishStudy(plan, null, { runsRoot: stage2, dataDir: data });
  assert.deepEqual(readdirSync(join(data, "runs")).sort(), [plan.runs[0]!.id, "unrelated.txt"]);
  // two parts published elsewhere (e.g. two GPU jobs) → one manifest with both parts' runs
  const partA = join(tmp, "partA"), partB = join(tmp, "partB");
  const sA = join(tmp, "sA"), sB = join(tmp, "sB");
  makeRun(sA, plan.runs[0]!.id, "pretrain", [0], 0);
  makeRun(sA, plan.runs[1]!.id, "sft", [0, 1], 0.5);
  publishStudy({ ...plan, runs: plan.runs.slice(0, 2) }, null, { runsRoot: sA, dataDir: partA });
  makeRun(sB, plan.runs[0]!.id, "pretrain", [0], 0);
  makeRun(sB, plan.runs[2]!.id, "sft", [0, 1], 0.7);
  publishStudy({ ...plan, runs: [plan.runs[0]!, plan.runs[2]!] }, null, { runsRoot: sB, dataDir: partB });
  const [m] = installPublished([partA, partB], data);
  assert.equal(m!.runs.filter((r) => r.published).length, 3);
  assert.equal((m!.parts as unknown[]).length, 2);
  assert.deepEqual(readdirSync(join(data, "runs")).sort(), [...plan.runs.map((r) => r.id), "unrelated.txt"].sort());
  assert.equal(readManifest(data, "p")!.runs.length, 3);
});

test("knowledge worlds: epoch 0 dropped when it equals the parent's rows of the same scoring; questionEpochs 'last'; regime and evidence in the manifest", () => {
  const wplan = planStudy({
    kind: "study", name: "wp", device: "cpu", evidence: false,
    pretrain: { base: { world: { config: { people: 24, attributes: { birth_city: 6 } }, scoring: ["option", "letter"] }, model: { nLayer: 1, nHead: 2, context: 64 }, steps: 2 }, grid: { tokenizer: ["word"], "model.dModel": [32] } },
    sft: { base: { epochs: 3, world: { scoring: ["option"] } }, arms: [{ name: "a", grid: { "loss.labelSmoothing": [0] } }] },
    publish: { questionEpochs: "last" },
  });
  const [pt, s0] = wplan.runs as [typeof wplan.runs[0], typeof wplan.runs[0]];
  const stage = join(tmp, "wstage"), data = join(tmp, "wdata");
  const scored = (epochs: number[], scoring: "option" | "letter", salt: number) => questions(epochs, salt).map((q) => ({ ...q, split: "held-out", task: "world", scoring, exposures: 1 + q.doc }));
  const write = (id: string, kind: "pretrain" | "sft", rows: QuestionRow[]) => {
    const dir = join(stage, id);
    mkdirSync(dir, { recursive: true });
    writeRunJson(join(dir, "run.json"), { id, name: id, kind, status: "succeeded", created_at: "2026-01-01T00:00:00Z", started_at: null, finished_at: null, config: { ...(kind === "pretrain" ? pt : s0).config }, metrics: {}, artifacts: [] });
    writeQuestions(join(dir, "questions.arrow"), id, rows);
  };
  // the parent scored both ways (option rows first); the child's epoch 0 is the parent's option rows
  write(pt.id, "pretrain", [...scored([0], "option", 0), ...scored([0], "letter", 0)]);
  write(s0.id, "sft", scored([0, 1, 2, 3], "option", 0.5));
  const m = publishStudy(wplan, null, { runsRoot: stage, dataDir: data });
  assert.equal(m.regime, "world");
  assert.equal(m.evidence, false);
  const q = readArrowStream(join(data, "runs", s0.id, "questions.arrow"));
  assert.deepEqual([...new Set(q.getChild("epoch")!.toArray())], [3], "epoch 0 from the parent, epochs 1 and 2 only in calibration.arrow");
  const j = JSON.parse(readFileSync(join(data, "runs", s0.id, "run.json"), "utf8"));
  assert.equal(j.metrics.epoch0_from_parent, 6);
  assert.equal(j.metrics.question_epochs_dropped, 12);
  // the Brown study's manifest: regime brown, evidence by default
  assert.equal(readManifest(join(tmp, "data"), "p")?.regime ?? "brown", "brown");
  // a child epoch 0 that differs from the parent's option rows is kept, and then published with the last epoch
  write(s0.id, "sft", scored([0, 1, 2, 3], "option", 0.5).map((r, i) => (i === 0 ? { ...r, probs: Array.from(r.probs, (p, k) => (k === 0 ? p + 1e-6 : p)) } : r)));
  publishStudy(wplan, null, { runsRoot: stage, dataDir: data });
  assert.deepEqual([...new Set(readArrowStream(join(data, "runs", s0.id, "questions.arrow")).getChild("epoch")!.toArray())], [0, 3]);
  // the letter rows alone equal nothing of the child's
  assert.equal(epoch0Duplicate(readArrowStream(join(stage, pt.id, "questions.arrow")).slice(6), readArrowStream(join(stage, pt.id, "questions.arrow"))), 6, "a subset of the parent's scorings");
});
