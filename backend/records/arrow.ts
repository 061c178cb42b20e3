// Arrow IPC *stream* files (DuckDB-wasm's insertArrowFromIPCStream needs the stream format),
// written to a temporary name and renamed (backend/io/atomic.ts), so a reader never sees a
// partial file. Column builders with the exact types of docs/records.md.
import { readFileSync } from "node:fs";
import {
  Bool, Field, Float32, Float64, Int32, List, Table, Utf8, makeVector, tableFromIPC, tableToIPC, vectorFromArray,
  type Vector,
} from "apache-arrow";
import { writeFileAtomic } from "../io/atomic.js";

export const utf8 = (values: readonly (string | null)[]): Vector => vectorFromArray(values as (string | null)[], new Utf8());
export const bool = (values: readonly (boolean | null)[]): Vector => vectorFromArray(values as (boolean | null)[], new Bool());
export const int32 = (values: Int32Array): Vector => makeVector(values);
export const float32 = (values: Float32Array): Vector => makeVector(values);
export const float64 = (values: Float64Array): Vector => makeVector(values);
/** float32 with nulls (e.g. confidence_norm when absent) */
export const float32Nullable = (values: readonly (number | null)[]): Vector => vectorFromArray(values as (number | null)[], new Float32());
export const int32Nullable = (values: readonly (number | null)[]): Vector => vectorFromArray(values as (number | null)[], new Int32());
export const float64Nullable = (values: readonly (number | null)[]): Vector => vectorFromArray(values as (number | null)[], new Float64());

/** list<float32>: row i is flat[i·width … (i+1)·width), or null where `present` says so. */
export function float32List(flat: Float32Array | null, rows: number, width: number, present?: (i: number) => boolean): Vector {
  const items: (Float32Array | null)[] = new Array(rows);
  for (let i = 0; i < rows; i++) items[i] = flat && (!present || present(i)) ? flat.subarray(i * width, (i + 1) * width) : null;
  return vectorFromArray(items, new List(new Field("item", new Float32(), true)));
}

/** list<float32> from one array per row (rows may differ in length), null entries allowed. */
export function float32Lists(rows: readonly (ArrayLike<number> | null)[]): Vector {
  return vectorFromArray(rows.map((r) => (r === null ? null : Float32Array.from(r))), new List(new Field("item", new Float32(), true)));
}

export function makeTable(columns: Record<string, Vector>): Table {
  return new Table(columns);
}

export function writeArrowStream(path: string, table: Table): void {
  writeFileAtomic(path, tableToIPC(table, "stream"));
}

export function readArrowStream(path: string): Table {
  return tableFromIPC(readFileSync(path));
}
