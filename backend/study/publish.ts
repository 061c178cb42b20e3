// Publishing a study: its run directories (as the workers wrote them) → <data>/runs/<id>/, in
// the form that is committed and read by the site (docs/study.md, "Publishing"):
//   - run.json, train_log.arrow, calibration.arrow, job.log: as written (calibration.arrow was
//     computed from the full records, before any subsampling); job.log not with `publish.logs: false`;
//   - questions.arrow: every question record, except that an SFT run's epoch-0 rows (the
//     pretrained model, evaluated on the same questions) are dropped when they equal the parent
//     pretrain run's own records bit for bit — the parent publishes them once, and the claims
//     read epoch 0 from it (metrics.epoch0_from_parent = rows dropped);
//     With `publish.questionEpochs: "last"` an SFT run keeps only its last epoch (and epoch 0 when it
//     was not dropped): the intermediate epochs are summarized in calibration.arrow, which was
//     computed from every record (metrics.question_epochs_dropped = rows dropped);
//   - tokens.arrow: the first `tokensPerCheckpoint` tokens of every evaluated checkpoint (whole
//     windows from the start of the split, the same tokens for every run);
//   - sft configs: init = "data/runs/<parent>/checkpoint" (the checkpoint itself is not published).
// The previous publication of the same study (its manifest, <data>/study/<name>.json) is removed
// first, so a rerun replaces it; the manifest lists the runs, their outcomes and timings, the
// study's regime ("world": a knowledge world, "brown": the Brown corpus) and whether its numbers
// are evidence (false for the CPU / CI forms).
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Table } from "apache-arrow";
import { readArrowStream, writeArrowStream } from "../records/arrow.js";
import { writeRunJson, type RunJson } from "../records/run.js";
import { writeFileAtomic } from "../io/atomic.js";
import { studyRegime, type StudyPlan } from "./definition.js";
import type { ExecuteResult } from "./execute.js";

export interface PublishOptions {
  /** where the workers wrote the runs */
  runsRoot: string;
  /** the data directory to publish into (runs/ and study/ below it) */
  dataDir: string;
  /** the study file (recorded in the manifest) */
  source?: string;
  /** device description for the manifest (e.g. the GPU's name) */
  device?: string;
  /** extra manifest fields (timings of the job, …) */
  extra?: Record<string, unknown>;
}

export interface Manifest {
  format: "calib-study/1";
  name: string;
  title: string | null;
  description: string | null;
  /** "world" (a knowledge world) or "brown"; absent in manifests written before it existed (= brown) */
  regime?: "world" | "brown";
  /** false: the numbers only show that the pipeline works; absent = true */
  evidence?: boolean;
  source: string | null;
  device: string | null;
  published_at: string;
  execution: Omit<ExecuteResult, "outcomes"> | null;
  runs: Array<{
    id: string; kind: string; parent: string | null; arm: string | null; point: Record<string, unknown>; status: string;
    seconds: number | null; error?: string; published: boolean;
  }>;
  bytes: number;
  [k: string]: unknown;
}

export function manifestPath(dataDir: string, name: string): string {
  return join(dataDir, "study", `${name}.json`);
}

export function readManifest(dataDir: string, name: string): Manifest | null {
  const f = manifestPath(dataDir, name);
  if (!existsSync(f)) return null;
  return JSON.parse(readFileSync(f, "utf8")) as Manifest;
}

/** Every manifest in <data>/study/ (files that are not one are skipped; onError hears of unreadable ones). */
export function listManifests(dataDir: string, onError?: (file: string, err: Error) => void): Manifest[] {
  const dir = join(dataDir, "study");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".json")).sort().flatMap((f) => {
    try {
      const m = JSON.parse(readFileSync(join(dir, f), "utf8")) as Manifest;
      return m.format === "calib-study/1" && Array.isArray(m.runs) ? [m] : [];
    } catch (err) {
      onError?.(f, err as Error);
      return [];
    }
  });
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    const s = statSync(p);
    n += s.isDirectory() ? dirBytes(p) : s.size;
  }
  return n;
}

/** The first k rows of every epoch (rows of one epoch are contiguous, in epoch order). */
export function firstRowsPerEpoch(t: Table, k: number): Table {
  if (k <= 0 || t.numRows === 0) return t;
  const epoch = t.getChild("epoch")!;
  const parts: Table[] = [];
  let start = 0;
  while (start < t.numRows) {
    const e = epoch.get(start);
    let end = start;
    while (end < t.numRows && epoch.get(end) === e) end++;
    parts.push(t.slice(start, Math.min(end, start + k)));
    start = end;
  }
  return parts.slice(1).reduce((a, b) => a.concat(b), parts[0]!);
}

/** The scoring of every row (a table without the column is letter scoring). */
function scorings(t: Table): string[] {
  const c = t.getChild("scoring");
  return Array.from({ length: t.numRows }, (_, i) => (c ? String(c.get(i)) : "letter"));
}

/**
 * Rows [0, n) of epoch 0 when they equal the parent's epoch-0 rows of the same scorings (same ids,
 * bits of every value, in order; the parent may also have scored the questions another way); else 0.
 */
export function epoch0Duplicate(child: Table, parent: Table): number {
  const ce = child.getChild("epoch")!, pe = parent.getChild("epoch")!;
  let n = 0;
  while (n < child.numRows && ce.get(n) === 0) n++;
  const cs = scorings(child), ps = scorings(parent);
  const wanted = new Set(cs.slice(0, n));
  const rows: number[] = [];
  for (let m = 0; m < parent.numRows && pe.get(m) === 0; m++) if (wanted.has(ps[m]!)) rows.push(m);
  if (n === 0 || n !== rows.length) return 0;
  if (cs.slice(0, n).some((s, i) => s !== ps[rows[i]!])) return 0;
  const cols = ["split", "task", "id", "doc", "gold", "pred", "confidence", "entropy", "logits", "probs", "vocab_probs", "probs_norm", "exposures"];
  for (const c of cols) {
    const a = child.getChild(c), b = parent.getChild(c);
    if (!a && !b) continue;
    if (!a || !b) return 0;
    for (let i = 0; i < n; i++) {
      const x = a.get(i), y = b.get(rows[i]!);
      if (x === y) continue;
      if (x && y && typeof x === "object" && typeof y === "object") {
        const xa = (x as { toArray(): Float32Array }).toArray(), ya = (y as { toArray(): Float32Array }).toArray();
        if (xa.length !== ya.length || xa.some((v, j) => !Object.is(v, ya[j]))) return 0;
        continue;
      }
      return 0;
    }
  }
  return n;
}

/** The rows of the first epoch (when it is 0) and of the last epoch; the rows of the epochs between are dropped. */
export function keepEndEpochs(t: Table): { table: Table; dropped: number } {
  const epoch = t.getChild("epoch");
  if (!epoch || t.numRows === 0) return { table: t, dropped: 0 };
  const e = Array.from(epoch.toArray() as Int32Array);
  const last = Math.max(...e);
  const keep = (x: number) => x === 0 || x === last;
  if (e.every(keep)) return { table: t, dropped: 0 };
  // rows of one epoch are contiguous: slice the kept runs
  const parts: Table[] = [];
  let start = 0;
  while (start < e.length) {
    let end = start;
    while (end < e.length && e[end] === e[start]) end++;
    if (keep(e[start]!)) parts.push(t.slice(start, end));
    start = end;
  }
  const table = parts.slice(1).reduce((a, b) => a.concat(b), parts[0]!);
  return { table, dropped: t.numRows - table.numRows };
}

export function publishStudy(plan: StudyPlan, exec: ExecuteResult | null, o: PublishOptions): Manifest {
  const { study } = plan;
  const runsDir = join(o.dataDir, "runs");
  mkdirSync(runsDir, { recursive: true });
  const previous = readManifest(o.dataDir, study.name);
  for (const r of previous?.runs ?? []) {
    if (r.published) rmSync(join(runsDir, r.id), { recursive: true, force: true });
  }
  const outcome = new Map((exec?.outcomes ?? []).map((x) => [x.id, x]));
  const k = study.publish.tokensPerCheckpoint;
  const published = new Set<string>();
  // parents first: an SFT run's epoch 0 is compared with its published parent
  const ordered = [...plan.runs].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "pretrain" ? -1 : 1));
  for (const run of ordered) {
    const src = join(o.runsRoot, run.id);
    const jsonPath = join(src, "run.json");
    if (!existsSync(jsonPath)) continue;
    const json = JSON.parse(readFileSync(jsonPath, "utf8")) as RunJson;
    if (json.status !== "succeeded") continue;
    const dst = join(runsDir, run.id);
    if (src !== dst) {
      rmSync(dst, { recursive: true, force: true });
      mkdirSync(dst, { recursive: true });
    }
    for (const f of ["train_log.arrow", "calibration.arrow", ...(study.publish.logs ? ["job.log"] : [])]) if (existsSync(join(src, f)) && src !== dst) copyFileSync(join(src, f), join(dst, f));
    if (existsSync(join(src, "tokens.arrow"))) {
      const keep = run.kind === "pretrain" ? study.publish.pretrainTokens ?? k : k;
      writeArrowStream(join(dst, "tokens.arrow"), firstRowsPerEpoch(readArrowStream(join(src, "tokens.arrow")), keep));
    }
    if (existsSync(join(src, "questions.arrow"))) {
      let q = readArrowStream(join(src, "questions.arrow"));
      const parentQ = run.parent ? join(runsDir, run.parent, "questions.arrow") : null;
      if (run.kind === "sft" && parentQ && existsSync(parentQ)) {
        const n = epoch0Duplicate(q, readArrowStream(parentQ));
        if (n > 0) {
          q = q.slice(n);
          json.metrics = { ...json.metrics, epoch0_from_parent: n };
        }
      }
      if (run.kind === "sft" && study.publish.questionEpochs === "last") {
        const kept = keepEndEpochs(q);
        q = kept.table;
        if (kept.dropped > 0) json.metrics = { ...json.metrics, question_epochs_dropped: kept.dropped };
      }
      writeArrowStream(join(dst, "questions.arrow"), q);
    }
    const config = json.config as Record<string, unknown>;
    if (run.kind === "sft") json.config = { ...config, init: `data/runs/${run.parent}/checkpoint` };
    json.artifacts = ["train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"].filter((f) => existsSync(join(dst, f)));
    const kt = run.kind === "pretrain" ? study.publish.pretrainTokens ?? k : k;
    if (kt > 0) json.metrics = { ...json.metrics, tokens_published_per_checkpoint: kt };
    writeRunJson(join(dst, "run.json"), json);
    if (src !== dst) rmSync(join(dst, "checkpoint"), { recursive: true, force: true });
    published.add(run.id);
  }
  const bytes = [...published].reduce((a, id) => a + dirBytes(join(runsDir, id)), 0);
  const { outcomes: _o, ...execution } = exec ?? ({} as ExecuteResult);
  const manifest: Manifest = {
    format: "calib-study/1", name: study.name, title: study.title ?? null, description: study.description ?? null,
    regime: studyRegime(plan), evidence: study.evidence,
    source: o.source ?? null, device: o.device ?? null, published_at: new Date().toISOString(), execution: exec ? execution : null,
    runs: plan.runs.map((r) => {
      const x = outcome.get(r.id);
      return {
        id: r.id, kind: r.kind, parent: r.parent, arm: r.arm, point: r.point, status: x?.status ?? (published.has(r.id) ? "succeeded" : "missing"),
        seconds: x?.seconds ?? null, ...(x?.error ? { error: x.error } : {}), published: published.has(r.id),
      };
    }),
    bytes,
    ...(o.extra ?? {}),
  };
  mkdirSync(join(o.dataDir, "study"), { recursive: true });
  writeFileAtomic(manifestPath(o.dataDir, study.name), JSON.stringify(manifest, null, 1) + "\n");
  return manifest;
}

/**
 * Installs studies published elsewhere (e.g. by the GPU job: DIR/runs + DIR/study/<name>.json)
 * into dataDir. Manifests of the same study from several directories (a study run in parts, e.g.
 * one GPU job per tokenizer with --only) are merged: their runs are united (a run published by a
 * later directory wins) and their executions kept as `parts`. The runs of dataDir's previous
 * manifest of that study are removed first. Returns the installed (merged) manifests.
 */
export function installPublished(fromDataDirs: string[], dataDir: string): Manifest[] {
  const byName = new Map<string, Array<{ dir: string; m: Manifest }>>();
  for (const dir of fromDataDirs) {
    const found = listManifests(dir);
    if (found.length === 0) throw new Error(`${dir}: no study manifest (study/<name>.json)`);
    for (const m of found) byName.set(m.name, [...(byName.get(m.name) ?? []), { dir, m }]);
  }
  const installed: Manifest[] = [];
  for (const [name, parts] of byName) {
    const prev = readManifest(dataDir, name);
    for (const r of prev?.runs ?? []) if (r.published) rmSync(join(dataDir, "runs", r.id), { recursive: true, force: true });
    const runs = new Map<string, Manifest["runs"][number]>();
    for (const { dir, m } of parts) {
      for (const r of m.runs) {
        const have = runs.get(r.id);
        if (r.published) {
          const src = join(dir, "runs", r.id);
          if (!existsSync(src)) throw new Error(`${src}: listed in the manifest of ${name} but missing`);
          rmSync(join(dataDir, "runs", r.id), { recursive: true, force: true });
          cpSync(src, join(dataDir, "runs", r.id), { recursive: true });
          runs.set(r.id, r);
        } else if (!have || !have.published) runs.set(r.id, r);
      }
    }
    const first = parts[0]!.m;
    const merged: Manifest = {
      ...first,
      published_at: parts.map((p) => p.m.published_at).sort().at(-1)!,
      execution: parts.length === 1 ? first.execution : null,
      parts: parts.map(({ m }) => ({ source: m.source, device: m.device, published_at: m.published_at, execution: m.execution, runs: m.runs.filter((r) => r.published).length })),
      runs: [...runs.values()],
      bytes: 0,
    };
    merged.bytes = merged.runs.filter((r) => r.published).reduce((a, r) => a + dirBytes(join(dataDir, "runs", r.id)), 0);
    mkdirSync(join(dataDir, "study"), { recursive: true });
    writeFileSync(manifestPath(dataDir, name), JSON.stringify(merged, null, 1) + "\n");
    installed.push(merged);
  }
  return installed;
}
