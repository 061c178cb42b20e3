// The claim table's matching and arithmetic (src/data/lib/claims.ts) on hand-made question records:
// which runs pair up for C1–C4, and the effect sizes against a float64 ECE written here. The
// records are synthetic test inputs (no model behind them); they never leave the temp directory.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeQuestions, type QuestionRow } from "../helpers/questions.js";
import { refEce } from "../metrics/reference.js";
import { rngFromName } from "../helpers/random.js";

let root: string;
let prevDataDir: string | undefined;

const N = 60;
/** Deterministic confidences / correctness of one run at one epoch (seeded by name). */
function answers(name: string): { conf: number[]; correct: number[] } {
  const rand = rngFromName(name);
  const conf: number[] = [], correct: number[] = [];
  for (let i = 0; i < N; i++) {
    conf.push(Math.fround(0.25 + 0.75 * rand())); // stored as float32
    correct.push(rand() < 0.55 ? 1 : 0);
  }
  return { conf, correct };
}

const refAt = (run: string, epoch: number) => {
  const a = answers(`${run}@${epoch}`);
  return refEce(a.conf, a.correct);
};

function writeRun(id: string, json: Record<string, unknown>, withQuestions: boolean): void {
  const dir = join(root, "runs", id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "run.json"), JSON.stringify({ id, name: id, status: "succeeded", created_at: "2026-01-01T00:00:00Z", metrics: {}, artifacts: [], ...json }));
  if (!withQuestions) return;
  const rows: QuestionRow[] = [];
  for (const epoch of [0, 1]) {
    const a = answers(`${id}@${epoch}`);
    for (let i = 0; i < N; i++) rows.push({ epoch, id: `pos-0-q${i}`, confidence: a.conf[i]!, correct: a.correct[i] === 1 });
  }
  writeQuestions(dir, id, rows);
}

const sft = (init: string, eps: number, loss: Record<string, unknown> = {}) => ({
  kind: "sft", config: { kind: "sft", init: `run:${init}`, seed: 0, tasks: ["pos"], epochs: 1, loss: { labelSmoothing: eps, temperature: 1, softcap: null, ...loss }, eval: { split: "validation", temperature: 1, softcap: null } },
});

before(() => {
  prevDataDir = process.env.CALIB_DATA_DIR;
  root = mkdtempSync(join(tmpdir(), "calib-claims-"));
  process.env.CALIB_DATA_DIR = root;
  // cell A: byte (V = 256), d = 64; cell B: o200k (V = 200000), d = 64
  writeRun("pt-a", { kind: "pretrain", config: { kind: "pretrain", tokenizer: "byte", model: { dModel: 64, nLayer: 2 } } }, false);
  writeRun("pt-b", { kind: "pretrain", config: { kind: "pretrain", tokenizer: "o200k", model: { dModel: 64, nLayer: 2 } } }, false);
  writeRun("a0", sft("pt-a", 0), true);
  writeRun("a1", sft("pt-a", 0.1), true);
  writeRun("a2", sft("pt-a", 0.2), true); // ε = 0.2 must not be chosen over 0.1
  writeRun("b0", sft("pt-b", 0), true);
  writeRun("b1", sft("pt-b", 0.1), true);
  writeRun("b0t", sft("pt-b", 0, { temperature: 0.5 }), true);
  writeRun("b1t", sft("pt-b", 0.1, { temperature: 0.5 }), true);
});

after(() => {
  if (prevDataDir === undefined) delete process.env.CALIB_DATA_DIR;
  else process.env.CALIB_DATA_DIR = prevDataDir;
  rmSync(root, { recursive: true, force: true });
});

test("claims pair the right runs and compute C1–C4 as defined", async () => {
  const { computeClaims } = await import("../../src/data/lib/claims.js");
  const out = computeClaims();
  const c = new Map(out.claims.map((x) => [x.id, x]));
  const close = (a: number | undefined, b: number, what: string) => assert.ok(a !== undefined && Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
  // C1: ε = 0, T = 1, no cap: a0 and b0 (not b0t), last epoch − epoch 0, mean over runs
  const c1 = c.get("C1")!;
  assert.deepEqual(c1.runs, ["a0", "b0"]);
  close(c1.effect?.estimate, ((refAt("a0", 1) - refAt("a0", 0)) + (refAt("b0", 1) - refAt("b0", 0))) / 2, "C1");
  assert.equal(c1.n_questions, N);
  // C2: pairs (a0, a1) and (b0, b1) at the last epoch; ε = 0.1 preferred over 0.2
  const dA = refAt("a1", 1) - refAt("a0", 1), dB = refAt("b1", 1) - refAt("b0", 1), dBt = refAt("b1t", 1) - refAt("b0t", 1);
  const c2 = c.get("C2")!;
  assert.deepEqual(c2.runs, ["a0", "a1", "b0", "b1"]);
  close(c2.effect?.estimate, (dA + dB) / 2, "C2");
  // C3: gain(B: V/d = 3125) − gain(A: V/d = 4), gain = −Δ; secondaries: the gain of each cell
  close(c.get("C3")!.effect?.estimate, -dB + dA, "C3");
  assert.equal(c.get("C3")!.secondary.filter((s) => s.label.startsWith("gain in")).length, 2);
  // C4: in cell B, gain with T = 0.5 − gain with T = 1
  const c4 = c.get("C4")!;
  close(c4.effect?.estimate, -dBt + dB, "C4");
  assert.deepEqual(c4.runs, ["b0", "b0t", "b1", "b1t"]);
  for (const x of out.claims) {
    assert.equal(x.status, "measured");
    assert.ok(x.effect!.lo <= x.effect!.hi);
    assert.ok(x.preliminary, "one seed is preliminary");
    // the verdict words of issue 10: the pooled reading, turned "mixed" when a check disagrees
    const side = (lo: number, hi: number, expected: string) => (lo > 0 ? (expected === "positive" ? "claimed" : "opposite") : hi < 0 ? (expected === "negative" ? "claimed" : "opposite") : "null");
    const main = side(x.effect!.lo, x.effect!.hi, x.expected);
    const checks = x.secondary.filter((s) => s.check).map((s) => side(s.lo, s.hi, s.label.startsWith("gain in") ? "positive" : x.expected));
    const accHurt = x.id === "C2" && (x.secondary.find((s) => s.label.startsWith("Δ accuracy"))?.lo ?? 0) < -0.02;
    const want = main === "claimed" ? (accHurt || checks.includes("opposite") ? "mixed" : "reproduced") : checks.includes("claimed") ? "mixed" : "not reproduced";
    assert.equal(x.verdict, want, `${x.id} verdict (${x.reason})`);
  }
});

test("with no runs every claim is 'not yet measured' and says what it needs", async () => {
  const { computeClaims } = await import("../../src/data/lib/claims.js");
  const empty = mkdtempSync(join(tmpdir(), "calib-claims-empty-"));
  try {
    const out = computeClaims((await import("../../src/data/lib/records.js")).listRuns(empty));
    assert.equal(out.n_runs, 0);
    for (const x of out.claims) {
      assert.equal(x.status, "not yet measured");
      assert.equal(x.effect, null);
      assert.match(x.note, /^Needs\b/);
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
