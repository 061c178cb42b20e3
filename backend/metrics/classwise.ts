// Class-conditional calibration over full probability rows.
//
// classwiseECE (marginal / "static" CE). For each class k, bin the n values p_ik (same binning
// rules as the top-label metrics) with "correct" = 1[y_i = k], and take the norm of that class:
//   CE_k(l1) = Σ_b (n_bk/n) |freq_bk − conf_bk|,  CE_k(l2)² = Σ_b (n_bk/n) (freq_bk − conf_bk)²,
//   CE_k(max) = max_b |freq_bk − conf_bk|.
// Aggregate: l1 → (1/K) Σ_k CE_k (the SCE of Nixon et al. 2019), l2 → sqrt((1/K) Σ_k CE_k²)
// (Kumar et al.'s marginal L2 CE, plug-in), max → max_k CE_k.
//
// adaptiveClasswiseCE: Nixon et al.'s "Adaptive Calibration Error": the same class-conditional
// construction with equal-mass ranges and every (class, range) cell weighted equally:
//   (1/#cells) Σ_k Σ_r |freq_rk − conf_rk| over the non-empty cells (K·R when none is empty).

import { binStatsUnchecked, resolveBinOptions, type BinOptions, type BinStats } from "./binning.js";
import { calibrationErrorFromStats } from "./calibration.js";
import { checkNorm, probabilityRows, type FloatArray, type FloatInput, type LabelInput, type Norm } from "./validate.js";

export interface ClasswiseOptions extends BinOptions {
  norm?: Norm;
}

function classStats(p: FloatArray, y: Int32Array, n: number, K: number, k: number, bins: number, scheme: BinOptions["scheme"] & string): BinStats {
  const conf = new Float64Array(n);
  const hit = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    conf[i] = p[i * K + k]!;
    hit[i] = y[i] === k ? 1 : 0;
  }
  return binStatsUnchecked(conf, hit, bins, scheme);
}

/** Per-class calibration errors CE_k in the chosen norm (l2 reported as sqrt(CE_k²)). */
export function classwiseECEPerClass(probs: FloatInput, labels: LabelInput, classes: number, opts: ClasswiseOptions = {}): Float64Array {
  const { bins, scheme } = resolveBinOptions(opts);
  const norm = checkNorm(opts.norm ?? "l1");
  const { probs: p, labels: y, n, classes: K } = probabilityRows(probs, labels, classes);
  const out = new Float64Array(K);
  for (let k = 0; k < K; k++) out[k] = calibrationErrorFromStats(classStats(p, y, n, K, k, bins, scheme), norm);
  return out;
}

/** Classwise (marginal) calibration error; defaults 15 equal-width bins, l1 (= SCE). */
export function classwiseECE(probs: FloatInput, labels: LabelInput, classes: number, opts: ClasswiseOptions = {}): number {
  const norm = checkNorm(opts.norm ?? "l1");
  const per = classwiseECEPerClass(probs, labels, classes, opts);
  let acc = 0;
  for (let k = 0; k < per.length; k++) {
    const v = per[k]!;
    if (norm === "l1") acc += v;
    else if (norm === "l2") acc += v * v;
    else if (v > acc) acc = v;
  }
  if (norm === "l1") return acc / per.length;
  if (norm === "l2") return Math.sqrt(acc / per.length);
  return acc;
}

/** Nixon et al. (2019) Adaptive Calibration Error: class-conditional, equal-mass ranges (default 15). */
export function adaptiveClasswiseCE(probs: FloatInput, labels: LabelInput, classes: number, opts: { bins?: number } = {}): number {
  const { bins } = resolveBinOptions({ bins: opts.bins, scheme: "equal-mass" });
  const { probs: p, labels: y, n, classes: K } = probabilityRows(probs, labels, classes);
  let sum = 0;
  let cells = 0;
  for (let k = 0; k < K; k++) {
    const s = classStats(p, y, n, K, k, bins, "equal-mass");
    for (let b = 0; b < bins; b++) {
      const nb = s.count[b]!;
      if (nb === 0) continue;
      sum += Math.abs(s.sumCorrect[b]! / nb - s.sumConfidence[b]! / nb);
      cells++;
    }
  }
  return sum / cells;
}
