// Bootstrap: the PRNG against a BigInt reference, resample replicates against the reference
// metrics on materialized resamples, percentile intervals, paired bootstrap properties.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapCounts, bootstrapMetrics, bootstrapStatistic, pairedBootstrap, percentileInterval, Xoshiro128, BOOTSTRAP_METRICS,
} from "../../backend/metrics/index.js";
import { examples, lcg, randomTopLabel, refACE, refBrierTop, refCE, refDebiasedL2, type Example } from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol || (Number.isNaN(a) && Number.isNaN(b)), `${what}: ${a} vs ${b} (tol ${tol})`);

const M32 = 0xffffffffn;
/** splitmix32-seeded xoshiro128** in BigInt arithmetic (independent of the Math.imul version). */
function refXoshiro(seed: number): () => bigint {
  let x = (BigInt(seed) & M32) ^ (((BigInt(Math.floor(seed / 2 ** 32)) & M32) * 0x9e3779b1n) & M32);
  const mix = (): bigint => {
    x = (x + 0x9e3779b9n) & M32;
    let z = x;
    z = ((z ^ (z >> 16n)) * 0x85ebca6bn) & M32;
    z = ((z ^ (z >> 13n)) * 0xc2b2ae35n) & M32;
    return z ^ (z >> 16n);
  };
  const s = [mix(), mix(), mix(), mix()];
  const rotl = (v: bigint, k: bigint) => ((v << k) | (v >> (32n - k))) & M32;
  return () => {
    const result = (rotl((s[1]! * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1]! << 9n) & M32;
    s[2] = s[2]! ^ s[0]!;
    s[3] = s[3]! ^ s[1]!;
    s[1] = s[1]! ^ s[2]!;
    s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ t;
    s[3] = rotl(s[3]!, 11n);
    return result;
  };
}

test("xoshiro128** stream equals the BigInt reference; fillCounts uses floor(u·n/2^32)", () => {
  for (const seed of [0, 1, 12345, 2 ** 40 + 7]) {
    const a = new Xoshiro128(seed);
    const b = refXoshiro(seed);
    for (let i = 0; i < 1000; i++) assert.equal(BigInt(a.nextU32()), b(), `seed ${seed} draw ${i}`);
  }
  const n = 37;
  const counts = new Uint32Array(n);
  new Xoshiro128(5).fillCounts(counts);
  const ref = refXoshiro(5);
  const expect = new Uint32Array(n);
  for (let t = 0; t < n; t++) expect[Number((ref() * BigInt(n)) >> 32n)]!++;
  assert.deepEqual(counts, expect);
});

/** Copies each yielded buffer (the generator reuses one). */
function copies(gen: Iterable<Uint32Array>): Uint32Array[] {
  const out: Uint32Array[] = [];
  for (const c of gen) out.push(c.slice());
  return out;
}

test("bootstrapCounts: Σ counts = n, reproducible per seed, different across seeds", () => {
  const first = copies(bootstrapCounts(50, 5, 3));
  // The generator reuses one buffer; copies differ between resamples.
  assert.notDeepEqual(first[0], first[1]);
  for (const c of first) assert.equal(c.reduce((s, v) => s + v, 0), 50);
  const again = copies(bootstrapCounts(50, 5, 3));
  assert.deepEqual(again, first);
  const other = copies(bootstrapCounts(50, 5, 4));
  assert.notDeepEqual(other, first);
});

function materialize(xs: Example[], counts: Uint32Array): Example[] {
  const out: Example[] = [];
  counts.forEach((k, i) => {
    for (let j = 0; j < k; j++) out.push(xs[i]!);
  });
  return out;
}

test("every replicate equals the reference metrics on the materialized resample (both schemes)", () => {
  const n = 300;
  const { conf, correct } = randomTopLabel(n, 31, { ties: true });
  const rnd = lcg(2);
  const pTarget = Float64Array.from(correct, (a, i) => (a ? Math.max(conf[i]!, 1e-9) : 0.5 * (1 - conf[i]!) * rnd() + 1e-9));
  const entropy = Float64Array.from({ length: n }, () => 2 * rnd());
  const xs = examples(conf, correct);
  const R = 25;
  const allCounts = copies(bootstrapCounts(n, R, 17));
  for (const [scheme, M] of [["equal-width", 15], ["equal-mass", 10], ["equal-mass", 7]] as const) {
    const res = bootstrapMetrics({ confidence: conf, correct, pTarget, entropy }, { bins: M, scheme, resamples: R, seed: 17, keepReplicates: true });
    for (let r = 0; r < R; r++) {
      const counts = allCounts[r]!;
      const ys = materialize(xs, counts);
      const rep = (k: (typeof BOOTSTRAP_METRICS)[number]) => res.replicates![k]![r]!;
      const what = `${scheme} M=${M} resample ${r}`;
      close(rep("ece"), refCE(ys, M, scheme, "l1"), 1e-12, `${what} ece`);
      close(rep("rmsce"), refCE(ys, M, scheme, "l2"), 1e-12, `${what} rmsce`);
      close(rep("mce"), refCE(ys, M, scheme, "max"), 1e-12, `${what} mce`);
      close(rep("ace"), refACE(ys, M, scheme), 1e-12, `${what} ace`);
      close(rep("debiasedL2"), refDebiasedL2(ys, M, scheme), 1e-9, `${what} debiased`);
      close(rep("brier"), refBrierTop(ys), 1e-12, `${what} brier`);
      close(rep("accuracy"), ys.reduce((s, x) => s + x.a, 0) / n, 1e-12, `${what} accuracy`);
      let nl = 0, h = 0;
      counts.forEach((k, i) => {
        nl += -k * Math.log(pTarget[i]!);
        h += k * entropy[i]!;
      });
      close(rep("nll"), nl / n, 1e-12, `${what} nll`);
      close(rep("meanEntropy"), h / n, 1e-12, `${what} entropy`);
    }
    // Point estimates are the full-data metrics.
    close(res.metrics.ece!.estimate, refCE(xs, M, scheme, "l1"), 1e-12, `${scheme} estimate`);
    // Interval = type-7 quantiles of the replicates.
    const sorted = Array.from(res.replicates!.ece!).sort((a, b) => a - b);
    const q = (p: number) => {
      const h = (sorted.length - 1) * p;
      return sorted[Math.floor(h)]! + (h - Math.floor(h)) * (sorted[Math.ceil(h)]! - sorted[Math.floor(h)]!);
    };
    close(res.metrics.ece!.lo, q(0.025), 1e-15, "lo");
    close(res.metrics.ece!.hi, q(0.975), 1e-15, "hi");
  }
  // Without pTarget / entropy there is no NLL / entropy interval.
  const bare = bootstrapMetrics({ confidence: conf, correct }, { resamples: 5 });
  assert.equal(bare.metrics.nll, undefined);
  assert.equal(bare.metrics.meanEntropy, undefined);
  assert.ok(bare.metrics.ece);
});

test("percentile interval: hand values", () => {
  const v = Array.from({ length: 101 }, (_, i) => i + 1);
  const r = percentileInterval(v, 0.95);
  assert.ok(Math.abs(r.lo - 3.5) < 1e-12 && r.hi === 98.5, JSON.stringify(r));
  const mean = 51;
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / 100);
  assert.ok(Math.abs(r.se - sd) < 1e-12);
  const r90 = percentileInterval(v, 0.9);
  assert.ok(Math.abs(r90.lo - 6) < 1e-12 && Math.abs(r90.hi - 96) < 1e-12, JSON.stringify(r90));
});

test("generic bootstrapStatistic uses the same resamples", () => {
  const x = Float64Array.from({ length: 80 }, (_, i) => Math.sin(i) ** 2);
  const res = bootstrapStatistic(80, (w) => w.reduce((s, k, i) => s + k * x[i]!, 0) / 80, { resamples: 10, seed: 9 });
  const counts = copies(bootstrapCounts(80, 10, 9));
  counts.forEach((c, r) => {
    const ys: number[] = [];
    c.forEach((k, i) => {
      for (let j = 0; j < k; j++) ys.push(x[i]!);
    });
    assert.ok(Math.abs(res.replicates[r]! - ys.reduce((s, v) => s + v, 0) / 80) < 1e-12);
  });
});

test("paired bootstrap: identical runs give Δ = 0 exactly; replicates are differences on shared resamples", () => {
  const { conf, correct } = randomTopLabel(500, 41, { ties: true });
  const same = pairedBootstrap({ confidence: conf, correct }, { confidence: conf, correct }, { resamples: 200 });
  for (const [k, v] of Object.entries(same.metrics)) {
    assert.equal(v.diff, 0, k);
    assert.equal(v.lo, 0, k);
    assert.equal(v.hi, 0, k);
    assert.equal(v.p, 1, k);
  }
  // b: the same model made overconfident.
  const conf2 = Float32Array.from(conf, (c) => Math.min(1, c ** 0.5));
  const opts = { resamples: 300, seed: 5, keepReplicates: true, scheme: "equal-mass" as const, bins: 10 };
  const pa = bootstrapMetrics({ confidence: conf, correct }, opts);
  const pb = bootstrapMetrics({ confidence: conf2, correct }, opts);
  const paired = pairedBootstrap({ confidence: conf, correct }, { confidence: conf2, correct }, opts);
  for (let r = 0; r < 300; r++) {
    assert.equal(paired.replicates!.ece![r], pb.replicates!.ece![r]! - pa.replicates!.ece![r]!);
  }
  assert.equal(paired.metrics.ece!.diff, pb.metrics.ece!.estimate - pa.metrics.ece!.estimate);
  assert.ok(paired.metrics.ece!.diff > 0 && paired.metrics.ece!.lo > 0 && paired.metrics.ece!.p < 0.05, JSON.stringify(paired.metrics.ece));
  // Accuracy is identical (same predictions): Δ = 0 with a zero-width interval.
  assert.equal(paired.metrics.accuracy!.hi - paired.metrics.accuracy!.lo, 0);
});

test("paired bootstrap is tighter than unpaired intervals for correlated runs", () => {
  const n = 2000;
  const { conf, correct } = randomTopLabel(n, 51);
  const rnd = lcg(52);
  const correct2 = Uint8Array.from(correct, (a) => (rnd() < 0.03 ? 1 - a : a));
  const opts = { resamples: 300, seed: 1 };
  const a = bootstrapMetrics({ confidence: conf, correct }, opts);
  const b = bootstrapMetrics({ confidence: conf, correct: correct2 }, opts);
  const p = pairedBootstrap({ confidence: conf, correct }, { confidence: conf, correct: correct2 }, opts);
  const unpaired = Math.hypot(a.metrics.accuracy!.se, b.metrics.accuracy!.se);
  assert.ok(p.metrics.accuracy!.se < unpaired / 3, `paired ${p.metrics.accuracy!.se} vs unpaired ${unpaired}`);
  assert.throws(() => pairedBootstrap({ confidence: conf, correct }, { confidence: conf.slice(1), correct: correct.slice(1) }), RangeError);
});
