// calib metrics, computing: the per-example inputs a predictions file provides (top-label
// confidence and correctness, p(target), entropy, probability rows) and every metric of the
// report. All numbers come from backend/metrics (the same code the site and the loaders use).
import {
  adaptiveClasswiseCE, bootstrapMetrics, binnedMetrics, brierMulticlass, classwiseECE, entropySummary, fitTemperature,
  fitTemperatureFromProbs, nll, nllFromProbs, probabilityRows, riskCoverage, rowEntropy, smECE, topLabel,
  type BootstrapResult, type FloatArray, type Norm, type Scheme, type TemperatureFit,
} from "../../../metrics/index.js";
import { progressBar } from "../../../term/progress.js";
import { UsageError } from "../../errors.js";
import { rowMask, take, type Columns } from "./read.js";

export interface MetricsOptions {
  bins: number;
  scheme: Scheme;
  norm: Norm;
  /** percentile-bootstrap resamples, 0 for none */
  resamples: number;
  seed: number;
  level: number;
  /** column names given with --confidence-col / --correct-col (undefined: the defaults) */
  confidenceCol?: string;
  correctCol?: string;
  /** --where COL=VALUE filters */
  where: string[];
}

interface ProbabilityRows {
  data: Float64Array;
  classes: number;
  labels: Int32Array;
}

export interface Inputs {
  confidence: FloatArray;
  correct: Uint8Array;
  pTarget?: FloatArray;
  entropy?: FloatArray;
  probs: ProbabilityRows | null;
  /** the fitted temperature's input: the logits column when it matches the probability rows */
  logits: Float64Array | null;
}

/** The probability rows (with their gold labels) of the kept rows, or null when the file has none. */
function probabilityInputs(cols: Columns, file: string, mask: Uint32Array | null): ProbabilityRows | null {
  const raw = cols.rowsOf("probs");
  if (!raw) return null;
  const labelName = ["gold", "label"].find((n) => cols.names.includes(n));
  if (!labelName) throw new UsageError(`${file} has probability columns but no 'gold' or 'label' column`);
  const labels = Int32Array.from(cols.numeric(labelName), (x, i) => {
    if (!Number.isInteger(x)) throw new RangeError(`column ${labelName}[${i}] = ${x} is not an integer`);
    return x;
  });
  const probs = { data: take(raw.data, mask, raw.classes), classes: raw.classes, labels: take(labels, mask) };
  probabilityRows(probs.data, probs.labels, probs.classes, { field: "probs" });
  return probs;
}

/** What the file provides for the kept rows: given columns first, else derived from the probability rows. */
export function readInputs(cols: Columns, file: string, o: MetricsOptions): Inputs {
  const mask = rowMask(cols, o.where);
  const probs = probabilityInputs(cols, file, mask);
  const confName = o.confidenceCol ?? "confidence";
  const corName = o.correctCol ?? "correct";
  const hasTop = cols.names.includes(confName) && cols.names.includes(corName);
  const asked = o.confidenceCol !== undefined || o.correctCol !== undefined;
  const half = cols.names.includes(confName) !== cols.names.includes(corName);
  if (!hasTop && (asked || half || !probs)) {
    throw new UsageError(`${file} needs columns '${confName}' and '${corName}'${asked || half ? "" : " (or probability rows)"}; columns: ${cols.names.join(", ")}`);
  }
  const top = hasTop ? null : topLabel(probs!.data, probs!.labels, probs!.classes);
  const inputs: Inputs = {
    confidence: top ? top.confidence : take(cols.numeric(confName), mask),
    correct: top ? top.correct : take(cols.bool(corName), mask),
    probs, logits: null,
  };
  if (cols.names.includes("p_target")) inputs.pTarget = take(cols.numeric("p_target"), mask);
  if (cols.names.includes("entropy")) inputs.entropy = take(cols.numeric("entropy"), mask);
  if (probs) {
    inputs.pTarget ??= topLabel(probs.data, probs.labels, probs.classes).pTarget;
    inputs.entropy ??= rowEntropy(probs.data, probs.classes);
    const logits = cols.rowsOf("logits");
    if (logits && logits.classes === probs.classes) inputs.logits = take(logits.data, mask, logits.classes);
  }
  return inputs;
}

/** The metrics of probability rows: multiclass Brier and NLL, classwise CE, temperature scaling. */
export interface RowMetrics {
  classes: number;
  brierMulticlass: number;
  nll: number;
  classwiseCE: number;
  adaptiveClasswiseCE: number;
  temperature: TemperatureFit & { source: "logits" | "log probs" };
}

export interface MetricsReport {
  n: number;
  binned: ReturnType<typeof binnedMetrics>;
  smece: ReturnType<typeof smECE>;
  riskCoverage: ReturnType<typeof riskCoverage>;
  boot: BootstrapResult | null;
  /** point estimates of the bootstrapped metrics (NaN when the input is missing) */
  point: Record<string, number>;
  rows: RowMetrics | null;
  /** the metric --norm selects */
  headlineKey: "ece" | "rmsce" | "mce";
}

function rowMetrics(p: ProbabilityRows, logits: Float64Array | null, o: MetricsOptions): RowMetrics {
  const temp = logits ? fitTemperature(logits, p.labels, p.classes) : fitTemperatureFromProbs(p.data, p.labels, p.classes);
  return {
    classes: p.classes,
    brierMulticlass: brierMulticlass(p.data, p.labels, p.classes),
    nll: nllFromProbs(p.data, p.labels, p.classes),
    classwiseCE: classwiseECE(p.data, p.labels, p.classes, { bins: o.bins, scheme: o.scheme, norm: o.norm }),
    adaptiveClasswiseCE: adaptiveClasswiseCE(p.data, p.labels, p.classes, { bins: o.bins }),
    temperature: { ...temp, source: logits ? "logits" : "log probs" },
  };
}

export function computeMetrics(x: Inputs, o: MetricsOptions): MetricsReport {
  const m = binnedMetrics(x.confidence, x.correct, { bins: o.bins, scheme: o.scheme });
  let boot: BootstrapResult | null = null;
  if (o.resamples > 0) {
    // on a terminal only: a log or a pipe gets the numbers alone
    const bar = progressBar(`bootstrap ${o.resamples}×`, o.resamples, { unit: "resamples", enabled: Boolean(process.stderr.isTTY) });
    boot = bootstrapMetrics(
      { confidence: x.confidence, correct: x.correct, ...(x.pTarget ? { pTarget: x.pTarget } : {}), ...(x.entropy ? { entropy: x.entropy } : {}) },
      { bins: o.bins, scheme: o.scheme, resamples: o.resamples, seed: o.seed, level: o.level, onProgress: (done) => bar.update(done) },
    );
    bar.done();
  }
  return {
    n: x.confidence.length, binned: m, smece: smECE(x.confidence, x.correct), riskCoverage: riskCoverage(x.confidence, x.correct), boot,
    point: {
      accuracy: m.accuracy, meanConfidence: m.meanConfidence, ece: m.ece, rmsce: m.rmsce, mce: m.mce, ace: m.ace, debiasedL2: m.debiasedL2,
      brier: m.brier, nll: x.pTarget ? nll(x.pTarget) : NaN, meanEntropy: x.entropy ? entropySummary(x.entropy).mean : NaN,
    },
    rows: x.probs ? rowMetrics(x.probs, x.logits, o) : null,
    headlineKey: o.norm === "l1" ? "ece" : o.norm === "l2" ? "rmsce" : "mce",
  };
}
