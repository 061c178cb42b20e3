// calibration.arrow: one row per run × epoch × split × task × confidence definition × bin scheme
// (docs/records.md). The metric fields come from backend/metrics (calibrationSummaries); this
// file only lays them out with the exact Arrow types: utf8 / int32 / float64 (nullable where the
// metric can be absent) / list<float64> / list<int32>. Written atomically as an IPC stream.
import { Field, Float64, Int32, List, type Table, type Vector, vectorFromArray } from "apache-arrow";
import { CALIBRATION_COLUMNS, type CalibrationRecord } from "../metrics/index.js";
import { float64Nullable, int32, makeTable, utf8, writeArrowStream } from "./arrow.js";

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
