// `npm run regen -- --ci` end to end on the CPU (CI's reduced study, data/sweeps/study-ci.json):
// the sweep trains 2 tiny models and 6 SFT runs, publishes them into a temporary data directory
// (replacing another published study there), the loaders read them, and the claim table equals
// a float64 recomputation from the published question records.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readArrowStream } from "../../backend/records/arrow.js";
import { refEce } from "../metrics/reference.js";

const root = resolve(import.meta.dirname, "..", "..");
const data = mkdtempSync(join(tmpdir(), "calib-regen-"));
after(() => rmSync(data, { recursive: true, force: true }));

test("npm run regen -- --ci: sweep → published records → loaders → claims", { timeout: 900_000 }, () => {
  // another study published before: regen replaces it
  mkdirSync(join(data, "runs", "old-run"), { recursive: true });
  writeFileSync(join(data, "runs", "old-run", "run.json"), JSON.stringify({ id: "old-run", kind: "pretrain", status: "succeeded", config: {} }));
  mkdirSync(join(data, "study"), { recursive: true });
  writeFileSync(join(data, "study", "old.json"), JSON.stringify({ format: "calib-study/1", name: "old", runs: [{ id: "old-run", published: true }] }));

  // CI's study with 200 bootstrap resamples for its calibration records (the study file says 1000)
  const file = join(data, "study-ci.json");
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(join(root, "data", "sweeps", "study-ci.json"), "utf8")), calibration: { resamples: 200 } }));
  const r = spawnSync(process.execPath, ["scripts/regen.mjs", "--ci", "--file", file, "--data-dir", data], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  assert.match(r.stdout, /claims \(8 runs of study ci\)/);
  assert.ok(!existsSync(join(data, "runs", "old-run")) && !existsSync(join(data, "study", "old.json")), "the old study is gone");

  const manifest = JSON.parse(readFileSync(join(data, "study", "ci.json"), "utf8"));
  assert.equal(manifest.runs.length, 8);
  assert.ok(manifest.runs.every((x: { published: boolean }) => x.published));
  for (const x of manifest.runs as Array<{ id: string; kind: string }>) {
    const dir = join(data, "runs", x.id);
    const json = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
    assert.equal(json.status, "succeeded");
    assert.deepEqual(json.config.calibration, { resamples: 200, seed: 0 }, "the study's calibration settings are in run.json");
    for (const f of json.artifacts) assert.ok(existsSync(join(dir, f)), `${x.id}/${f}`);
    assert.ok(!existsSync(join(dir, "checkpoint")), "checkpoints are not published");
    const tk = readArrowStream(join(dir, "tokens.arrow"));
    const perEpoch = new Map<number, number>();
    for (const e of tk.getChild("epoch")!.toArray() as Int32Array) perEpoch.set(e, (perEpoch.get(e) ?? 0) + 1);
    assert.ok([...perEpoch.values()].every((n) => n <= 64), "tokens subsampled to 64 per checkpoint");
    if (x.kind === "sft") {
      const epochs = new Set(readArrowStream(join(dir, "questions.arrow")).getChild("epoch")!.toArray() as Int32Array);
      assert.deepEqual([...epochs].sort(), [1, 2], "epoch 0 is published once, with the pretrained model");
      assert.ok(json.metrics.epoch0_from_parent > 0);
    }
  }

  // the loaders on the published data: the claim table, recomputed here in float64
  const claims = JSON.parse(spawnSync(process.execPath, ["--import", "tsx", "src/data/claims.json.ts"], { cwd: root, encoding: "utf8", env: { ...process.env, CALIB_DATA_DIR: data } }).stdout);
  assert.deepEqual(claims.studies, ["ci"]);
  const byId = new Map((claims.claims as Array<{ id: string; status: string; verdict: string; effect: { estimate: number } }>).map((c) => [c.id, c]));
  for (const c of byId.values()) {
    assert.equal(c.status, "measured", c.id);
    assert.ok(["reproduced", "not reproduced", "mixed"].includes(c.verdict));
  }
  const arm = (id: string, epoch: number) => {
    const q = readArrowStream(join(data, "runs", id, "questions.arrow"));
    const m = new Map<string, [number, number]>();
    for (let i = 0; i < q.numRows; i++) if (q.getChild("epoch")!.get(i) === epoch) m.set(String(q.getChild("id")!.get(i)), [q.getChild("confidence")!.get(i), q.getChild("correct")!.get(i) ? 1 : 0]);
    return m;
  };
  const diff = (a: Map<string, [number, number]>, b: Map<string, [number, number]>) => {
    const keys = [...a.keys()].filter((k) => b.has(k));
    return refEce(keys.map((k) => b.get(k)![0]), keys.map((k) => b.get(k)![1])) - refEce(keys.map((k) => a.get(k)![0]), keys.map((k) => a.get(k)![1]));
  };
  // C1: epoch 0 comes from the parent (pretrain) run
  const c1 = (diff(arm("ci-byte-d32", 0), arm("ci-byte-d32-e0-s0", 2)) + diff(arm("ci-o200k-d32", 0), arm("ci-o200k-d32-e0-s0", 2))) / 2;
  assert.ok(Math.abs(byId.get("C1")!.effect.estimate - c1) < 1e-9, `C1 ${byId.get("C1")!.effect.estimate} vs ${c1}`);
  const c2 = (diff(arm("ci-byte-d32-e0-s0", 2), arm("ci-byte-d32-e0p1-s0", 2)) + diff(arm("ci-o200k-d32-e0-s0", 2), arm("ci-o200k-d32-e0p1-s0", 2))) / 2;
  assert.ok(Math.abs(byId.get("C2")!.effect.estimate - c2) < 1e-9, `C2 ${byId.get("C2")!.effect.estimate} vs ${c2}`);
  // the other loaders see the study
  const study = JSON.parse(spawnSync(process.execPath, ["--import", "tsx", "src/data/study.json.ts"], { cwd: root, encoding: "utf8", env: { ...process.env, CALIB_DATA_DIR: data } }).stdout);
  assert.deepEqual(study.studies.map((s: { name: string }) => s.name), ["ci"]);
});
