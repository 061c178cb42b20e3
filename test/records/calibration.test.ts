// calibration.arrow's groups (backend/records/calibration.ts, docs/records.md): scoring is a grouping
// key (a run that records option and letter scoring gets separate rows, never pooled ones), a
// knowledge world's questions also get one row per exposure bucket, and a questions.arrow written
// before `scoring` existed reads as letter scoring. Every number is checked against a float64
// computation written here (accuracy, mean confidence, 15-bin ECE) on the rows of its group.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bool, Float32, Int32, Table, Utf8, vectorFromArray } from "apache-arrow";
import {
  ALL_EXPOSURES, questionCalibration, readArrowStream, tokenCalibration, writeArrowStream, writeQuestions, writeRunCalibration, type QuestionRow,
} from "../../backend/records/index.js";
import { CALIBRATION_COLUMNS } from "../../backend/metrics/index.js";
import { rngFromName } from "../helpers/random.js";
import { refEce } from "../metrics/reference.js";

const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** World-like rows: 90 questions × 2 epochs × 2 scorings; exposures 1 … 40 (buckets 1, 2-3, …, 32-63). */
function worldRows(): QuestionRow[] {
  const r = rngFromName("calibration-groups");
  const rows: QuestionRow[] = [];
  for (const epoch of [0, 1]) {
    for (const scoring of ["option", "letter"] as const) {
      for (let q = 0; q < 90; q++) {
        const logits = [0, 1, 2, 3].map(() => 3 * r() - 1.5 + (scoring === "option" ? -8 : -2));
        const probs = softmax(logits);
        rows.push({
          epoch, split: "held-out", task: "world", id: `w-${q}`, doc: q, gold: Math.floor(r() * 4), logits, probs,
          vocabProbs: logits.map(Math.exp), probsNorm: scoring === "option" ? softmax(logits.map((v, k) => v / (3 + k))) : null,
          scoring, exposures: 1 + ((q * 7) % 40),
        });
      }
    }
  }
  return rows;
}

const bucketOf = (k: number) => (k === 1 ? "1" : k < 4 ? "2-3" : k < 8 ? "4-7" : k < 16 ? "8-15" : k < 32 ? "16-31" : "32-63");

test("scoring and exposure bucket are grouping keys; every row's numbers are its group's (float64 reference)", () => {
  const dir = mkdtempSync(join(tmpdir(), "calib-records-"));
  try {
    const rows = worldRows();
    writeQuestions(join(dir, "questions.arrow"), "w", rows);
    const n = writeRunCalibration(dir, "w", { resamples: 0, seed: 0 });
    const t = readArrowStream(join(dir, "calibration.arrow"));
    assert.equal(t.numRows, n);
    assert.deepEqual(t.schema.fields.map((f) => f.name), CALIBRATION_COLUMNS.map((c) => c.name));
    const cal = t.toArray().map((x) => x.toJSON() as Record<string, unknown>);
    // groups present: per epoch × scoring: renormalized (2 schemes) + norm (option only, 2 schemes) + vocab (letter only, 2 schemes)
    // + 6 bucket rows (renormalized, 15 equal-width bins); no pooled task `all` (one task)
    const keys = new Set(cal.map((c) => `${c.epoch}|${c.scoring}|${c.exposure_bucket}|${c.confidence_def}|${c.scheme}`));
    assert.equal(keys.size, cal.length, "one row per group and binning");
    for (const epoch of [0, 1]) {
      for (const scoring of ["option", "letter"]) {
        const mine = cal.filter((c) => c.epoch === epoch && c.scoring === scoring);
        const all = mine.filter((c) => c.exposure_bucket === ALL_EXPOSURES);
        assert.deepEqual(all.map((c) => `${c.confidence_def}/${c.scheme}`).sort(),
          (scoring === "option" ? ["norm", "renormalized"] : ["renormalized", "vocab"]).flatMap((d) => [`${d}/equal-mass`, `${d}/equal-width`]).sort());
        const buckets = mine.filter((c) => c.exposure_bucket !== ALL_EXPOSURES);
        assert.deepEqual(buckets.map((c) => c.exposure_bucket), ["1", "2-3", "4-7", "8-15", "16-31", "32-63"], "buckets in order");
        assert.ok(buckets.every((c) => c.confidence_def === "renormalized" && c.scheme === "equal-width" && c.n_bins === 15));
        // float64 reference on the group's own rows
        const check = (row: Record<string, unknown>, pick: (q: QuestionRow) => boolean) => {
          const qs = rows.filter((q) => q.epoch === epoch && q.scoring === scoring && pick(q));
          const conf = qs.map((q) => Math.fround(Math.max(...q.probs as number[])));
          const ok = qs.map((q) => ((q.probs as number[]).indexOf(Math.max(...q.probs as number[])) === q.gold ? 1 : 0));
          assert.equal(row.n, qs.length);
          assert.ok(Math.abs((row.accuracy as number) - ok.reduce((a: number, b) => a + b, 0) / qs.length) < 1e-12);
          assert.ok(Math.abs((row.mean_confidence as number) - conf.reduce((a, b) => a + b, 0) / qs.length) < 1e-9);
          assert.ok(Math.abs((row.ece as number) - refEce(conf, ok)) < 1e-9, `ece ${row.ece} vs ${refEce(conf, ok)}`);
        };
        check(all.find((c) => c.confidence_def === "renormalized" && c.scheme === "equal-width")!, () => true);
        for (const b of buckets) check(b, (q) => bucketOf(q.exposures!) === b.exposure_bucket);
        assert.equal(buckets.reduce((a, b) => a + (b.n as number), 0), 90, "the buckets partition the questions");
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a questions.arrow without scoring (written before it existed) is letter scoring; two tasks also pool into `all`", () => {
  const n = 40;
  const r = rngFromName("old-file");
  const conf = Array.from({ length: n }, () => Math.fround(0.25 + 0.7 * r()));
  const correct = Array.from({ length: n }, () => r() < 0.5);
  const t = new Table({
    run_id: vectorFromArray(new Array(n).fill("old"), new Utf8()),
    epoch: vectorFromArray(new Array(n).fill(1), new Int32()),
    split: vectorFromArray(new Array(n).fill("validation"), new Utf8()),
    task: vectorFromArray(Array.from({ length: n }, (_, i) => (i < n / 2 ? "pos" : "cloze")), new Utf8()),
    id: vectorFromArray(Array.from({ length: n }, (_, i) => `q${i}`), new Utf8()),
    gold: vectorFromArray(new Array(n).fill(0), new Int32()),
    correct: vectorFromArray(correct, new Bool()),
    confidence: vectorFromArray(conf, new Float32()),
  });
  const rows = questionCalibration("old", t, { resamples: 0, seed: 0 });
  assert.ok(rows.length > 0 && rows.every((x) => x.scoring === "letter" && x.exposure_bucket === ALL_EXPOSURES));
  assert.deepEqual([...new Set(rows.map((x) => x.task))], ["cloze", "pos", "all"]);
  const all = rows.find((x) => x.task === "all" && x.scheme === "equal-width")!;
  assert.equal(all.n, n);
  assert.ok(Math.abs(all.ece - refEce(conf, correct)) < 1e-9);
  assert.equal(all.nll, null, "no probs column: no NLL");

  // next-token rows: scoring `none`
  const tok = new Table({
    epoch: vectorFromArray([0, 0, 0], new Int32()), split: vectorFromArray(["validation", "validation", "validation"], new Utf8()),
    confidence: vectorFromArray([0.5, 0.75, 0.25], new Float32()), p_target: vectorFromArray([0.5, 0.125, 0.25], new Float32()),
    entropy: vectorFromArray([1, 0.5, 2], new Float32()), correct: vectorFromArray([true, false, true], new Bool()),
  });
  const tr = tokenCalibration("old", tok, { resamples: 0, seed: 0 });
  assert.deepEqual(tr.map((x) => [x.task, x.scoring, x.exposure_bucket, x.confidence_def]), [["next-token", "none", "all", "token"], ["next-token", "none", "all", "token"]]);
  // the file round-trips with the schema of CALIBRATION_COLUMNS
  const dir = mkdtempSync(join(tmpdir(), "calib-records-"));
  try {
    writeArrowStream(join(dir, "questions.arrow"), t);
    writeRunCalibration(dir, "old", { resamples: 0, seed: 0 });
    const back = readArrowStream(join(dir, "calibration.arrow"));
    assert.deepEqual([...new Set(back.getChild("scoring")!.toArray() as string[])], ["letter"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
