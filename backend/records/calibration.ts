// calibration.arrow: one row per run × epoch × split × task (plus `all` when a group has several
// tasks) × confidence definition × bin scheme (docs/records.md), computed from a run's
// questions.arrow / tokens.arrow with backend/metrics' calibrationSummaries (15 equal-width and 10
// equal-mass bins, smECE, percentile-bootstrap intervals with the run's CalibrationSettings).
// No metric is computed here: this file picks the per-example inputs of each confidence
// definition and lays the fields out with the exact Arrow types: utf8 / int32 / float64
// (nullable where the metric can be absent) / list<float64> / list<int32>. Written atomically
// as an IPC stream.
//   renormalized  questions: probs (softmax over the options); confidence, correct, p(gold) = probs[gold], entropy
//   vocab         questions with vocab_probs: the full-vocabulary probability of the predicted letter;
//                 p(gold) = vocab_probs[gold]; entropy not available (null)
//   norm          questions with probs_norm (lm-eval acc_norm): confidence_norm, correct_norm, probs_norm[gold], its entropy
//   token         tokens: confidence = p(argmax), correct, p_target, entropy; task = "next-token"
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Field, Float64, Int32, List, type Table, type Vector, vectorFromArray } from "apache-arrow";
import { CALIBRATION_COLUMNS, calibrationSummaries, rowEntropy, type CalibrationRecord, type SummaryInput } from "../metrics/index.js";
import { float64Nullable, int32, makeTable, readArrowStream, utf8, writeArrowStream } from "./arrow.js";

/** `renormalized` softmax over options, `vocab` full-vocabulary letter probability, `norm` length-normalized, `token` next-token. */
export type ConfidenceDef = "renormalized" | "vocab" | "norm" | "token";

export interface CalibrationRow extends CalibrationRecord {
  run_id: string;
  epoch: number;
  split: string;
  task: string;
  confidence_def: ConfidenceDef;
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

/** The settings of the bootstrap intervals, a typed part of every run's config (recorded in run.json). */
export interface CalibrationSettings {
  /** percentile-bootstrap resamples (0: the *_lo / *_hi fields are null) */
  resamples: number;
  seed: number;
}

export const CALIBRATION_DEFAULTS: Readonly<CalibrationSettings> = { resamples: 1000, seed: 0 };

type Group = { epoch: number; split: string; task: string; idx: number[] };

function groups(epoch: ArrayLike<number>, split: readonly string[], task: readonly string[]): Group[] {
  const byKey = new Map<string, Group>();
  const pooled = new Map<string, Group>();
  const tasksPer = new Map<string, Set<string>>();
  for (let i = 0; i < split.length; i++) {
    const base = `${epoch[i]}\u0000${split[i]}`;
    const k = `${base}\u0000${task[i]}`;
    let g = byKey.get(k);
    if (!g) byKey.set(k, (g = { epoch: epoch[i]!, split: split[i]!, task: task[i]!, idx: [] }));
    g.idx.push(i);
    let p = pooled.get(base);
    if (!p) pooled.set(base, (p = { epoch: epoch[i]!, split: split[i]!, task: "all", idx: [] }));
    p.idx.push(i);
    let ts = tasksPer.get(base);
    if (!ts) tasksPer.set(base, (ts = new Set()));
    ts.add(task[i]!);
  }
  const out = [...byKey.values()];
  for (const [base, p] of pooled) if ((tasksPer.get(base)?.size ?? 0) > 1) out.push(p);
  return out.sort((a, b) => a.epoch - b.epoch || a.split.localeCompare(b.split) || (a.task === "all" ? 1 : 0) - (b.task === "all" ? 1 : 0) || a.task.localeCompare(b.task));
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

function summarize(
  meta: { runId: string; epoch: number; split: string; task: string; def: ConfidenceDef }, input: SummaryInput, o: CalibrationSettings,
): CalibrationRow[] {
  return calibrationSummaries(input, { resamples: o.resamples, seed: o.seed }).map((r) => ({
    run_id: meta.runId, epoch: meta.epoch, split: meta.split, task: meta.task, confidence_def: meta.def, ...r,
  }));
}

/** Rows for a questions table (questions.arrow). */
export function questionCalibration(runId: string, t: Table, opts: CalibrationSettings = CALIBRATION_DEFAULTS): CalibrationRow[] {
  const n = t.numRows;
  if (n === 0) return [];
  const epoch = Int32Array.from(column<number>(t, "epoch"));
  const split = column<string>(t, "split");
  const task = column<string>(t, "task");
  const gold = Int32Array.from(column<number>(t, "gold"));
  const pred = Int32Array.from(column<number>(t, "pred"));
  const correct = column<boolean>(t, "correct");
  const confidence = Float64Array.from(column<number>(t, "confidence"));
  const entropy = Float64Array.from(column<number>(t, "entropy"));
  const probs = listColumn(t, "probs");
  const vocab = listColumn(t, "vocab_probs");
  const norm = listColumn(t, "probs_norm");
  const confidenceNorm = t.getChild("confidence_norm") ? column<number | null>(t, "confidence_norm") : [];
  const correctNorm = t.getChild("correct_norm") ? column<boolean | null>(t, "correct_norm") : [];
  const out: CalibrationRow[] = [];
  for (const g of groups(epoch, split, task)) {
    const idx = g.idx;
    const pick = <A extends Float64Array | Uint8Array>(make: (k: number) => A, f: (i: number) => number): A => {
      const a = make(idx.length);
      idx.forEach((i, k) => (a[k] = f(i)));
      return a;
    };
    const meta = { runId, epoch: g.epoch, split: g.split, task: g.task };
    out.push(...summarize({ ...meta, def: "renormalized" }, {
      confidence: pick((k) => new Float64Array(k), (i) => confidence[i]!),
      correct: pick((k) => new Uint8Array(k), (i) => (correct[i] ? 1 : 0)),
      pTarget: pick((k) => new Float64Array(k), (i) => probs[i]![gold[i]!]!),
      entropy: pick((k) => new Float64Array(k), (i) => entropy[i]!),
    }, opts));
    if (idx.every((i) => vocab[i] !== null)) {
      out.push(...summarize({ ...meta, def: "vocab" }, {
        confidence: pick((k) => new Float64Array(k), (i) => vocab[i]![pred[i]!]!),
        correct: pick((k) => new Uint8Array(k), (i) => (correct[i] ? 1 : 0)),
        pTarget: pick((k) => new Float64Array(k), (i) => vocab[i]![gold[i]!]!),
      }, opts));
    }
    if (idx.every((i) => norm[i] !== null)) {
      out.push(...summarize({ ...meta, def: "norm" }, {
        confidence: pick((k) => new Float64Array(k), (i) => confidenceNorm[i]!),
        correct: pick((k) => new Uint8Array(k), (i) => (correctNorm[i] ? 1 : 0)),
        pTarget: pick((k) => new Float64Array(k), (i) => norm[i]![gold[i]!]!),
        entropy: pick((k) => new Float64Array(k), (i) => rowEntropy(norm[i]!, norm[i]!.length)[0]!),
      }, opts));
    }
  }
  return out;
}

/** Rows for a tokens table (tokens.arrow): confidence_def `token`, task `next-token`. */
export function tokenCalibration(runId: string, t: Table, opts: CalibrationSettings = CALIBRATION_DEFAULTS): CalibrationRow[] {
  if (t.numRows === 0) return [];
  const epoch = Int32Array.from(column<number>(t, "epoch"));
  const split = column<string>(t, "split");
  const confidence = column<number>(t, "confidence") as unknown as Float32Array;
  const pTarget = column<number>(t, "p_target") as unknown as Float32Array;
  const entropy = column<number>(t, "entropy") as unknown as Float32Array;
  const correct = column<boolean>(t, "correct");
  const out: CalibrationRow[] = [];
  for (const g of groups(epoch, split, new Array(split.length).fill(TOKEN_TASK))) {
    const idx = g.idx;
    out.push(...summarize({ runId, epoch: g.epoch, split: g.split, task: TOKEN_TASK, def: "token" }, {
      confidence: Float64Array.from(idx, (i) => confidence[i]!),
      correct: Uint8Array.from(idx, (i) => (correct[i] ? 1 : 0)),
      pTarget: Float64Array.from(idx, (i) => pTarget[i]!),
      entropy: Float64Array.from(idx, (i) => entropy[i]!),
    }, opts));
  }
  return out;
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
