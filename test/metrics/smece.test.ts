// Smooth ECE: hand cases, the discretized implementation against a direct float64 kernel sum, the
// bandwidth search against relplot's procedure applied to the reference, and properties.
import { test } from "node:test";
import assert from "node:assert/strict";
import { smECE, smECESigma } from "../../backend/metrics/index.js";
import { examples, lcg, randomTopLabel, refSigmaSearch, refSmECESigma } from "./reference.js";

const rel = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol * Math.abs(b), `${what}: ${a} vs ${b} (rel tol ${tol})`);

test("hand: a constant residual r gives smECE_σ = |r| for every σ, and σ* ≈ |r|", () => {
  const c = new Float64Array(50).fill(0.7);
  const a = new Uint8Array(50);
  for (const s of [0.001, 0.05, 0.5, 2]) rel(smECESigma(c, a, s), 0.7, 1e-12, `σ=${s}`);
  const r = smECE(c, a);
  rel(r.value, 0.7, 1e-12, "value");
  // check(σ) = σ < 0.7: the bisection ends with σ* in [0.7, 0.7 + 2^-10].
  assert.ok(r.sigma >= 0.7 && r.sigma <= 0.7 + 2 ** -10, `sigma ${r.sigma}`);
});

test("hand: residuals that cancel at every point give 0", () => {
  // Four at 0.75 with 3 correct: mean residual 0 at the only confidence.
  assert.ok(smECESigma([0.75, 0.75, 0.75, 0.75], [1, 1, 0, 1], 0.05) < 1e-15);
  // Two confidences each calibrated on its own.
  const r = smECE([0.2, 0.2, 0.2, 0.2, 0.2, 0.5, 0.5], [1, 0, 0, 0, 0, 1, 0]);
  assert.ok(r.value < 1e-12, `value ${r.value}`);
});

test("random inputs: smECE_σ equals the direct O(n·T) reflected-kernel integral", () => {
  const { conf, correct } = randomTopLabel(150, 4, { ties: true, skew: (c) => 0.3 + 0.4 * c });
  const xs = examples(conf, correct);
  for (const s of [0.003, 0.02, 0.06, 0.15, 0.5]) rel(smECESigma(conf, correct, s), refSmECESigma(xs, s, 2001), 5e-4, `σ=${s}`);
});

test("random inputs: automatic σ* follows relplot's bisection on the reference", () => {
  for (const seed of [8, 9]) {
    const { conf, correct } = randomTopLabel(120, seed, { skew: (c) => c * c * 0.9 + 0.05 });
    const xs = examples(conf, correct);
    const sigma = refSigmaSearch((s) => refSmECESigma(xs, s, 2001));
    const r = smECE(conf, correct);
    assert.equal(r.sigma, sigma, `seed ${seed}`);
    rel(r.value, refSmECESigma(xs, sigma, 2001), 5e-4, `seed ${seed} value`);
  }
});

test("smECE is order-invariant and near 0 for calibrated data", () => {
  const n = 100_000;
  const rnd = lcg(12);
  const c = new Float64Array(n);
  const good = new Uint8Array(n);
  const bad = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    c[i] = rnd();
    const u = rnd();
    good[i] = u < c[i]! ? 1 : 0;
    bad[i] = u < c[i]! ** 3 ? 1 : 0;
  }
  const g = smECE(c, good);
  assert.ok(g.value < 0.01, `calibrated ${g.value}`);
  assert.ok(smECE(c, bad).value > 0.1);
  const rev = c.slice().reverse();
  const grev = good.slice().reverse();
  const g2 = smECE(rev, grev);
  assert.equal(g2.sigma, g.sigma);
  rel(g2.value, g.value, 1e-12, "reversed");
});
