// calib metrics FILE: calibration metrics of per-example predictions stored as Arrow IPC (stream or
// file format, e.g. a run's questions.arrow or tokens.arrow) or CSV. All numbers come from
// backend/metrics (the same code the site and the loaders use).
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { tableFromIPC, type Table, type Vector } from "apache-arrow";
import {
  adaptiveClasswiseCE, BOOTSTRAP_METRICS, bootstrapMetrics, binnedMetrics, brierMulticlass, classwiseECE, fitTemperature,
  fitTemperatureFromProbs, probabilityRows, riskCoverage, smECE, topLabel, rowEntropy, nll, nllFromProbs, entropySummary,
  type BootstrapResult, type FloatArray, type Norm, type Scheme, type TemperatureFit,
} from "../../metrics/index.js";
import { num, oneOf, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "calibration metrics (ECE, RMS-CE, smECE, Brier, NLL, reliability bins, bootstrap CIs) of a predictions file";

const HELP = `usage: calib metrics FILE [options]

FILE is Arrow IPC (stream or file format) or CSV with a header row. Columns used:
  confidence, correct   top-label confidence in [0, 1] and correctness (bool or 0/1)   (required unless probs)
  p_target              probability of the true label → NLL                           (optional)
  entropy               predictive entropy in nats → mean entropy                      (optional)
  probs + gold|label    probability rows → multiclass Brier, NLL, entropy, classwise CE, temperature
                        (Arrow: a list<float> column "probs"; CSV: columns p0..p{K-1} or prob_*)
  logits                Arrow list<float> column: temperature scaling is fitted on it (else on log probs)
When confidence/correct are absent they are derived from the probability rows (argmax, first on ties).

options:
  --bins M               number of bins                                   (default 15)
  --scheme S             equal-width | equal-mass                         (default equal-width)
  --norm N               l1 (ECE) | l2 (RMS-CE) | max (MCE): the headline and classwise norm (default l1)
  --bootstrap R          percentile-bootstrap resamples, 0 for none       (default 1000)
  --seed S               bootstrap seed                                   (default 0)
  --level L              interval coverage                                (default 0.95)
  --confidence-col NAME  confidence column (e.g. confidence_norm)         (default confidence)
  --correct-col NAME     correctness column (e.g. correct_norm)           (default correct)
  --where COL=VALUE      keep rows where COL equals VALUE (repeatable; e.g. --where epoch=3 --where split=test)
  --json                 print JSON instead of tables

examples:
  calib metrics data/runs/ls-0.1/questions.arrow --where epoch=3 --where task=pos
  calib metrics preds.csv --bins 10 --scheme equal-mass --norm l2 --json`;

// ---------------------------------------------------------------------------------------------
// Reading

interface Columns {
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

function readFile(file: string): Columns {
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
    return csvColumns(new TextDecoder().decode(bytes), file);
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

function csvColumns(text: string, file: string): Columns {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new UsageError(`${file} is empty`);
  const unquote = (s: string) => s.trim().replace(/^"(.*)"$/, "$1");
  const names = lines[0]!.split(",").map(unquote);
  if (!names.includes("confidence") && !names.some((n) => /^(p\d+|prob_.+)$/.test(n)) && !names.includes("correct")) {
    throw new UsageError(`${file}: the header has neither confidence/correct nor probability columns (got ${names.join(", ")})`);
  }
  const cells = lines.slice(1).map((l, r) => {
    const c = l.split(",").map(unquote);
    if (c.length !== names.length) throw new RangeError(`${file} line ${r + 2} has ${c.length} fields, the header has ${names.length}`);
    return c;
  });
  const index = (name: string) => {
    const j = names.indexOf(name);
    if (j < 0) throw new UsageError(`${file} has no column '${name}' (columns: ${names.join(", ")})`);
    return j;
  };
  const number = (s: string, name: string, r: number) => {
    const x = Number(s);
    if (s === "" || Number.isNaN(x)) throw new RangeError(`column ${name} line ${r + 2}: '${s}' is not a number`);
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
        throw new RangeError(`column ${name} line ${r + 2}: '${c[j]}' must be 0, 1, true or false`);
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
function rowMask(cols: Columns, where: string[]): Uint32Array | null {
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

function take<T extends Float64Array | Float32Array | Uint8Array | Int32Array>(a: T, idx: Uint32Array | null, K = 1): T {
  if (!idx) return a;
  const out = new (a.constructor as { new (n: number): T })(idx.length * K);
  for (let t = 0; t < idx.length; t++) for (let k = 0; k < K; k++) out[t * K + k] = a[idx[t]! * K + k]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

function progressBar(enabled: boolean, label: string) {
  if (!enabled || !process.stderr.isTTY) return { update: (_d: number, _t: number) => {}, done: () => {} };
  let last = -1;
  return {
    update(done: number, total: number) {
      const pct = Math.floor((100 * done) / total);
      if (pct === last) return;
      last = pct;
      const width = 30;
      const fill = Math.round((width * done) / total);
      process.stderr.write(`\r${label} [${"#".repeat(fill)}${" ".repeat(width - fill)}] ${pct}%`);
    },
    done() {
      process.stderr.write("\r\x1b[K");
    },
  };
}

const f = (x: number | null | undefined, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits));

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((c, j) => (j === 0 ? c.padEnd(w[j]!) : c.padStart(w[j]!))).join("  ").trimEnd();
  return [line(rows[0]!), w.map((x) => "-".repeat(x)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) return null;
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
    return v;
  }));
}

// ---------------------------------------------------------------------------------------------

let epipeHandled = false;

export async function run(argv: string[]): Promise<number> {
  // `calib metrics … | head` closes the pipe early: stop quietly instead of a stack trace.
  if (!epipeHandled) {
    epipeHandled = true;
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
  }
  const { values, positionals } = parse(argv, {
    bins: { type: "string" }, scheme: { type: "string" }, norm: { type: "string" }, bootstrap: { type: "string" },
    seed: { type: "string" }, level: { type: "string" }, "confidence-col": { type: "string" }, "correct-col": { type: "string" },
    where: { type: "string", multiple: true }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "missing FILE (see calib metrics --help)" : `unexpected argument '${positionals[1]}'`);
  }
  const file = positionals[0]!;
  const bins = num(values.bins, "bins", 15, (x) => Number.isInteger(x) && x >= 1 && x <= 1_000_000, "an integer in [1, 1000000]");
  const scheme: Scheme = oneOf(values.scheme, "scheme", ["equal-width", "equal-mass"] as const, "equal-width");
  const norm: Norm = oneOf(values.norm, "norm", ["l1", "l2", "max"] as const, "l1");
  const resamples = num(values.bootstrap, "bootstrap", 1000, (x) => Number.isInteger(x) && x >= 0 && x <= 10_000_000, "an integer ≥ 0");
  const seed = num(values.seed, "seed", 0, (x) => Number.isSafeInteger(x) && x >= 0, "an integer ≥ 0");
  const level = num(values.level, "level", 0.95, (x) => x > 0 && x < 1, "a number in (0, 1)");
  const json = values.json ?? false;

  const cols = readFile(file);
  if (cols.rows === 0) throw new RangeError(`${file} has no rows`);
  const mask = rowMask(cols, values.where ?? []);
  const confName = values["confidence-col"] ?? "confidence";
  const corName = values["correct-col"] ?? "correct";
  const labelName = ["gold", "label"].find((n) => cols.names.includes(n));
  const rawRows = cols.rowsOf("probs");
  let probs: { data: Float64Array; classes: number; labels: Int32Array } | null = null;
  if (rawRows) {
    if (!labelName) throw new UsageError(`${file} has probability columns but no 'gold' or 'label' column`);
    const labels = Int32Array.from(cols.numeric(labelName), (x, i) => {
      if (!Number.isInteger(x)) throw new RangeError(`column ${labelName}[${i}] = ${x} is not an integer`);
      return x;
    });
    probs = { data: take(rawRows.data, mask, rawRows.classes), classes: rawRows.classes, labels: take(labels, mask) };
    probabilityRows(probs.data, probs.labels, probs.classes, { field: "probs" });
  }

  let confidence: FloatArray;
  let correct: Uint8Array;
  const hasTop = cols.names.includes(confName) && cols.names.includes(corName);
  const asked = values["confidence-col"] !== undefined || values["correct-col"] !== undefined;
  const half = cols.names.includes(confName) !== cols.names.includes(corName);
  if (!hasTop && (asked || half || !probs)) {
    throw new UsageError(`${file} needs columns '${confName}' and '${corName}'${asked || half ? "" : " (or probability rows)"}; columns: ${cols.names.join(", ")}`);
  }
  if (hasTop) {
    confidence = take(cols.numeric(confName), mask);
    correct = take(cols.bool(corName), mask);
  } else {
    const t = topLabel(probs!.data, probs!.labels, probs!.classes);
    confidence = t.confidence;
    correct = t.correct;
  }
  let pTarget: FloatArray | undefined = cols.names.includes("p_target") ? take(cols.numeric("p_target"), mask) : undefined;
  let entropy: FloatArray | undefined = cols.names.includes("entropy") ? take(cols.numeric("entropy"), mask) : undefined;
  if (probs) {
    pTarget ??= topLabel(probs.data, probs.labels, probs.classes).pTarget;
    entropy ??= rowEntropy(probs.data, probs.classes);
  }
  const n = confidence.length;

  const m = binnedMetrics(confidence, correct, { bins, scheme });
  const sm = smECE(confidence, correct);
  const rc = riskCoverage(confidence, correct);
  let boot: BootstrapResult | null = null;
  if (resamples > 0) {
    const bar = progressBar(true, `bootstrap ${resamples}×`);
    boot = bootstrapMetrics(
      { confidence, correct, ...(pTarget ? { pTarget } : {}), ...(entropy ? { entropy } : {}) },
      { bins, scheme, resamples, seed, level, onProgress: bar.update },
    );
    bar.done();
  }
  let rowMetrics: Record<string, unknown> | null = null;
  let temp: TemperatureFit | null = null;
  if (probs) {
    const logitCol = cols.rowsOf("logits");
    if (logitCol && logitCol.classes === probs.classes) temp = fitTemperature(take(logitCol.data, mask, logitCol.classes), probs.labels, probs.classes);
    else temp = fitTemperatureFromProbs(probs.data, probs.labels, probs.classes);
    rowMetrics = {
      classes: probs.classes,
      brierMulticlass: brierMulticlass(probs.data, probs.labels, probs.classes),
      nll: nllFromProbs(probs.data, probs.labels, probs.classes),
      classwiseCE: classwiseECE(probs.data, probs.labels, probs.classes, { bins, scheme, norm }),
      adaptiveClasswiseCE: adaptiveClasswiseCE(probs.data, probs.labels, probs.classes, { bins }),
      temperature: { ...temp, source: logitCol && logitCol.classes === probs.classes ? "logits" : "log probs" },
    };
  }
  const point: Record<string, number> = {
    accuracy: m.accuracy, meanConfidence: m.meanConfidence, ece: m.ece, rmsce: m.rmsce, mce: m.mce, ace: m.ace, debiasedL2: m.debiasedL2,
    brier: m.brier, nll: pTarget ? nll(pTarget) : NaN, meanEntropy: entropy ? entropySummary(entropy).mean : NaN,
  };
  const headlineKey = norm === "l1" ? "ece" : norm === "l2" ? "rmsce" : "mce";

  if (json) {
    const metrics: Record<string, unknown> = {};
    for (const k of BOOTSTRAP_METRICS) {
      if (Number.isNaN(point[k]!)) continue;
      const ci = boot?.metrics[k];
      metrics[k] = { estimate: point[k], lo: ci?.lo ?? null, hi: ci?.hi ?? null, se: ci?.se ?? null };
    }
    metrics.smece = { estimate: sm.value, sigma: sm.sigma };
    metrics.aurc = { estimate: rc.aurc };
    metrics.eaurc = { estimate: rc.eaurc };
    const rel = m.reliability;
    console.log(JSON.stringify(jsonSafe({
      file, n, bins, scheme, norm, resamples, seed, level, where: values.where ?? [],
      calibrationError: { norm, ...(metrics[headlineKey] as object) },
      metrics,
      probabilityRows: rowMetrics,
      reliability: rel.bin.map((b, i) => ({
        bin: b, lo: rel.lo[i], hi: rel.hi[i], count: rel.count[i], confidence: rel.confidence[i], accuracy: rel.accuracy[i],
        wilsonLo: rel.wilsonLo[i], wilsonHi: rel.wilsonHi[i],
      })),
    }), null, 2));
    return 0;
  }

  const pct = Math.round(level * 100);
  const ciOf = (k: (typeof BOOTSTRAP_METRICS)[number]) => {
    const c = boot?.metrics[k];
    return c ? `[${f(c.lo)}, ${f(c.hi)}]` : "";
  };
  const lines: string[][] = [["metric", "value", resamples > 0 ? `${pct}% CI` : ""]];
  const row = (label: string, k: (typeof BOOTSTRAP_METRICS)[number]) => {
    if (!Number.isNaN(point[k]!)) lines.push([label, f(point[k]), ciOf(k)]);
  };
  row("accuracy", "accuracy");
  row("mean confidence", "meanConfidence");
  row(`ECE (l1)${headlineKey === "ece" ? " *" : ""}`, "ece");
  row(`RMS-CE (l2)${headlineKey === "rmsce" ? " *" : ""}`, "rmsce");
  row(`MCE (max)${headlineKey === "mce" ? " *" : ""}`, "mce");
  row("ACE (equal bin weight)", "ace");
  row("debiased L2 (Kumar)", "debiasedL2");
  lines.push([`smECE (σ* = ${sm.sigma.toFixed(4)})`, f(sm.value), ""]);
  row("Brier (top-label)", "brier");
  row("NLL", "nll");
  row("mean entropy (nats)", "meanEntropy");
  lines.push(["AURC", f(rc.aurc), ""], ["eAURC", f(rc.eaurc), ""]);
  if (rowMetrics && temp) {
    lines.push(
      [`Brier (multiclass, K = ${probs!.classes})`, f(rowMetrics.brierMulticlass as number), ""],
      [`classwise CE (${norm})`, f(rowMetrics.classwiseCE as number), ""],
      ["adaptive classwise CE (Nixon)", f(rowMetrics.adaptiveClasswiseCE as number), ""],
      [`temperature T* (${(rowMetrics.temperature as { source: string }).source})`, f(temp.temperature), `NLL ${f(temp.nllAtOne)} → ${f(temp.nll)}`],
    );
  }
  const where = values.where?.length ? `, where ${values.where.join(" and ")}` : "";
  console.log(`${file}: ${n.toLocaleString("en-US")} examples${where}; ${bins} ${scheme} bins` +
    (resamples > 0 ? `; ${resamples} bootstrap resamples (seed ${seed}, percentile)` : "") + `; * = --norm ${norm}\n`);
  console.log(table(lines));
  const rel = m.reliability;
  const relRows: string[][] = [["bin", "range", "count", "confidence", "accuracy", "gap", "Wilson 95%"]];
  rel.bin.forEach((b, i) => {
    const last = rel.hi[i] === 1;
    relRows.push([String(b), `[${f(rel.lo[i], 3)}, ${f(rel.hi[i], 3)}${last ? "]" : ")"}`, String(rel.count[i]), f(rel.confidence[i]),
      f(rel.accuracy[i]), f(rel.accuracy[i]! - rel.confidence[i]!), `[${f(rel.wilsonLo[i], 3)}, ${f(rel.wilsonHi[i], 3)}]`]);
  });
  console.log(`\nreliability (non-empty bins; gap = accuracy − confidence)\n`);
  console.log(table(relRows));
  return 0;
}
