// DuckDB SQL for the binned top-label metrics, identical in definition to the TypeScript in
// ../binning.ts and ../calibration.ts (tests check both agree to 1e-9). Only SQL that DuckDB 1.1.1
// (DuckDB-wasm 1.29) supports is used, and no extension.
//
// Two ways to use it:
//   1. Query templates (any DuckDB): reliabilitySql({ from: "tokens", bins: 15 }) and
//      binnedMetricsSql({ from: "(SELECT * FROM questions WHERE epoch = 3)", scheme: "equal-mass",
//      bins: 10, groupBy: ["run_id", "task"] }) return a complete SELECT statement.
//   2. Macros for a SQL console: run calibrationMacrosSql() once, then e.g.
//      FROM calib_metrics('tokens', 15)  ·  FROM calib_reliability_equal_mass('questions', 10)
//      (table macros take a table or view name; use a view for filters).
// The source needs columns `confidence` (FLOAT/DOUBLE in [0, 1]) and `correct` (BOOLEAN or 0/1);
// other names can be given to the templates. By default a NULL, NaN or out-of-range value stops
// the query with error(...) (as the TypeScript throws); validate: false skips that check.
//
// Binning, exactly as in TypeScript (c cast to DOUBLE first):
//   equal-width: bin = CAST(LEAST(FLOOR(c * M), M - 1) AS INTEGER)
//   equal-mass:  bin = (M * RANK() OVER (ORDER BY c) - 1) // COUNT(*) OVER ()   (ties share a rank)

import { DEFAULT_BINS, DEFAULT_SCHEME } from "../binning.js";
import { Z95 } from "../calibration.js";
import { checkBins, checkPositive, checkScheme, type Scheme } from "../validate.js";

export interface SqlOptions {
  /** A table or view name, or a parenthesized subquery: inserted verbatim after FROM. */
  from: string;
  /** Number of bins (default 15). */
  bins?: number;
  scheme?: Scheme;
  /** Confidence column (default `confidence`). */
  confidence?: string;
  /** Correctness column (default `correct`). */
  correct?: string;
  /** Compute everything per group of these columns. */
  groupBy?: readonly string[];
  /** z of the Wilson intervals (default 1.96). */
  z?: number;
  /** Stop with an error on NULL / NaN / out-of-range values (default true). */
  validate?: boolean;
}

/** A DOUBLE literal that parses to exactly the same float64 as `x` in JavaScript. */
export function sqlDouble(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  return `CAST('${String(x)}' AS DOUBLE)`;
}

/** Double-quoted SQL identifier; names must be plain identifiers. */
export function sqlIdent(name: string, field = "column"): string {
  if (typeof name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new RangeError(`${field} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*), got ${JSON.stringify(name)}`);
  }
  return `"${name}"`;
}

interface Parts {
  from: string;
  bins: string;
  scheme: Scheme;
  c: string;
  a: string;
  groups: string[];
  z: string;
  validate: boolean;
}

function parts(opts: SqlOptions): Parts {
  if (opts === null || typeof opts !== "object") throw new TypeError("options must be an object with `from`");
  if (typeof opts.from !== "string" || opts.from.trim() === "") throw new TypeError("from must be a non-empty table name or subquery");
  const groups = (opts.groupBy ?? []).map((g, i) => sqlIdent(g, `groupBy[${i}]`));
  return {
    from: opts.from,
    bins: String(checkBins(opts.bins ?? DEFAULT_BINS)),
    scheme: checkScheme(opts.scheme ?? DEFAULT_SCHEME),
    c: sqlIdent(opts.confidence ?? "confidence", "confidence"),
    a: sqlIdent(opts.correct ?? "correct", "correct"),
    groups,
    z: sqlDouble(checkPositive(opts.z ?? Z95, "z")),
    validate: opts.validate ?? true,
  };
}

/** The common CTEs: validated examples → bins → per-bin sums (calib_bins). */
function binsCtes(p: Parts): string {
  const g = p.groups.length ? p.groups.join(", ") + ", " : "";
  const partition = p.groups.length ? `PARTITION BY ${p.groups.join(", ")} ` : "";
  const M = p.bins;
  const cExpr = p.validate
    ? `CASE WHEN ${p.c} IS NULL OR isnan(CAST(${p.c} AS DOUBLE)) OR ${p.c} < 0 OR ${p.c} > 1 ` +
      `THEN error('confidence must be in [0, 1], got ' || COALESCE(CAST(${p.c} AS VARCHAR), 'NULL')) ELSE CAST(${p.c} AS DOUBLE) END`
    : `CAST(${p.c} AS DOUBLE)`;
  const aExpr = p.validate
    ? `CASE WHEN ${p.a} IS NULL OR CAST(${p.a} AS DOUBLE) NOT IN (0, 1) ` +
      `THEN error('correct must be 0/1 or a boolean, got ' || COALESCE(CAST(${p.a} AS VARCHAR), 'NULL')) ELSE CAST(${p.a} AS DOUBLE) END`
    : `CAST(${p.a} AS DOUBLE)`;
  const binExpr = p.scheme === "equal-width"
    ? `CAST(LEAST(FLOOR(c * ${M}), ${M} - 1) AS INTEGER)`
    : `CAST((${M} * RANK() OVER (${partition}ORDER BY c) - 1) // COUNT(*) OVER (${partition.trimEnd()}) AS INTEGER)`;
  const edges = p.scheme === "equal-width"
    ? `CAST(bin AS DOUBLE) / ${M} AS bin_lo, CAST(bin + 1 AS DOUBLE) / ${M} AS bin_hi`
    : `CASE WHEN ROW_NUMBER() OVER (${partition}ORDER BY bin) = 1 THEN 0.0 ELSE c_min END AS bin_lo, ` +
      `COALESCE(LEAD(c_min) OVER (${partition}ORDER BY bin), 1.0) AS bin_hi`;
  return [
    `calib_src AS (`,
    `  SELECT ${g}${cExpr} AS c, ${aExpr} AS a`,
    `  FROM ${p.from}`,
    `),`,
    `calib_binned AS (`,
    `  SELECT ${g}c, a, ${binExpr} AS bin`,
    `  FROM calib_src`,
    `),`,
    `calib_sums AS (`,
    `  SELECT ${g}bin, CAST(COUNT(*) AS DOUBLE) AS n_b, SUM(c) AS s_c, SUM(a) AS s_a, SUM((c - a) * (c - a)) AS s_sq, MIN(c) AS c_min`,
    `  FROM calib_binned`,
    `  GROUP BY ${g}bin`,
    `),`,
    `calib_bins AS (`,
    `  SELECT *, s_a / n_b AS acc, s_c / n_b AS conf, ${edges}`,
    `  FROM calib_sums`,
    `)`,
  ].join("\n");
}

/**
 * Reliability-diagram rows, one per non-empty bin (and group): [groups…], bin, bin_lo, bin_hi,
 * count, confidence, accuracy, wilson_lo, wilson_hi. Ordered by groups, then bin.
 */
export function reliabilitySql(opts: SqlOptions): string {
  const p = parts(opts);
  return reliabilityFrom(p);
}

function reliabilityFrom(p: Parts): string {
  const g = p.groups.length ? p.groups.join(", ") + ", " : "";
  const z = p.z;
  return [
    `WITH ${binsCtes(p)},`,
    `calib_wilson AS (`,
    `  SELECT *, (acc + ${z} * ${z} / (2 * n_b)) / (1 + ${z} * ${z} / n_b) AS w_center,`,
    `    (${z} / (1 + ${z} * ${z} / n_b)) * SQRT(acc * (1 - acc) / n_b + ${z} * ${z} / (4 * n_b * n_b)) AS w_half`,
    `  FROM calib_bins`,
    `)`,
    `SELECT ${g}bin, bin_lo, bin_hi, CAST(n_b AS BIGINT) AS count, conf AS confidence, acc AS accuracy,`,
    `  GREATEST(0.0, w_center - w_half) AS wilson_lo, LEAST(1.0, w_center + w_half) AS wilson_hi`,
    `FROM calib_wilson`,
    `ORDER BY ${g}bin`,
  ].join("\n");
}

/**
 * One row per group (one row without groupBy): [groups…], n, accuracy, mean_confidence, brier
 * (top-label), ece, rmsce, mce, ace, debiased_l2 — the definitions of ../calibration.ts.
 */
export function binnedMetricsSql(opts: SqlOptions): string {
  return metricsFrom(parts(opts));
}

function metricsFrom(p: Parts): string {
  const g = p.groups.length ? p.groups.join(", ") + ", " : "";
  const groupBy = p.groups.length ? `\nGROUP BY ${p.groups.join(", ")}\nORDER BY ${p.groups.join(", ")}` : "";
  return [
    `WITH ${binsCtes(p)}`,
    `SELECT ${g}CAST(SUM(n_b) AS BIGINT) AS n,`,
    `  SUM(s_a) / SUM(n_b) AS accuracy,`,
    `  SUM(s_c) / SUM(n_b) AS mean_confidence,`,
    `  SUM(s_sq) / SUM(n_b) AS brier,`,
    `  SUM(n_b * ABS(acc - conf)) / SUM(n_b) AS ece,`,
    `  SQRT(SUM(n_b * (acc - conf) * (acc - conf)) / SUM(n_b)) AS rmsce,`,
    `  MAX(ABS(acc - conf)) AS mce,`,
    `  AVG(ABS(acc - conf)) AS ace,`,
    `  SQRT(GREATEST(0.0, SUM(CASE WHEN n_b >= 2 THEN n_b * ((acc - conf) * (acc - conf) - acc * (1 - acc) / (n_b - 1)) ELSE 0.0 END) / SUM(n_b))) AS debiased_l2`,
    `FROM calib_bins${groupBy}`,
  ].join("\n");
}

/**
 * CREATE OR REPLACE MACRO statements for a SQL console (run once per database):
 *   calib_bin_equal_width(c, m)          the equal-width bin of a confidence
 *   calib_bin_equal_mass(rnk, n, m)      the equal-mass bin from rnk = RANK() OVER (ORDER BY c) (1-based) and n
 *   calib_wilson_lo(k, n [, z := 1.96]), calib_wilson_hi(k, n [, z := 1.96])   Wilson bounds of k successes in n (pass z by name)
 *   calib_reliability(tbl, m := 15), calib_reliability_equal_mass(tbl, m := 10)   reliability rows
 *   calib_metrics(tbl, m := 15), calib_metrics_equal_mass(tbl, m := 10)           one metrics row
 * The table macros read columns confidence and correct of the table or view named by tbl.
 */
export function calibrationMacrosSql(): string {
  const z = sqlDouble(Z95);
  // The table macros use the same templates with the bin count bound to the macro parameter m.
  const table = (scheme: Scheme): Parts => ({
    from: "query_table(tbl)", bins: "m", scheme, c: '"confidence"', a: '"correct"', groups: [], z, validate: true,
  });
  return [
    `CREATE OR REPLACE MACRO calib_bin_equal_width(c, m) AS CAST(LEAST(FLOOR(CAST(c AS DOUBLE) * m), m - 1) AS INTEGER);`,
    `CREATE OR REPLACE MACRO calib_bin_equal_mass(rnk, n, m) AS CAST((m * rnk - 1) // n AS INTEGER);`,
    `CREATE OR REPLACE MACRO calib_wilson_lo(k, n, z := ${z}) AS GREATEST(0.0, ` +
      `(CAST(k AS DOUBLE) / n + z * z / (2 * n)) / (1 + z * z / n) - (z / (1 + z * z / n)) * SQRT((CAST(k AS DOUBLE) / n) * (1 - CAST(k AS DOUBLE) / n) / n + z * z / (4 * n * n)));`,
    `CREATE OR REPLACE MACRO calib_wilson_hi(k, n, z := ${z}) AS LEAST(1.0, ` +
      `(CAST(k AS DOUBLE) / n + z * z / (2 * n)) / (1 + z * z / n) + (z / (1 + z * z / n)) * SQRT((CAST(k AS DOUBLE) / n) * (1 - CAST(k AS DOUBLE) / n) / n + z * z / (4 * n * n)));`,
    `CREATE OR REPLACE MACRO calib_reliability(tbl, m := ${DEFAULT_BINS}) AS TABLE\n${reliabilityFrom(table("equal-width"))};`,
    `CREATE OR REPLACE MACRO calib_reliability_equal_mass(tbl, m := 10) AS TABLE\n${reliabilityFrom(table("equal-mass"))};`,
    `CREATE OR REPLACE MACRO calib_metrics(tbl, m := ${DEFAULT_BINS}) AS TABLE\n${metricsFrom(table("equal-width"))};`,
    `CREATE OR REPLACE MACRO calib_metrics_equal_mass(tbl, m := 10) AS TABLE\n${metricsFrom(table("equal-mass"))};`,
  ].join("\n\n");
}
