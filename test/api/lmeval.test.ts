// The lm-eval-harness samples parser: real harness records (its own acc / acc_norm as the
// reference), float64 softmax references, both value encodings, filters, gold as text, and
// every malformed input rejected with the file and line named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSamples, parseSamplesFiles, parseSamplesPath, taskFromFilename } from "../../backend/imports/index.js";
import { FieldError } from "../../backend/errors.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REAL_ARC_EASY, accNormOf, argmax, harnessFile, harnessLine, randomSamples, softmax64 } from "./lmeval-samples.js";

const FILE = "samples_arc_easy_2024-05-01T10-00-00.123456.jsonl";

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

function rejects(f: () => unknown, pattern: RegExp, field?: RegExp): void {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof FieldError, `expected FieldError, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    if (field) assert.match((err as FieldError).field, field);
    return;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

test("task names from harness file names", () => {
  assert.equal(taskFromFilename(FILE), "arc_easy");
  assert.equal(taskFromFilename("out/m/samples_mmlu_high_school_biology_2024-05-01T10-00-00.123456.jsonl"), "mmlu_high_school_biology");
  assert.equal(taskFromFilename("samples_hellaswag.jsonl"), "hellaswag");
  assert.equal(taskFromFilename("results.jsonl"), null);
});

test("real lm-eval 0.4.12 records: our argmax agrees with the harness's acc and acc_norm; probs are the float64 softmax", () => {
  const p = parseSamples({ filename: FILE, text: harnessFile(REAL_ARC_EASY) });
  assert.equal(p.task, "arc_easy");
  assert.equal(p.rows.length, 4);
  assert.equal(p.accMismatches, 0);
  assert.equal(p.accNormMismatches, 0);
  REAL_ARC_EASY.forEach((s, i) => {
    const r = p.rows[i]!;
    assert.equal(r.id, `arc_easy:${s.docId}`);
    assert.equal(r.gold, s.gold);
    assert.equal(r.doc, -1);
    assert.equal(r.vocabProbs, null);
    const ref = softmax64(s.lls);
    ref.forEach((v, k) => close(r.probs[k]!, v, 1e-12, `probs[${i}][${k}]`));
    s.lls.forEach((v, k) => close(r.logits[k]!, v, 1e-7, `logits[${i}][${k}]`));
    // length-normalized: softmax(ll / len(choice)) with the choice text (no leading space)
    const norm = softmax64(s.lls.map((ll, k) => ll / s.choices[k]!.length));
    norm.forEach((v, k) => close(r.probsNorm![k]!, v, 1e-12, `probs_norm[${i}][${k}]`));
    assert.equal(argmax(r.probs) === s.gold ? 1 : 0, s.acc);
    assert.equal(argmax(r.probsNorm!) === s.gold ? 1 : 0, s.accNorm);
  });
});

test("a wrong acc_norm in the file is counted as a disagreement (the check is not vacuous)", () => {
  const flipped = REAL_ARC_EASY.map((s) => ({ ...s, accNorm: 1 - s.accNorm!, acc: 1 - s.acc! }));
  const p = parseSamples({ filename: FILE, text: harnessFile(flipped) });
  assert.equal(p.accMismatches, 4);
  assert.equal(p.accNormMismatches, 4);
});

test("numbers instead of strings, CRLF lines, duplicate filters and gold given as the choice text", () => {
  const specs = randomSamples(30, 7);
  const text = harnessFile(specs, { numbers: true }).replace(/\n/g, "\r\n");
  const extra = harnessLine({ ...specs[0]!, lls: [-9, -9, -9, -0.1], filter: "strict-match" });
  const p = parseSamples({ filename: FILE, text: text + extra + "\n" });
  assert.equal(p.rows.length, 30);
  assert.equal(p.duplicateFilters, 1);
  assert.deepEqual(Array.from(p.rows[0]!.logits), Array.from(Float32Array.from(specs[0]!.lls)), "the first filter is kept");
  assert.equal(p.accMismatches, 0);
  assert.equal(p.accNormMismatches, 0);
  for (const s of specs) assert.equal(s.accNorm, accNormOf(s));
  // target as text
  const line = JSON.parse(harnessLine(REAL_ARC_EASY[1]!)) as Record<string, unknown>;
  line.target = "breathing mask";
  const q = parseSamples({ filename: FILE, text: JSON.stringify(line) });
  assert.equal(q.rows[0]!.gold, 1);
});

test("streaming parse of a file on disk equals the in-memory parse", async () => {
  const dir = mkdtempSync(join(tmpdir(), "calib-lmeval-"));
  try {
    const text = harnessFile(randomSamples(200, 3));
    const path = join(dir, FILE);
    writeFileSync(path, text);
    const a = await parseSamplesPath(path, FILE);
    const b = parseSamples({ filename: FILE, text });
    assert.equal(a.rows.length, 200);
    assert.deepEqual(a.rows.map((r) => [r.id, r.gold, ...Array.from(r.probs)]), b.rows.map((r) => [r.id, r.gold, ...Array.from(r.probs)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("malformed files: truncated, not harness, generation tasks, bad targets, empty, duplicate tasks", () => {
  const good = harnessFile(REAL_ARC_EASY);
  rejects(() => parseSamples({ filename: FILE, text: good.slice(0, good.length - 40) }), /line 4: invalid JSON \(the file looks truncated/, /line 4/);
  rejects(() => parseSamples({ filename: FILE, text: `${harnessLine(REAL_ARC_EASY[0]!)}\n{oops\n${harnessLine(REAL_ARC_EASY[1]!)}` }), /line 2: invalid JSON/);
  rejects(() => parseSamples({ filename: FILE, text: '{"a": 1}\n' }), /line 1: not an lm-eval-harness sample.*missing doc_id, target, filtered_resps/);
  rejects(() => parseSamples({ filename: FILE, text: "[1, 2]\n" }), /not an lm-eval-harness sample/);
  const gen = { doc_id: 0, target: "Paris", filtered_resps: ["Paris is the capital"], resps: [["Paris is the capital"]] };
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(gen) }), /only multiple-choice/);
  const gen2 = { ...gen, filtered_resps: ["a", "b"] };
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(gen2) }), /filtered_resps\[0\] is not a \[loglikelihood, is_greedy\] pair/);
  const badTarget = JSON.parse(harnessLine(REAL_ARC_EASY[0]!)) as Record<string, unknown>;
  badTarget.target = "7";
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(badTarget) }), /target 7 is not a choice index \(the sample has 4 choices\)/);
  badTarget.target = "not a choice";
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(badTarget) }), /neither a choice index nor the text of a choice/);
  const positive = JSON.parse(harnessLine(REAL_ARC_EASY[0]!)) as { filtered_resps: string[][] };
  positive.filtered_resps[2]![0] = "0.5";
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(positive) }), /filtered_resps\[2\]: log-likelihood 0.5 is positive/);
  positive.filtered_resps[2]![0] = "-Infinity";
  rejects(() => parseSamples({ filename: FILE, text: JSON.stringify(positive) }), /not finite/);
  rejects(() => parseSamples({ filename: FILE, text: "\n\n" }), /empty/);
  rejects(() => parseSamples({ filename: "results.jsonl", text: good }), /cannot tell the task/, /^task$/);
  rejects(() => parseSamples({ filename: FILE, task: "../etc", text: good }), /not a task name/);
  rejects(() => parseSamplesFiles([{ filename: FILE, text: good }, { filename: "samples_arc_easy_2024-06-01T10-00-00.1.jsonl", text: good }]), /same task 'arc_easy'/);
});
