// calibrationSummary: the metric fields of one row of `calibration.arrow` (docs/records.md), so the
// backend (which writes the records) and the site loaders (which display or recompute them) use
// the same numbers. The caller adds run_id, epoch, split, task, scoring, exposure_bucket and confidence_def.
//
// Field definitions: accuracy = mean correct; nll = −mean log p(true label) (needs pTarget or
// probability rows, else null); brier = top-label Brier (c − a)² (available for every confidence
// definition, including next-token rows without the full distribution); ece / rmsce / mce / ace /
// debiased_l2 with the row's bins and scheme; smece = relplot's smECE with automatic σ (independent
// of the bins); mean_entropy = mean predictive entropy in nats (needs entropy or probability rows,
// else null); *_lo / *_hi = percentile-bootstrap interval (level 0.95 by default, null when
// resamples = 0); bin_* = reliability data of the non-empty bins.

import { binStatsUnchecked, resolveBinOptions, type BinOptions } from "./binning.js";
import { binnedMetricsFromStats, Z95 } from "./calibration.js";
import { bootstrapMetrics, type RunInput } from "./bootstrap.js";
import { nll, rowEntropyUnchecked, topLabelUnchecked } from "./scores.js";
import { smECEUnchecked } from "./smece.js";
import {
  checkPositive, correctArray, finiteArray, probabilityArray, probabilityRows,
  type CorrectInput, type FloatArray, type FloatInput, type LabelInput, type Scheme,
} from "./validate.js";

export interface SummaryInput {
  /** Top-label confidence per example (derived from `probs` when absent). */
  confidence?: FloatInput;
  /** 1 when the prediction was right (derived from `probs` and `labels` when absent). */
  correct?: CorrectInput;
  /** Probability of the true label, for the NLL (derived from `probs` when absent). */
  pTarget?: FloatInput;
  /** Predictive entropy in nats (derived from `probs` when absent). */
  entropy?: FloatInput;
  /** Flat n×K probability rows, with `labels` and `classes`. */
  probs?: FloatInput;
  labels?: LabelInput;
  classes?: number;
}

export interface SummaryOptions extends BinOptions {
  /** Bootstrap resamples for the *_lo / *_hi fields (default 1000; 0 leaves them null). */
  resamples?: number;
  seed?: number;
  /** Bootstrap interval coverage (default 0.95). */
  level?: number;
  /** z of the per-bin Wilson intervals (default 1.96). */
  z?: number;
  /** Compute smECE (default true); false leaves it null. */
  smece?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** The metric columns of one calibration.arrow row, in schema order. */
export interface CalibrationRecord {
  scheme: Scheme;
  n_bins: number;
  n: number;
  accuracy: number;
  nll: number | null;
  brier: number;
  ece: number;
  rmsce: number;
  mce: number;
  ace: number;
  smece: number | null;
  debiased_l2: number;
  mean_confidence: number;
  mean_entropy: number | null;
  ece_lo: number | null;
  ece_hi: number | null;
  rmsce_lo: number | null;
  rmsce_hi: number | null;
  brier_lo: number | null;
  brier_hi: number | null;
  nll_lo: number | null;
  nll_hi: number | null;
  bin_lo: number[];
  bin_hi: number[];
  bin_confidence: number[];
  bin_accuracy: number[];
  bin_wilson_lo: number[];
  bin_wilson_hi: number[];
  bin_count: number[];
}

/** Every column of calibration.arrow with its Arrow type (metadata columns first). */
export const CALIBRATION_COLUMNS: ReadonlyArray<{ name: string; type: "utf8" | "int32" | "float64" | "list<float64>" | "list<int32>" }> = [
  { name: "run_id", type: "utf8" }, { name: "epoch", type: "int32" }, { name: "split", type: "utf8" }, { name: "task", type: "utf8" },
  { name: "scoring", type: "utf8" }, { name: "exposure_bucket", type: "utf8" }, { name: "confidence_def", type: "utf8" },
  { name: "scheme", type: "utf8" }, { name: "n_bins", type: "int32" }, { name: "n", type: "int32" },
  ...["accuracy", "nll", "brier", "ece", "rmsce", "mce", "ace", "smece", "debiased_l2", "mean_confidence", "mean_entropy",
    "ece_lo", "ece_hi", "rmsce_lo", "rmsce_hi", "brier_lo", "brier_hi", "nll_lo", "nll_hi"].map((name) => ({ name, type: "float64" as const })),
  ...["bin_lo", "bin_hi", "bin_confidence", "bin_accuracy", "bin_wilson_lo", "bin_wilson_hi"].map((name) => ({ name, type: "list<float64>" as const })),
  { name: "bin_count", type: "list<int32>" },
];

interface Resolved {
  confidence: FloatArray;
  correct: Uint8Array;
  pTarget?: FloatArray;
  entropy?: FloatArray;
  n: number;
}

function resolve(input: SummaryInput): Resolved {
  if (input === null || typeof input !== "object") throw new TypeError("input must be an object with confidence/correct or probs/labels/classes");
  let confidence: FloatArray | undefined;
  let correct: Uint8Array | undefined;
  let pTarget: FloatArray | undefined;
  let entropy: FloatArray | undefined;
  if (input.probs !== undefined) {
    if (input.labels === undefined || input.classes === undefined) throw new TypeError("probs needs labels and classes");
    const r = probabilityRows(input.probs, input.labels, input.classes);
    const t = topLabelUnchecked(r.probs, r.labels, r.n, r.classes);
    confidence = t.confidence;
    correct = t.correct;
    pTarget = t.pTarget;
    entropy = rowEntropyUnchecked(r.probs, r.n, r.classes);
  }
  const n0 = confidence?.length;
  if (input.confidence !== undefined) confidence = probabilityArray(input.confidence, "confidence", n0, "probs (rows)");
  if (!confidence) throw new TypeError("input needs confidence and correct (or probs, labels and classes)");
  const n = confidence.length;
  if (input.correct !== undefined) correct = correctArray(input.correct, "correct", n, "confidence");
  if (!correct) throw new TypeError("input needs correct (or probs, labels and classes)");
  if (input.pTarget !== undefined) pTarget = probabilityArray(input.pTarget, "pTarget", n, "confidence");
  if (input.entropy !== undefined) entropy = finiteArray(input.entropy, "entropy", n, "confidence");
  return { confidence, correct, n, ...(pTarget ? { pTarget } : {}), ...(entropy ? { entropy } : {}) };
}

function summaryOf(x: Resolved, opts: SummaryOptions, smece: number | null): CalibrationRecord {
  const { bins, scheme } = resolveBinOptions(opts);
  const z = checkPositive(opts.z ?? Z95, "z");
  const resamples = opts.resamples ?? 1000;
  const m = binnedMetricsFromStats(binStatsUnchecked(x.confidence, x.correct, bins, scheme), z);
  const meanNll = x.pTarget ? nll(x.pTarget) : null;
  let meanEntropy: number | null = null;
  if (x.entropy) {
    let s = 0;
    for (let i = 0; i < x.n; i++) s += x.entropy[i]!;
    meanEntropy = s / x.n;
  }
  let ci: ReturnType<typeof bootstrapMetrics>["metrics"] = {};
  if (resamples !== 0) {
    const run: RunInput = { confidence: x.confidence, correct: x.correct, ...(x.pTarget ? { pTarget: x.pTarget } : {}) };
    ci = bootstrapMetrics(run, {
      bins, scheme, resamples, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    }).metrics;
  }
  const rel = m.reliability;
  return {
    scheme, n_bins: bins, n: x.n,
    accuracy: m.accuracy, nll: meanNll, brier: m.brier, ece: m.ece, rmsce: m.rmsce, mce: m.mce, ace: m.ace, smece,
    debiased_l2: m.debiasedL2, mean_confidence: m.meanConfidence, mean_entropy: meanEntropy,
    ece_lo: ci.ece?.lo ?? null, ece_hi: ci.ece?.hi ?? null,
    rmsce_lo: ci.rmsce?.lo ?? null, rmsce_hi: ci.rmsce?.hi ?? null,
    brier_lo: ci.brier?.lo ?? null, brier_hi: ci.brier?.hi ?? null,
    nll_lo: ci.nll?.lo ?? null, nll_hi: ci.nll?.hi ?? null,
    bin_lo: rel.lo, bin_hi: rel.hi, bin_confidence: rel.confidence, bin_accuracy: rel.accuracy,
    bin_wilson_lo: rel.wilsonLo, bin_wilson_hi: rel.wilsonHi, bin_count: rel.count,
  };
}

/** One calibration.arrow row (metric fields) for the given bins and scheme (default 15 equal-width). */
export function calibrationSummary(input: SummaryInput, opts: SummaryOptions = {}): CalibrationRecord {
  const x = resolve(input);
  const smece = opts.smece === false ? null : smECEUnchecked(x.confidence, x.correct).value;
  return summaryOf(x, opts, smece);
}

/** The default rows: 15 equal-width bins (Guo et al.) and 10 equal-mass bins (HELM); smECE computed once. */
export function calibrationSummaries(
  input: SummaryInput,
  opts: Omit<SummaryOptions, "bins" | "scheme"> & { binnings?: ReadonlyArray<{ bins: number; scheme: Scheme }> } = {},
): CalibrationRecord[] {
  const binnings = opts.binnings ?? [{ bins: 15, scheme: "equal-width" }, { bins: 10, scheme: "equal-mass" }];
  const x = resolve(input);
  const smece = opts.smece === false ? null : smECEUnchecked(x.confidence, x.correct).value;
  return binnings.map((b) => summaryOf(x, { ...opts, bins: b.bins, scheme: b.scheme }, smece));
}
