// calibrationSummary: exactly the metric fields of a calibration.arrow row, each equal to the
// library function that defines it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapMetrics, CALIBRATION_COLUMNS, calibrationSummaries, calibrationSummary, ece, mce, nll, reliabilityDiagram,
  rmsce, ace, debiasedL2, smECE, topLabel, rowEntropy, brierTopLabel,
} from "../../backend/metrics/index.js";
import { lcg, randomTopLabel } from "./reference.js";

const META = ["run_id", "epoch", "split", "task", "scoring", "exposure_bucket", "confidence_def"];

test("fields are the calibration.arrow columns (minus run metadata), in schema order", () => {
  const { conf, correct } = randomTopLabel(300, 1, { ties: true });
  const row = calibrationSummary({ confidence: conf, correct }, { resamples: 20 });
  assert.deepEqual(Object.keys(row), CALIBRATION_COLUMNS.map((c) => c.name).filter((n) => !META.includes(n)));
  // The records.md column list, spelled out independently.
  assert.deepEqual(CALIBRATION_COLUMNS.map((c) => c.name), [
    "run_id", "epoch", "split", "task", "scoring", "exposure_bucket", "confidence_def", "scheme", "n_bins", "n",
    "accuracy", "nll", "brier", "ece", "rmsce", "mce", "ace", "smece", "debiased_l2", "mean_confidence", "mean_entropy",
    "ece_lo", "ece_hi", "rmsce_lo", "rmsce_hi", "brier_lo", "brier_hi", "nll_lo", "nll_hi",
    "bin_lo", "bin_hi", "bin_confidence", "bin_accuracy", "bin_wilson_lo", "bin_wilson_hi", "bin_count",
  ]);
  // JSON-safe: no NaN / undefined.
  assert.deepEqual(JSON.parse(JSON.stringify(row)), row);
});

test("every field equals the function that defines it", () => {
  const { conf, correct } = randomTopLabel(800, 2, { ties: true });
  const rnd = lcg(3);
  const pTarget = Float64Array.from(correct, (a, i) => (a ? conf[i]! : (1 - conf[i]!) * rnd()));
  const entropy = Float64Array.from({ length: 800 }, () => rnd() * 3);
  for (const [bins, scheme] of [[15, "equal-width"], [10, "equal-mass"]] as const) {
    const o = { bins, scheme };
    const row = calibrationSummary({ confidence: conf, correct, pTarget, entropy }, { ...o, resamples: 100, seed: 4 });
    assert.equal(row.scheme, scheme);
    assert.equal(row.n_bins, bins);
    assert.equal(row.n, 800);
    assert.equal(row.ece, ece(conf, correct, o));
    assert.equal(row.rmsce, rmsce(conf, correct, o));
    assert.equal(row.mce, mce(conf, correct, o));
    assert.equal(row.ace, ace(conf, correct, o));
    assert.equal(row.debiased_l2, debiasedL2(conf, correct, o));
    assert.equal(row.smece, smECE(conf, correct).value);
    assert.equal(row.nll, nll(pTarget));
    assert.ok(Math.abs(row.brier - brierTopLabel(conf, correct)) < 1e-15);
    assert.ok(Math.abs(row.accuracy - correct.reduce((s, v) => s + v, 0) / 800) < 1e-15);
    assert.ok(Math.abs(row.mean_entropy! - entropy.reduce((s, v) => s + v, 0) / 800) < 1e-12);
    const rel = reliabilityDiagram(conf, correct, o);
    assert.deepEqual(row.bin_lo, rel.lo);
    assert.deepEqual(row.bin_hi, rel.hi);
    assert.deepEqual(row.bin_count, rel.count);
    assert.deepEqual(row.bin_accuracy, rel.accuracy);
    assert.deepEqual(row.bin_confidence, rel.confidence);
    assert.deepEqual(row.bin_wilson_lo, rel.wilsonLo);
    assert.deepEqual(row.bin_wilson_hi, rel.wilsonHi);
    const b = bootstrapMetrics({ confidence: conf, correct, pTarget }, { ...o, resamples: 100, seed: 4 }).metrics;
    assert.deepEqual([row.ece_lo, row.ece_hi, row.rmsce_lo, row.rmsce_hi, row.brier_lo, row.brier_hi, row.nll_lo, row.nll_hi],
      [b.ece!.lo, b.ece!.hi, b.rmsce!.lo, b.rmsce!.hi, b.brier!.lo, b.brier!.hi, b.nll!.lo, b.nll!.hi]);
    assert.ok(row.ece_lo! < row.ece_hi!);
  }
});

test("probability rows: confidence, correctness, NLL and entropy are derived", () => {
  const rnd = lcg(9);
  const n = 200, K = 4;
  const p = new Float64Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = Array.from({ length: K }, () => Math.exp(2 * rnd()));
    const s = w.reduce((a, b) => a + b, 0);
    w.forEach((v, k) => (p[i * K + k] = v / s));
    y[i] = Math.floor(rnd() * K);
  }
  const row = calibrationSummary({ probs: p, labels: y, classes: K }, { resamples: 0 });
  const t = topLabel(p, y, K);
  const h = rowEntropy(p, K);
  assert.equal(row.ece, ece(t.confidence, t.correct));
  assert.equal(row.nll, nll(t.pTarget));
  assert.ok(Math.abs(row.mean_entropy! - h.reduce((s, v) => s + v, 0) / n) < 1e-14);
  assert.equal(row.ece_lo, null);
  assert.equal(row.nll_hi, null);
});

test("missing inputs give null fields; calibrationSummaries gives 15 equal-width and 10 equal-mass rows", () => {
  const { conf, correct } = randomTopLabel(150, 5);
  const [a, b] = calibrationSummaries({ confidence: conf, correct }, { resamples: 10 });
  assert.equal(a!.scheme, "equal-width");
  assert.equal(a!.n_bins, 15);
  assert.equal(b!.scheme, "equal-mass");
  assert.equal(b!.n_bins, 10);
  assert.equal(a!.smece, b!.smece);
  assert.equal(a!.nll, null);
  assert.equal(a!.nll_lo, null);
  assert.equal(a!.mean_entropy, null);
  assert.equal(calibrationSummary({ confidence: conf, correct }, { smece: false, resamples: 0 }).smece, null);
  assert.throws(() => calibrationSummary({ confidence: conf } as never), TypeError);
});
