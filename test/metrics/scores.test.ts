// Accuracy, NLL, Brier (top-label and multiclass), top-label reduction, entropy.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accuracy, brierMulticlass, brierTopLabel, entropySummary, meanConfidence, nll, nllFromProbs, quantileSorted, rowEntropy, topLabel,
} from "../../backend/metrics/index.js";
import { lcg } from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

function randomRows(n: number, K: number, seed: number) {
  const rnd = lcg(seed);
  const p = new Float64Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) {
      const v = -((-Math.log(rnd() + 1e-12)) ** 2) / 2;
      p[i * K + k] = Math.exp(v);
      s += Math.exp(v);
    }
    for (let k = 0; k < K; k++) p[i * K + k]! /= s;
    y[i] = Math.floor(rnd() * K);
  }
  return { p, y };
}

test("hand-computed: accuracy, mean confidence, NLL, Brier", () => {
  assert.equal(accuracy([1, 0, 1, 1]), 0.75);
  assert.equal(accuracy([true, false]), 0.5);
  close(meanConfidence([0.5, 0.25, 1]), 1.75 / 3, 1e-15, "mean conf");
  close(nll([0.5, 0.25]), 1.5 * Math.LN2, 1e-15, "nll");
  // p = 0 is clamped at 2^-149: NLL stays finite (149 ln 2).
  close(nll([0]), 149 * Math.LN2, 1e-12, "nll clamp");
  close(brierTopLabel([0.9, 0.6, 0.2], [1, 0, 0]), (0.01 + 0.36 + 0.04) / 3, 1e-15, "brier top");
  // rows [.7 .2 .1] y=0 → .09+.04+.01 = .14; [.5 .5 0] y=2 → .25+.25+1 = 1.5
  close(brierMulticlass([0.7, 0.2, 0.1, 0.5, 0.5, 0], [0, 2], 3), (0.14 + 1.5) / 2, 1e-15, "brier multi");
  close(nllFromProbs([0.7, 0.2, 0.1, 0.5, 0.4, 0.1], [0, 1], 3), -(Math.log(0.7) + Math.log(0.4)) / 2, 1e-15, "nll rows");
});

test("top-label reduction: argmax (first index on ties), confidence, correctness, p(target)", () => {
  const t = topLabel([0.4, 0.4, 0.2, 0.1, 0.3, 0.6], [1, 2], 3);
  assert.deepEqual(Array.from(t.prediction), [0, 2]);
  assert.deepEqual(Array.from(t.confidence), [0.4, 0.6]);
  assert.deepEqual(Array.from(t.correct), [0, 1]);
  assert.deepEqual(Array.from(t.pTarget), [0.4, 0.6]);
});

test("random rows: multiclass Brier, NLL, entropy equal float64 references", () => {
  const { p, y } = randomRows(400, 5, 3);
  let brier = 0, nl = 0;
  const ent: number[] = [];
  for (let i = 0; i < 400; i++) {
    let h = 0;
    for (let k = 0; k < 5; k++) {
      const v = p[i * 5 + k]!;
      brier += (v - (k === y[i] ? 1 : 0)) ** 2;
      if (v > 0) h += -v * Math.log(v);
    }
    nl += -Math.log(p[i * 5 + y[i]!]!);
    ent.push(h);
  }
  close(brierMulticlass(p, y, 5), brier / 400, 1e-13, "brier");
  close(nllFromProbs(p, y, 5), nl / 400, 1e-13, "nll");
  const h = rowEntropy(p, 5);
  ent.forEach((v, i) => close(h[i]!, v, 1e-14, `entropy ${i}`));
  // Brier of a one-hot correct prediction is 0 and of a confident wrong one is 2.
  assert.equal(brierMulticlass([1, 0, 0], [0], 3), 0);
  assert.equal(brierMulticlass([1, 0, 0], [1], 3), 2);
});

test("entropy: hand values and summary", () => {
  const h = rowEntropy([0.5, 0.5, 1, 0, 0.25, 0.75], 2);
  close(h[0]!, Math.LN2, 1e-15, "uniform");
  assert.equal(h[1], 0);
  close(h[2]!, -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)), 1e-15, "skewed");
  const s = entropySummary([0, 1, 2, 3, 4], [1, 1, 0, 0, 1]);
  assert.equal(s.mean, 2);
  close(s.std, Math.sqrt(2), 1e-15, "std");
  assert.equal(s.median, 2);
  close(s.p10, 0.4, 1e-15, "p10");
  close(s.p90, 3.6, 1e-15, "p90");
  assert.equal(s.min, 0);
  assert.equal(s.max, 4);
  close(s.meanCorrect, 5 / 3, 1e-15, "correct");
  assert.equal(s.meanIncorrect, 2.5);
  assert.ok(Number.isNaN(entropySummary([1, 2]).meanCorrect));
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
});
