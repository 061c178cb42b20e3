// Binned top-label metrics: hand-computed values, float64 references on random data, edge
// conventions, order invariance and calibrated-data properties.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ace, assignBins, binStats, binnedMetrics, debiasedL2, ece, equalWidthBin, mce, radixSortU32, reliabilityDiagram, rmsce, wilsonInterval, Z95, zForLevel,
} from "../../backend/metrics/index.js";
import {
  examples, lcg, randomTopLabel, refACE, refBinIndex, refBins, refBrierTop, refCE, refDebiasedL2, refWilson,
} from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

// Ten examples, computed by hand below (float64 so the decimals are the intended ones).
const C = new Float64Array([0.1, 0.2, 0.35, 0.5, 0.5, 0.8, 0.9, 1.0, 0.0, 0.65]);
const A = new Uint8Array([0, 0, 1, 1, 0, 1, 1, 1, 0, 0]);

test("hand-computed: 5 equal-width bins", () => {
  // bins [0,.2): {0.1✗, 0✗} conf .05 acc 0 | [.2,.4): {0.2✗, 0.35✓} conf .275 acc .5 | [.4,.6): {0.5✓, 0.5✗}
  // conf .5 acc .5 | [.6,.8): {0.65✗} | [.8,1]: {0.8✓, 0.9✓, 1✓} conf .9 acc 1
  const m = binnedMetrics(C, A, { bins: 5 });
  close(m.ece, (2 * 0.05 + 2 * 0.225 + 0 + 0.65 + 3 * 0.1) / 10, 1e-15, "ece");
  close(m.rmsce, Math.sqrt((2 * 0.05 ** 2 + 2 * 0.225 ** 2 + 0.65 ** 2 + 3 * 0.1 ** 2) / 10), 1e-15, "rmsce");
  close(m.mce, 0.65, 1e-15, "mce");
  close(m.ace, (0.05 + 0.225 + 0 + 0.65 + 0.1) / 5, 1e-15, "ace");
  close(m.brier, 1.445 / 10, 1e-15, "brier");
  close(m.accuracy, 0.5, 0, "accuracy");
  close(m.meanConfidence, 5 / 10, 1e-15, "meanConfidence");
  // Σ_b (n_b/n)(gap² − acc(1−acc)/(n_b−1)) over bins with n_b ≥ 2 = (.005 − .39875 − .5 + .03)/10 < 0 → clipped to 0.
  assert.equal(m.debiasedL2, 0);
  assert.deepEqual(m.reliability.bin, [0, 1, 2, 3, 4]);
  assert.deepEqual(m.reliability.count, [2, 2, 2, 1, 3]);
  assert.deepEqual(m.reliability.lo, [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(m.reliability.hi, [0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(m.reliability.accuracy, [0, 0.5, 0.5, 0, 1]);
  [0.05, 0.275, 0.5, 0.65, 0.9].forEach((v, i) => close(m.reliability.confidence[i]!, v, 1e-15, `conf[${i}]`));
  // Wilson for 0 of 2: lo 0, hi = (z²/n)/(1 + z²/n).
  close(m.reliability.wilsonHi[0]!, (Z95 ** 2 / 2) / (1 + Z95 ** 2 / 2), 1e-15, "wilson hi");
  assert.equal(m.reliability.wilsonLo[0], 0);
  assert.equal(m.reliability.wilsonHi[4], 1);
  // The single-metric functions agree with the one-pass result.
  assert.equal(ece(C, A, { bins: 5 }), m.ece);
  assert.equal(ece(C, A, { bins: 5, norm: "l2" }), m.rmsce);
  assert.equal(ece(C, A, { bins: 5, norm: "max" }), m.mce);
  assert.equal(rmsce(C, A, { bins: 5 }), m.rmsce);
  assert.equal(mce(C, A, { bins: 5 }), m.mce);
  assert.equal(ace(C, A, { bins: 5 }), m.ace);
});

test("hand-computed: 3 equal-mass bins (ranks [0,3) [3,6) [6,10), tied 0.5s together)", () => {
  // sorted: 0✗ .1✗ .2✗ | .35✓ .5✓ .5✗ | .65✗ .8✓ .9✓ 1✓
  const m = binnedMetrics(C, A, { bins: 3, scheme: "equal-mass" });
  assert.deepEqual(m.reliability.count, [3, 3, 4]);
  assert.deepEqual(m.reliability.lo, [0, 0.35, 0.65]);
  assert.deepEqual(m.reliability.hi, [0.35, 0.65, 1]);
  close(m.reliability.accuracy[1]!, 2 / 3, 1e-15, "acc1");
  close(m.reliability.confidence[2]!, 0.8375, 1e-15, "conf2");
  close(m.ece, (3 * 0.1 + 3 * (2 / 3 - 0.45) + 4 * (0.8375 - 0.75)) / 10, 1e-15, "ece");
  close(m.mce, 2 / 3 - 0.45, 1e-15, "mce");
});

test("hand-computed: debiased L2 on one bin of four", () => {
  // conf .9 ×4, 2 correct: gap² = .16, acc(1 − acc)/(n − 1) = .25/3.
  const d = debiasedL2([0.9, 0.9, 0.9, 0.9], [1, 0, 1, 0], { bins: 10 });
  close(d, Math.sqrt(0.16 - 0.25 / 3), 1e-15, "debiased");
  // A bin with a single example contributes 0 (but keeps its weight in n).
  const d2 = debiasedL2([0.9, 0.9, 0.9, 0.9, 0.05], [1, 0, 1, 0, 1], { bins: 10 });
  close(d2, Math.sqrt((4 / 5) * (0.16 - 0.25 / 3)), 1e-15, "debiased with a singleton bin");
});

test("edges: 0 in the first bin, 1 in the last, left-closed bins, empty bins skipped", () => {
  const r = reliabilityDiagram([0, 1, 1, 0.2, 0.4], [0, 1, 1, 0, 1], { bins: 5 });
  assert.deepEqual(r.bin, [0, 1, 2, 4]);
  assert.deepEqual(r.count, [1, 1, 1, 2]);
  assert.deepEqual(Array.from(assignBins([0, 1, 0.2, 0.999999], { bins: 5 })), [0, 4, 1, 4]);
  assert.deepEqual([0, 1, 0.2, 0.999999, 1 - 2 ** -53].map((c) => equalWidthBin(c, 5)), [0, 4, 1, 4, 4]);
  // The largest double below 1 lands in the last bin too.
  assert.equal(binStats([1 - 2 ** -53, 0.5], [1, 0], { bins: 3 }).count[2], 1);
  // M = 1: everything in one bin; ECE = |mean acc − mean conf|.
  close(ece([0.2, 0.9, 0.6], [1, 1, 0], { bins: 1 }), Math.abs(2 / 3 - 1.7 / 3), 1e-15, "one bin");
  // Empty bins change nothing: ACE averages non-empty bins only.
  close(ace([0.05, 0.95], [0, 1], { bins: 15 }), 0.05, 1e-15, "ace");
  const s = binStats([0.05, 0.95], [0, 1], { bins: 15 });
  assert.equal(s.count.reduce((x, y) => x + y, 0), 2);
  assert.ok(Number.isNaN(s.lo[7]!));
});

test("equal-mass: without ties every bin holds floor((b+1)n/M) − floor(bn/M) examples", () => {
  const rnd = lcg(7);
  for (const [n, M] of [[100, 15], [101, 10], [7, 10], [1000, 3]] as const) {
    const c = Float64Array.from({ length: n }, () => rnd());
    const a = Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 1 : 0));
    const s = binStats(c, a, { bins: M, scheme: "equal-mass" });
    for (let b = 0; b < M; b++) assert.equal(s.count[b], Math.floor(((b + 1) * n) / M) - Math.floor((b * n) / M), `n=${n} M=${M} b=${b}`);
  }
});

test("equal-mass: a tie group is never split; an all-tied input is one bin", () => {
  const c = new Float64Array(20).fill(0.7);
  const a = Uint8Array.from({ length: 20 }, (_, i) => (i % 10 < 7 ? 1 : 0));
  const m = binnedMetrics(c, a, { bins: 10, scheme: "equal-mass" });
  assert.deepEqual(m.reliability.count, [20]);
  close(m.ece, 0, 1e-15, "calibrated tie group");
  const { conf, correct } = randomTopLabel(500, 3, { ties: true });
  const bins = assignBins(conf, { bins: 10, scheme: "equal-mass" });
  const byValue = new Map<number, number>();
  conf.forEach((v, i) => {
    const b = byValue.get(v);
    if (b !== undefined) assert.equal(bins[i], b, `tied ${v} split`);
    byValue.set(v, bins[i]!);
  });
  void correct;
});

test("random inputs: every binned metric equals the float64 reference (both schemes, ties, several M)", () => {
  for (const [seed, n] of [[1, 1500], [2, 333], [3, 50]] as const) {
    const { conf, correct } = randomTopLabel(n, seed, { ties: true });
    const xs = examples(conf, correct);
    for (const scheme of ["equal-width", "equal-mass"] as const) {
      for (const M of [1, 7, 10, 15, 40]) {
        const m = binnedMetrics(conf, correct, { bins: M, scheme });
        const what = `seed ${seed} ${scheme} M=${M}`;
        close(m.ece, refCE(xs, M, scheme, "l1"), 1e-12, `${what} ece`);
        close(m.rmsce, refCE(xs, M, scheme, "l2"), 1e-12, `${what} rmsce`);
        close(m.mce, refCE(xs, M, scheme, "max"), 1e-12, `${what} mce`);
        close(m.ace, refACE(xs, M, scheme), 1e-12, `${what} ace`);
        close(m.debiasedL2, refDebiasedL2(xs, M, scheme), 1e-9, `${what} debiased`);
        close(m.brier, refBrierTop(xs), 1e-12, `${what} brier`);
        const rb = refBins(xs, M, scheme);
        assert.deepEqual(m.reliability.bin, rb.map((b) => b.b), `${what} bins`);
        assert.deepEqual(m.reliability.count, rb.map((b) => b.n), `${what} counts`);
        rb.forEach((b, i) => {
          close(m.reliability.accuracy[i]!, b.acc, 1e-12, `${what} acc`);
          close(m.reliability.confidence[i]!, b.conf, 1e-12, `${what} conf`);
          const [wl, wh] = refWilson(b.acc * b.n, b.n, Z95);
          close(m.reliability.wilsonLo[i]!, wl, 1e-12, `${what} wilson lo`);
          close(m.reliability.wilsonHi[i]!, wh, 1e-12, `${what} wilson hi`);
          // Every member lies in the reported [lo, hi) (last bin closed).
          const last = i === rb.length - 1;
          for (const x of b.members) assert.ok(x.c >= m.reliability.lo[i]! && (x.c < m.reliability.hi[i]! || (last && x.c <= 1)), `${what} member ${x.c} outside`);
        });
        assert.deepEqual(Array.from(assignBins(conf, { bins: M, scheme })), refBinIndex(xs, M, scheme), `${what} assignBins`);
      }
    }
  }
});

test("ECE is invariant to the order of the examples", () => {
  const { conf, correct } = randomTopLabel(4000, 11, { ties: true });
  const rnd = lcg(5);
  const perm = Array.from({ length: conf.length }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const c2 = Float32Array.from(perm, (i) => conf[i]!);
  const a2 = Uint8Array.from(perm, (i) => correct[i]!);
  for (const scheme of ["equal-width", "equal-mass"] as const) {
    const x = binnedMetrics(conf, correct, { scheme });
    const y = binnedMetrics(c2, a2, { scheme });
    for (const k of ["ece", "rmsce", "mce", "ace", "debiasedL2", "brier"] as const) close(x[k], y[k], 1e-14, `${scheme} ${k}`);
    assert.deepEqual(x.reliability.count, y.reliability.count);
  }
});

test("perfectly calibrated data → ECE near 0 with large n; miscalibrated data does not pass", () => {
  const n = 200_000;
  const rnd = lcg(99);
  const conf = new Float64Array(n);
  const good = new Uint8Array(n);
  const bad = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = 0.25 + 0.75 * rnd();
    conf[i] = c;
    const u = rnd();
    good[i] = u < c ? 1 : 0; // P(correct | c) = c
    bad[i] = u < c * c ? 1 : 0; // overconfident
  }
  for (const scheme of ["equal-width", "equal-mass"] as const) {
    const g = binnedMetrics(conf, good, { scheme });
    const b = binnedMetrics(conf, bad, { scheme });
    assert.ok(g.ece < 0.006, `${scheme} calibrated ECE ${g.ece}`);
    assert.ok(g.rmsce < 0.008, `${scheme} calibrated RMS-CE ${g.rmsce}`);
    assert.ok(g.debiasedL2 < g.rmsce, `${scheme} debiased ${g.debiasedL2} < plug-in ${g.rmsce}`);
    assert.ok(b.ece > 0.1, `${scheme} miscalibrated ECE ${b.ece}`);
  }
});

test("Wilson interval: quadratic-root reference, symmetric, z from level", () => {
  for (const [k, n] of [[0, 1], [3, 10], [10, 10], [57, 200], [1, 3]] as const) {
    const [lo, hi] = wilsonInterval(k, n);
    const [rl, rh] = refWilson(k, n, Z95);
    close(lo, rl, 1e-14, `lo ${k}/${n}`);
    close(hi, rh, 1e-14, `hi ${k}/${n}`);
    const [lo2, hi2] = wilsonInterval(n - k, n);
    close(lo2, 1 - hi, 1e-14, "symmetry");
    close(hi2, 1 - lo, 1e-14, "symmetry");
  }
  close(zForLevel(0.95), 1.959963984540054, 1e-12, "z95");
  close(zForLevel(0.9), 1.6448536269514722, 1e-12, "z90");
  close(zForLevel(0.99), 2.5758293035489004, 1e-12, "z99");
});

test("equal-mass: the Float32 radix path and the generic sorted path agree exactly; −0 counts as 0", () => {
  const { conf, correct } = randomTopLabel(5000, 61, { ties: true });
  conf[3] = -0;
  conf[4] = 0;
  const c64 = Float64Array.from(conf);
  for (const M of [1, 10, 15, 33]) {
    const a = binStats(conf, correct, { bins: M, scheme: "equal-mass" });
    const b = binStats(c64, correct, { bins: M, scheme: "equal-mass" });
    for (const k of ["count", "sumCorrect", "lo", "hi"] as const) assert.deepEqual(Array.from(a[k]), Array.from(b[k]), `M=${M} ${k}`);
    for (let j = 0; j < M; j++) {
      close(a.sumConfidence[j]!, b.sumConfidence[j]!, 1e-12, `M=${M} sumConfidence[${j}]`);
      close(a.sumSquaredError[j]!, b.sumSquaredError[j]!, 1e-12, `M=${M} sumSquaredError[${j}]`);
    }
  }
});

test("radix sort of 32-bit keys equals the native sort", () => {
  const rnd = lcg(3);
  for (const n of [0, 1, 2, 1000, 70_000]) {
    const keys = Uint32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 5 : Math.floor(rnd() * 2 ** 32)));
    const expect = keys.slice().sort();
    assert.deepEqual(radixSortU32(keys.slice()), expect, `n=${n}`);
  }
  // All keys equal in the low digits (passes skipped) and all equal.
  const same = new Uint32Array(100).fill(0x3f800000);
  assert.deepEqual(radixSortU32(same.slice()), same);
});
