// Selective prediction: the risk–coverage curve and the area under it (AURC).
//
// Examples are accepted in order of decreasing confidence. For k = 1..n accepted examples,
// risk(k) = errors among them / k and AURC = (1/n) Σ_k risk(k). Ties in confidence are handled
// exactly and order-free: inside a group of g tied examples with e errors, the expected number of
// errors after accepting the first j of the group under a uniformly random order is
// E_before + j·e/g, so risk(k) is that expectation divided by k. AURC is then the expectation of the
// AURC over random tie-breaking. The curve is reported at the end of each tie group (each distinct
// confidence, highest first), where it does not depend on the order at all.
// eAURC = AURC − AURC*, with AURC* = (1/n) Σ_{k > n_correct} (k − n_correct)/k the AURC of a ranking
// that accepts every correct example first (Geifman et al., 2019).

import { topLabelInput } from "./binning.js";
import type { CorrectInput, FloatInput } from "./validate.js";

export interface RiskCoverage {
  /** Fraction accepted, at the end of each tie group (highest confidence first; last = 1). */
  coverage: Float64Array;
  /** Error rate among the accepted examples. */
  risk: Float64Array;
  /** The confidence of the group (accept when confidence ≥ threshold). */
  threshold: Float64Array;
  aurc: number;
  /** AURC − AURC of the best possible ranking. */
  eaurc: number;
  /** 1 − AURC: HELM's `selective_cov_acc_area` (up to HELM's arbitrary tie order). */
  selectiveAccuracyArea: number;
}

export function riskCoverage(confidence: FloatInput, correct: CorrectInput): RiskCoverage {
  const { confidence: c, correct: a, n } = topLabelInput(confidence, correct);
  // Sorted confidences of all examples and of the errors; walk both from the top.
  let nErr = 0;
  for (let i = 0; i < n; i++) nErr += 1 - a[i]!;
  const all = c.slice().sort();
  const wrong = new Float64Array(nErr);
  for (let i = 0, j = 0; i < n; i++) if (!a[i]) wrong[j++] = c[i]!;
  wrong.sort();
  const coverage: number[] = [];
  const risk: number[] = [];
  const threshold: number[] = [];
  let i = n - 1;
  let j = nErr - 1;
  let accepted = 0;
  let errors = 0;
  let area = 0;
  while (i >= 0) {
    const v = all[i]!;
    let k = i - 1;
    while (k >= 0 && all[k] === v) k--;
    let jj = j;
    while (jj >= 0 && wrong[jj] === v) jj--;
    const g = i - k;
    const e = j - jj;
    const q = e / g;
    for (let t = 1; t <= g; t++) area += (errors + t * q) / (accepted + t);
    accepted += g;
    errors += e;
    coverage.push(accepted / n);
    risk.push(errors / accepted);
    threshold.push(v);
    i = k;
    j = jj;
  }
  const aurc = area / n;
  const nCorrect = n - nErr;
  let best = 0;
  for (let k = nCorrect + 1; k <= n; k++) best += (k - nCorrect) / k;
  best /= n;
  return {
    coverage: Float64Array.from(coverage), risk: Float64Array.from(risk), threshold: Float64Array.from(threshold),
    aurc, eaurc: aurc - best, selectiveAccuracyArea: 1 - aurc,
  };
}

/** Area under the risk–coverage curve (see riskCoverage). */
export function aurc(confidence: FloatInput, correct: CorrectInput): number {
  return riskCoverage(confidence, correct).aurc;
}
