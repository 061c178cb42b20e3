// calibration.arrow: one row per run × epoch × split × scoring × task (plus `all` when a group has
// several tasks) × confidence definition × bin scheme (docs/records.md), and for knowledge worlds
// also per exposure bucket (renormalized confidence, 15 equal-width bins), computed from a run's
// questions.arrow / tokens.arrow with backend/metrics' calibrationSummaries (15 equal-width and 10
// equal-mass bins, smECE, percentile-bootstrap intervals with the run's CalibrationSettings).
// No metric is computed here: this file picks the per-example inputs of each confidence
// definition and lays the fields out with the exact Arrow types: utf8 / int32 / float64
// (nullable where the metric can be absent) / list<float64> / list<int32>. Written atomically
// as an IPC stream.
//   renormalized  questions: probs (softmax over the options); confidence, correct, p(gold) = probs[gold], entropy
//   vocab         letter-scored questions with vocab_probs: the full-vocabulary probability of the
//                 predicted letter; p(gold) = vocab_probs[gold]; entropy not available (null). Not for
//                 option scoring, where vocab_probs = exp(ll) is the probability of the whole continuation.
//   norm          questions with probs_norm (lm-eval acc_norm): confidence_norm, correct_norm, probs_norm[gold], its entropy
//   token         tokens: confidence = p(argmax), correct, p_target, entropy; task = "next-token"
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Field, Float64, Int32, List, type Table, type Vector, vectorFromArray } from "apache-arrow";
import { CALIBRATION_COLUMNS, calibrationSummaries, rowEntropy, type CalibrationRecord, type SummaryInput } from "../metrics/index.js";
import { exposureBucket } from "../data/world/people.js";
import { float64Nullable, int32, makeTable, readArrowStream, utf8, writeArrowStream } from "./arrow.js";
import { questionScorings } from "./questions.js";

/** `renormalized` softmax over options, `vocab` full-vocabulary letter probability, `norm` length-normalized, `token` next-token. */
export type ConfidenceDef = "renormalized" | "vocab" | "norm" | "token";

/** What a calibration row summarizes: its metadata columns. */
export interface GroupKeys {
  epoch: number;
  split: string;
  task: string;
  /** `letter` / `option` for questions, `none` for next-token rows */
  scoring: string;
  /** `all`, or the exposure bucket of a knowledge world's people (`1`, `2-3`, `4-7`, …) */
  exposure_bucket: string;
  confidence_def: ConfidenceDef;
}

/** One row of calibration.arrow: its run, its group's keys and the metric fields. */
export interface CalibrationRow extends CalibrationRecord, GroupKeys {
  run_id: string;
}

const listOf = (rows: readonly (readonly number[])[], item: Float64 | Int32): Vector =>
  vectorFromArray(rows.map((r) => (item instanceof Int32 ? Int32Array.from(r) : Float64Array.from(r))), new List(new Field("item", item, true)));

export function calibrationTable(rows: readonly CalibrationRow[]): Table {
  const cols: Record<string, Vector> = {};
  for (const c of CALIBRATION_COLUMNS) {
    const key = c.name as keyof CalibrationRow;
    switch (c.type) {
      case "utf8":
        cols[c.name] = utf8(rows.map((r) => String(r[key])));
        break;
      case "int32":
        cols[c.name] = int32(Int32Array.from(rows, (r) => r[key] as number));
        break;
      case "float64":
        cols[c.name] = float64Nullable(rows.map((r) => {
          const v = r[key] as number | null;
          return v === null || v === undefined || Number.isNaN(v) ? null : v;
        }));
        break;
      case "list<float64>":
        cols[c.name] = listOf(rows.map((r) => r[key] as number[]), new Float64());
        break;
      case "list<int32>":
        cols[c.name] = listOf(rows.map((r) => r[key] as number[]), new Int32());
        break;
    }
  }
  return makeTable(cols);
}

export function writeCalibration(path: string, rows: readonly CalibrationRow[]): void {
  writeArrowStream(path, calibrationTable(rows));
}

export const TOKEN_TASK = "next-token";
/** The task of the rows that pool a group's tasks. */
export const TASK_ALL = "all";

/** The settings of the bootstrap intervals, a typed part of every run's config (recorded in run.json). */
export interface CalibrationSettings {
  /** percentile-bootstrap resamples (0: the *_lo / *_hi fields are null) */
  resamples: number;
  seed: number;
}

export const CALIBRATION_DEFAULTS: Readonly<CalibrationSettings> = { resamples: 1000, seed: 0 };

/** One row group: its keys, the per-example inputs of backend/metrics, and its binnings (default: 15 equal-width and 10 equal-mass). */
export interface CalibrationGroup {
  keys: GroupKeys;
  input: SummaryInput;
  binnings?: ReadonlyArray<{ bins: number; scheme: "equal-width" | "equal-mass" }>;
}

/** The scoring of next-token rows (tokens.arrow has no options). */
export const TOKEN_SCORING = "none";
/** The exposure_bucket of rows that pool every person (and of everything outside knowledge worlds). */
export const ALL_EXPOSURES = "all";
/** Binning of the per-bucket rows: 15 equal-width bins only (they exist for accuracy and confidence by bucket). */
const BUCKET_BINNINGS = [{ bins: 15, scheme: "equal-width" as const }];

/** Sort key of an exposure bucket: "all" first, then by the bucket's lower bound. */
export function bucketOrder(b: string): number {
  return b === ALL_EXPOSURES ? -1 : Number.parseInt(b, 10);
}

function column<T>(t: Table, name: string): T[] {
  const c = t.getChild(name);
  if (!c) throw new TypeError(`column ${name} is missing`);
  return c.toArray() as unknown as T[];
}

function listColumn(t: Table, name: string): (Float32Array | null)[] {
  const c = t.getChild(name);
  if (!c) return new Array(t.numRows).fill(null);
  const out: (Float32Array | null)[] = new Array(t.numRows);
  for (let i = 0; i < t.numRows; i++) {
    const v = c.get(i) as { toArray(): Float32Array } | null;
    out[i] = v === null ? null : v.toArray();
  }
  return out;
}

function optionalColumn<T>(t: Table, name: string): (T | null)[] {
  const c = t.getChild(name);
  return c ? Array.from({ length: t.numRows }, (_, i) => c.get(i) as T | null) : new Array(t.numRows).fill(null);
}

/**
 * The row groups of a questions table: every epoch × split × scoring × task, plus task `all`
 * pooling the tasks when a group has several; for each the confidence definitions its columns
 * allow. Knowledge-world rows (non-null `exposures`) also get one group per exposure bucket
 * (renormalized confidence, 15 equal-width bins). A file without `scoring` is letter scoring.
 */
export function questionGroups(t: Table): CalibrationGroup[] {
  const n = t.numRows;
  if (n === 0) return [];
  const epoch = Int32Array.from(column<number>(t, "epoch"));
  const split = column<string>(t, "split");
  const task = column<string>(t, "task");
  const scoring = questionScorings(t);
  const exposures = optionalColumn<number>(t, "exposures");
  const gold = Int32Array.from(column<number>(t, "gold"));
  const correct = column<boolean>(t, "correct");
  const confidence = Float64Array.from(column<number>(t, "confidence"));
  const entropy = t.getChild("entropy") ? Float64Array.from(column<number>(t, "entropy")) : null;
  const probs = listColumn(t, "probs");
  const vocab = listColumn(t, "vocab_probs");
  const norm = listColumn(t, "probs_norm");
  const confidenceNorm = optionalColumn<number>(t, "confidence_norm");
  const correctNorm = optionalColumn<boolean>(t, "correct_norm");
  const pred = t.getChild("pred") ? Int32Array.from(column<number>(t, "pred")) : null;

  // index sets: (epoch, split, scoring) → task → bucket → rows
  type Set_ = { epoch: number; split: string; scoring: string; tasks: Map<string, number[]>; buckets: Map<string, Map<string, number[]>> };
  const bases = new Map<string, Set_>();
  for (let i = 0; i < n; i++) {
    const k = `${epoch[i]}\u0000${split[i]}\u0000${scoring[i]}`;
    let b = bases.get(k);
    if (!b) bases.set(k, (b = { epoch: epoch[i]!, split: split[i]!, scoring: scoring[i]!, tasks: new Map(), buckets: new Map() }));
    const push = (m: Map<string, number[]>, key: string) => {
      const a = m.get(key);
      if (a) a.push(i);
      else m.set(key, [i]);
    };
    push(b.tasks, task[i]!);
    const ex = exposures[i];
    if (ex !== null && ex !== undefined) {
      let bt = b.buckets.get(task[i]!);
      if (!bt) b.buckets.set(task[i]!, (bt = new Map()));
      push(bt, exposureBucket(ex));
    }
  }
  const out: CalibrationGroup[] = [];
  const pick = <A extends Float64Array | Uint8Array>(idx: number[], make: (k: number) => A, f: (i: number) => number): A => {
    const a = make(idx.length);
    idx.forEach((i, k) => (a[k] = f(i)));
    return a;
  };
  const f64 = (k: number) => new Float64Array(k), u8 = (k: number) => new Uint8Array(k);
  const renormalized = (idx: number[]): SummaryInput => {
    const pT = idx.every((i) => probs[i] !== null) ? pick(idx, f64, (i) => probs[i]![gold[i]!]!) : null;
    return {
      confidence: pick(idx, f64, (i) => confidence[i]!),
      correct: pick(idx, u8, (i) => (correct[i] ? 1 : 0)),
      ...(pT ? { pTarget: pT } : {}),
      ...(entropy ? { entropy: pick(idx, f64, (i) => entropy[i]!) } : {}),
    };
  };
  const sorted = [...bases.values()].sort((a, b) => a.epoch - b.epoch || a.split.localeCompare(b.split) || a.scoring.localeCompare(b.scoring));
  for (const b of sorted) {
    const taskGroups = [...b.tasks].sort(([x], [y]) => x.localeCompare(y));
    if (taskGroups.length > 1) taskGroups.push([TASK_ALL, taskGroups.flatMap(([, idx]) => idx).sort((x, y) => x - y)]);
    for (const [tk, idx] of taskGroups) {
      const keys = { epoch: b.epoch, split: b.split, task: tk, scoring: b.scoring, exposure_bucket: ALL_EXPOSURES };
      out.push({ keys: { ...keys, confidence_def: "renormalized" }, input: renormalized(idx) });
      if (pred && b.scoring === "letter" && idx.every((i) => vocab[i] !== null)) {
        out.push({
          keys: { ...keys, confidence_def: "vocab" },
          input: {
            confidence: pick(idx, f64, (i) => vocab[i]![pred[i]!]!), correct: pick(idx, u8, (i) => (correct[i] ? 1 : 0)),
            pTarget: pick(idx, f64, (i) => vocab[i]![gold[i]!]!),
          },
        });
      }
      if (idx.every((i) => norm[i] !== null && confidenceNorm[i] !== null)) {
        out.push({
          keys: { ...keys, confidence_def: "norm" },
          input: {
            confidence: pick(idx, f64, (i) => confidenceNorm[i]!), correct: pick(idx, u8, (i) => (correctNorm[i] ? 1 : 0)),
            pTarget: pick(idx, f64, (i) => norm[i]![gold[i]!]!),
            entropy: pick(idx, f64, (i) => rowEntropy(norm[i]!, norm[i]!.length)[0]!),
          },
        });
      }
      // per exposure bucket (one task's rows; `all` pools the tasks' buckets)
      const byBucket = new Map<string, number[]>();
      for (const [t2, m] of b.buckets) {
        if (tk !== TASK_ALL && t2 !== tk) continue;
        for (const [bk, rows] of m) byBucket.set(bk, [...(byBucket.get(bk) ?? []), ...rows]);
      }
      for (const bk of [...byBucket.keys()].sort((x, y) => bucketOrder(x) - bucketOrder(y))) {
        out.push({ keys: { ...keys, exposure_bucket: bk, confidence_def: "renormalized" }, input: renormalized(byBucket.get(bk)!.sort((x, y) => x - y)), binnings: BUCKET_BINNINGS });
      }
    }
  }
  return out;
}

/** The row group of each epoch × split of a tokens table (task `next-token`, confidence_def `token`). */
export function tokenGroups(t: Table): CalibrationGroup[] {
  if (t.numRows === 0) return [];
  const epoch = Int32Array.from(column<number>(t, "epoch"));
  const split = column<string>(t, "split");
  const confidence = column<number>(t, "confidence") as unknown as Float32Array;
  const pTarget = column<number>(t, "p_target") as unknown as Float32Array;
  const entropy = column<number>(t, "entropy") as unknown as Float32Array;
  const correct = column<boolean>(t, "correct");
  const byKey = new Map<string, { epoch: number; split: string; idx: number[] }>();
  for (let i = 0; i < split.length; i++) {
    const k = `${epoch[i]}\u0000${split[i]}`;
    let g = byKey.get(k);
    if (!g) byKey.set(k, (g = { epoch: epoch[i]!, split: split[i]!, idx: [] }));
    g.idx.push(i);
  }
  return [...byKey.values()].sort((a, b) => a.epoch - b.epoch || a.split.localeCompare(b.split)).map(({ epoch: e, split: s, idx }) => ({
    keys: { epoch: e, split: s, task: TOKEN_TASK, scoring: TOKEN_SCORING, exposure_bucket: ALL_EXPOSURES, confidence_def: "token" as const },
    input: {
      confidence: Float64Array.from(idx, (i) => confidence[i]!),
      correct: Uint8Array.from(idx, (i) => (correct[i] ? 1 : 0)),
      pTarget: Float64Array.from(idx, (i) => pTarget[i]!),
      entropy: Float64Array.from(idx, (i) => entropy[i]!),
    },
  }));
}

/** The rows of some groups, with the given bootstrap settings. */
export function groupRows(runId: string, groups: readonly CalibrationGroup[], o: CalibrationSettings): CalibrationRow[] {
  return groups.flatMap((g) => calibrationSummaries(g.input, { resamples: o.resamples, seed: o.seed, ...(g.binnings ? { binnings: g.binnings } : {}) })
    .map((r) => ({ run_id: runId, ...g.keys, ...r })));
}

/** Rows for a questions table (questions.arrow). */
export function questionCalibration(runId: string, t: Table, opts: CalibrationSettings = CALIBRATION_DEFAULTS): CalibrationRow[] {
  return groupRows(runId, questionGroups(t), opts);
}

/** Rows for a tokens table (tokens.arrow): confidence_def `token`, task `next-token`. */
export function tokenCalibration(runId: string, t: Table, opts: CalibrationSettings = CALIBRATION_DEFAULTS): CalibrationRow[] {
  return groupRows(runId, tokenGroups(t), opts);
}

/**
 * Writes <dir>/calibration.arrow from <dir>/questions.arrow and <dir>/tokens.arrow (those that
 * exist). Returns the number of rows, 0 (and no file) when there is nothing to summarize.
 */
export function writeRunCalibration(dir: string, runId: string, o: CalibrationSettings = CALIBRATION_DEFAULTS): number {
  const rows: CalibrationRow[] = [];
  const q = join(dir, "questions.arrow");
  if (existsSync(q)) rows.push(...questionCalibration(runId, readArrowStream(q), o));
  const tk = join(dir, "tokens.arrow");
  if (existsSync(tk)) rows.push(...tokenCalibration(runId, readArrowStream(tk), o));
  if (rows.length === 0) return 0;
  writeCalibration(join(dir, "calibration.arrow"), rows);
  return rows.length;
}
