// The claim table (src/data/lib/claims.ts) on hand-made question records: point estimates against a
// float64 ECE written here, the question bootstrap against a reference reimplementation on the
// same resamples, what seed resampling does, the verdict words (reproduced / not reproduced /
// mixed), epoch 0 read from the parent run, and the restriction to a published study's runs.
// The records are synthetic test inputs (no model behind them) in a temporary directory.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapCounts } from "../../backend/metrics/index.js";
import { rngFromName as rng } from "../helpers/random.js";
import { refEce } from "../metrics/reference.js";
import { writeQuestions } from "../helpers/questions.js";

const N = 80;
type Gen = (i: number, rand: () => number) => { c: number; a: number };

/** Default answers: random confidence in [0.25, 1), correct with p = 0.55. */
const noisy: Gen = (_i, r) => ({ c: Math.fround(0.25 + 0.75 * r()), a: r() < 0.55 ? 1 : 0 });

interface Made { c: number[]; a: number[] }
const made = new Map<string, Made>(); // `${run}@${epoch}` → answers

function writeRun(root: string, id: string, json: Record<string, unknown>, epochs: number[], gen: (epoch: number) => Gen): void {
  const dir = join(root, "runs", id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "run.json"), JSON.stringify({ id, name: id, status: "succeeded", created_at: "2026-01-01T00:00:00Z", metrics: {}, artifacts: [], ...json }));
  const rows: Array<{ epoch: number; id: string; c: number; a: number }> = [];
  for (const epoch of epochs) {
    const r = rng(`${id}@${epoch}`);
    const g = gen(epoch);
    const m: Made = { c: [], a: [] };
    for (let i = 0; i < N; i++) {
      const x = g(i, r);
      const c = Math.fround(x.c);
      rows.push({ epoch, id: `pos-0-q${i}`, c, a: x.a });
      m.c.push(c); m.a.push(x.a);
    }
    made.set(`${root}|${id}@${epoch}`, m);
  }
  if (rows.length === 0) return;
  writeQuestions(dir, id, rows.map((q) => ({ epoch: q.epoch, id: q.id, confidence: q.c, correct: q.a === 1 })));
}

const pretrain = (tokenizer: string, d: number) => ({ kind: "pretrain", config: { kind: "pretrain", tokenizer, model: { dModel: d, nLayer: 2 } } });
const sft = (init: string, eps: number, seed: number, loss: Record<string, unknown> = {}) => ({
  kind: "sft", config: { kind: "sft", init: `data/runs/${init}/checkpoint`, seed, tasks: ["pos"], epochs: 2, loss: { labelSmoothing: eps, temperature: 1, softcap: null, ...loss }, eval: { split: "validation", temperature: 1, softcap: null } },
});

async function claimsOf(root: string) {
  const prev = process.env.CALIB_DATA_DIR;
  process.env.CALIB_DATA_DIR = root;
  try {
    const { computeClaims } = await import("../../src/data/lib/claims.js");
    const out = computeClaims();
    return { out, c: new Map(out.claims.map((x) => [x.id, x])) };
  } finally {
    if (prev === undefined) delete process.env.CALIB_DATA_DIR;
    else process.env.CALIB_DATA_DIR = prev;
  }
}

const roots: string[] = [];
const newRoot = () => {
  const r = mkdtempSync(join(tmpdir(), "calib-study-claims-"));
  roots.push(r);
  return r;
};
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe("one seed per cell: estimates and intervals against references", () => {
  let root: string;
  const at = (id: string, e: number) => made.get(`${root}|${id}@${e}`)!;
  const ece = (id: string, e: number) => refEce(at(id, e).c, at(id, e).a);
  before(() => {
    root = newRoot();
    writeRun(root, "pa", pretrain("byte", 64), [0], () => noisy);
    writeRun(root, "pb", pretrain("o200k", 64), [0], () => noisy);
    // SFT runs without epoch 0: it is read from the parent (as published by the study)
    for (const [p, cell] of [["pa", "a"], ["pb", "b"]] as const) {
      writeRun(root, `${cell}0`, sft(p, 0, 0), [1, 2], () => noisy);
      writeRun(root, `${cell}1`, sft(p, 0.1, 0), [1, 2], () => noisy);
      writeRun(root, `${cell}2`, sft(p, 0.2, 0), [1, 2], () => noisy);
    }
    writeRun(root, "b0t", sft("pb", 0, 0, { temperature: 0.5 }), [1, 2], () => noisy);
    writeRun(root, "b1t", sft("pb", 0.1, 0, { temperature: 0.5 }), [1, 2], () => noisy);
  });

  test("C1–C4 point estimates (float64 ECE written here)", async () => {
    const { c } = await claimsOf(root);
    const close = (x: number | undefined, y: number, what: string) => assert.ok(x !== undefined && Math.abs(x - y) < 1e-9, `${what}: ${x} vs ${y}`);
    close(c.get("C1")!.effect?.estimate, ((ece("a0", 2) - ece("pa", 0)) + (ece("b0", 2) - ece("pb", 0))) / 2, "C1 (epoch 0 from the parent)");
    assert.deepEqual(c.get("C1")!.runs, ["a0", "b0"]);
    const dA = ece("a1", 2) - ece("a0", 2), dB = ece("b1", 2) - ece("b0", 2), dBt = ece("b1t", 2) - ece("b0t", 2);
    close(c.get("C2")!.effect?.estimate, (dA + dB) / 2, "C2 (ε = 0.1 preferred over 0.2)");
    const at02 = c.get("C2")!.secondary.find((s) => s.label.startsWith("ΔECE at ε = 0.2"))!;
    close(at02.estimate, ((ece("a2", 2) - ece("a0", 2)) + (ece("b2", 2) - ece("b0", 2))) / 2, "C2 at ε = 0.2");
    close(c.get("C3")!.effect?.estimate, -dB + dA, "C3");
    close(c.get("C4")!.effect?.estimate, -dBt + dB, "C4");
    for (const x of c.values()) {
      assert.equal(x.status, "measured");
      assert.ok(x.preliminary && x.min_seeds === 1);
      assert.ok(x.effect!.lo <= x.effect!.estimate + 1e-12 || x.effect!.hi >= x.effect!.estimate - 1e-12);
    }
  });

  test("the C2 interval is the question bootstrap of the mean pair difference (reference on the same resamples)", async () => {
    const { c } = await claimsOf(root);
    const reps: number[] = [];
    for (const counts of bootstrapCounts(N, 1000, 0)) {
      const pick = (m: Made) => {
        const cc: number[] = [], aa: number[] = [];
        for (let i = 0; i < N; i++) for (let k = 0; k < counts[i]!; k++) { cc.push(m.c[i]!); aa.push(m.a[i]!); }
        return refEce(cc, aa);
      };
      reps.push(((pick(at("a1", 2)) - pick(at("a0", 2))) + (pick(at("b1", 2)) - pick(at("b0", 2)))) / 2);
    }
    reps.sort((x, y) => x - y);
    const q = (p: number) => { const h = (reps.length - 1) * p, lo = Math.floor(h); return reps[lo]! + (h - lo) * (reps[Math.min(lo + 1, reps.length - 1)]! - reps[lo]!); };
    const e = c.get("C2")!.effect!;
    assert.ok(Math.abs(e.lo - q(0.025)) < 1e-9 && Math.abs(e.hi - q(0.975)) < 1e-9, `[${e.lo}, ${e.hi}] vs [${q(0.025)}, ${q(0.975)}]`);
  });
});

describe("three seeds: seed resampling", () => {
  test("identical seeds change nothing; seeds that differ widen the interval", async () => {
    // every seed of every root starts from the same base records; in `diff` the ε = 0.1 run of seed s
    // is shifted by 0.15·s in confidence (a seed effect); `one` has seed 0 only
    const same = newRoot(), diff = newRoot(), one = newRoot();
    const base = (eps: number): Made => {
      const r = rng(`base-${eps}`);
      const m: Made = { c: [], a: [] };
      for (let i = 0; i < N; i++) { const x = noisy(i, r); m.c.push(x.c * (eps ? 0.9 : 1)); m.a.push(x.a); }
      return m;
    };
    const b0 = base(0), b1 = base(0.1);
    for (const root of [same, diff, one]) {
      writeRun(root, "pa", pretrain("byte", 64), [0], () => noisy);
      for (const s of root === one ? [0] : [0, 1, 2]) {
        const shift = root === diff ? 0.15 * s : 0;
        writeRun(root, `a0-s${s}`, sft("pa", 0, s), [1], () => (i) => ({ c: b0.c[i]!, a: b0.a[i]! }));
        writeRun(root, `a1-s${s}`, sft("pa", 0.1, s), [1], () => (i) => ({ c: Math.min(0.999, b1.c[i]! + shift), a: b1.a[i]! }));
      }
    }
    const c2 = async (root: string) => (await claimsOf(root)).c.get("C2")!;
    const [s, d, o] = [await c2(same), await c2(diff), await c2(one)];
    assert.equal(s.min_seeds, 3);
    assert.equal(s.preliminary, false);
    assert.equal(o.preliminary, true);
    assert.ok(Math.abs(s.effect!.estimate - o.effect!.estimate) < 1e-12);
    assert.ok(Math.abs(s.effect!.lo - o.effect!.lo) < 1e-12 && Math.abs(s.effect!.hi - o.effect!.hi) < 1e-12, "identical seeds: the question bootstrap alone");
    assert.ok(d.effect!.hi - d.effect!.lo > s.effect!.hi - s.effect!.lo, `seed spread widens the interval: ${d.effect!.hi - d.effect!.lo} vs ${s.effect!.hi - s.effect!.lo}`);
  });
});

describe("verdicts", () => {
  test("clear effects: C2 reproduced, C1 not reproduced (the opposite), mixed when cells disagree", async () => {
    const root = newRoot();
    // pretrained: confidently wrong (conf 0.9, accuracy ~0.25); after SFT with ε = 0: confident (0.9) at
    // accuracy ~0.5; with ε = 0.1 in cell a: confidence 0.5 (calibrated); in cell b: confidence 0.99 (worse)
    // correctness is fixed by the question index (accuracy exactly p, the same questions right in every run)
    const withConf = (conf: number, p: number): Gen => (i) => ({ c: conf, a: i < p * N ? 1 : 0 });
    writeRun(root, "pa", pretrain("byte", 64), [0], () => withConf(0.9, 0.25));
    writeRun(root, "pb", pretrain("o200k", 64), [0], () => withConf(0.9, 0.25));
    for (const s of [0, 1, 2]) {
      writeRun(root, `a0-s${s}`, sft("pa", 0, s), [1], () => withConf(0.9, 0.5));
      writeRun(root, `a1-s${s}`, sft("pa", 0.1, s), [1], () => withConf(0.5, 0.5));
      writeRun(root, `b0-s${s}`, sft("pb", 0, s), [1], () => withConf(0.9, 0.5));
      writeRun(root, `b1-s${s}`, sft("pb", 0.1, s), [1], () => withConf(0.5, 0.5));
    }
    let { c } = await claimsOf(root);
    assert.equal(c.get("C2")!.verdict, "reproduced", c.get("C2")!.reason);
    assert.ok(c.get("C2")!.effect!.hi < 0);
    // C1: ECE 0.9 − 0.25 = 0.65 before, 0.4 after: lower, the opposite of the claim
    assert.equal(c.get("C1")!.verdict, "not reproduced");
    assert.match(c.get("C1")!.reason, /other side/);
    // cell b: label smoothing makes it worse → per-cell checks disagree with a pooled reading
    for (const s of [0, 1, 2]) writeRun(root, `b1-s${s}`, sft("pb", 0.1, s), [1], () => withConf(0.999, 0.5));
    ({ c } = await claimsOf(root));
    const c2 = c.get("C2")!;
    const cells = c2.secondary.filter((x) => x.check);
    assert.deepEqual(cells.map((x) => x.reading).sort(), ["claimed", "opposite"]);
    assert.equal(c2.verdict, "mixed", c2.reason);
  });

  test("only the runs of a published study count when there is a manifest", async () => {
    const root = newRoot();
    writeRun(root, "pa", pretrain("byte", 64), [0], () => noisy);
    writeRun(root, "in0", sft("pa", 0, 0), [1], () => noisy);
    writeRun(root, "out0", sft("pa", 0, 1), [1], () => noisy);
    mkdirSync(join(root, "study"), { recursive: true });
    writeFileSync(join(root, "study", "s.json"), JSON.stringify({ format: "calib-study/1", name: "s", runs: [{ id: "pa", published: true }, { id: "in0", published: true }, { id: "out0", published: false }] }));
    const { out, c } = await claimsOf(root);
    assert.deepEqual(out.studies, ["s"]);
    assert.equal(out.n_runs, 2);
    assert.deepEqual(c.get("C1")!.runs, ["in0"]);
  });
});

describe("knowledge worlds: scorings apart, per exposure bucket, the study index", () => {
  // option rows carry the signal; letter rows of the same questions are noise that must never mix in
  const worldRun = (root: string, id: string, json: Record<string, unknown>, epochs: number[], gen: (epoch: number, scoring: string) => Gen) => {
    const dir = join(root, "runs", id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "run.json"), JSON.stringify({ id, name: id, status: "succeeded", created_at: "2026-01-01T00:00:00Z", metrics: { vocab_size: 1500 }, artifacts: [], ...json }));
    const rows: Array<{ epoch: number; id: string; confidence: number; correct: boolean; scoring: "option" | "letter"; exposures: number }> = [];
    for (const epoch of epochs) for (const scoring of ["option", "letter"] as const) {
      const r = rng(`${id}@${epoch}/${scoring}`);
      const g = gen(epoch, scoring);
      const m: Made = { c: [], a: [] };
      for (let i = 0; i < N; i++) {
        const x = g(i, r);
        const c = Math.fround(x.c);
        rows.push({ epoch, id: `w-${i}`, confidence: c, correct: x.a === 1, scoring, exposures: 1 + (i % 8) });
        m.c.push(c); m.a.push(x.a);
      }
      made.set(`${root}|${id}@${epoch}/${scoring}`, m);
    }
    writeQuestions(dir, id, rows);
  };
  const wpre = (tok: string, d: number) => ({ kind: "pretrain", config: { kind: "pretrain", tokenizer: tok, model: { dModel: d, nLayer: 2 }, world: { config: { people: 24 } } } });

  test("each scoring has its own table; a bucket's claims are the claims on its questions; the knowledge world comes first", async () => {
    const root = newRoot();
    const at = (id: string, e: number, s: string) => made.get(`${root}|${id}@${e}/${s}`)!;
    worldRun(root, "wp", wpre("word", 64), [0], () => noisy);
    worldRun(root, "w0", sft("wp", 0, 0), [1, 2], () => noisy);
    worldRun(root, "w1", sft("wp", 0.1, 0), [1, 2], () => noisy);
    // a Brown study beside it, with its own manifest
    writeRun(root, "bp", pretrain("byte", 64), [0], () => noisy);
    writeRun(root, "b0", sft("bp", 0, 0), [1], () => noisy);
    mkdirSync(join(root, "study"), { recursive: true });
    writeFileSync(join(root, "study", "b.json"), JSON.stringify({ format: "calib-study/1", name: "b", runs: ["bp", "b0"].map((id) => ({ id, published: true })) }));
    writeFileSync(join(root, "study", "w.json"), JSON.stringify({ format: "calib-study/1", name: "w", regime: "world", evidence: false, runs: ["wp", "w0", "w1"].map((id) => ({ id, published: true })) }));
    const prev = process.env.CALIB_DATA_DIR;
    process.env.CALIB_DATA_DIR = root;
    try {
      const { computeStudyClaims } = await import("../../src/data/lib/claims.js");
      const index = computeStudyClaims(root);
      assert.deepEqual(index.studies.map((s) => [s.name, s.regime, s.evidence, s.results.map((r) => r.scoring)]), [["w", "world", false, ["option", "letter"]], ["b", "brown", true, ["letter"]]]);
      assert.equal(index.primary, "w");
      const w = index.studies[0]!;
      const ece = (id: string, e: number, s: string, keep: (i: number) => boolean = () => true) => {
        const m = at(id, e, s);
        const idx = m.c.map((_, i) => i).filter(keep);
        return refEce(idx.map((i) => m.c[i]!), idx.map((i) => m.a[i]!));
      };
      for (const scoring of ["option", "letter"]) {
        const res = w.results.find((r) => r.scoring === scoring)!;
        const c = new Map(res.claims.map((x) => [x.id, x]));
        assert.ok(Math.abs(c.get("C1")!.effect!.estimate - (ece("w0", 2, scoring) - ece("wp", 0, scoring))) < 1e-9, `C1 ${scoring}`);
        assert.ok(Math.abs(c.get("C2")!.effect!.estimate - (ece("w1", 2, scoring) - ece("w0", 2, scoring))) < 1e-9, `C2 ${scoring}`);
        assert.equal(c.get("C1")!.n_questions, N, "the same questions under each scoring, never both");
        // buckets 1, 2-3, 4-7, 8-15 of exposures 1 + (i mod 8)
        assert.deepEqual(res.buckets.map((b) => [b.bucket, b.n_questions]), [["1", N / 8], ["2-3", N / 4], ["4-7", N / 2], ["8-15", N / 8]]);
        const inBucket = (lo: number, hi: number) => (i: number) => 1 + (i % 8) >= lo && 1 + (i % 8) <= hi;
        const b47 = res.buckets.find((b) => b.bucket === "4-7")!.claims.find((x) => x.id === "C1")!;
        assert.ok(Math.abs(b47.effect!.estimate - (ece("w0", 2, scoring, inBucket(4, 7)) - ece("wp", 0, scoring, inBucket(4, 7)))) < 1e-9, `C1 in bucket 4-7 (${scoring})`);
        assert.ok(b47.effect!.lo <= b47.effect!.hi);
      }
      assert.deepEqual(index.studies[1]!.results[0]!.buckets, [], "no exposures: no buckets");
    } finally {
      if (prev === undefined) delete process.env.CALIB_DATA_DIR;
      else process.env.CALIB_DATA_DIR = prev;
    }
  });
});
