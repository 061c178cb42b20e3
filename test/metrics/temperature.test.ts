// Temperature scaling: hand-computed optimum, float64 reference search, never worse than T = 1,
// logits vs log-probabilities, -Infinity entries, curves and softmax.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  fitTemperature, fitTemperatureFromProbs, nllFromLogits, softmaxRows, temperatureCurve,
} from "../../backend/metrics/index.js";
import { lcg, refNllLogits } from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

function logits(n: number, K: number, seed: number, sharp: number) {
  const rnd = lcg(seed);
  const z = new Float64Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = Math.floor(rnd() * K);
    for (let k = 0; k < K; k++) z[i * K + k] = sharp * (2 * rnd() - 1) + (k === y[i] ? sharp * 0.8 * rnd() : 0);
    // Make some rows confidently wrong.
    if (rnd() < 0.15) z[i * K + ((y[i]! + 1) % K)]! += 2 * sharp;
  }
  return { z, y };
}

/** Golden-section search on log T over [log 0.01, log 100] after a coarse grid: independent minimizer. */
function refFit(z: Float64Array, y: Int32Array, K: number): { T: number; nll: number } {
  const f = (lt: number) => refNllLogits(z, y, K, Math.exp(lt));
  let best = -Math.log(100);
  for (let t = -Math.log(100); t <= Math.log(100); t += 0.05) if (f(t) < f(best)) best = t;
  let a = best - 0.05, b = best + 0.05;
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 80; i++) {
    const c = b - g * (b - a), d = a + g * (b - a);
    if (f(c) < f(d)) b = d;
    else a = c;
  }
  const T = Math.min(100, Math.max(0.01, Math.exp((a + b) / 2)));
  return { T, nll: refNllLogits(z, y, K, T) };
}

test("hand: 3 of 4 identical rows right → σ(1/T) = 3/4, T = 1/ln 3", () => {
  const z = [0, 1, 0, 1, 0, 1, 0, 1];
  const y = [1, 1, 1, 0];
  const fit = fitTemperature(z, y, 2);
  close(fit.temperature, 1 / Math.log(3), 1e-9, "T");
  close(fit.nll, -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 1e-12, "nll");
  close(fit.nllAtOne, -(3 * Math.log(1 / (1 + Math.exp(-1))) + Math.log(1 / (1 + Math.exp(1)))) / 4, 1e-12, "nll at 1");
  // Half right: the best is p = 1/2, T → ∞, so the fit stops at the upper bound.
  const half = fitTemperature([0, 1, 0, 1], [1, 0], 2);
  assert.equal(half.temperature, 100);
  assert.ok(half.atBound);
});

test("random logits: the fit matches an independent golden-section search", () => {
  for (const [seed, sharp, K] of [[1, 3, 4], [2, 0.3, 3], [3, 8, 10]] as const) {
    const { z, y } = logits(300, K, seed, sharp);
    const fit = fitTemperature(z, y, K);
    const ref = refFit(z, y, K);
    close(fit.nll, ref.nll, 1e-9, `seed ${seed} nll`);
    close(fit.temperature, ref.T, 1e-4 * ref.T, `seed ${seed} T`);
    close(fit.nll, refNllLogits(z, y, K, fit.temperature), 1e-12, `seed ${seed} nll at T`);
    close(nllFromLogits(z, y, K, 1), refNllLogits(z, y, K, 1), 1e-12, `seed ${seed} nll(1)`);
  }
});

test("property: temperature scaling never raises the NLL on its fit set", () => {
  const rnd = lcg(77);
  for (let trial = 0; trial < 40; trial++) {
    const K = 2 + Math.floor(rnd() * 6);
    const n = 5 + Math.floor(rnd() * 200);
    const { z, y } = logits(n, K, 1000 + trial, 0.05 + 10 * rnd());
    // Also degenerate ranges where the optimum is at or beyond a bound.
    const opts = trial % 4 === 0 ? { minTemperature: 1.5, maxTemperature: 3 } : trial % 4 === 1 ? { minTemperature: 0.5, maxTemperature: 2 } : {};
    const fit = fitTemperature(z, y, K, opts);
    const at1 = refNllLogits(z, y, K, 1);
    if (!("minTemperature" in opts) || (opts.minTemperature! <= 1 && opts.maxTemperature! >= 1)) {
      assert.ok(fit.nll <= at1 + 1e-12, `trial ${trial}: ${fit.nll} > ${at1}`);
    }
    close(fit.nll, refNllLogits(z, y, K, fit.temperature), 1e-11, `trial ${trial} reported nll`);
  }
});

test("log-probabilities give the same temperature as logits; -Infinity entries are allowed", () => {
  const { z, y } = logits(200, 5, 9, 4);
  const K = 5;
  const logp = new Float64Array(z.length);
  for (let i = 0; i < 200; i++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, z[i * K + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[i * K + k]! - m);
    for (let k = 0; k < K; k++) logp[i * K + k] = z[i * K + k]! - m - Math.log(s);
  }
  const a = fitTemperature(z, y, K);
  const b = fitTemperature(logp, y, K);
  close(b.temperature, a.temperature, 1e-8, "T");
  const probs = softmaxRows(z, K);
  close(fitTemperatureFromProbs(probs, y, K).temperature, a.temperature, 1e-7, "from probs");
  // A class with probability 0 (log p = -Infinity) behaves as if absent.
  const withInf = [0, 2, -Infinity, 1, 0.5, -Infinity];
  const without = [0, 2, 1, 0.5];
  close(nllFromLogits(withInf, [1, 0], 3, 0.7), nllFromLogits(without, [1, 0], 2, 0.7), 1e-15, "-Infinity");
  close(fitTemperature(withInf, [1, 0], 3).temperature, fitTemperature(without, [1, 0], 2).temperature, 1e-12, "-Infinity fit");
});

test("temperature curve and softmax rows", () => {
  const { z, y } = logits(50, 3, 5, 2);
  const Ts = [0.5, 1, 2, 7];
  const curve = temperatureCurve(z, y, 3, Ts);
  Ts.forEach((T, i) => close(curve[i]!, refNllLogits(z, y, 3, T), 1e-12, `T=${T}`));
  const p = softmaxRows([0, Math.log(3), 1000, 1000], 2, 1);
  close(p[0]!, 0.25, 1e-15, "p0");
  close(p[1]!, 0.75, 1e-15, "p1");
  assert.deepEqual(Array.from(p.slice(2)), [0.5, 0.5]);
  const p2 = softmaxRows([0, Math.log(3)], 2, 2);
  close(p2[1]!, Math.sqrt(3) / (1 + Math.sqrt(3)), 1e-15, "T = 2");
});
