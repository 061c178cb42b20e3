// train_log.arrow: one row per logged step (docs/records.md).
import type { Table } from "apache-arrow";
import { float32, float64, int32, makeTable, readArrowStream, utf8, writeArrowStream } from "./arrow.js";

export interface TrainLogRow {
  run_id: string;
  phase: "pretrain" | "sft";
  /** optimizer step, 1-based */
  step: number;
  /** fractional epoch over the training split */
  epoch: number;
  split: "train" | "validation";
  /** train: the label-smoothed objective; validation: plain NLL (ε = 0, T = 1) */
  loss: number;
  lr: number;
  /** global gradient norm before clipping; NaN on validation rows */
  grad_norm: number;
  tokens_per_s: number;
  /** mean predictive entropy (nats) of the supervised tokens */
  entropy: number;
  /** seconds since the run started */
  time_s: number;
}

export const TRAIN_LOG_COLUMNS = ["run_id", "phase", "step", "epoch", "split", "loss", "lr", "grad_norm", "tokens_per_s", "entropy", "time_s"] as const;

export function trainLogTable(rows: readonly TrainLogRow[]): Table {
  const f32 = (k: keyof TrainLogRow) => float32(Float32Array.from(rows, (r) => r[k] as number));
  return makeTable({
    run_id: utf8(rows.map((r) => r.run_id)),
    phase: utf8(rows.map((r) => r.phase)),
    step: int32(Int32Array.from(rows, (r) => r.step)),
    epoch: f32("epoch"),
    split: utf8(rows.map((r) => r.split)),
    loss: f32("loss"),
    lr: f32("lr"),
    grad_norm: f32("grad_norm"),
    tokens_per_s: f32("tokens_per_s"),
    entropy: f32("entropy"),
    time_s: float64(Float64Array.from(rows, (r) => r.time_s)),
  });
}

export function writeTrainLog(path: string, rows: readonly TrainLogRow[]): void {
  writeArrowStream(path, trainLogTable(rows));
}

/** Reads train_log.arrow back into rows (for resuming a run). */
export function readTrainLog(path: string): TrainLogRow[] {
  const t = readArrowStream(path);
  const want: Record<string, string> = { run_id: "Utf8", phase: "Utf8", step: "Int32", epoch: "Float32", split: "Utf8", loss: "Float32", lr: "Float32", grad_norm: "Float32", tokens_per_s: "Float32", entropy: "Float32", time_s: "Float64" };
  for (const [name, type] of Object.entries(want)) {
    const f = t.schema.fields.find((x) => x.name === name);
    if (!f || String(f.type) !== type) throw new TypeError(`${path}: column ${name} is missing or is not ${type} (got ${String(f?.type)})`);
  }
  return t.toArray().map((r) => {
    const o = r.toJSON() as Record<string, unknown>;
    return {
      run_id: String(o.run_id), phase: o.phase as TrainLogRow["phase"], step: Number(o.step), epoch: Number(o.epoch),
      split: o.split as TrainLogRow["split"], loss: Number(o.loss), lr: Number(o.lr), grad_norm: Number(o.grad_norm),
      tokens_per_s: Number(o.tokens_per_s), entropy: Number(o.entropy), time_s: Number(o.time_s),
    };
  });
}
