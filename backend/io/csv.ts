// CSV files (RFC 4180: comma-separated, double-quoted fields that may hold commas, quotes written
// as "" and line breaks; a header row) read by DuckDB's CSV reader (@duckdb/node-api), every
// field as text: the caller decides what a number is. Blank lines are skipped. A row whose number
// of fields differs from the header's is an error naming its line (RangeError); so is a file
// that is not CSV at all. Nothing is guessed from the data: the dialect is fixed.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CsvTable {
  /** the header's names, unquoted */
  names: string[];
  /** the data rows, one string per column ("" for an empty field) */
  rows: string[][];
}

const DIALECT = `delim = ',', quote = '"', escape = '"', all_varchar = true, parallel = false`;

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

function columnsSpec(n: number): string {
  return `{${Array.from({ length: n }, (_, j) => `'c${j}': 'VARCHAR'`).join(", ")}}`;
}

/** DuckDB's "CSV Error on Line: 3 … Expected Number of Columns: 2 Found: 3" as one line. */
function describeError(err: unknown, file: string): RangeError {
  const m = (err as Error).message;
  const line = /CSV Error on Line: (\d+)/.exec(m)?.[1];
  const counts = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(m);
  if (line && counts) return new RangeError(`${file} line ${line} has ${counts[2]} field${counts[2] === "1" ? "" : "s"}, the header has ${counts[1]}`);
  if (line) return new RangeError(`${file} line ${line}: ${m.split("\n").find((l) => l.trim() !== "" && !/^(Invalid Input Error|CSV Error on Line)/.test(l)) ?? "not valid CSV"}`);
  return new RangeError(`${file} is not readable as CSV: ${m.split("\n")[0]}`);
}

/**
 * Reads a CSV file with a header row. Three passes over the file, all with the same fixed
 * dialect: the widest row (DuckDB's sniffer, rows padded), the header record itself (its field
 * count), then every record strictly with exactly that many fields.
 */
export async function readCsv(file: string): Promise<CsvTable> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  // DuckDB expands glob characters in paths: such a file is read through a plain-named copy
  let path = file;
  let tmp: string | null = null;
  if (/[*?[\]{}]/.test(file)) {
    tmp = mkdtempSync(join(tmpdir(), "calib-csv-"));
    path = join(tmp, "input.csv");
    copyFileSync(file, path);
  }
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    const src = sqlString(path);
    const rowsOf = async (sql: string) => (await con.runAndReadAll(sql)).getRows() as (string | null)[][];
    let widest: number;
    try {
      widest = (await con.runAndReadAll(`SELECT * FROM read_csv(${src}, header = true, null_padding = true, ${DIALECT}) LIMIT 0`)).columnCount;
    } catch (err) {
      throw describeError(err, file);
    }
    const fixed = (n: number, extra: string) => `read_csv(${src}, header = false, auto_detect = false, columns = ${columnsSpec(n)}, ${DIALECT}${extra})`;
    const head = (await rowsOf(`SELECT * FROM ${fixed(widest, ", null_padding = true")} LIMIT 1`))[0] ?? [];
    let width = head.length;
    while (width > 0 && head[width - 1] === null) width--;
    if (width === 0) throw new RangeError(`${file} has no header row`);
    let records: (string | null)[][];
    try {
      records = await rowsOf(`SELECT * FROM ${fixed(width, ", strict_mode = true")}`);
    } catch (err) {
      throw describeError(err, file);
    }
    const text = (r: (string | null)[]) => r.map((c) => c ?? "");
    return { names: text(records[0]!), rows: records.slice(1).map(text) };
  } finally {
    con.closeSync();
    instance.closeSync();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
