// The claim → evidence tables of the Overview and Findings pages, computed from the question records
// of the runs in data/ (never typed in). Each published study (data/study/*.json manifests,
// docs/study.md) gets its own table per scoring of its questions (option / letter; files without
// a `scoring` column are letter scoring), plus, for knowledge-world studies, the same claims on the
// questions of each exposure bucket (how often the person was seen); without manifests every run
// forms one study. `computeStudyClaims` is the loader's index of them all; `computeClaims` one table.
//
// Each claim of the paper (Huang, Lu & Zeng, ICML 2025, arXiv 2508.00264; docs/study.md) becomes an effect on ECE measured on the SAME
// questions (joined by split, task and id) for the runs compared, with a two-level paired
// bootstrap: every replicate resamples the question set once (the same resample for every run:
// backend/metrics' bootstrapCounts) and, within each stratum (a (V, d_model) cell, or a cell ×
// remedy), the seeds with replacement; the effect is recomputed from the runs' ECEs on the
// resampled questions, averaged with the resampled seed multiplicities.
//
//   C1  SFT degrades calibration:    Δ = ECE(last SFT epoch) − ECE(epoch 0, the pretrained model), SFT runs
//                                    with ε = 0, T = 1, no cap; mean over runs.                         claimed Δ > 0
//   C2  LS (ε ≈ 0.1) restores it     Δ = ECE(ε ≈ 0.1) − ECE(ε = 0), runs identical but for ε (same pretrained
//       without hurting accuracy:    model and seed), last epoch, T = 1, no cap; mean over pairs.
//                                    Side condition: Δ accuracy's interval stays above −0.02.          claimed Δ < 0
//   C3  the gain shrinks for large   gain = −Δ of C2 per (V, d_model) cell; Δ = mean gain of the third of the
//       V and small d_model:         cells with the largest V/d − mean gain of the third with the smallest.  claimed Δ < 0
//   C4  T < 1 or soft-capping brings gain(remedy) − gain(T = 1, no cap), gain = ECE(ε = 0) − ECE(ε ≈ 0.1) trained
//       the gain back:               the same way, pooled over the cells that have both; per remedy too.  claimed Δ > 0
//
// Verdicts (the issue's words): "reproduced" when the 95% interval excludes 0 on the claimed side
// (and, for C2, accuracy is not hurt); "not reproduced" when it contains 0 (no detectable effect)
// or excludes it on the other side (the opposite effect); "mixed" when the sub-effects listed as
// checks disagree: the pooled effect is reproduced but a check shows the opposite, or it is not
// but a check reproduces it, or C2's calibration gain comes with an accuracy loss. Fewer than 3
// seeds in a stratum marks the result preliminary.
import { accuracy, bootstrapCounts, ece, percentileInterval, Xoshiro128 } from "../../../backend/metrics/index.js";
import { questionScorings, type Scoring } from "../../../backend/records/questions.js";
import { bucketOrder } from "../../../backend/records/calibration.js";
import { exposureBucket } from "../../../backend/data/world/people.js";
import { dataDir, listRuns, readRecord, runRows, type RunInfo, type RunRow } from "./records.js";
import { listManifests, type Manifest } from "../../../backend/study/publish.js";

export const SETTINGS = { metric: "ece", bins: 15, scheme: "equal-width", confidence_def: "renormalized", resamples: 1000, level: 0.95, seed: 0, accuracy_margin: 0.02 } as const;

export interface Interval { estimate: number; lo: number; hi: number }

export type Verdict = "reproduced" | "not reproduced" | "mixed";

export interface Secondary extends Interval {
  label: string;
  /** a sub-effect of the claim (a cell, a remedy) that the "mixed" rule looks at */
  check: boolean;
  /** its own reading: claimed direction / opposite / contains 0 */
  reading: "claimed" | "opposite" | "null";
  n_units: number;
}

export interface ClaimResult {
  id: "C1" | "C2" | "C3" | "C4";
  claim: string;
  measure: string;
  expected: "positive" | "negative";
  status: "measured" | "not yet measured";
  /** What data would measure it (when not measured), or caveats. */
  note: string;
  effect: Interval | null;
  secondary: Secondary[];
  verdict: Verdict | null;
  /** one line: why this verdict */
  reason: string;
  preliminary: boolean;
  n_questions: number;
  n_units: number;
  seeds: number[];
  /** fewest seeds in a stratum of the primary effect */
  min_seeds: number;
  runs: string[];
  units: Array<{ label: string; a: string; b: string; stratum: string; seed: number | null; estimate: number }>;
}

/** The claims recomputed on the questions of one exposure bucket (knowledge worlds). */
export interface BucketClaims {
  bucket: string;
  n_questions: number;
  claims: Array<Pick<ClaimResult, "id" | "status" | "effect" | "verdict" | "reason" | "preliminary" | "min_seeds" | "n_units" | "n_questions" | "secondary">>;
}

export interface ClaimsFile {
  generated_at: string;
  n_runs: number;
  /** the published studies whose runs were used (data/study/*.json), or [] for every run */
  studies: string[];
  /** the scoring of the question records compared */
  scoring: Scoring;
  /** the scorings the runs' records have */
  scorings: Scoring[];
  settings: typeof SETTINGS;
  verdict_rule: string;
  claims: ClaimResult[];
  /** knowledge worlds: the claims on the questions of each exposure bucket (empty otherwise) */
  buckets: BucketClaims[];
}

/** One study's claim tables, one per scoring of its questions. */
export interface StudyClaims {
  /** the manifest's name; null: every run (no manifest published) */
  name: string | null;
  title: string | null;
  description: string | null;
  /** "world": base models that know the answers (a knowledge world); "brown": base models that cannot answer */
  regime: "world" | "brown";
  /** false: a CPU / CI form whose numbers only show that the pipeline works */
  evidence: boolean;
  source: string | null;
  device: string | null;
  n_runs: number;
  /** the scoring shown first (option when present) */
  default_scoring: Scoring;
  results: ClaimsFile[];
}

/** claims.json: every study's tables, the knowledge-world study first. */
export interface ClaimsIndex {
  generated_at: string;
  settings: typeof SETTINGS;
  verdict_rule: string;
  /** the study the Overview shows (a knowledge-world study when one is published), or null */
  primary: string | null;
  studies: StudyClaims[];
}

type Run = RunRow;

/** One evaluated checkpoint: question key → (confidence, correct). */
type Arm = Map<string, { c: number; a: number }>;

/** The question records of one scoring, by epoch; and each question's exposure bucket (knowledge worlds). */
function armsOf(run: RunInfo, scoring: Scoring): { arms: Map<number, Arm>; buckets: Map<string, string> } {
  const q = readRecord(run, "questions.arrow");
  const out = new Map<number, Arm>();
  const buckets = new Map<string, string>();
  if (!q || q.numRows === 0) return { arms: out, buckets };
  const epoch = q.getChild("epoch")!, split = q.getChild("split")!, task = q.getChild("task")!, id = q.getChild("id")!;
  const conf = q.getChild("confidence")!, correct = q.getChild("correct")!, exposures = q.getChild("exposures");
  const sc = questionScorings(q);
  for (let i = 0; i < q.numRows; i++) {
    if (sc[i] !== scoring) continue;
    const e = epoch.get(i) as number;
    let arm = out.get(e);
    if (!arm) out.set(e, (arm = new Map()));
    const key = `${split.get(i)}|${task.get(i)}|${id.get(i)}`;
    arm.set(key, { c: conf.get(i) as number, a: correct.get(i) ? 1 : 0 });
    const ex = exposures?.get(i) as number | null | undefined;
    if (ex !== null && ex !== undefined) buckets.set(key, exposureBucket(ex));
  }
  return { arms: out, buckets };
}

/** The scorings present in a run's question records. */
function scoringsOf(run: RunInfo): Set<Scoring> {
  const q = readRecord(run, "questions.arrow");
  return new Set(q && q.numRows > 0 ? questionScorings(q) : []);
}

/** A paired unit: two arms over their common questions; the statistic is metric(b) − metric(a). */
interface Unit {
  label: string;
  a: string;
  b: string;
  /** resampling stratum of the seeds (a cell, or cell|remedy) */
  stratum: string;
  seed: number | null;
  /** free-form grouping used by the claims (cell, remedy …) */
  group: string;
  keys: number[];
  ca: Float64Array; aa: Uint8Array; cb: Float64Array; ab: Uint8Array;
}

class Pairing {
  readonly index = new Map<string, number>();
  readonly units: Unit[] = [];
  add(u: Omit<Unit, "keys" | "ca" | "aa" | "cb" | "ab">, a: Arm, b: Arm): void {
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
    this.units.push({ ...u, keys, ca: Float64Array.from(ca), aa: Uint8Array.from(aa), cb: Float64Array.from(cb), ab: Uint8Array.from(ab) });
  }
  /** A pairing over a subset of the units (same key index, so resamples stay shared). */
  subset(pick: (u: Unit) => boolean): Pairing {
    const p = new Pairing();
    for (const [k, v] of this.index) p.index.set(k, v);
    p.units.push(...this.units.filter(pick));
    return p;
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

/**
 * Per-unit differences on the full data and on every replicate, with each replicate's seed
 * weights: within a stratum the seeds are drawn with replacement (as many draws as seeds), and a
 * unit's weight is how often its seed was drawn. Cached per pairing (every unit is computed once,
 * whatever the number of statistics asked of it).
 */
interface Replicates { full: Float64Array; reps: Float64Array[]; weights: Float64Array[] }
const replicateCache = new WeakMap<Pairing, Map<Metric, Replicates>>();
const allUnits = new WeakMap<Unit, number>();

function seedWeights(units: readonly Unit[], resamples: number, seed: number): Float64Array[] {
  const strata = new Map<string, { seeds: Array<number | null>; members: number[] }>();
  units.forEach((u, i) => {
    let s = strata.get(u.stratum);
    if (!s) strata.set(u.stratum, (s = { seeds: [], members: [] }));
    if (!s.seeds.includes(u.seed)) s.seeds.push(u.seed);
    s.members.push(i);
  });
  const rng = new Xoshiro128(seed + 0x5eed);
  const out: Float64Array[] = [];
  for (let r = 0; r < resamples; r++) {
    const w = new Float64Array(units.length);
    for (const s of strata.values()) {
      const drawn = new Map<number | null, number>();
      for (let k = 0; k < s.seeds.length; k++) {
        const pick = s.seeds[rng.nextU32() % s.seeds.length]!;
        drawn.set(pick, (drawn.get(pick) ?? 0) + 1);
      }
      for (const i of s.members) w[i] = drawn.get(units[i]!.seed) ?? 0;
    }
    out.push(w);
  }
  return out;
}

function replicates(p: Pairing, m: Metric): Replicates {
  let byMetric = replicateCache.get(p);
  if (!byMetric) replicateCache.set(p, (byMetric = new Map()));
  const hit = byMetric.get(m);
  if (hit) return hit;
  p.units.forEach((u, i) => allUnits.set(u, i));
  const full = Float64Array.from(p.units, (u) => unitDiff(u, null, m));
  const reps: Float64Array[] = [];
  for (const counts of bootstrapCounts(p.index.size, SETTINGS.resamples, SETTINGS.seed)) reps.push(Float64Array.from(p.units, (u) => unitDiff(u, counts, m)));
  const out = { full, reps, weights: seedWeights(p.units, SETTINGS.resamples, SETTINGS.seed) };
  byMetric.set(m, out);
  return out;
}

/** Σ_g coef_g · (seed-weighted mean of the unit differences in group g). */
interface Term { pick: (u: Unit) => boolean; coef: number }

function combine(p: Pairing, values: Float64Array, weights: Float64Array | null, terms: readonly Term[]): number {
  let total = 0;
  for (const t of terms) {
    let s = 0, w = 0;
    p.units.forEach((u, i) => {
      if (!t.pick(u)) return;
      const wi = weights ? weights[i]! : 1;
      if (wi === 0) return;
      s += wi * values[i]!;
      w += wi;
    });
    if (w === 0) return NaN;
    total += t.coef * (s / w);
  }
  return total;
}

/** Estimate and percentile interval of a linear combination of group means. */
function paired(p: Pairing, terms: readonly Term[], m: Metric): Interval | null {
  if (p.units.length === 0 || terms.some((t) => !p.units.some(t.pick))) return null;
  const { full, reps, weights } = replicates(p, m);
  const estimate = combine(p, full, null, terms);
  if (!Number.isFinite(estimate)) return null;
  const out: number[] = [];
  for (let r = 0; r < reps.length; r++) {
    const v = combine(p, reps[r]!, weights[r]!, terms);
    if (Number.isFinite(v)) out.push(v);
  }
  if (out.length < reps.length / 2) return null;
  const ci = percentileInterval(Float64Array.from(out), SETTINGS.level);
  return { estimate, lo: ci.lo, hi: ci.hi };
}

const reading = (iv: Interval, expected: "positive" | "negative"): Secondary["reading"] => {
  if (iv.lo > 0) return expected === "positive" ? "claimed" : "opposite";
  if (iv.hi < 0) return expected === "negative" ? "claimed" : "opposite";
  return "null";
};

const isPlain = (r: Run) => (r.temperature ?? 1) === 1 && r.softcap === null;
const lastEpoch = (arms: Map<number, Arm>) => Math.max(...arms.keys());
/** Everything that must match for two SFT runs to differ "only in ε" (or only in the remedy). */
const signature = (r: Run, withLoss: boolean) => JSON.stringify([
  r.parent, r.tokenizer, r.d_model, r.n_layer, r.seed, r.tasks, r.epochs, r.eval_split, r.eval_temperature, r.eval_softcap,
  ...(withLoss ? [r.temperature ?? 1, r.softcap] : []),
]);
const cellOf = (r: Run) => `${r.tokenizer ?? "?"} V=${r.vocab_size ?? "?"} · d=${r.d_model ?? "?"}`;
const ratioOf = (r: Run) => (r.vocab_size ?? NaN) / (r.d_model ?? NaN);
const remedyOf = (r: Run) => {
  const t = (r.temperature ?? 1) !== 1 ? `T=${r.temperature}` : "";
  const c = r.softcap !== null ? `cap=${r.softcap}` : "";
  return t && c ? `${t}+${c}` : t || c || "plain";
};

function base(id: ClaimResult["id"], claim: string, measure: string, expected: ClaimResult["expected"]): ClaimResult {
  return {
    id, claim, measure, expected, status: "not yet measured", note: "", effect: null, secondary: [], verdict: null, reason: "",
    preliminary: true, n_questions: 0, n_units: 0, seeds: [], min_seeds: 0, runs: [], units: [],
  };
}

function sec(p: Pairing, label: string, terms: readonly Term[], m: Metric, expected: ClaimResult["expected"], check: boolean): Secondary | null {
  const iv = paired(p, terms, m);
  if (!iv) return null;
  const n = p.units.filter((u) => terms.some((t) => t.pick(u))).length;
  return { label, ...iv, check, reading: reading(iv, expected), n_units: n };
}

const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;
const fmt = (iv: Interval) => `${signed(iv.estimate)} [${signed(iv.lo)}, ${signed(iv.hi)}]`;

/** Verdict from the primary effect, the checks among the secondaries and (C2) the accuracy condition. */
const ALL: readonly Term[] = [{ pick: () => true, coef: 1 }];

// The secondaries every paired ECE claim reports: Δ accuracy over all units (not a check) and the
// ECE effect in each cell (checks, in the claim's direction). Returns the Δ accuracy interval.
function accuracyAndCells(c: ClaimResult, p: Pairing, accLabel: string, expected: ClaimResult["expected"]): Interval | null {
  const acc = paired(p, ALL, accM);
  if (acc) c.secondary.push({ label: accLabel, ...acc, check: false, reading: reading(acc, "positive"), n_units: p.units.length });
  const cells = [...new Set(p.units.map((u) => u.group))];
  if (cells.length > 1) for (const g of cells) {
    const s = sec(p, `ΔECE in ${g}`, [{ pick: (u) => u.group === g, coef: 1 }], eceM, expected, true);
    if (s) c.secondary.push(s);
  }
  return acc;
}

function decide(c: ClaimResult, accuracyHurt = false): void {
  const e = c.effect!;
  const main = reading(e, c.expected);
  const checks = c.secondary.filter((s) => s.check);
  const claimedChecks = checks.filter((s) => s.reading === "claimed").map((s) => s.label);
  const oppositeChecks = checks.filter((s) => s.reading === "opposite").map((s) => s.label);
  const side = c.expected === "negative" ? "below" : "above";
  if (main === "claimed") {
    if (accuracyHurt) {
      c.verdict = "mixed";
      c.reason = `ECE effect ${fmt(e)} is on the claimed side, but accuracy falls by more than ${SETTINGS.accuracy_margin}`;
    } else if (oppositeChecks.length > 0) {
      c.verdict = "mixed";
      c.reason = `pooled effect ${fmt(e)} is on the claimed side, but the opposite holds in ${oppositeChecks.join("; ")}`;
    } else {
      c.verdict = "reproduced";
      c.reason = `the 95% interval ${fmt(e)} lies ${side} 0, as claimed`;
    }
  } else {
    if (claimedChecks.length > 0) {
      c.verdict = "mixed";
      c.reason = `pooled effect ${fmt(e)} ${main === "opposite" ? "is on the other side" : "contains 0"}, but the claim holds in ${claimedChecks.join("; ")}`;
    } else {
      c.verdict = "not reproduced";
      c.reason = main === "opposite"
        ? `the 95% interval ${fmt(e)} excludes 0 on the other side: the opposite of the claim`
        : `the 95% interval ${fmt(e)} contains 0: no detectable effect`;
    }
  }
}

function finish(c: ClaimResult, p: Pairing, effect: Interval | null, runsById: Map<string, Run>, primary: (u: Unit) => boolean = () => true): ClaimResult {
  if (!effect) return c;
  const used = p.units.filter(primary);
  const ids = new Set(used.flatMap((u) => [u.a.split("@")[0]!, u.b.split("@")[0]!]));
  const seeds = [...new Set(used.map((u) => u.seed).filter((s): s is number => typeof s === "number"))].sort((x, y) => x - y);
  const perStratum = new Map<string, Set<number | null>>();
  for (const u of used) perStratum.set(u.stratum, (perStratum.get(u.stratum) ?? new Set()).add(u.seed));
  const minSeeds = Math.min(...[...perStratum.values()].map((s) => s.size));
  const keys = new Set(used.flatMap((u) => u.keys));
  void runsById;
  return {
    ...c, status: "measured", effect, preliminary: minSeeds < 3, min_seeds: minSeeds,
    n_questions: keys.size, n_units: used.length, seeds, runs: [...ids].sort(),
    units: used.map((u) => ({ label: u.label, a: u.a, b: u.b, stratum: u.stratum, seed: u.seed, estimate: unitDiff(u, null, eceM) })),
  };
}

/** ε pairs (ε = 0 vs the ε > 0 closest to `target`) among SFT runs that are identical otherwise. */
function lsPairs(
  sft: Run[], arms: Map<string, Map<number, Arm>>, keep: (r: Run) => boolean, group: (r: Run) => string, stratum: (r: Run) => string, target = 0.1, exact = false,
): Pairing {
  const p = new Pairing();
  const bySig = new Map<string, Run[]>();
  for (const r of sft.filter(keep)) {
    const k = signature(r, true);
    bySig.set(k, [...(bySig.get(k) ?? []), r]);
  }
  for (const rs of bySig.values()) {
    const b0 = rs.find((r) => r.label_smoothing === 0);
    const cands = rs.filter((r) => (r.label_smoothing ?? 0) > 0 && (!exact || Math.abs(r.label_smoothing! - target) < 1e-9));
    const ls = cands.sort((x, y) => Math.abs(x.label_smoothing! - target) - Math.abs(y.label_smoothing! - target))[0];
    if (!b0 || !ls) continue;
    const a0 = arms.get(b0.run_id)!, a1 = arms.get(ls.run_id)!;
    const e0 = lastEpoch(a0), e1 = lastEpoch(a1);
    p.add({ label: `${b0.run_id} (ε=0) vs ${ls.run_id} (ε=${ls.label_smoothing})`, group: group(b0), stratum: stratum(b0), seed: b0.seed, a: `${b0.run_id}@${e0}`, b: `${ls.run_id}@${e1}` }, a0.get(e0)!, a1.get(e1)!);
  }
  return p;
}

/** Run ids published by the studies in <data>/study/*.json (null when there is none). */
export function studyRuns(root = dataDir()): { names: string[]; ids: Set<string> } | null {
  const manifests = listManifests(root);
  if (manifests.length === 0) return null;
  return { names: manifests.map((m) => m.name), ids: new Set(manifests.flatMap((m) => m.runs.filter((r) => r.published).map((r) => r.id))) };
}

/** The runs compared by the claims: SFT runs that succeeded and have an evaluated epoch after 0. */
interface Evidence {
  runsById: Map<string, Run>;
  arms: Map<string, Map<number, Arm>>;
  sft: Run[];
  /** question key → exposure bucket (knowledge worlds) */
  bucketOf: Map<string, string>;
}

/** The question records of one scoring of every run, by epoch; an SFT run published without its epoch 0 reads it from its parent. */
function loadEvidence(infos: RunInfo[], rows: Run[], scoring: Scoring): Evidence {
  const runsById = new Map(rows.map((r) => [r.run_id, r]));
  const arms = new Map<string, Map<number, Arm>>();
  const bucketOf = new Map<string, string>();
  for (const info of infos) {
    const x = armsOf(info, scoring);
    arms.set(info.id, x.arms);
    for (const [k, b] of x.buckets) bucketOf.set(k, b);
  }
  // (the same records as its parent's, docs/study.md)
  for (const r of rows) {
    const a = arms.get(r.run_id);
    if (r.kind !== "sft" || !a || a.size === 0 || a.has(0) || !r.parent) continue;
    const p0 = arms.get(r.parent)?.get(0);
    if (p0) a.set(0, p0);
  }
  const sft = rows.filter((r) => r.kind === "sft" && r.status === "succeeded" && [...(arms.get(r.run_id)?.keys() ?? [])].some((e) => e > 0));
  return { runsById, arms, sft, bucketOf };
}

/** The same evidence on the questions whose key passes `keep` (every arm filtered). */
function restrictEvidence(ev: Evidence, keep: (key: string) => boolean): Evidence {
  const arms = new Map<string, Map<number, Arm>>();
  for (const [id, byEpoch] of ev.arms) {
    arms.set(id, new Map([...byEpoch].map(([e, arm]) => [e, new Map([...arm].filter(([k]) => keep(k)))])));
  }
  return { ...ev, arms };
}

/** C1: ECE after SFT (last epoch) − ECE of the pretrained model (epoch 0), ε = 0. */
function claimC1({ runsById, arms, sft }: Evidence): ClaimResult {
  const c = base("C1", "Supervised fine-tuning degrades calibration.", "ΔECE = ECE after SFT (last epoch) − ECE of the pretrained model (epoch 0), ε = 0, same questions", "positive");
  const p = new Pairing();
  for (const r of sft.filter((r) => r.label_smoothing === 0 && isPlain(r))) {
    const a = arms.get(r.run_id)!;
    const last = lastEpoch(a);
    if (!a.has(0) || last === 0) continue;
    p.add({ label: `${r.run_id}: epoch 0 → ${last}`, group: cellOf(r), stratum: cellOf(r), seed: r.seed, a: `${r.run_id}@0`, b: `${r.run_id}@${last}` }, a.get(0)!, a.get(last)!);
  }
  const effect = paired(p, ALL, eceM);
  c.note = effect ? "" : "Needs an SFT run with ε = 0 (T = 1, no soft-cap) whose questions.arrow has epoch 0 (the pretrained model) and a later epoch.";
  const done = finish(c, p, effect, runsById);
  if (effect) {
    accuracyAndCells(done, p, "Δ accuracy (after − before)", "positive");
    decide(done);
  }
  return done;
}

/** C2: ECE(ε ≈ 0.1) − ECE(ε = 0) over ε pairs, with the accuracy side condition and the rest of the ε grid. */
function claimC2({ runsById, arms, sft }: Evidence, c2pairs: Pairing): ClaimResult {
  const c = base("C2", "Label smoothing (ε ≈ 0.1) restores calibration without hurting accuracy.", "ΔECE = ECE(ε ≈ 0.1) − ECE(ε = 0), runs identical but for ε (same pretrained model and seed), last epoch, same questions", "negative");
  const effect = paired(c2pairs, ALL, eceM);
  c.note = effect ? `Accuracy counts as hurt when the Δ accuracy interval reaches below −${SETTINGS.accuracy_margin}.` : "Needs two SFT runs identical except for ε (one ε = 0, one ε > 0; T = 1, no soft-cap) evaluated on the same questions.";
  const done = finish(c, c2pairs, effect, runsById);
  if (effect) {
    const acc = accuracyAndCells(done, c2pairs, "Δ accuracy (ε ≈ 0.1 − ε = 0)", "negative");
    // the rest of the ε grid, for the dose–response (not checks: the claim is about ε ≈ 0.1)
    for (const eps of [0.05, 0.2]) {
      const pe = lsPairs(sft, arms, isPlain, cellOf, cellOf, eps, true);
      const s = pe.units.length ? sec(pe, `ΔECE at ε = ${eps} (${pe.units.length} pairs)`, ALL, eceM, "negative", false) : null;
      if (s) done.secondary.push(s);
    }
    decide(done, acc !== null && acc.lo < -SETTINGS.accuracy_margin);
  }
  return done;
}

/** C3's checks: the gain per cell, and per tokenizer the gain at its smallest d − at its largest. */
function c3Secondary(c: ClaimResult, c2pairs: Pairing, ordered: string[], ratio: (g: string) => number, runsById: Map<string, Run>): void {
  for (const g of ordered) {
    const s = sec(c2pairs, `gain in ${g} (V/d ${ratio(g).toFixed(0)})`, [{ pick: (u) => u.group === g, coef: -1 }], eceM, "positive", false);
    if (s) c.secondary.push(s);
  }
  // within one tokenizer (V fixed): gain at its smallest d − gain at its largest d
  const runOf = (g: string) => runsById.get(c2pairs.units.find((x) => x.group === g)!.a.split("@")[0]!)!;
  const byTok = new Map<string, string[]>();
  for (const g of ordered) byTok.set(runOf(g).tokenizer ?? "?", [...(byTok.get(runOf(g).tokenizer ?? "?") ?? []), g]);
  for (const [tok, gs] of byTok) {
    if (gs.length < 2) continue;
    const small = gs.at(-1)!, large = gs[0]!; // ordered by V/d: the last has the smallest d
    const s = sec(c2pairs, `${tok}: gain(d=${runOf(small).d_model}) − gain(d=${runOf(large).d_model})`,
      [{ pick: (u) => u.group === small, coef: -1 }, { pick: (u) => u.group === large, coef: 1 }], eceM, "negative", true);
    if (s) c.secondary.push(s);
  }
}

/** C3: the gain of C2 in the third of the cells with the largest V/d − in the third with the smallest. */
function claimC3({ runsById }: Evidence, c2pairs: Pairing): ClaimResult {
  const c = base("C3", "The gain from label smoothing shrinks for large-vocabulary models with small hidden sizes.", "Δ = mean gain in the third of the cells with the largest V/d − mean gain in the third with the smallest, gain = ECE(ε = 0) − ECE(ε ≈ 0.1)", "negative");
  const cells = [...new Set(c2pairs.units.map((u) => u.group))];
  const ratio = (g: string) => {
    const u = c2pairs.units.find((x) => x.group === g)!;
    return ratioOf(runsById.get(u.a.split("@")[0]!)!);
  };
  const ordered = cells.filter((g) => Number.isFinite(ratio(g))).sort((x, y) => ratio(x) - ratio(y));
  let effect: Interval | null = null;
  if (ordered.length >= 2 && ratio(ordered[0]!) !== ratio(ordered.at(-1)!)) {
    const k = Math.max(1, Math.floor(ordered.length / 3));
    const lo = new Set(ordered.slice(0, k)), hi = new Set(ordered.slice(-k));
    // gain = −Δ, so gain(hi) − gain(lo) = −mean Δ(hi) + mean Δ(lo)
    effect = paired(c2pairs, [{ pick: (u) => hi.has(u.group), coef: -1 }, { pick: (u) => lo.has(u.group), coef: 1 }], eceM);
    c.note = `Large V/d: ${[...hi].map((g) => `${g} (V/d ${ratio(g).toFixed(0)})`).join(", ")}; small V/d: ${[...lo].map((g) => `${g} (V/d ${ratio(g).toFixed(0)})`).join(", ")}; ${ordered.length} cells with ε pairs.`;
    c3Secondary(c, c2pairs, ordered, ratio, runsById);
  } else c.note = "Needs ε pairs (as for C2) in at least two (V, d_model) cells with different V/d, e.g. byte/d=256 and o200k/d=64.";
  const done = finish(c, c2pairs, effect, runsById);
  if (effect) decide(done);
  return done;
}

/** C4's checks: each remedy against T = 1 / no cap, and all remedies per cell. */
function c4Secondary(c: ClaimResult, sub: Pairing, eligible: string[], remedies: string[]): void {
  const plain = (u: Unit) => u.group.endsWith("|plain");
  const fixed = (u: Unit) => !u.group.endsWith("|plain");
  for (const rem of remedies) {
    const cellsR = eligible.filter((cell) => sub.units.some((u) => u.group === `${cell}|${rem}`));
    const t: Term[] = cellsR.flatMap((cell) => [
      { pick: (u: Unit) => u.group === `${cell}|${rem}`, coef: -1 / cellsR.length },
      { pick: (u: Unit) => u.group === `${cell}|plain`, coef: 1 / cellsR.length },
    ]);
    const s = sec(sub, `${rem}: gain − gain(T=1, no cap)`, t, eceM, "positive", true);
    if (s) c.secondary.push(s);
  }
  for (const cell of eligible) {
    const s = sec(sub, `all remedies in ${cell}`, [
      { pick: (u) => u.group.startsWith(cell + "|") && fixed(u), coef: -1 },
      { pick: (u) => u.group.startsWith(cell + "|") && plain(u), coef: 1 },
    ], eceM, "positive", false);
    if (s) c.secondary.push(s);
  }
}

/** C4: gain(T < 1 and/or soft-cap) − gain(T = 1, no cap), pooled over the cells that have both. */
function claimC4({ runsById, arms, sft }: Evidence): ClaimResult {
  const c = base("C4", "A training temperature below 1 or logit soft-capping brings the gain back.", "Δ = gain(T < 1 and/or soft-cap) − gain(T = 1, no cap), gain = ECE(ε = 0) − ECE(ε ≈ 0.1) trained the same way; pooled over the cells that have both", "positive");
  const allPairs = lsPairs(sft, arms, () => true, (r) => `${cellOf(r)}|${remedyOf(r)}`, (r) => `${cellOf(r)}|${remedyOf(r)}`);
  const cellsWith = new Map<string, Set<string>>();
  for (const u of allPairs.units) {
    const [cell, rem] = u.group.split("|") as [string, string];
    cellsWith.set(cell, (cellsWith.get(cell) ?? new Set()).add(rem));
  }
  const eligible = [...cellsWith].filter(([, rems]) => rems.has("plain") && rems.size > 1).map(([cell]) => cell);
  if (eligible.length === 0) {
    c.note = "Needs, in one (V, d_model) cell, ε pairs with T = 1 and no cap and ε pairs trained with T < 1 or a soft-cap.";
    return c;
  }
  const sub = allPairs.subset((u: Unit) => eligible.includes(u.group.split("|")[0]!));
  const plain = (u: Unit) => u.group.endsWith("|plain");
  const fixed = (u: Unit) => !u.group.endsWith("|plain");
  // per cell: gain(remedies) − gain(plain); pooled: mean of the cells' contrasts
  const terms: Term[] = eligible.flatMap((cell) => [
    { pick: (u: Unit) => u.group.startsWith(cell + "|") && fixed(u), coef: -1 / eligible.length },
    { pick: (u: Unit) => u.group.startsWith(cell + "|") && plain(u), coef: 1 / eligible.length },
  ]);
  const effect = paired(sub, terms, eceM);
  const remedies = [...new Set(sub.units.filter(fixed).map((u) => u.group.split("|")[1]!))].sort();
  c4Secondary(c, sub, eligible, remedies);
  c.note = `Cells: ${eligible.join("; ")}; remedies: ${remedies.join(", ")}.`;
  const done = finish(c, sub, effect, runsById);
  if (effect) decide(done);
  return done;
}

/** C1–C4 on some evidence. */
function claimsOn(ev: Evidence): ClaimResult[] {
  const c2pairs = lsPairs(ev.sft, ev.arms, isPlain, cellOf, cellOf);
  return [claimC1(ev), claimC2(ev, c2pairs), claimC3(ev, c2pairs), claimC4(ev)];
}

const VERDICT_RULE = "reproduced: the 95% interval (bootstrap over questions and seeds) excludes 0 on the claimed side (C2: and accuracy does not fall by more than 0.02); not reproduced: it contains 0 (no detectable effect) or excludes 0 on the other side (the opposite); mixed: the sub-effects marked as checks (per cell, per remedy) disagree with the pooled reading. Preliminary: a stratum has fewer than 3 seeds.";

/** The scorings of some runs' question records, option first. */
function scoringsOfRuns(infos: RunInfo[]): Scoring[] {
  const all = new Set<Scoring>();
  for (const r of infos) for (const s of scoringsOf(r)) all.add(s);
  return (["option", "letter"] as const).filter((s) => all.has(s));
}

/**
 * The claim table of some runs (default: the runs of every published study, else every run) on the
 * question records of one scoring (default: option when any run has it, else letter), with the
 * per-exposure-bucket tables when the questions carry exposures.
 */
export function computeClaims(runInfos?: RunInfo[], o: { scoring?: Scoring; buckets?: boolean } = {}): ClaimsFile {
  let infos = runInfos ?? listRuns();
  let studies: string[] = [];
  if (!runInfos) {
    const st = studyRuns();
    if (st) {
      infos = infos.filter((r) => st.ids.has(r.id));
      studies = st.names;
    }
  }
  const rows = runRows(infos);
  const scorings = scoringsOfRuns(infos);
  const scoring = o.scoring ?? scorings[0] ?? "letter";
  const ev = loadEvidence(infos, rows, scoring);
  const claims = claimsOn(ev);
  const buckets: BucketClaims[] = [];
  if (o.buckets ?? true) {
    const names = [...new Set(ev.bucketOf.values())].sort((a, b) => bucketOrder(a) - bucketOrder(b));
    for (const b of names) {
      const keys = new Set([...ev.bucketOf].filter(([, x]) => x === b).map(([k]) => k));
      const sub = claimsOn(restrictEvidence(ev, (k) => keys.has(k)));
      buckets.push({
        bucket: b, n_questions: keys.size,
        claims: sub.map(({ id, status, effect, verdict, reason, preliminary, min_seeds, n_units, n_questions, secondary }) => ({
          id, status, effect, verdict, reason, preliminary, min_seeds, n_units, n_questions, secondary,
        })),
      });
    }
  }
  return { generated_at: new Date().toISOString(), n_runs: rows.length, studies, scoring, scorings, settings: SETTINGS, verdict_rule: VERDICT_RULE, claims, buckets };
}

/** A study's regime: the manifest's, else "world" when a run was pretrained on a knowledge world. */
function regimeOf(m: Manifest | null, infos: RunInfo[]): "world" | "brown" {
  if (m?.regime) return m.regime;
  return infos.some((r) => (r.json.config as { world?: unknown } | undefined)?.world !== undefined) ? "world" : "brown";
}

/**
 * claims.json: one entry per published study (every run when none is published), each with a claim
 * table per scoring; knowledge-world studies first (those that are evidence before CPU / CI forms).
 */
export function computeStudyClaims(root = dataDir()): ClaimsIndex {
  const all = listRuns(root);
  const manifests = listManifests(root);
  const sets: Array<{ m: Manifest | null; infos: RunInfo[] }> = manifests.length
    ? manifests.map((m) => {
      const ids = new Set(m.runs.filter((r) => r.published).map((r) => r.id));
      return { m, infos: all.filter((r) => ids.has(r.id)) };
    })
    : [{ m: null, infos: all }];
  const studies: StudyClaims[] = sets.map(({ m, infos }) => {
    const scorings = scoringsOfRuns(infos);
    const results = (scorings.length ? scorings : (["letter"] as Scoring[])).map((scoring) => ({ ...computeClaims(infos, { scoring }), studies: m ? [m.name] : [] }));
    return {
      name: m?.name ?? null, title: m?.title ?? null, description: m?.description ?? null, regime: regimeOf(m, infos), evidence: m?.evidence ?? true,
      source: m?.source ?? null, device: m?.device ?? null, n_runs: infos.length, default_scoring: results[0]!.scoring, results,
    };
  });
  const rank = (s: StudyClaims) => (s.regime === "world" ? 0 : 2) + (s.evidence ? 0 : 1);
  studies.sort((a, b) => rank(a) - rank(b));
  return { generated_at: new Date().toISOString(), settings: SETTINGS, verdict_rule: VERDICT_RULE, primary: studies[0]?.name ?? null, studies };
}
