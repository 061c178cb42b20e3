// calibration.arrow rows (docs/records.md) for the site. A run's own calibration.arrow is used as
// published (source "record"); for a run without one the rows are computed here from its
// questions.arrow and tokens.arrow with backend/metrics' calibrationSummaries (source "loader"),
// the same function the backend uses, so the numbers agree by construction.
import type { Table, Vector } from "apache-arrow";
import { calibrationSummaries, CALIBRATION_COLUMNS, type CalibrationRecord, type SummaryInput } from "../../../backend/metrics/index.js";
import { concatTables, conform, listRuns, readRecord, tableFromRows, type ColumnSpec, type RunInfo } from "./records.js";

export const CALIB_COLUMNS: ColumnSpec[] = [
  ...CALIBRATION_COLUMNS.map((c) => ({ name: c.name, type: c.type })),
  { name: "source", type: "utf8" },
  { name: "resamples", type: "int32" },
];

/** Bootstrap resamples for loader-computed rows: fewer for large n (the interval is then noted as coarser). */
export function resamplesFor(n: number): number {
  return n <= 20_000 ? 1000 : n <= 250_000 ? 200 : 0;
}

interface Group {
  keys: { epoch: number; split: string; task: string; confidence_def: string };
  input: SummaryInput;
}

const col = (t: Table, name: string): Vector | null => t.getChild(name);

function listAt(v: Vector | null, i: number): ArrayLike<number> | null {
  const x = v?.get(i) as { toArray?: () => ArrayLike<number> } | null | undefined;
  return x && typeof x.toArray === "function" ? x.toArray() : null;
}

/** Groups of a questions table: per (epoch, split) × (each task, all) × confidence definition. */
export function questionGroups(q: Table): Group[] {
  const n = q.numRows;
  const epoch = col(q, "epoch")!, split = col(q, "split")!, task = col(q, "task")!, gold = col(q, "gold")!;
  const conf = col(q, "confidence")!, correct = col(q, "correct")!, entropy = col(q, "entropy");
  const probs = col(q, "probs"), vprobs = col(q, "vocab_probs"), pnorm = col(q, "probs_norm");
  const cnorm = col(q, "confidence_norm"), corrnorm = col(q, "correct_norm");
  const buckets = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    for (const t of [String(task.get(i)), "all"]) {
      const k = JSON.stringify([epoch.get(i), split.get(i), t]);
      let b = buckets.get(k);
      if (!b) buckets.set(k, (b = []));
      b.push(i);
    }
  }
  const groups: Group[] = [];
  for (const [k, rows] of buckets) {
    const [e, s, t] = JSON.parse(k) as [number, string, string];
    if (t === "all" && new Set(rows.map((i) => task.get(i))).size === 1) continue; // 'all' = the single task
    const g = (i: number) => gold.get(i) as number;
    const pAt = (v: Vector | null, i: number) => {
      const l = listAt(v, i);
      return l ? l[g(i)]! : NaN;
    };
    const base = { epoch: e, split: s, task: t };
    const ent = entropy ? rows.map((i) => entropy.get(i) as number) : undefined;
    const pt = rows.map((i) => pAt(probs, i));
    groups.push({
      keys: { ...base, confidence_def: "renormalized" },
      input: {
        confidence: rows.map((i) => conf.get(i) as number), correct: rows.map((i) => (correct.get(i) ? 1 : 0)),
        ...(pt.every(Number.isFinite) ? { pTarget: pt } : {}), ...(ent && ent.every(Number.isFinite) ? { entropy: ent } : {}),
      },
    });
    if (rows.every((i) => listAt(vprobs, i))) {
      groups.push({
        keys: { ...base, confidence_def: "vocab" },
        input: {
          confidence: rows.map((i) => Math.max(...Array.from(listAt(vprobs, i)!))),
          correct: rows.map((i) => (correct.get(i) ? 1 : 0)), pTarget: rows.map((i) => pAt(vprobs, i)),
        },
      });
    }
    if (cnorm && corrnorm && rows.every((i) => cnorm.get(i) !== null && corrnorm.get(i) !== null)) {
      const ptn = rows.map((i) => pAt(pnorm, i));
      groups.push({
        keys: { ...base, confidence_def: "norm" },
        input: {
          confidence: rows.map((i) => cnorm.get(i) as number), correct: rows.map((i) => (corrnorm.get(i) ? 1 : 0)),
          ...(ptn.every(Number.isFinite) ? { pTarget: ptn } : {}),
        },
      });
    }
  }
  return groups;
}

/** Groups of a tokens table: per (epoch, split), confidence_def "token", task "next-token" (as backend/runs/calibration.ts). */
export function tokenGroups(t: Table): Group[] {
  const n = t.numRows;
  const epoch = col(t, "epoch")!.toArray() as Int32Array, split = col(t, "split")!;
  const conf = col(t, "confidence")!.toArray() as Float32Array, pt = col(t, "p_target")!.toArray() as Float32Array;
  const ent = col(t, "entropy")!.toArray() as Float32Array, correct = col(t, "correct")!;
  const buckets = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const k = `${epoch[i]}\u0000${split.get(i)}`;
    let b = buckets.get(k);
    if (!b) buckets.set(k, (b = []));
    b.push(i);
  }
  const groups: Group[] = [];
  for (const [k, rows] of buckets) {
    const [e, s] = k.split("\u0000");
    const m = rows.length;
    const c = new Float32Array(m), a = new Uint8Array(m), p = new Float32Array(m), h = new Float32Array(m);
    for (let j = 0; j < m; j++) {
      const i = rows[j]!;
      c[j] = conf[i]!;
      a[j] = correct.get(i) ? 1 : 0;
      p[j] = pt[i]!;
      h[j] = ent[i]!;
    }
    groups.push({ keys: { epoch: Number(e), split: s!, task: "next-token", confidence_def: "token" }, input: { confidence: c, correct: a, pTarget: p, entropy: h } });
  }
  return groups;
}

/** Computed rows for one run (both default binnings per group). */
export function computeRows(run: RunInfo): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const groups: Group[] = [];
  const q = readRecord(run, "questions.arrow");
  if (q && q.numRows > 0) groups.push(...questionGroups(q));
  const t = readRecord(run, "tokens.arrow");
  if (t && t.numRows > 0) groups.push(...tokenGroups(t));
  for (const g of groups) {
    const n = (g.input.confidence as ArrayLike<number>).length;
    const resamples = resamplesFor(n);
    let recs: CalibrationRecord[];
    try {
      recs = calibrationSummaries(g.input, { resamples, seed: 0 });
    } catch (err) {
      process.stderr.write(`warning: ${run.id} ${JSON.stringify(g.keys)}: ${(err as Error).message}\n`);
      continue;
    }
    for (const r of recs) rows.push({ run_id: run.id, ...g.keys, ...r, source: "loader", resamples });
  }
  return rows;
}

/** Every run's calibration rows: published calibration.arrow when present, else computed. */
export function calibrationTable(runs = listRuns()): Table {
  const parts: Record<string, Vector>[] = [];
  for (const run of runs) {
    const rec = readRecord(run, "calibration.arrow");
    if (rec && rec.numRows > 0) {
      const c = conform(rec, CALIB_COLUMNS, run.id);
      const src = tableFromRows(Array.from({ length: rec.numRows }, () => ({ source: "record", resamples: null })), CALIB_COLUMNS.slice(-2));
      c.source = src.getChild("source")!;
      c.resamples = src.getChild("resamples")!;
      parts.push(c);
    } else {
      const rows = computeRows(run);
      if (rows.length > 0) parts.push(conform(tableFromRows(rows, CALIB_COLUMNS), CALIB_COLUMNS));
    }
  }
  return concatTables(parts, CALIB_COLUMNS);
}
