// Bootstrap confidence intervals for the calibration metrics, and the paired bootstrap for
// differences between two runs evaluated on the same examples.
//
// Type: nonparametric percentile bootstrap. Each resample draws n examples with replacement
// (xoshiro128** seeded with `seed`, so a seed gives the same resamples everywhere) and is
// represented by per-example multiplicities (counts), never by copied arrays. Every metric is
// recomputed on the resample, binning included: equal-mass bin edges are re-derived from the
// resample's ranks (tied copies stay together), equal-width bins are fixed by definition.
// Interval: the (1 − level)/2 and (1 + level)/2 quantiles of the replicates (linear
// interpolation, numpy's default); `se` is the standard deviation of the replicates.
// Paired: both runs are recomputed on the same resampled examples; the reported difference is
// b − a with the percentile interval of the replicate differences, and p = min(1, 2·min(P(Δ ≤ 0),
// P(Δ ≥ 0))) over the replicates (a rough two-sided bootstrap p-value).

import { binStatsUnchecked, foldSlots, resolveBinOptions, sortOrder, topLabelInput, type BinOptions, type BinStats } from "./binning.js";
import { aceFromStats, calibrationErrorFromStats, debiasedL2FromStats } from "./calibration.js";
import { Xoshiro128 } from "./random.js";
import { MIN_PROB, quantileSorted } from "./scores.js";
import {
  checkLevel, checkPositiveInteger, finiteArray, probabilityArray,
  type CorrectInput, type FloatArray, type FloatInput, type Scheme,
} from "./validate.js";

/** One run's per-example data. `pTarget` (p of the true label) enables NLL, `entropy` (nats) mean entropy. */
export interface RunInput {
  confidence: FloatInput;
  correct: CorrectInput;
  pTarget?: FloatInput;
  entropy?: FloatInput;
}

export const BOOTSTRAP_METRICS = [
  "accuracy", "meanConfidence", "brier", "ece", "rmsce", "mce", "ace", "debiasedL2", "nll", "meanEntropy",
] as const;
export type BootstrapMetric = (typeof BOOTSTRAP_METRICS)[number];

export interface BootstrapOptions extends BinOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: number;
  /** Interval coverage (default 0.95). */
  level?: number;
  /** Also return the replicate values. */
  keepReplicates?: boolean;
  /** Called about every 1% of the resamples (for progress bars). */
  onProgress?: (done: number, total: number) => void;
}

export interface Interval {
  /** The metric on the full data. */
  estimate: number;
  lo: number;
  hi: number;
  se: number;
}

export interface PairedInterval {
  a: number;
  b: number;
  /** b − a on the full data. */
  diff: number;
  lo: number;
  hi: number;
  se: number;
  p: number;
}

interface Settings {
  resamples: number;
  seed: number;
  level: number;
  bins: number;
  scheme: Scheme;
}

export interface BootstrapResult extends Settings {
  n: number;
  metrics: Partial<Record<BootstrapMetric, Interval>>;
  replicates?: Partial<Record<BootstrapMetric, Float64Array>>;
}

export interface PairedBootstrapResult extends Settings {
  n: number;
  metrics: Partial<Record<BootstrapMetric, PairedInterval>>;
  /** Replicates of b − a. */
  replicates?: Partial<Record<BootstrapMetric, Float64Array>>;
}

function settings(opts: BootstrapOptions): Settings {
  const { bins, scheme } = resolveBinOptions(opts);
  return {
    bins, scheme,
    resamples: checkPositiveInteger(opts.resamples ?? 1000, "resamples", 1, 10_000_000),
    seed: checkPositiveInteger(opts.seed ?? 0, "seed", 0),
    level: checkLevel(opts.level ?? 0.95),
  };
}

/** The multiplicities of each resample, in order (one reused buffer: copy it to keep it). */
export function* bootstrapCounts(n: number, resamples: number, seed = 0): Generator<Uint32Array> {
  checkPositiveInteger(n, "n");
  checkPositiveInteger(resamples, "resamples");
  const rng = new Xoshiro128(seed);
  const counts = new Uint32Array(n);
  for (let r = 0; r < resamples; r++) {
    rng.fillCounts(counts);
    yield counts;
  }
}

/** Percentile interval of replicate values (NaN replicates are ignored). */
export function percentileInterval(replicates: ArrayLike<number>, level = 0.95): { lo: number; hi: number; se: number } {
  checkLevel(level);
  const v = Float64Array.from(replicates).filter((x) => !Number.isNaN(x)).sort();
  if (v.length === 0) return { lo: NaN, hi: NaN, se: NaN };
  const alpha = (1 - level) / 2;
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i]!;
  mean /= v.length;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i]! - mean) ** 2;
  return { lo: quantileSorted(v, alpha), hi: quantileSorted(v, 1 - alpha), se: v.length > 1 ? Math.sqrt(ss / (v.length - 1)) : 0 };
}

/**
 * Bootstraps any statistic written over multiplicities: `statistic(counts)` gets counts[i] =
 * copies of example i in the resample (Σ counts = n) and returns a number.
 */
export function bootstrapStatistic(
  n: number, statistic: (counts: Uint32Array) => number, opts: Omit<BootstrapOptions, "bins" | "scheme"> = {},
): { lo: number; hi: number; se: number; replicates: Float64Array } {
  const s = settings({ ...opts, bins: 1, scheme: "equal-width" });
  const reps = new Float64Array(s.resamples);
  let r = 0;
  const every = Math.max(1, Math.floor(s.resamples / 100));
  for (const counts of bootstrapCounts(n, s.resamples, s.seed)) {
    reps[r++] = statistic(counts);
    if (opts.onProgress && (r % every === 0 || r === s.resamples)) opts.onProgress(r, s.resamples);
  }
  return { ...percentileInterval(reps, s.level), replicates: reps };
}

type Values = Record<BootstrapMetric, number>;

/**
 * A run prepared for repeated weighted evaluation. Per-example data is laid out once so that a
 * resample costs one branch-free pass: examples are accumulated into slots 2·bin + correct
 * (equal-width: bins fixed per example; equal-mass: examples in confidence order, a tie group's
 * bin taken from the resampled count of smaller confidences when the group starts).
 */
class PreparedRun {
  readonly n: number;
  private readonly conf: FloatArray;
  private readonly correct: Uint8Array;
  private readonly nl: Float64Array | null;
  private readonly ent: FloatArray | null;
  private readonly bins: number;
  private readonly scheme: Scheme;
  // equal-width: slot per example (input order); equal-mass: per sorted position.
  private readonly slot: Int32Array | null = null;
  private readonly sq: Float64Array;
  private readonly order: Uint32Array | null = null;
  private readonly sortedConf: Float64Array | null = null;
  private readonly sortedA: Uint8Array | null = null;
  private readonly groupStart: Uint8Array | null = null;
  /** thresholds[b] = floor(b·n/M): bin b starts at rank thresholds[b]. */
  private readonly thresholds: Float64Array;
  private readonly cnt: Float64Array;
  private readonly sc: Float64Array;
  private readonly ss: Float64Array;
  private readonly stats: BinStats;

  constructor(run: RunInput, s: Settings, name: string, expected?: number) {
    const x = topLabelInput(run.confidence, run.correct);
    const n = x.n;
    if (expected !== undefined && n !== expected) throw new RangeError(`${name}.confidence has length ${n} but the other run has ${expected}`);
    this.n = n;
    this.conf = x.confidence;
    this.correct = x.correct;
    this.bins = s.bins;
    this.scheme = s.scheme;
    if (run.pTarget !== undefined) {
      const p = probabilityArray(run.pTarget, `${name}.pTarget`, n, `${name}.confidence`);
      this.nl = new Float64Array(n);
      for (let i = 0; i < n; i++) this.nl[i] = -Math.log(Math.max(p[i]!, MIN_PROB));
    } else this.nl = null;
    this.ent = run.entropy !== undefined ? finiteArray(run.entropy, `${name}.entropy`, n, `${name}.confidence`) : null;
    const M = s.bins;
    const conf = this.conf, a = this.correct;
    this.sq = new Float64Array(n);
    if (s.scheme === "equal-width") {
      const slot = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        let b = (conf[i]! * M) | 0;
        if (b >= M) b = M - 1;
        slot[i] = 2 * b + a[i]!;
        const d = conf[i]! - a[i]!;
        this.sq[i] = d * d;
      }
      this.slot = slot;
    } else {
      const order = sortOrder(conf);
      const sortedConf = new Float64Array(n);
      const sortedA = new Uint8Array(n);
      const groupStart = new Uint8Array(n);
      for (let t = 0; t < n; t++) {
        const i = order[t]!;
        sortedConf[t] = conf[i]!;
        sortedA[t] = a[i]!;
        const d = conf[i]! - a[i]!;
        this.sq[t] = d * d;
        groupStart[t] = t === 0 || sortedConf[t] !== sortedConf[t - 1] ? 1 : 0;
      }
      this.order = order;
      this.sortedConf = sortedConf;
      this.sortedA = sortedA;
      this.groupStart = groupStart;
    }
    this.thresholds = new Float64Array(M + 1);
    for (let b = 0; b <= M; b++) this.thresholds[b] = Math.floor((b * n) / M);
    this.cnt = new Float64Array(2 * M);
    this.sc = new Float64Array(2 * M);
    this.ss = new Float64Array(2 * M);
    this.stats = {
      scheme: s.scheme, bins: M, n,
      count: new Float64Array(M), sumConfidence: new Float64Array(M), sumCorrect: new Float64Array(M),
      sumSquaredError: new Float64Array(M), lo: new Float64Array(M), hi: new Float64Array(M),
    };
  }

  /** The metrics on the full data (the point estimates). */
  full(): Values {
    const st = binStatsUnchecked(this.conf, this.correct, this.bins, this.scheme);
    let sc = 0, sa = 0, ss = 0;
    for (let b = 0; b < st.bins; b++) {
      sc += st.sumConfidence[b]!;
      sa += st.sumCorrect[b]!;
      ss += st.sumSquaredError[b]!;
    }
    const n = this.n;
    let snl = 0, sent = 0;
    if (this.nl) for (let i = 0; i < n; i++) snl += this.nl[i]!;
    if (this.ent) for (let i = 0; i < n; i++) sent += this.ent[i]!;
    return {
      accuracy: sa / n, meanConfidence: sc / n, brier: ss / n,
      ece: calibrationErrorFromStats(st, "l1"), rmsce: calibrationErrorFromStats(st, "l2"), mce: calibrationErrorFromStats(st, "max"),
      ace: aceFromStats(st), debiasedL2: debiasedL2FromStats(st),
      nll: this.nl ? snl / n : NaN, meanEntropy: this.ent ? sent / n : NaN,
    };
  }

  /** The metrics on the resample given by multiplicities w (Σ w = n), written into out at index r. */
  weighted(w: Uint32Array, out: Record<BootstrapMetric, Float64Array>, r: number): void {
    const cnt = this.cnt, sc = this.sc, ss = this.ss;
    cnt.fill(0);
    sc.fill(0);
    ss.fill(0);
    const n = this.n, sq = this.sq;
    if (this.slot) {
      const slot = this.slot, conf = this.conf;
      for (let i = 0; i < n; i++) {
        const k = w[i]!;
        const j = slot[i]!;
        cnt[j] += k;
        sc[j] += k * conf[i]!;
        ss[j] += k * sq[i]!;
      }
    } else {
      const order = this.order!, sortedConf = this.sortedConf!, sortedA = this.sortedA!, start = this.groupStart!, thr = this.thresholds;
      const lastBin = this.bins - 1;
      let cum = 0;
      let b = 0;
      for (let t = 0; t < n; t++) {
        // A tie group's bin: the one whose rank range holds the number of smaller resampled examples.
        if (start[t]) while (b < lastBin && cum >= thr[b + 1]!) b++;
        const k = w[order[t]!]!;
        cum += k;
        const j = 2 * b + sortedA[t]!;
        cnt[j] += k;
        sc[j] += k * sortedConf[t]!;
        ss[j] += k * sq[t]!;
      }
    }
    const st = this.stats;
    foldSlots(st, cnt, sc, ss);
    let snl = 0, sent = 0;
    if (this.nl) {
      const nl = this.nl;
      for (let i = 0; i < n; i++) snl += w[i]! * nl[i]!;
    }
    if (this.ent) {
      const ent = this.ent;
      for (let i = 0; i < n; i++) sent += w[i]! * ent[i]!;
    }
    let sumC = 0, sumA = 0, sumSq = 0;
    for (let b = 0; b < this.bins; b++) {
      sumC += st.sumConfidence[b]!;
      sumA += st.sumCorrect[b]!;
      sumSq += st.sumSquaredError[b]!;
    }
    out.accuracy[r] = sumA / n;
    out.meanConfidence[r] = sumC / n;
    out.brier[r] = sumSq / n;
    out.ece[r] = calibrationErrorFromStats(st, "l1");
    out.rmsce[r] = calibrationErrorFromStats(st, "l2");
    out.mce[r] = calibrationErrorFromStats(st, "max");
    out.ace[r] = aceFromStats(st);
    out.debiasedL2[r] = debiasedL2FromStats(st);
    out.nll[r] = this.nl ? snl / n : NaN;
    out.meanEntropy[r] = this.ent ? sent / n : NaN;
  }
}

function replicateTable(R: number): Record<BootstrapMetric, Float64Array> {
  const t = {} as Record<BootstrapMetric, Float64Array>;
  for (const m of BOOTSTRAP_METRICS) t[m] = new Float64Array(R);
  return t;
}

/** Percentile-bootstrap intervals for every binned metric (plus NLL / mean entropy when given). */
export function bootstrapMetrics(run: RunInput, opts: BootstrapOptions = {}): BootstrapResult {
  const s = settings(opts);
  const prepared = new PreparedRun(run, s, "run");
  const full = prepared.full();
  const reps = replicateTable(s.resamples);
  let r = 0;
  const every = Math.max(1, Math.floor(s.resamples / 100));
  for (const counts of bootstrapCounts(prepared.n, s.resamples, s.seed)) {
    prepared.weighted(counts, reps, r++);
    if (opts.onProgress && (r % every === 0 || r === s.resamples)) opts.onProgress(r, s.resamples);
  }
  const metrics: BootstrapResult["metrics"] = {};
  const kept: NonNullable<BootstrapResult["replicates"]> = {};
  for (const m of BOOTSTRAP_METRICS) {
    if (Number.isNaN(full[m])) continue;
    metrics[m] = { estimate: full[m], ...percentileInterval(reps[m], s.level) };
    kept[m] = reps[m];
  }
  return { ...s, n: prepared.n, metrics, ...(opts.keepReplicates ? { replicates: kept } : {}) };
}

/**
 * Paired bootstrap for b − a, where a and b are two runs (e.g. without / with label smoothing)
 * evaluated on the same examples in the same order: every resample reuses the same examples for
 * both runs, so the interval reflects only the difference between the models.
 */
export function pairedBootstrap(a: RunInput, b: RunInput, opts: BootstrapOptions = {}): PairedBootstrapResult {
  const s = settings(opts);
  const pa = new PreparedRun(a, s, "a");
  const pb = new PreparedRun(b, s, "b", pa.n);
  const fa = pa.full();
  const fb = pb.full();
  const ra = replicateTable(s.resamples);
  const rb = replicateTable(s.resamples);
  let r = 0;
  const every = Math.max(1, Math.floor(s.resamples / 100));
  for (const counts of bootstrapCounts(pa.n, s.resamples, s.seed)) {
    pa.weighted(counts, ra, r);
    pb.weighted(counts, rb, r);
    r++;
    if (opts.onProgress && (r % every === 0 || r === s.resamples)) opts.onProgress(r, s.resamples);
  }
  const metrics: PairedBootstrapResult["metrics"] = {};
  const kept: NonNullable<PairedBootstrapResult["replicates"]> = {};
  for (const m of BOOTSTRAP_METRICS) {
    if (Number.isNaN(fa[m]) || Number.isNaN(fb[m])) continue;
    const d = new Float64Array(s.resamples);
    let le = 0, ge = 0;
    for (let t = 0; t < s.resamples; t++) {
      const v = rb[m][t]! - ra[m][t]!;
      d[t] = v;
      if (v <= 0) le++;
      if (v >= 0) ge++;
    }
    metrics[m] = {
      a: fa[m], b: fb[m], diff: fb[m] - fa[m], ...percentileInterval(d, s.level),
      p: Math.min(1, (2 * Math.min(le, ge)) / s.resamples),
    };
    kept[m] = d;
  }
  return { ...s, n: pa.n, metrics, ...(opts.keepReplicates ? { replicates: kept } : {}) };
}
