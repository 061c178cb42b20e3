// `npm run regen -- --ci` end to end on the CPU: CI's reduced studies of both regimes
// (data/sweeps/study-ci.json on the Brown corpus, data/sweeps/world-ci.json on a knowledge world),
// each trained, published into a temporary data directory (replacing the published study of its own
// regime there and keeping the other regime's), read by the loaders; the claim tables equal a
// float64 recomputation from the published question records, the knowledge-world study comes first
// and both are flagged "not evidence", and the published size matches backend/study's estimate.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readArrowStream } from "../../backend/records/arrow.js";
import { planStudy } from "../../backend/study/definition.js";
import { estimatePublication } from "../../backend/study/estimate.js";
import { refEce } from "../metrics/reference.js";

const root = resolve(import.meta.dirname, "..", "..");
const data = mkdtempSync(join(tmpdir(), "calib-regen-"));
after(() => rmSync(data, { recursive: true, force: true }));

/** A published study of another run, to be replaced (same regime) or kept (the other regime). */
function oldStudy(name: string, regime: "world" | "brown"): void {
  const id = `${name}-run`;
  mkdirSync(join(data, "runs", id), { recursive: true });
  writeFileSync(join(data, "runs", id, "run.json"), JSON.stringify({ id, kind: "pretrain", status: "succeeded", config: {} }));
  mkdirSync(join(data, "study"), { recursive: true });
  writeFileSync(join(data, "study", `${name}.json`), JSON.stringify({ format: "calib-study/1", name, regime, runs: [{ id, published: true }] }));
}

/** The CI study file with 200 bootstrap resamples for its calibration records (the file says 1000). */
function ciFile(name: string): string {
  const file = join(data, name);
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(join(root, "data", "sweeps", name), "utf8")), calibration: { resamples: 200 } }));
  return file;
}

const regen = (file: string) => spawnSync(process.execPath, ["scripts/regen.mjs", "--ci", "--file", file, "--data-dir", data], { cwd: root, encoding: "utf8" });
const loader = (name: string) => JSON.parse(spawnSync(process.execPath, ["--import", "tsx", `src/data/${name}`], { cwd: root, encoding: "utf8", env: { ...process.env, CALIB_DATA_DIR: data } }).stdout);

/** question id → (confidence, correct) of one run, epoch and scoring, as published. */
function arm(id: string, epoch: number, scoring = "letter"): Map<string, [number, number]> {
  const q = readArrowStream(join(data, "runs", id, "questions.arrow"));
  const sc = q.getChild("scoring");
  const m = new Map<string, [number, number]>();
  for (let i = 0; i < q.numRows; i++) {
    if (q.getChild("epoch")!.get(i) !== epoch || (sc ? sc.get(i) : "letter") !== scoring) continue;
    m.set(String(q.getChild("id")!.get(i)), [q.getChild("confidence")!.get(i), q.getChild("correct")!.get(i) ? 1 : 0]);
  }
  return m;
}
const diff = (a: Map<string, [number, number]>, b: Map<string, [number, number]>) => {
  const keys = [...a.keys()].filter((k) => b.has(k));
  assert.ok(keys.length > 0, "shared questions");
  return refEce(keys.map((k) => b.get(k)![0]), keys.map((k) => b.get(k)![1])) - refEce(keys.map((k) => a.get(k)![0]), keys.map((k) => a.get(k)![1]));
};
const close = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) < 1e-9, `${what}: ${x} vs ${y}`);

/** Bytes of a study's published run directories as `du` counts them (4 KiB blocks). */
function duBytes(ids: string[]): number {
  let n = 0;
  for (const id of ids) for (const f of readdirSync(join(data, "runs", id))) n += Math.ceil(statSync(join(data, "runs", id, f)).size / 4096) * 4096;
  return n;
}

test("npm run regen -- --ci: both regimes' CI studies → published records → loaders → claims", { timeout: 1_200_000 }, () => {
  oldStudy("old", "brown");
  oldStudy("oldworld", "world");

  // 1. the Brown CI study replaces the other Brown study and leaves the knowledge-world one
  const brown = ciFile("study-ci.json");
  let r = regen(brown);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stdout, /claims \(8 runs of study ci, Brown, letter scoring; NOT EVIDENCE/);
  assert.ok(!existsSync(join(data, "runs", "old-run")) && !existsSync(join(data, "study", "old.json")), "the old Brown study is gone");
  assert.ok(existsSync(join(data, "study", "oldworld.json")), "the knowledge-world study stays");

  // 2. the knowledge-world CI study replaces the other knowledge-world study and leaves the Brown one
  const world = ciFile("world-ci.json");
  r = regen(world);
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stdout, /claims \(8 runs of study wci, knowledge world, option scoring; NOT EVIDENCE/);
  assert.ok(!existsSync(join(data, "runs", "oldworld-run")) && !existsSync(join(data, "study", "oldworld.json")), "the old knowledge-world study is gone");
  assert.ok(existsSync(join(data, "study", "ci.json")), "the Brown CI study stays");

  // the Brown study's records, as before: tokens subsampled, epoch 0 published once, calibration settings in run.json
  const manifest = JSON.parse(readFileSync(join(data, "study", "ci.json"), "utf8"));
  assert.equal(manifest.runs.length, 8);
  assert.equal(manifest.regime, "brown");
  assert.equal(manifest.evidence, false);
  for (const x of manifest.runs as Array<{ id: string; kind: string; published: boolean }>) {
    assert.ok(x.published);
    const dir = join(data, "runs", x.id);
    const json = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
    assert.equal(json.status, "succeeded");
    assert.deepEqual(json.config.calibration, { resamples: 200, seed: 0 }, "the study's calibration settings are in run.json");
    for (const f of json.artifacts) assert.ok(existsSync(join(dir, f)), `${x.id}/${f}`);
    assert.ok(!existsSync(join(dir, "checkpoint")), "checkpoints are not published");
    const perEpoch = new Map<number, number>();
    for (const e of readArrowStream(join(dir, "tokens.arrow")).getChild("epoch")!.toArray() as Int32Array) perEpoch.set(e, (perEpoch.get(e) ?? 0) + 1);
    assert.ok([...perEpoch.values()].every((n) => n <= 64), "tokens subsampled to 64 per checkpoint");
    if (x.kind === "sft") {
      assert.deepEqual([...new Set(readArrowStream(join(dir, "questions.arrow")).getChild("epoch")!.toArray() as Int32Array)].sort(), [1, 2]);
      assert.ok(json.metrics.epoch0_from_parent > 0);
    }
  }

  // the knowledge-world study's records: regime and evidence in the manifest, seeds inherited, only the last
  // SFT epoch of question records (epoch 0 from the parent), both scorings where the study asks for them
  const wm = JSON.parse(readFileSync(join(data, "study", "wci.json"), "utf8"));
  assert.equal(wm.regime, "world");
  assert.equal(wm.evidence, false);
  const wruns = wm.runs as Array<{ id: string; kind: string; parent: string | null; published: boolean }>;
  assert.deepEqual(wruns.map((x) => x.id).sort(), ["wci-r50k-d32-s0", "wci-r50k-d32-s0-e0", "wci-r50k-d32-s0-e0-t0p5", "wci-r50k-d32-s0-e0p1", "wci-r50k-d32-s0-e0p1-t0p5", "wci-word-d32-s0", "wci-word-d32-s0-e0", "wci-word-d32-s0-e0p1"]);
  for (const x of wruns) {
    assert.ok(x.published, x.id);
    const dir = join(data, "runs", x.id);
    const json = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
    assert.ok(Number.isInteger(json.metrics.vocab_size) && json.metrics.vocab_size > 100, `${x.id}: V recorded`);
    const q = readArrowStream(join(dir, "questions.arrow"));
    assert.deepEqual(new Set(q.getChild("scoring")!.toArray() as string[]), new Set(["option", "letter"]));
    assert.ok((q.getChild("exposures")!.toArray() as Int32Array).every((e) => e >= 1), "exposures recorded");
    if (x.kind === "sft") {
      assert.deepEqual([...new Set(q.getChild("epoch")!.toArray() as Int32Array)], [2], `${x.id}: the last epoch only`);
      assert.equal(json.metrics.epoch0_from_parent, 120);
      assert.equal(json.metrics.question_epochs_dropped, 120);
      const cal = readArrowStream(join(dir, "calibration.arrow"));
      assert.deepEqual(new Set(cal.getChild("epoch")!.toArray() as Int32Array), new Set([0, 1, 2]), "calibration.arrow keeps every epoch");
      assert.ok((cal.getChild("exposure_bucket")!.toArray() as string[]).some((b) => b !== "all"), "per-bucket rows");
    }
  }
  // the size estimate of `calib sweep --dry-run` against the publication
  const est = estimatePublication(planStudy(JSON.parse(readFileSync(world, "utf8"))));
  const got = duBytes(wruns.map((x) => x.id));
  assert.ok(Math.abs(est.bytes - got) / got < 0.15, `estimated ${est.bytes} bytes, published ${got}`);

  // the loaders on the published data: the knowledge-world study first, each table recomputed here in float64
  const claims = loader("claims.json.ts");
  assert.deepEqual(claims.studies.map((s: { name: string; regime: string; evidence: boolean }) => [s.name, s.regime, s.evidence]), [["wci", "world", false], ["ci", "brown", false]]);
  assert.equal(claims.primary, "wci");
  type Claim = { id: string; status: string; verdict: string; effect: { estimate: number } };
  const table = (study: string, scoring: string) => {
    const st = claims.studies.find((s: { name: string }) => s.name === study);
    const res = st.results.find((x: { scoring: string }) => x.scoring === scoring);
    return { res, c: new Map((res.claims as Claim[]).map((c) => [c.id, c])) };
  };
  const ci = table("ci", "letter").c;
  for (const c of ci.values()) {
    assert.equal(c.status, "measured", c.id);
    assert.ok(["reproduced", "not reproduced", "mixed"].includes(c.verdict));
  }
  // Brown C1: epoch 0 comes from the parent (pretrain) run
  close(ci.get("C1")!.effect.estimate, (diff(arm("ci-byte-d32", 0), arm("ci-byte-d32-e0-s0", 2)) + diff(arm("ci-o200k-d32", 0), arm("ci-o200k-d32-e0-s0", 2))) / 2, "Brown C1");
  close(ci.get("C2")!.effect.estimate, (diff(arm("ci-byte-d32-e0-s0", 2), arm("ci-byte-d32-e0p1-s0", 2)) + diff(arm("ci-o200k-d32-e0-s0", 2), arm("ci-o200k-d32-e0p1-s0", 2))) / 2, "Brown C2");
  // knowledge world: one table per scoring, never pooled; C1 = base model (no template) → last SFT epoch
  for (const scoring of ["option", "letter"]) {
    const { res, c } = table("wci", scoring);
    assert.equal(res.scoring, scoring);
    const ptOf = (tok: string) => `wci-${tok}-d32-s0`;
    close(c.get("C1")!.effect.estimate, (diff(arm(ptOf("word"), 0, scoring), arm("wci-word-d32-s0-e0", 2, scoring)) + diff(arm(ptOf("r50k"), 0, scoring), arm("wci-r50k-d32-s0-e0", 2, scoring))) / 2, `world C1 (${scoring})`);
    close(c.get("C2")!.effect.estimate, (diff(arm("wci-word-d32-s0-e0", 2, scoring), arm("wci-word-d32-s0-e0p1", 2, scoring)) + diff(arm("wci-r50k-d32-s0-e0", 2, scoring), arm("wci-r50k-d32-s0-e0p1", 2, scoring))) / 2, `world C2 (${scoring})`);
    assert.equal(c.get("C4")!.status, "measured");
    // per exposure bucket: the buckets partition the questions, and C1 on a bucket is the same difference on its questions
    const buckets = res.buckets as Array<{ bucket: string; n_questions: number; claims: Claim[] }>;
    assert.ok(buckets.length >= 2);
    assert.equal(buckets.reduce((a, b) => a + b.n_questions, 0), arm(ptOf("word"), 0, scoring).size);
  }
  // the other loaders see both studies, knowledge world first
  assert.deepEqual(loader("study.json.ts").studies.map((s: { name: string }) => s.name), ["wci", "ci"]);
});
