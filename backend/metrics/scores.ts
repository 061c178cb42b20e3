// Proper scores and simple summaries: accuracy, NLL, Brier (top-label and multiclass), top-label
// reduction of probability rows, predictive entropy and its summaries.

import { topLabelInput } from "./binning.js";
import {
  correctArray, finiteArray, probabilityArray, probabilityMatrix, probabilityRows,
  type CorrectInput, type FloatArray, type FloatInput, type LabelInput,
} from "./validate.js";

/** p = 0 is clamped here before taking logs (the smallest positive float32), so NLL stays finite. */
export const MIN_PROB = 2 ** -149;

/** Fraction correct. */
export function accuracy(correct: CorrectInput): number {
  const a = correctArray(correct, "correct");
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
}

/** Mean confidence. */
export function meanConfidence(confidence: FloatInput): number {
  const c = probabilityArray(confidence, "confidence");
  let s = 0;
  for (let i = 0; i < c.length; i++) s += c[i]!;
  return s / c.length;
}

/** Top-label (binary) Brier score: (1/n) Σ (c_i − a_i)². */
export function brierTopLabel(confidence: FloatInput, correct: CorrectInput): number {
  const { confidence: c, correct: a, n } = topLabelInput(confidence, correct);
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = c[i]! - a[i]!;
    s += d * d;
  }
  return s / n;
}

/** Multiclass Brier score: (1/n) Σ_i Σ_k (p_ik − 1[y_i = k])² over flat n×K probability rows. */
export function brierMulticlass(probs: FloatInput, labels: LabelInput, classes: number): number {
  const r = probabilityRows(probs, labels, classes);
  const { probs: p, labels: y, n, classes: K } = r;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const base = i * K;
    for (let k = 0; k < K; k++) {
      const v = p[base + k]!;
      s += v * v;
    }
    const t = p[base + y[i]!]!;
    s += 1 - 2 * t; // (t − 1)² − t²
  }
  return s / n;
}

/** NLL from the probability each example gave its true label: −(1/n) Σ log max(p_i, 2⁻¹⁴⁹). */
export function nll(pTarget: FloatInput): number {
  const p = probabilityArray(pTarget, "pTarget");
  let s = 0;
  for (let i = 0; i < p.length; i++) s -= Math.log(Math.max(p[i]!, MIN_PROB));
  return s / p.length;
}

/** NLL of flat n×K probability rows: −(1/n) Σ log p_{i, y_i} (p = 0 clamped at 2⁻¹⁴⁹). */
export function nllFromProbs(probs: FloatInput, labels: LabelInput, classes: number): number {
  const { probs: p, labels: y, n, classes: K } = probabilityRows(probs, labels, classes);
  let s = 0;
  for (let i = 0; i < n; i++) s -= Math.log(Math.max(p[i * K + y[i]!]!, MIN_PROB));
  return s / n;
}

export interface TopLabel {
  /** max_k p_ik */
  confidence: Float64Array;
  /** argmax_k p_ik (the first index on ties, like numpy) */
  prediction: Int32Array;
  /** prediction == label */
  correct: Uint8Array;
  /** p_{i, y_i} */
  pTarget: Float64Array;
}

/** Reduces probability rows to top-label confidence/correctness (argmax ties → lowest index). */
export function topLabel(probs: FloatInput, labels: LabelInput, classes: number): TopLabel {
  const { probs: p, labels: y, n, classes: K } = probabilityRows(probs, labels, classes);
  return topLabelUnchecked(p, y, n, K);
}

export function topLabelUnchecked(p: FloatArray, y: Int32Array, n: number, K: number): TopLabel {
  const confidence = new Float64Array(n);
  const prediction = new Int32Array(n);
  const correct = new Uint8Array(n);
  const pTarget = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * K;
    let best = 0;
    let bv = p[base]!;
    for (let k = 1; k < K; k++) {
      const v = p[base + k]!;
      if (v > bv) {
        bv = v;
        best = k;
      }
    }
    confidence[i] = bv;
    prediction[i] = best;
    correct[i] = best === y[i] ? 1 : 0;
    pTarget[i] = p[base + y[i]!]!;
  }
  return { confidence, prediction, correct, pTarget };
}

/** Predictive entropy −Σ_k p_ik log p_ik (nats, 0·log 0 = 0) of each of the n×K rows. */
export function rowEntropy(probs: FloatInput, classes: number): Float64Array {
  const { probs: p, n, classes: K } = probabilityMatrix(probs, classes);
  return rowEntropyUnchecked(p, n, K);
}

export function rowEntropyUnchecked(p: FloatArray, n: number, K: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * K;
    let h = 0;
    for (let k = 0; k < K; k++) {
      const v = p[base + k]!;
      if (v > 0) h -= v * Math.log(v);
    }
    out[i] = h;
  }
  return out;
}

export interface EntropySummary {
  n: number;
  mean: number;
  /** Population standard deviation. */
  std: number;
  min: number;
  p10: number;
  p25: number;
  median: number;
  p75: number;
  p90: number;
  max: number;
  /** Mean entropy of the correct / incorrect examples (NaN when there are none or `correct` is absent). */
  meanCorrect: number;
  meanIncorrect: number;
}

/**
 * Quantile of sorted values with linear interpolation between order statistics (numpy's default,
 * "type 7"): position q·(n − 1).
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  const f = pos - lo;
  return sorted[lo]! + f * (sorted[hi]! - sorted[lo]!);
}

/** Summary of per-example entropies (nats), optionally split by correctness. */
export function entropySummary(entropy: FloatInput, correct?: CorrectInput): EntropySummary {
  const h = finiteArray(entropy, "entropy");
  const n = h.length;
  for (let i = 0; i < n; i++) if (h[i]! < 0) throw new RangeError(`entropy[${i}] = ${h[i]} is negative`);
  const a = correct === undefined ? undefined : correctArray(correct, "correct", n, "entropy");
  let s = 0;
  let sc = 0, nc = 0, si = 0;
  for (let i = 0; i < n; i++) {
    const v = h[i]!;
    s += v;
    if (a) {
      if (a[i]) {
        sc += v;
        nc++;
      } else si += v;
    }
  }
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = h[i]! - mean;
    ss += d * d;
  }
  const sorted = Float64Array.from(h).sort();
  return {
    n, mean, std: Math.sqrt(ss / n),
    min: sorted[0]!, p10: quantileSorted(sorted, 0.1), p25: quantileSorted(sorted, 0.25), median: quantileSorted(sorted, 0.5),
    p75: quantileSorted(sorted, 0.75), p90: quantileSorted(sorted, 0.9), max: sorted[n - 1]!,
    meanCorrect: a && nc > 0 ? sc / nc : NaN,
    meanIncorrect: a && n - nc > 0 ? si / (n - nc) : NaN,
  };
}
