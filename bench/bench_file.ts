// The published form of a GPU benchmark, shared by bench/train_cuda.ts (trainer.arrow) and
// bench/llama_train.ts (llama_train.arrow): data/bench/<name>.arrow, an Arrow IPC stream (the format the
// site's loaders and DuckDB-wasm read) with one row per measurement and the card and date of the meta
// repeated on every row (columns `card`, `measured_at`), and <name>_meta.json beside it. Both files are
// written atomically (backend/io/atomic.ts), so a reader never sees half of one.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { Float64, Int32, RecordBatch, Schema, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray, type DataType, type Vector } from "apache-arrow";
import { writeFileAtomic } from "../backend/io/atomic.js";

export type ColumnKind = "str" | "int" | "f64";
/** Column order and kinds of a benchmark table: str → Utf8, int → Int32, f64 → Float64 (all nullable). */
export type BenchColumns<R> = ReadonlyArray<readonly [keyof R & string, ColumnKind]>;

const TYPES: Record<ColumnKind, () => DataType> = { str: () => new Utf8(), int: () => new Int32(), f64: () => new Float64() };

/** The table of `rows` with `columns`, then `card` and `measured_at`; `metadata` goes into the schema. */
export function benchTable<R>(columns: BenchColumns<R>, rows: readonly R[], stamp: { card: string; date: string }, metadata?: Record<string, string>): Table {
  const cols: Record<string, Vector> = {};
  for (const [name, kind] of columns) cols[name] = vectorFromArray(rows.map((r) => r[name] ?? null), TYPES[kind]()) as Vector;
  cols.card = vectorFromArray(rows.map(() => stamp.card), new Utf8());
  cols.measured_at = vectorFromArray(rows.map(() => stamp.date), new Utf8());
  const t = new Table(cols);
  if (!metadata) return t;
  const schema = new Schema(t.schema.fields, new Map(Object.entries(metadata)));
  return new Table(schema, t.batches.map((b) => new RecordBatch(schema, b.data)));
}

/** `<file>` without `.arrow`, plus `_meta.json`. */
export const metaPath = (file: string): string => file.replace(/\.arrow$/, "") + "_meta.json";

/** Writes FILE (the table as an Arrow IPC stream) and FILE_meta.json, each atomically. */
export function writeBenchFiles(file: string, table: Table, meta: object): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, tableToIPC(table, "stream"));
  writeFileAtomic(metaPath(file), JSON.stringify(meta, null, 1) + "\n");
}

/** The rows (plain objects) of FILE and the JSON of FILE_meta.json. */
export function readBenchFiles<R, M>(file: string): { rows: R[]; meta: M } {
  const t = tableFromIPC(readFileSync(file));
  const rows = t.toArray().map((r) => r.toJSON() as unknown as R);
  return { rows, meta: JSON.parse(readFileSync(metaPath(file), "utf8")) as M };
}
