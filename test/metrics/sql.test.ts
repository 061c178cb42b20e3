// The DuckDB SQL templates and macros give the same numbers as the TypeScript (to 1e-9), on
// DuckDB 1.5 (@duckdb/node-api) and on DuckDB-wasm 1.29 = DuckDB 1.1.1 (the site's SQL console).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { tableToIPC, Table, makeVector, vectorFromArray, Bool, Utf8 } from "apache-arrow";
import {
  binnedMetrics, binnedMetricsSql, calibrationMacrosSql, reliabilitySql, assignBins, wilsonInterval,
} from "../../backend/metrics/index.js";
import { randomTopLabel } from "./reference.js";
import { connectDuckDBWasm } from "../helpers/duckdb-wasm.js";

type Row = Record<string, unknown>;
interface Engine {
  name: string;
  exec(sql: string): Promise<void>;
  rows(sql: string): Promise<Row[]>;
}

const N = 3000;
const data = randomTopLabel(N, 123, { ties: true });
// Groups for the GROUP BY variant.
const grp = Array.from({ length: N }, (_, i) => ["a", "b", "c"][i % 3]!);

const num = (v: unknown): number => (typeof v === "bigint" ? Number(v) : (v as number));

async function nodeEngine(): Promise<Engine & { close(): void }> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn: DuckDBConnection = await instance.connect();
  await conn.run("CREATE TABLE preds (confidence FLOAT, correct BOOLEAN, grp VARCHAR)");
  const app = await conn.createAppender("preds");
  for (let i = 0; i < N; i++) {
    app.appendFloat(data.conf[i]!);
    app.appendBoolean(data.correct[i] === 1);
    app.appendVarchar(grp[i]!);
    app.endRow();
  }
  app.closeSync();
  return {
    name: "duckdb node-api",
    exec: async (sql) => void (await conn.run(sql)),
    rows: async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS() as Row[],
    close: () => conn.closeSync(),
  };
}

async function wasmEngine(): Promise<Engine> {
  const conn = await connectDuckDBWasm();
  const table = new Table({
    confidence: makeVector(data.conf as Float32Array),
    correct: vectorFromArray(Array.from(data.correct, (v) => v === 1), new Bool()),
    grp: vectorFromArray(grp, new Utf8()),
  });
  conn.insertArrowFromIPCStream(tableToIPC(table, "stream"), { name: "preds" });
  const version = conn.query("SELECT version() AS v").toArray()[0].toJSON().v;
  return {
    name: `duckdb-wasm ${version}`,
    exec: async (sql) => void conn.query(sql),
    rows: async (sql) => conn.query(sql).toArray().map((r: { toJSON(): Row }) => r.toJSON()),
  };
}

const engines: Promise<Engine>[] = [];
const nodeE = nodeEngine();
engines.push(nodeE, wasmEngine());
after(async () => (await nodeE).close());

const close = (a: unknown, b: number, what: string) =>
  assert.ok(Math.abs(num(a) - b) <= 1e-9, `${what}: SQL ${String(a)} vs TS ${b}`);

function checkAgainstTs(rows: Row[], mRows: Row[], conf: Float32Array, correct: Uint8Array, bins: number, scheme: "equal-width" | "equal-mass", what: string) {
  const m = binnedMetrics(conf, correct, { bins, scheme });
  assert.equal(mRows.length, 1, what);
  const r = mRows[0]!;
  assert.equal(num(r.n), conf.length, `${what} n`);
  for (const [col, v] of [
    ["accuracy", m.accuracy], ["mean_confidence", m.meanConfidence], ["brier", m.brier], ["ece", m.ece], ["rmsce", m.rmsce],
    ["mce", m.mce], ["ace", m.ace], ["debiased_l2", m.debiasedL2],
  ] as const) close(r[col], v, `${what} ${col}`);
  const rel = m.reliability;
  assert.deepEqual(rows.map((x) => num(x.bin)), rel.bin, `${what} bins`);
  assert.deepEqual(rows.map((x) => num(x.count)), rel.count, `${what} counts`);
  rows.forEach((x, i) => {
    close(x.bin_lo, rel.lo[i]!, `${what} lo[${i}]`);
    close(x.bin_hi, rel.hi[i]!, `${what} hi[${i}]`);
    close(x.confidence, rel.confidence[i]!, `${what} conf[${i}]`);
    close(x.accuracy, rel.accuracy[i]!, `${what} acc[${i}]`);
    close(x.wilson_lo, rel.wilsonLo[i]!, `${what} wlo[${i}]`);
    close(x.wilson_hi, rel.wilsonHi[i]!, `${what} whi[${i}]`);
  });
}

for (const [idx, label] of [[0, "node-api"], [1, "wasm 1.1.1"]] as const) {
  test(`SQL templates == TypeScript (${label}): both schemes, several bin counts`, async () => {
    const e = await engines[idx]!;
    for (const scheme of ["equal-width", "equal-mass"] as const) {
      for (const bins of [1, 7, 10, 15, 30]) {
        const rows = await e.rows(reliabilitySql({ from: "preds", bins, scheme }));
        const mRows = await e.rows(binnedMetricsSql({ from: "preds", bins, scheme }));
        checkAgainstTs(rows, mRows, data.conf as Float32Array, data.correct, bins, scheme, `${e.name} ${scheme} M=${bins}`);
      }
    }
  });

  test(`SQL GROUP BY and subquery sources == TypeScript per group (${label})`, async () => {
    const e = await engines[idx]!;
    for (const scheme of ["equal-width", "equal-mass"] as const) {
      const mRows = await e.rows(binnedMetricsSql({ from: "preds", bins: 10, scheme, groupBy: ["grp"] }));
      const rRows = await e.rows(reliabilitySql({ from: "preds", bins: 10, scheme, groupBy: ["grp"] }));
      assert.deepEqual(mRows.map((r) => r.grp), ["a", "b", "c"]);
      for (const g of ["a", "b", "c"]) {
        const keep = grp.map((x, i) => (x === g ? i : -1)).filter((i) => i >= 0);
        const c = Float32Array.from(keep, (i) => data.conf[i]!);
        const a = Uint8Array.from(keep, (i) => data.correct[i]!);
        checkAgainstTs(rRows.filter((r) => r.grp === g), mRows.filter((r) => r.grp === g), c, a, 10, scheme, `${e.name} ${scheme} group ${g}`);
        // The same group through a subquery source.
        const sub = await e.rows(binnedMetricsSql({ from: `(SELECT * FROM preds WHERE grp = '${g}')`, bins: 10, scheme }));
        close(sub[0]!.ece, binnedMetrics(c, a, { bins: 10, scheme }).ece, `${e.name} subquery ${g}`);
      }
    }
  });

  test(`SQL macros == TypeScript (${label})`, async () => {
    const e = await engines[idx]!;
    for (const stmt of calibrationMacrosSql().split(";\n\n")) await e.exec(stmt.replace(/;\s*$/, ""));
    const rows = await e.rows("FROM calib_reliability('preds')");
    const mRows = await e.rows("FROM calib_metrics('preds')");
    checkAgainstTs(rows, mRows, data.conf as Float32Array, data.correct, 15, "equal-width", `${e.name} macros ew`);
    const rowsEm = await e.rows("FROM calib_reliability_equal_mass('preds', m := 12)");
    const mEm = await e.rows("FROM calib_metrics_equal_mass('preds', m := 12)");
    checkAgainstTs(rowsEm, mEm, data.conf as Float32Array, data.correct, 12, "equal-mass", `${e.name} macros em`);
    // Scalar macros: bins of every row, and Wilson bounds.
    const ew = assignBins(data.conf, { bins: 15 });
    const em = assignBins(data.conf, { bins: 10, scheme: "equal-mass" });
    const b = await e.rows(
      "SELECT calib_bin_equal_width(confidence, 15) AS ew, calib_bin_equal_mass(RANK() OVER (ORDER BY confidence), COUNT(*) OVER (), 10) AS em, " +
        "confidence FROM preds ORDER BY confidence",
    );
    const order = Array.from({ length: N }, (_, i) => i).sort((i, j) => data.conf[i]! - data.conf[j]!);
    b.forEach((r, t) => {
      assert.equal(num(r.ew), ew[order[t]!], `${e.name} ew bin`);
      assert.equal(num(r.em), em[order[t]!], `${e.name} em bin`);
    });
    const w = await e.rows("SELECT calib_wilson_lo(3, 10) AS lo, calib_wilson_hi(3, 10) AS hi, calib_wilson_hi(0, 2, z := 1.0) AS h1");
    const [lo, hi] = wilsonInterval(3, 10);
    close(w[0]!.lo, lo, `${e.name} wilson lo`);
    close(w[0]!.hi, hi, `${e.name} wilson hi`);
    close(w[0]!.h1, wilsonInterval(0, 2, 1)[1], `${e.name} wilson z=1`);
  });

  test(`SQL rejects out-of-range confidences like the TypeScript does (${label})`, async () => {
    const e = await engines[idx]!;
    await e.exec("CREATE OR REPLACE TABLE bad AS SELECT * FROM (VALUES (0.5::FLOAT, true), (1.5::FLOAT, false)) t(confidence, correct)");
    await assert.rejects(e.rows(binnedMetricsSql({ from: "bad" })), /confidence must be in \[0, 1\]/);
    await e.exec("CREATE OR REPLACE TABLE bad2 AS SELECT * FROM (VALUES (0.5::FLOAT, 2), (0.5::FLOAT, 1)) t(confidence, correct)");
    await assert.rejects(e.rows(binnedMetricsSql({ from: "bad2", scheme: "equal-mass" })), /correct must be 0\/1/);
    await e.exec("CREATE OR REPLACE TABLE bad3 AS SELECT * FROM (VALUES (NULL::FLOAT, true)) t(confidence, correct)");
    await assert.rejects(e.rows(reliabilitySql({ from: "bad3" })), /got NULL/);
  });
}

test("SQL options are validated", () => {
  assert.throws(() => reliabilitySql({ from: "t", bins: 0 }), RangeError);
  assert.throws(() => reliabilitySql({ from: "t", scheme: "quantile" as never }), RangeError);
  assert.throws(() => reliabilitySql({ from: "t", groupBy: ["run_id; DROP TABLE t"] }), /plain identifier/);
  assert.throws(() => binnedMetricsSql({ from: "" }), TypeError);
});
