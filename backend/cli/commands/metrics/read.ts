// calib metrics, reading: a predictions file (Arrow IPC stream or file, e.g. a run's
// questions.arrow or tokens.arrow, or CSV with a header row) as named columns, and the --where
// row filter. CSV goes through backend/io/csv.ts (quoted fields with commas and line breaks).
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { tableFromIPC, type Table, type Vector } from "apache-arrow";
import { readCsv, type CsvTable } from "../../../io/csv.js";
import { UsageError } from "../../errors.js";

export interface Columns {
  names: string[];
  rows: number;
  /** Numeric column (nulls rejected). */
  numeric(name: string): Float64Array | Float32Array;
  /** 0/1 column from bool or numbers. */
  bool(name: string): Uint8Array;
  /** Reads a column's values as text (for --where equality filters). */
  text(name: string): (i: number) => string;
  /** Probability rows: flat n×K and K. */
  rowsOf(name: string): { data: Float64Array; classes: number } | null;
}

function isArrowBytes(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, 6));
  if (head === "ARROW1") return true;
  // Stream format: messages start with the 0xFFFFFFFF continuation marker (or, pre-0.15, a length).
  return bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0xff;
}

/** Arrow IPC (stream or file) or CSV, by extension or, failing that, by the first bytes. */
export async function readPredictions(file: string): Promise<Columns> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (err as Error).message;
    throw new UsageError(`cannot read ${file}: ${why}`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === ".csv" || (ext !== ".arrow" && ext !== ".arrows" && ext !== ".ipc" && ext !== ".feather" && !isArrowBytes(bytes))) {
    if (new TextDecoder().decode(bytes).trim() === "") throw new UsageError(`${file} is empty`);
    return csvColumns(await readCsv(file), file);
  }
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new UsageError(`${file} is not a readable Arrow IPC file or stream: ${(err as Error).message.split("\n")[0]}`);
  }
  return arrowColumns(table, file);
}

function arrowColumns(table: Table, file: string): Columns {
  const names = table.schema.fields.map((f) => f.name);
  const child = (name: string): Vector => {
    const v = table.getChild(name);
    if (!v) throw new UsageError(`${file} has no column '${name}' (columns: ${names.join(", ")})`);
    return v;
  };
  const noNulls = (v: Vector, name: string) => {
    if (v.nullCount > 0) throw new RangeError(`column ${name} has ${v.nullCount} null values`);
  };
  return {
    names,
    rows: table.numRows,
    numeric(name) {
      const v = child(name);
      noNulls(v, name);
      const a = v.toArray() as unknown;
      if (a instanceof Float32Array || a instanceof Float64Array) return a;
      if (ArrayBuffer.isView(a) || Array.isArray(a)) return Float64Array.from(a as ArrayLike<number | bigint>, Number);
      throw new TypeError(`column ${name} is ${String(v.type)}, not numeric`);
    },
    bool(name) {
      const v = child(name);
      noNulls(v, name);
      const out = new Uint8Array(v.length);
      if (String(v.type) === "Bool") {
        // Unpack the validity-free bitmaps chunk by chunk.
        let o = 0;
        for (const d of v.data) {
          const bits = d.values as Uint8Array;
          for (let i = 0; i < d.length; i++) {
            const j = d.offset + i;
            out[o++] = (bits[j >> 3]! >> (j & 7)) & 1;
          }
        }
        return out;
      }
      const a = v.toArray() as ArrayLike<number | bigint>;
      for (let i = 0; i < out.length; i++) {
        const x = Number(a[i]);
        if (x !== 0 && x !== 1) throw new RangeError(`column ${name}[${i}] = ${x} must be 0 or 1`);
        out[i] = x;
      }
      return out;
    },
    text(name) {
      const v = child(name);
      return (i) => {
        const x = v.get(i);
        return x === null || x === undefined ? "null" : String(x);
      };
    },
    rowsOf(name) {
      const v = table.getChild(name);
      if (!v) return null;
      noNulls(v, name);
      if (!String(v.type).startsWith("List")) throw new TypeError(`column ${name} is ${String(v.type)}, not a list of numbers`);
      let K = -1;
      const n = v.length;
      let out = new Float64Array(0);
      for (let i = 0; i < n; i++) {
        const row = v.get(i) as Vector | null;
        if (!row) throw new RangeError(`column ${name}[${i}] is null`);
        if (K < 0) {
          K = row.length;
          out = new Float64Array(n * K);
        } else if (row.length !== K) throw new RangeError(`column ${name}: row ${i} has ${row.length} values, row 0 has ${K}`);
        const vals = row.toArray() as ArrayLike<number>;
        for (let k = 0; k < K; k++) out[i * K + k] = vals[k]!;
      }
      return { data: out, classes: K };
    },
  };
}

function csvColumns(csv: CsvTable, file: string): Columns {
  // fields are trimmed: "a, b" headers and " 1" values read as written by hand
  const names = csv.names.map((n) => n.trim());
  const cells = csv.rows.map((r) => r.map((c) => c.trim()));
  if (!names.includes("confidence") && !names.some((n) => /^(p\d+|prob_.+)$/.test(n)) && !names.includes("correct")) {
    throw new UsageError(`${file}: the header has neither confidence/correct nor probability columns (got ${names.join(", ")})`);
  }
  const index = (name: string) => {
    const j = names.indexOf(name);
    if (j < 0) throw new UsageError(`${file} has no column '${name}' (columns: ${names.join(", ")})`);
    return j;
  };
  const number = (s: string, name: string, r: number) => {
    const x = Number(s);
    if (s === "" || Number.isNaN(x)) throw new RangeError(`column ${name} row ${r + 1}: '${s}' is not a number`);
    return x;
  };
  const probCols = (): number[] => {
    const p = names.map((n, j) => [n, j] as const).filter(([n]) => /^p\d+$/.test(n)).sort((a, b) => Number(a[0].slice(1)) - Number(b[0].slice(1)));
    if (p.length > 0) {
      p.forEach(([n], k) => {
        if (n !== `p${k}`) throw new UsageError(`${file}: probability columns must be p0..p${p.length - 1}, missing p${k}`);
      });
      return p.map(([, j]) => j);
    }
    return names.map((n, j) => [n, j] as const).filter(([n]) => n.startsWith("prob_")).map(([, j]) => j);
  };
  return {
    names,
    rows: cells.length,
    numeric(name) {
      const j = index(name);
      return Float64Array.from(cells, (c, r) => number(c[j]!, name, r));
    },
    bool(name) {
      const j = index(name);
      return Uint8Array.from(cells, (c, r) => {
        const s = c[j]!.toLowerCase();
        if (s === "1" || s === "true") return 1;
        if (s === "0" || s === "false") return 0;
        throw new RangeError(`column ${name} row ${r + 1}: '${c[j]}' must be 0, 1, true or false`);
      });
    },
    text(name) {
      const j = index(name);
      return (i) => cells[i]![j]!;
    },
    rowsOf(name) {
      if (name !== "probs") return null;
      const cols = probCols();
      if (cols.length === 0) return null;
      const K = cols.length;
      const out = new Float64Array(cells.length * K);
      cells.forEach((c, r) => cols.forEach((j, k) => (out[r * K + k] = number(c[j]!, names[j]!, r))));
      return { data: out, classes: K };
    },
  };
}

/** Row filter from --where COL=VALUE (text equality). */
export function rowMask(cols: Columns, where: string[]): Uint32Array | null {
  if (where.length === 0) return null;
  const conds = where.map((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0) throw new UsageError(`--where must be COL=VALUE (got '${w}')`);
    const col = w.slice(0, eq);
    if (!cols.names.includes(col)) throw new UsageError(`--where: no column '${col}' (columns: ${cols.names.join(", ")})`);
    return [cols.text(col), w.slice(eq + 1)] as const;
  });
  const keep: number[] = [];
  for (let i = 0; i < cols.rows; i++) if (conds.every(([get, v]) => get(i) === v)) keep.push(i);
  if (keep.length === 0) throw new RangeError(`no rows match ${where.join(" and ")}`);
  return Uint32Array.from(keep);
}

export function take<T extends Float64Array | Float32Array | Uint8Array | Int32Array>(a: T, idx: Uint32Array | null, K = 1): T {
  if (!idx) return a;
  const out = new (a.constructor as { new (n: number): T })(idx.length * K);
  for (let t = 0; t < idx.length; t++) for (let k = 0; k < K; k++) out[t * K + k] = a[idx[t]! * K + k]!;
  return out;
}
