// Bad input: each error is a TypeError or RangeError whose message names the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ace, binnedMetrics, bootstrapMetrics, brierMulticlass, calibrationSummary, classwiseECE, ece, entropySummary, fitTemperature,
  nll, pairedBootstrap, reliabilityDiagram, riskCoverage, smECE, smECESigma, temperatureCurve, wilsonInterval,
} from "../../backend/metrics/index.js";

const C = new Float32Array([0.2, 0.9, 0.6]);
const A = new Uint8Array([0, 1, 1]);

function throwsNamed(fn: () => unknown, type: typeof TypeError | typeof RangeError, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test("length mismatch", () => {
  throwsNamed(() => ece(C, [1, 0]), RangeError, /correct has length 2 but confidence has length 3/);
  throwsNamed(() => calibrationSummary({ confidence: C, correct: A, pTarget: [0.5] }), RangeError, /pTarget has length 1/);
  throwsNamed(() => calibrationSummary({ confidence: C, correct: A, entropy: [0.5, 1] }), RangeError, /entropy has length 2/);
  throwsNamed(() => brierMulticlass([0.5, 0.5, 0.5, 0.5], [0], 2), RangeError, /labels has length 1 but probs \(rows\) has length 2/);
  throwsNamed(() => brierMulticlass([0.5, 0.5, 1], [0], 2), RangeError, /probs has length 3, not a multiple of classes = 2/);
  throwsNamed(() => pairedBootstrap({ confidence: C, correct: A }, { confidence: [0.1], correct: [1] }), RangeError, /b\.confidence has length 1/);
});

test("confidences outside [0, 1] and NaN", () => {
  throwsNamed(() => ece([0.2, 1.0000001, 0.5], A), RangeError, /confidence\[1\] = 1\.0000001 is outside \[0, 1\]/);
  throwsNamed(() => ece([-0.1, 0.5, 0.5], A), RangeError, /confidence\[0\] = -0\.1 is outside/);
  throwsNamed(() => ece(new Float64Array([0.1, NaN, 0.5]), A), RangeError, /confidence\[1\] is NaN/);
  throwsNamed(() => smECE([0.1, Infinity], [0, 1]), RangeError, /confidence\[1\] = Infinity/);
  throwsNamed(() => nll([0.5, 2]), RangeError, /pTarget\[1\] = 2/);
  throwsNamed(() => brierMulticlass([0.5, NaN], [0], 2), RangeError, /probs\[0, 1\] is NaN/);
  throwsNamed(() => brierMulticlass([0.7, 0.7], [0], 2), RangeError, /probs row 0 sums to 1\.4/);
  throwsNamed(() => entropySummary([0.1, -1]), RangeError, /entropy\[1\] = -1 is negative/);
});

test("empty input", () => {
  throwsNamed(() => ece([], []), RangeError, /confidence is empty/);
  throwsNamed(() => riskCoverage(new Float32Array(0), new Uint8Array(0)), RangeError, /confidence is empty/);
  throwsNamed(() => bootstrapMetrics({ confidence: [], correct: [] }), RangeError, /confidence is empty/);
  throwsNamed(() => classwiseECE([], [], 3), RangeError, /probs \(rows\) is empty/);
  throwsNamed(() => fitTemperature([], [], 2), RangeError, /logits \(rows\) is empty/);
});

test("bins: zero, negative, non-integer, wrong type; bad scheme / norm", () => {
  throwsNamed(() => ece(C, A, { bins: 0 }), RangeError, /bins must be an integer in \[1, 1000000\], got 0/);
  throwsNamed(() => ece(C, A, { bins: -3 }), RangeError, /bins must be an integer/);
  throwsNamed(() => reliabilityDiagram(C, A, { bins: 2.5 }), RangeError, /bins must be an integer .* got 2\.5/);
  throwsNamed(() => ace(C, A, { bins: NaN }), RangeError, /got NaN/);
  throwsNamed(() => binnedMetrics(C, A, { bins: "15" as never }), TypeError, /bins must be a number/);
  throwsNamed(() => ece(C, A, { scheme: "quantile" as never }), RangeError, /scheme must be one of equal-width, equal-mass/);
  throwsNamed(() => ece(C, A, { norm: "l3" as never }), RangeError, /norm must be one of l1, l2, max/);
});

test("correctness, labels, logits and other options", () => {
  throwsNamed(() => ece(C, [0, 2, 1]), RangeError, /correct\[1\] = 2 must be 0, 1, true or false/);
  throwsNamed(() => ece(C, new Uint8Array([0, 1, 7])), RangeError, /correct\[2\] = 7 must be 0 or 1/);
  throwsNamed(() => ece(C, "101" as never), TypeError, /correct must be/);
  throwsNamed(() => ece("0.5" as never, A), TypeError, /confidence must be/);
  throwsNamed(() => classwiseECE([0.5, 0.5], [2], 2), RangeError, /labels\[0\] = 2 is outside \[0, 2\)/);
  throwsNamed(() => classwiseECE([0.5, 0.5], [0.5], 2), TypeError, /labels\[0\] = 0\.5 must be an integer/);
  throwsNamed(() => classwiseECE([1], [0], 1), RangeError, /classes must be an integer >= 2/);
  throwsNamed(() => fitTemperature([0, NaN], [0], 2), RangeError, /logits\[0, 1\] = NaN/);
  throwsNamed(() => fitTemperature([0, -Infinity], [1], 2), RangeError, /-Infinity at the true label/);
  throwsNamed(() => fitTemperature([0, 1], [1], 2, { minTemperature: 2, maxTemperature: 1 }), RangeError, /minTemperature \(2\) must be < maxTemperature/);
  throwsNamed(() => temperatureCurve([0, 1], [1], 2, [1, 0]), RangeError, /temperatures\[1\] must be a finite number > 0/);
  throwsNamed(() => smECESigma(C, A, 0), RangeError, /sigma must be a finite number > 0/);
  throwsNamed(() => bootstrapMetrics({ confidence: C, correct: A }, { resamples: 0 }), RangeError, /resamples must be an integer/);
  throwsNamed(() => bootstrapMetrics({ confidence: C, correct: A }, { seed: -1 }), RangeError, /seed must be an integer/);
  throwsNamed(() => bootstrapMetrics({ confidence: C, correct: A }, { level: 95 }), RangeError, /level must be in \(0, 1\)/);
  throwsNamed(() => wilsonInterval(3, 2), RangeError, /successes must be in \[0, n\]/);
});
