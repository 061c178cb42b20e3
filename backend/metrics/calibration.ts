// Binned top-label calibration metrics (ECE with L1 / L2 / max norms, ACE, Kumar's debiased L2),
// reliability-diagram data with Wilson intervals. Every function here is computed from BinStats
// (binning.ts), so one pass over the examples gives all of them.
//
// With acc(b) = Σ_{i∈b} a_i / n_b, conf(b) = Σ_{i∈b} c_i / n_b and only non-empty bins:
//   ECE (l1)    = Σ_b (n_b/n) |acc(b) − conf(b)|
//   RMS-CE (l2) = sqrt( Σ_b (n_b/n) (acc(b) − conf(b))² )
//   MCE (max)   = max_b |acc(b) − conf(b)|
//   ACE         = (1/#non-empty bins) Σ_b |acc(b) − conf(b)|   (netcal's "Average CE": every bin weighs the same)
//   debiased L2 = sqrt( max(0, Σ_b (n_b/n) [ (acc(b) − conf(b))² − acc(b)(1 − acc(b))/(n_b − 1) ]) )
//                 (Kumar, Liang & Ma 2019; a bin with n_b < 2 contributes 0, as in their code)

import {
  binStatsUnchecked, resolveBinOptions, topLabelInput, type BinOptions, type BinStats,
} from "./binning.js";
import { checkNorm, checkPositive, type CorrectInput, type FloatInput, type Norm } from "./validate.js";

/** z of the two-sided 95% normal interval, Φ⁻¹(0.975). */
export const Z95 = 1.959963984540054;

export interface CalibrationOptions extends BinOptions {
  /** `l1` (ECE, default), `l2` (RMS-CE) or `max` (MCE). */
  norm?: Norm;
}

/** The calibration error of binned statistics in one norm. */
export function calibrationErrorFromStats(s: BinStats, norm: Norm = "l1"): number {
  const { count, sumConfidence, sumCorrect, n } = s;
  let acc = 0;
  for (let b = 0; b < s.bins; b++) {
    const nb = count[b]!;
    if (nb === 0) continue;
    const gap = Math.abs(sumCorrect[b]! / nb - sumConfidence[b]! / nb);
    if (norm === "l1") acc += nb * gap;
    else if (norm === "l2") acc += nb * gap * gap;
    else if (gap > acc) acc = gap;
  }
  if (norm === "l1") return acc / n;
  if (norm === "l2") return Math.sqrt(acc / n);
  return acc;
}

/** ACE (netcal): the unweighted mean over non-empty bins of |acc(b) − conf(b)|. */
export function aceFromStats(s: BinStats): number {
  let sum = 0;
  let k = 0;
  for (let b = 0; b < s.bins; b++) {
    const nb = s.count[b]!;
    if (nb === 0) continue;
    sum += Math.abs(s.sumCorrect[b]! / nb - s.sumConfidence[b]! / nb);
    k++;
  }
  return sum / k;
}

/** Kumar et al.'s debiased estimate of the L2 calibration error (RMS-CE), clipped at 0. */
export function debiasedL2FromStats(s: BinStats): number {
  let sum = 0;
  for (let b = 0; b < s.bins; b++) {
    const nb = s.count[b]!;
    if (nb < 2) continue;
    const acc = s.sumCorrect[b]! / nb;
    const gap = acc - s.sumConfidence[b]! / nb;
    sum += nb * (gap * gap - (acc * (1 - acc)) / (nb - 1));
  }
  return Math.sqrt(Math.max(0, sum / s.n));
}

/**
 * Wilson score interval for a proportion p̂ = successes/n:
 *   center = (p̂ + z²/(2n)) / (1 + z²/n),  half = z/(1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/(4n²)),
 * clipped to [0, 1]. Returns [lo, hi].
 */
export function wilsonInterval(successes: number, n: number, z: number = Z95): [number, number] {
  if (!(n > 0)) throw new RangeError(`n must be > 0, got ${n}`);
  if (!(successes >= 0 && successes <= n)) throw new RangeError(`successes must be in [0, n], got ${successes}`);
  checkPositive(z, "z");
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** Reliability-diagram data: one entry per non-empty bin, in confidence order. */
export interface Reliability {
  /** Bin index in 0..bins−1. */
  bin: number[];
  lo: number[];
  hi: number[];
  count: number[];
  /** Mean confidence in the bin. */
  confidence: number[];
  /** Accuracy (fraction correct) in the bin. */
  accuracy: number[];
  wilsonLo: number[];
  wilsonHi: number[];
}

export function reliabilityFromStats(s: BinStats, z: number = Z95): Reliability {
  const r: Reliability = { bin: [], lo: [], hi: [], count: [], confidence: [], accuracy: [], wilsonLo: [], wilsonHi: [] };
  for (let b = 0; b < s.bins; b++) {
    const nb = s.count[b]!;
    if (nb === 0) continue;
    const [wl, wh] = wilsonInterval(s.sumCorrect[b]!, nb, z);
    r.bin.push(b);
    r.lo.push(s.lo[b]!);
    r.hi.push(s.hi[b]!);
    r.count.push(nb);
    r.confidence.push(s.sumConfidence[b]! / nb);
    r.accuracy.push(s.sumCorrect[b]! / nb);
    r.wilsonLo.push(wl);
    r.wilsonHi.push(wh);
  }
  return r;
}

/** Everything binned, from one pass over the examples. */
export interface BinnedMetrics {
  scheme: BinStats["scheme"];
  bins: number;
  n: number;
  accuracy: number;
  meanConfidence: number;
  /** Top-label Brier score (1/n) Σ (c − a)². */
  brier: number;
  ece: number;
  rmsce: number;
  mce: number;
  ace: number;
  debiasedL2: number;
  reliability: Reliability;
}

export function binnedMetricsFromStats(s: BinStats, z: number = Z95): BinnedMetrics {
  let sc = 0, sa = 0, ss = 0;
  for (let b = 0; b < s.bins; b++) {
    sc += s.sumConfidence[b]!;
    sa += s.sumCorrect[b]!;
    ss += s.sumSquaredError[b]!;
  }
  return {
    scheme: s.scheme,
    bins: s.bins,
    n: s.n,
    accuracy: sa / s.n,
    meanConfidence: sc / s.n,
    brier: ss / s.n,
    ece: calibrationErrorFromStats(s, "l1"),
    rmsce: calibrationErrorFromStats(s, "l2"),
    mce: calibrationErrorFromStats(s, "max"),
    ace: aceFromStats(s),
    debiasedL2: debiasedL2FromStats(s),
    reliability: reliabilityFromStats(s, z),
  };
}

function stats(confidence: FloatInput, correct: CorrectInput, opts: BinOptions): BinStats {
  const { bins, scheme } = resolveBinOptions(opts);
  const x = topLabelInput(confidence, correct);
  return binStatsUnchecked(x.confidence, x.correct, bins, scheme);
}

/** All binned metrics and the reliability data in one pass (defaults: 15 equal-width bins, z = 1.96). */
export function binnedMetrics(confidence: FloatInput, correct: CorrectInput, opts: BinOptions & { z?: number } = {}): BinnedMetrics {
  const z = checkPositive(opts.z ?? Z95, "z");
  return binnedMetricsFromStats(stats(confidence, correct, opts), z);
}

/** Top-label expected calibration error; `norm` l1 = ECE (default), l2 = RMS-CE, max = MCE. */
export function ece(confidence: FloatInput, correct: CorrectInput, opts: CalibrationOptions = {}): number {
  const norm = checkNorm(opts.norm ?? "l1");
  return calibrationErrorFromStats(stats(confidence, correct, opts), norm);
}

/** RMS calibration error (ECE with the L2 norm). */
export function rmsce(confidence: FloatInput, correct: CorrectInput, opts: BinOptions = {}): number {
  return calibrationErrorFromStats(stats(confidence, correct, opts), "l2");
}

/** Maximum calibration error (ECE with the max norm). */
export function mce(confidence: FloatInput, correct: CorrectInput, opts: BinOptions = {}): number {
  return calibrationErrorFromStats(stats(confidence, correct, opts), "max");
}

/** ACE as in netcal: unweighted mean |acc − conf| over the non-empty bins of the chosen scheme. */
export function ace(confidence: FloatInput, correct: CorrectInput, opts: BinOptions = {}): number {
  return aceFromStats(stats(confidence, correct, opts));
}

/** Kumar et al. (2019) debiased L2 calibration error. */
export function debiasedL2(confidence: FloatInput, correct: CorrectInput, opts: BinOptions = {}): number {
  return debiasedL2FromStats(stats(confidence, correct, opts));
}

/** Reliability-diagram data (non-empty bins only), with Wilson intervals at `z` (default 1.96). */
export function reliabilityDiagram(confidence: FloatInput, correct: CorrectInput, opts: BinOptions & { z?: number } = {}): Reliability {
  const z = checkPositive(opts.z ?? Z95, "z");
  return reliabilityFromStats(stats(confidence, correct, opts), z);
}

/**
 * Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation refined by one Halley
 * step; absolute error below 1e-12 on (1e-300, 1 − 1e-16)). zForLevel(0.95) ≈ 1.959963984540054.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const plow = 0.02425;
  let x: number;
  if (p < plow) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - plow) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  // One Halley step on Φ(x) − p with Φ(x) = erfc(−x/√2)/2.
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** z such that a two-sided normal interval has coverage `level` (0.95 → 1.96). */
export function zForLevel(level: number): number {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  return normalQuantile(1 - (1 - level) / 2);
}

/** Complementary error function (W. J. Cody's rational Chebyshev approximations, ~1e-16 relative). */
export function erfc(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 0.5) {
    const t = x * x;
    const top = ((((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947);
    const bot = ((((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062);
    return 1 - (x * top) / bot;
  } else if (ax < 4) {
    const top = (((((((5.64188496988670089e-1 * ax + 8.88314979438837594) * ax + 66.1191906371416295) * ax + 298.635138197400131) * ax +
      881.952221241769090) * ax + 1712.04761263407058) * ax + 2051.07837782607147) * ax + 1230.33935479799725) + 2.15311535474403846e-8 * ax ** 8;
    const bot = (((((((ax + 15.7449261107098347) * ax + 117.693950891312499) * ax + 537.181101862009858) * ax + 1621.38957456669019) * ax +
      3290.79923573345963) * ax + 4362.61909014324716) * ax + 3439.36767414372164) * ax + 1230.33935480374942;
    r = (Math.exp(-ax * ax) * top) / bot;
  } else {
    const z = 1 / (ax * ax);
    const top = ((((1.63153871373020978e-2 * z + 3.05326634961232344e-1) * z + 3.60344899949804439e-1) * z + 1.25781726111229246e-1) * z +
      1.60837851487422766e-2) * z + 6.58749161529837803e-4;
    const bot = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 5.27905102951428412e-1) * z + 6.05183413124413191e-2) * z +
      2.33520497626869185e-3;
    r = (Math.exp(-ax * ax) / ax) * (1 / Math.sqrt(Math.PI) - (z * top) / bot);
  }
  return x < 0 ? 2 - r : r;
}
