// The Overview's claim → evidence table, computed from the question records of whatever runs are
// in data/ (never typed in). Each claim of the paper (docs: ../shared/notes/paper.md) becomes an
// effect on ECE measured on the SAME questions (joined by split, task and id), with a paired
// percentile bootstrap over those questions: every replicate resamples the question set once
// and recomputes every run's ECE on it (backend/metrics' ece / accuracy / bootstrapCounts).
//
//   C1  SFT degrades calibration:     Δ = ECE(last SFT epoch) − ECE(epoch 0, the pretrained model),
//                                     SFT runs with ε = 0, T = 1, no soft-cap; mean over runs.        claimed Δ > 0
//   C2  LS (ε ≈ 0.1) restores it:     Δ = ECE(ε ≈ 0.1) − ECE(ε = 0), runs identical but for ε,
//                                     last epoch, T = 1, no cap; mean over pairs. Accuracy Δ shown.  claimed Δ < 0
//   C3  the gain shrinks for large    gain = −Δ of C2 per (V, d_model) cell;
//       V and small d_model:          Δ = gain(cell with the largest V/d) − gain(cell with the smallest). claimed Δ < 0
//   C4  T < 1 or soft-capping brings  Δ = gain with the remedy − gain without it, in the cell with the
//       the gain back:                largest V/d that has both.                                     claimed Δ > 0
//
// Verdict rule (interval-based, stated on the page): "supports" when the 95% interval excludes 0
// on the claimed side, "contradicts" when it excludes 0 on the other side, else "inconclusive".
// With fewer than 3 seeds the verdict is marked preliminary. The study (issue 10) may refine this
// file; the Overview reads only the JSON shape below.
import { accuracy, bootstrapCounts, ece, percentileInterval } from "../../../backend/metrics/index.js";
import { listRuns, readRecord, runRows, type RunInfo, type RunRow } from "./records.js";

export const SETTINGS = { metric: "ece", bins: 15, scheme: "equal-width", confidence_def: "renormalized", resamples: 1000, level: 0.95, seed: 0 } as const;

export interface Interval { estimate: number; lo: number; hi: number }

export interface ClaimResult {
  id: "C1" | "C2" | "C3" | "C4";
  claim: string;
  measure: string;
  expected: "positive" | "negative";
  status: "measured" | "not yet measured";
  /** What data would measure it (when not measured), or caveats. */
  note: string;
  effect: Interval | null;
  secondary: Array<{ label: string } & Interval>;
  verdict: "supports" | "contradicts" | "inconclusive" | null;
  preliminary: boolean;
  n_questions: number;
  n_units: number;
  seeds: number[];
  runs: string[];
  units: Array<{ label: string; a: string; b: string; estimate: number }>;
}

export interface ClaimsFile {
  generated_at: string;
  n_runs: number;
  settings: typeof SETTINGS;
  verdict_rule: string;
  claims: ClaimResult[];
}

type Run = RunRow;

/** One evaluated checkpoint: question key → (confidence, correct). */
type Arm = Map<string, { c: number; a: number }>;

function armsOf(run: RunInfo): Map<number, Arm> {
  const q = readRecord(run, "questions.arrow");
  const out = new Map<number, Arm>();
  if (!q || q.numRows === 0) return out;
  const epoch = q.getChild("epoch")!, split = q.getChild("split")!, task = q.getChild("task")!, id = q.getChild("id")!;
  const conf = q.getChild("confidence")!, correct = q.getChild("correct")!;
  for (let i = 0; i < q.numRows; i++) {
    const e = epoch.get(i) as number;
    let arm = out.get(e);
    if (!arm) out.set(e, (arm = new Map()));
    arm.set(`${split.get(i)}|${task.get(i)}|${id.get(i)}`, { c: conf.get(i) as number, a: correct.get(i) ? 1 : 0 });
  }
  return out;
}

/** A paired unit: two arms over their common questions; the statistic is metric(b) − metric(a). */
interface Unit {
  label: string;
  a: string;
  b: string;
  keys: number[];
  ca: Float64Array; aa: Uint8Array; cb: Float64Array; ab: Uint8Array;
  group: string;
}

class Pairing {
  readonly index = new Map<string, number>();
  readonly units: Unit[] = [];
  add(label: string, group: string, aName: string, a: Arm, bName: string, b: Arm): void {
    const keys: number[] = [];
    const ca: number[] = [], aa: number[] = [], cb: number[] = [], ab: number[] = [];
    for (const [k, va] of a) {
      const vb = b.get(k);
      if (!vb) continue;
      let ix = this.index.get(k);
      if (ix === undefined) this.index.set(k, (ix = this.index.size));
      keys.push(ix);
      ca.push(va.c); aa.push(va.a); cb.push(vb.c); ab.push(vb.a);
    }
    if (keys.length < 2) return;
    this.units.push({ label, group, a: aName, b: bName, keys, ca: Float64Array.from(ca), aa: Uint8Array.from(aa), cb: Float64Array.from(cb), ab: Uint8Array.from(ab) });
  }
}

type Metric = (c: Float64Array, a: Uint8Array) => number;
const eceM: Metric = (c, a) => ece(c, a, { bins: SETTINGS.bins, scheme: SETTINGS.scheme });
const accM: Metric = (_c, a) => accuracy(a);

/** metric(b) − metric(a) of a unit on a resample given by per-key counts (null = full data). */
function unitDiff(u: Unit, counts: Uint32Array | null, m: Metric): number {
  if (!counts) return m(u.cb, u.ab) - m(u.ca, u.aa);
  let total = 0;
  for (const k of u.keys) total += counts[k]!;
  if (total === 0) return NaN;
  const ca = new Float64Array(total), aa = new Uint8Array(total), cb = new Float64Array(total), ab = new Uint8Array(total);
  let j = 0;
  for (let i = 0; i < u.keys.length; i++) {
    for (let r = counts[u.keys[i]!]!; r > 0; r--) {
      ca[j] = u.ca[i]!; aa[j] = u.aa[i]!; cb[j] = u.cb[i]!; ab[j] = u.ab[i]!;
      j++;
    }
  }
  return m(cb, ab) - m(ca, aa);
}

/** Per-unit differences on the full data and on every resample of the shared question keys (cached). */
const replicateCache = new WeakMap<Pairing, Map<Metric, { full: Map<Unit, number>; reps: Map<Unit, Float64Array> }>>();
function unitReplicates(p: Pairing, m: Metric): { full: Map<Unit, number>; reps: Map<Unit, Float64Array> } {
  let byMetric = replicateCache.get(p);
  if (!byMetric) replicateCache.set(p, (byMetric = new Map()));
  const hit = byMetric.get(m);
  if (hit) return hit;
  const full = new Map(p.units.map((u) => [u, unitDiff(u, null, m)]));
  const reps = new Map(p.units.map((u) => [u, new Float64Array(SETTINGS.resamples)]));
  let r = 0;
  for (const counts of bootstrapCounts(p.index.size, SETTINGS.resamples, SETTINGS.seed)) {
    for (const u of p.units) reps.get(u)![r] = unitDiff(u, counts, m);
    r++;
  }
  const out = { full, reps };
  byMetric.set(m, out);
  return out;
}

/** Bootstraps f(per-unit differences) over the shared question keys (one resample of the keys serves every unit). */
function paired(p: Pairing, f: (d: Map<Unit, number>) => number, m: Metric): Interval | null {
  if (p.units.length === 0) return null;
  const { full, reps } = unitReplicates(p, m);
  const estimate = f(full);
  if (!Number.isFinite(estimate)) return null;
  const out = new Float64Array(SETTINGS.resamples);
  for (let r = 0; r < SETTINGS.resamples; r++) out[r] = f(new Map(p.units.map((u) => [u, reps.get(u)![r]!])));
  const ci = percentileInterval(out, SETTINGS.level);
  return { estimate, lo: ci.lo, hi: ci.hi };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const meanOf = (d: Map<Unit, number>, pick: (u: Unit) => boolean = () => true) => mean([...d].filter(([u]) => pick(u)).map(([, v]) => v));

function verdict(iv: Interval | null, expected: "positive" | "negative"): ClaimResult["verdict"] {
  if (!iv || !Number.isFinite(iv.lo) || !Number.isFinite(iv.hi)) return null;
  const pos = iv.lo > 0, neg = iv.hi < 0;
  if (!pos && !neg) return "inconclusive";
  return (pos && expected === "positive") || (neg && expected === "negative") ? "supports" : "contradicts";
}

const isPlain = (r: Run) => (r.temperature ?? 1) === 1 && r.softcap === null;
const lastEpoch = (arms: Map<number, Arm>) => Math.max(...arms.keys());
/** Everything that must match for two SFT runs to differ "only in ε" (or only in the remedy). */
const signature = (r: Run, withLoss: boolean) => JSON.stringify([
  r.parent, r.tokenizer, r.d_model, r.n_layer, r.seed, r.tasks, r.epochs, r.eval_split, r.eval_temperature, r.eval_softcap,
  ...(withLoss ? [r.temperature ?? 1, r.softcap] : []),
]);
const cellOf = (r: Run) => `V=${r.vocab_size ?? "?"} · d=${r.d_model ?? "?"}`;
const ratioOf = (r: Run) => (r.vocab_size ?? NaN) / (r.d_model ?? NaN);

function base(id: ClaimResult["id"], claim: string, measure: string, expected: ClaimResult["expected"]): ClaimResult {
  return { id, claim, measure, expected, status: "not yet measured", note: "", effect: null, secondary: [], verdict: null, preliminary: true, n_questions: 0, n_units: 0, seeds: [], runs: [], units: [] };
}

function finish(c: ClaimResult, p: Pairing, effect: Interval | null, runsById: Map<string, Run>): ClaimResult {
  if (!effect) return c;
  const ids = new Set(p.units.flatMap((u) => [u.a.split("@")[0]!, u.b.split("@")[0]!]));
  const seeds = [...new Set([...ids].map((i) => runsById.get(i)?.seed).filter((s): s is number => typeof s === "number"))].sort((x, y) => x - y);
  return {
    ...c, status: "measured", effect, verdict: verdict(effect, c.expected), preliminary: seeds.length < 3,
    n_questions: p.index.size, n_units: p.units.length, seeds, runs: [...ids].sort(),
    units: p.units.map((u) => ({ label: u.label, a: u.a, b: u.b, estimate: unitDiff(u, null, eceM) })),
  };
}

/** ε pairs (ε = 0 vs the ε > 0 closest to 0.1) among SFT runs that are identical otherwise. */
function lsPairs(sft: Run[], arms: Map<string, Map<number, Arm>>, keep: (r: Run) => boolean, group: (r: Run) => string): Pairing {
  const p = new Pairing();
  const bySig = new Map<string, Run[]>();
  for (const r of sft.filter(keep)) {
    const k = signature(r, true);
    bySig.set(k, [...(bySig.get(k) ?? []), r]);
  }
  for (const rs of bySig.values()) {
    const b0 = rs.find((r) => r.label_smoothing === 0);
    const ls = rs.filter((r) => (r.label_smoothing ?? 0) > 0).sort((x, y) => Math.abs(x.label_smoothing! - 0.1) - Math.abs(y.label_smoothing! - 0.1))[0];
    if (!b0 || !ls) continue;
    const a0 = arms.get(b0.run_id)!, a1 = arms.get(ls.run_id)!;
    const e0 = lastEpoch(a0), e1 = lastEpoch(a1);
    p.add(`${b0.run_id} (ε=0) vs ${ls.run_id} (ε=${ls.label_smoothing})`, group(b0), `${b0.run_id}@${e0}`, a0.get(e0)!, `${ls.run_id}@${e1}`, a1.get(e1)!);
  }
  return p;
}

export function computeClaims(runInfos = listRuns()): ClaimsFile {
  const rows = runRows(runInfos);
  const runsById = new Map(rows.map((r) => [r.run_id, r]));
  const arms = new Map<string, Map<number, Arm>>();
  for (const info of runInfos) arms.set(info.id, armsOf(info));
  const sft = rows.filter((r) => r.kind === "sft" && r.status === "succeeded" && (arms.get(r.run_id)?.size ?? 0) > 0);
  const claims: ClaimResult[] = [];

  // C1 ----------------------------------------------------------------------------------------
  {
    const c = base("C1", "Supervised fine-tuning degrades calibration.", "ΔECE = ECE after SFT (last epoch) − ECE of the pretrained model (epoch 0), same questions", "positive");
    const p = new Pairing();
    for (const r of sft.filter((r) => r.label_smoothing === 0 && isPlain(r))) {
      const a = arms.get(r.run_id)!;
      const last = lastEpoch(a);
      if (!a.has(0) || last === 0) continue;
      p.add(`${r.run_id}: epoch 0 → ${last}`, "", `${r.run_id}@0`, a.get(0)!, `${r.run_id}@${last}`, a.get(last)!);
    }
    const effect = paired(p, (d) => meanOf(d), eceM);
    c.note = effect ? "" : "Needs an SFT run with ε = 0 (T = 1, no soft-cap) whose questions.arrow has epoch 0 (the pretrained model) and a later epoch.";
    const done = finish(c, p, effect, runsById);
    const acc = paired(p, (d) => meanOf(d), accM);
    if (acc) done.secondary.push({ label: "Δ accuracy (after − before)", ...acc });
    claims.push(done);
  }

  // C2 ----------------------------------------------------------------------------------------
  const c2pairs = lsPairs(sft, arms, isPlain, cellOf);
  {
    const c = base("C2", "Label smoothing (ε ≈ 0.1) restores calibration without hurting accuracy.", "ΔECE = ECE(ε ≈ 0.1) − ECE(ε = 0), runs identical but for ε, last epoch, same questions", "negative");
    const effect = paired(c2pairs, (d) => meanOf(d), eceM);
    c.note = effect ? "Accuracy is not hurt when the Δ accuracy interval stays above −0.02." : "Needs two SFT runs identical except for ε (one ε = 0, one ε > 0; T = 1, no soft-cap) evaluated on the same questions.";
    const done = finish(c, c2pairs, effect, runsById);
    const acc = paired(c2pairs, (d) => meanOf(d), accM);
    if (acc) done.secondary.push({ label: "Δ accuracy (ε ≈ 0.1 − ε = 0)", ...acc });
    claims.push(done);
  }

  // C3 ----------------------------------------------------------------------------------------
  {
    const c = base("C3", "The gain from label smoothing shrinks for large-vocabulary models with small hidden sizes.", "Δ = gain(largest V/d cell) − gain(smallest V/d cell), gain = ECE(ε = 0) − ECE(ε ≈ 0.1)", "negative");
    const cells = [...new Set(c2pairs.units.map((u) => u.group))];
    const ratio = (g: string) => {
      const u = c2pairs.units.find((x) => x.group === g)!;
      return ratioOf(runsById.get(u.a.split("@")[0]!)!);
    };
    const ordered = cells.filter((g) => Number.isFinite(ratio(g))).sort((x, y) => ratio(x) - ratio(y));
    let effect: Interval | null = null;
    if (ordered.length >= 2 && ratio(ordered[0]!) !== ratio(ordered.at(-1)!)) {
      const lo = ordered[0]!, hi = ordered.at(-1)!;
      // gain = −Δ, so gain(hi) − gain(lo) = −(mean Δ of hi) + (mean Δ of lo)
      effect = paired(c2pairs, (d) => -meanOf(d, (u) => u.group === hi) + meanOf(d, (u) => u.group === lo), eceM);
      c.note = `Cells compared: ${hi} (V/d = ${ratio(hi).toFixed(0)}) vs ${lo} (V/d = ${ratio(lo).toFixed(0)}); ${ordered.length} cells with ε pairs.`;
      for (const g of ordered) {
        const gi = paired(c2pairs, (d) => -meanOf(d, (u) => u.group === g), eceM);
        if (gi) c.secondary.push({ label: `gain in ${g}`, ...gi });
      }
    } else c.note = "Needs ε pairs (as for C2) in at least two (V, d_model) cells with different V/d, e.g. byte/d=512 and o200k/d=64.";
    claims.push(finish(c, c2pairs, effect, runsById));
  }

  // C4 ----------------------------------------------------------------------------------------
  {
    const c = base("C4", "A training temperature below 1 or logit soft-capping brings the gain back.", "Δ = gain with T < 1 or soft-cap − gain without, same (V, d_model) cell (largest V/d with both)", "positive");
    const remedy = (r: Run) => ((r.temperature ?? 1) < 1 ? `T=${r.temperature}` : r.softcap !== null ? `cap=${r.softcap}` : "plain");
    const all = lsPairs(sft, arms, () => true, (r) => `${cellOf(r)}|${remedy(r)}`);
    const cellsWith = new Map<string, Set<string>>();
    for (const u of all.units) {
      const [cell, rem] = u.group.split("|") as [string, string];
      cellsWith.set(cell, (cellsWith.get(cell) ?? new Set()).add(rem));
    }
    const ratioCell = (cell: string) => {
      const u = all.units.find((x) => x.group.startsWith(cell + "|"))!;
      return ratioOf(runsById.get(u.a.split("@")[0]!)!);
    };
    const eligible = [...cellsWith].filter(([, rems]) => rems.has("plain") && rems.size > 1).map(([cell]) => cell).sort((x, y) => ratioCell(y) - ratioCell(x));
    let effect: Interval | null = null;
    if (eligible.length > 0) {
      const cell = eligible[0]!;
      const inCell = (u: Unit) => u.group.startsWith(cell + "|");
      const plain = (u: Unit) => inCell(u) && u.group.endsWith("|plain");
      const fixed = (u: Unit) => inCell(u) && !u.group.endsWith("|plain");
      effect = paired(all, (d) => -meanOf(d, fixed) + meanOf(d, plain), eceM);
      for (const rem of [...cellsWith.get(cell)!].filter((x) => x !== "plain")) {
        const iv = paired(all, (d) => -meanOf(d, (u) => inCell(u) && u.group.endsWith("|" + rem)) + meanOf(d, plain), eceM);
        if (iv) c.secondary.push({ label: `gain(${rem}) − gain(T=1, no cap) in ${cell}`, ...iv });
      }
      c.note = `Cell: ${cell}.`;
      const sub = new Pairing();
      for (const u of all.units.filter(inCell)) sub.units.push(u);
      for (const [k, v] of all.index) sub.index.set(k, v);
      claims.push(finish(c, sub, effect, runsById));
    } else {
      c.note = "Needs, in one (V, d_model) cell, ε pairs with T = 1 and no cap and ε pairs trained with T < 1 or a soft-cap.";
      claims.push(c);
    }
  }

  return {
    generated_at: new Date().toISOString(), n_runs: rows.length, settings: SETTINGS,
    verdict_rule: "supports: the 95% paired-bootstrap interval excludes 0 on the claimed side; contradicts: it excludes 0 on the other side; inconclusive: it contains 0. Preliminary: fewer than 3 seeds.",
    claims,
  };
}
