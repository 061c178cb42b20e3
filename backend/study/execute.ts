// Executes a study plan (definition.ts) with the worker pool (backend/runs/pool.ts: long-lived
// worker.ts processes, each running one planned run after another). Every run
// writes its directory <runsRoot>/<id>/ (docs/records.md). Pretrained models come first (largest
// first); an SFT run starts as soon as its pretrained model is done. SFT runs are ordered by seed
// rank first (every cell's seed 0, then seed 1, …), so that a study cut short by a deadline loses
// seeds evenly instead of whole cells.
//
// On a GPU several workers share the device (each its own CUDA context): small models are bound
// by kernel launches and host work, so the GPU has room for several of them at once.
//
// Deadline: a run does not start when its estimated time (the mean of the most similar runs
// measured so far) would end after `deadline`; at `hardDeadline` the workers are killed
// and unfinished runs are reported as killed (their directories removed).
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WorkerPool, type JobEnd, type WorkerSpec } from "../runs/pool.js";
import type { PlannedRun, StudyPlan } from "./definition.js";
import type { StudyJob, StudyJobResult } from "./worker.js";

export type { WorkerSpec } from "../runs/pool.js";

export interface ExecuteOptions {
  /** directory of the run directories */
  runsRoot: string;
  /** concurrent worker processes (default 1) */
  jobs?: number;
  /** no run starts that is expected to end after this time (ms since the epoch) */
  deadline?: number;
  /** workers are killed at this time (ms since the epoch) */
  hardDeadline?: number;
  /** keep runs already done: a run directory whose run.json succeeded with the same config */
  resume?: boolean;
  /** keep SFT checkpoints (default: removed once the run's records are written) */
  keepCheckpoints?: boolean;
  /** extra environment of the workers */
  env?: Record<string, string>;
  worker?: WorkerSpec;
  /** one line per event (default: stderr) */
  log?: (line: string) => void;
}

export interface RunOutcome {
  id: string;
  kind: "pretrain" | "sft";
  parent: string | null;
  status: "succeeded" | "failed" | "cancelled" | "skipped" | "killed" | "kept";
  seconds: number | null;
  started_s: number | null;
  finished_s: number | null;
  worker: number | null;
  error?: string;
  metrics?: Record<string, number>;
}

export interface ExecuteResult {
  started_at: string;
  finished_at: string;
  wall_seconds: number;
  jobs: number;
  outcomes: RunOutcome[];
}

/** The worker module run through tsx (development checkout). */
export function defaultWorker(): WorkerSpec {
  const here = fileURLToPath(new URL("./worker.ts", import.meta.url));
  if (existsSync(here)) return { module: here, args: ["--study-worker"], execArgv: ["--import", "tsx"] };
  // bundled (scripts/gpu/study-bundle.sh): the bundle is its own worker
  return { module: process.argv[1]!, args: ["--study-worker"], execArgv: [] };
}

function seedRank(r: PlannedRun): number {
  return r.kind === "sft" ? (r.config as { seed: number }).seed : -1;
}

/** Run order: pretrained models (largest first), then SFT runs by seed, arm order and plan order. */
export function scheduleOrder(plan: StudyPlan): PlannedRun[] {
  const armIndex = new Map((plan.study.sft?.arms ?? []).map((a, i) => [a.name, i]));
  const pos = new Map(plan.runs.map((r, i) => [r.id, i]));
  return [...plan.runs].sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === "pretrain" ? -1 : 1;
    if (a.kind === "pretrain") return b.cost - a.cost || pos.get(a.id)! - pos.get(b.id)!;
    return seedRank(a) - seedRank(b) || (armIndex.get(a.arm!) ?? 0) - (armIndex.get(b.arm!) ?? 0) || pos.get(a.id)! - pos.get(b.id)!;
  });
}

function alreadyDone(runsRoot: string, run: PlannedRun): boolean {
  const f = join(runsRoot, run.id, "run.json");
  if (!existsSync(f)) return false;
  try {
    const j = JSON.parse(readFileSync(f, "utf8")) as { status?: string; config?: Record<string, unknown> };
    if (j.status !== "succeeded" || !j.config) return false;
    const strip = (c: Record<string, unknown>) => JSON.stringify({ ...c, init: undefined, name: undefined });
    const sameConfig = strip(j.config) === strip({ ...(run.config as unknown as Record<string, unknown>), calibration: run.calibration });
    return sameConfig && (run.kind === "sft" || existsSync(join(runsRoot, run.id, "checkpoint", "model.safetensors")));
  } catch {
    return false;
  }
}

type Outcome = RunOutcome["status"];

/** One execution of a plan: the pending runs, their outcomes, the measured times, the pool. */
class PlanExecution {
  readonly t0 = Date.now();
  readonly outcomes = new Map<string, RunOutcome>();
  readonly pending: PlannedRun[];
  private readonly byId: Map<string, PlannedRun>;
  /** measured seconds of the succeeded runs, for the deadline estimates */
  private readonly measured: Array<{ run: PlannedRun; seconds: number }> = [];
  private readonly pool: WorkerPool<StudyJob, never, StudyJobResult>;
  private readonly log: (line: string) => void;
  /** runs in the workers now */
  running = 0;
  private stopping = false;
  private finish!: () => void;
  readonly finished = new Promise<void>((r) => (this.finish = r));

  constructor(readonly plan: StudyPlan, readonly o: ExecuteOptions, readonly jobs: number) {
    this.log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
    this.pending = scheduleOrder(plan);
    this.byId = new Map(plan.runs.map((r) => [r.id, r]));
    this.pool = new WorkerPool({ worker: o.worker ?? defaultWorker(), size: jobs, reuse: true, env: { ...process.env, ...(o.env ?? {}) }, output: "inherit" });
  }

  private since(): number {
    return (Date.now() - this.t0) / 1000;
  }

  /** Records an outcome of a run that did not (or will not) run in a worker. */
  private skip(r: PlannedRun, status: Outcome, error?: string): void {
    this.outcomes.set(r.id, { id: r.id, kind: r.kind, parent: r.parent, status, seconds: null, started_s: null, finished_s: null, worker: null, ...(error ? { error } : {}) });
  }

  /** With resume: runs already done in runsRoot (same config) are kept, not run again. */
  keepDone(): void {
    for (const r of [...this.pending]) {
      if (!alreadyDone(this.o.runsRoot, r)) continue;
      this.skip(r, "kept");
      this.pending.splice(this.pending.indexOf(r), 1);
    }
    if (this.outcomes.size > 0) this.log(`study ${this.plan.study.name}: ${this.outcomes.size} run(s) already done in ${this.o.runsRoot}, kept`);
  }

  private tokenizerOf(r: PlannedRun): string {
    return r.kind === "pretrain" ? (r.config as { tokenizer: string }).tokenizer : (this.byId.get(r.parent!)?.config as { tokenizer?: string } | undefined)?.tokenizer ?? "?";
  }

  /**
   * The mean measured time of the closest runs: same pretrained model (SFT), else same kind and
   * tokenizer, else same kind. Small models are dominated by per-step overhead, so the mean of
   * similar runs predicts better than a FLOP count (which under-estimated d = 64 SFT runs by 2×).
   */
  private estimate(r: PlannedRun): number | null {
    for (const same of [
      (m: PlannedRun) => m.kind === r.kind && r.kind === "sft" && m.parent === r.parent,
      (m: PlannedRun) => m.kind === r.kind && this.tokenizerOf(m) === this.tokenizerOf(r),
      (m: PlannedRun) => m.kind === r.kind,
    ]) {
      const pool = this.measured.filter((m) => same(m.run));
      if (pool.length > 0) return pool.reduce((a, m) => a + m.seconds, 0) / pool.length;
    }
    return null;
  }

  private parentOk(r: PlannedRun): boolean {
    const s = r.parent === null ? "succeeded" : this.outcomes.get(r.parent)?.status;
    return s === "succeeded" || s === "kept";
  }

  /** Children of failed parents can never run; the execution is finished when nothing is pending or running. */
  private settle(): void {
    for (const r of [...this.pending]) {
      const s = r.parent === null ? undefined : this.outcomes.get(r.parent)?.status;
      if (s === undefined || this.parentOk(r)) continue;
      this.pending.splice(this.pending.indexOf(r), 1);
      this.skip(r, "skipped", `pretrained run ${r.parent} ${s}`);
    }
    if (this.pending.length === 0 && this.running === 0) this.finish();
  }

  /** Starts the next runnable runs on the free workers (skipping those the deadline rules out). */
  dispatch(): void {
    while (!this.stopping && this.pool.idle > 0) {
      const next = this.pending.find((r) => this.parentOk(r));
      if (!next) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      const est = this.estimate(next);
      if (this.o.deadline !== undefined && Date.now() + (est ?? 0) * 1000 > this.o.deadline) {
        this.skip(next, "skipped", `deadline: expected ${est === null ? "?" : est.toFixed(0)} s, ${((this.o.deadline - Date.now()) / 1000).toFixed(0)} s left`);
        continue;
      }
      this.start(next);
    }
    this.settle();
  }

  private start(run: PlannedRun): void {
    const startedAt = Date.now();
    this.running++;
    const job = this.pool.run({ run, runsRoot: this.o.runsRoot, keepCheckpoint: run.kind === "pretrain" || (this.o.keepCheckpoints ?? false) });
    void job.ended.then((end) => {
      this.running--;
      this.record(run, end, startedAt, job.worker);
      this.dispatch();
    });
  }

  private record(run: PlannedRun, end: JobEnd<StudyJobResult>, startedAt: number, worker: number): void {
    const seconds = (Date.now() - startedAt) / 1000;
    const timing = { seconds, started_s: (startedAt - this.t0) / 1000, finished_s: this.since(), worker };
    const base = { id: run.id, kind: run.kind, parent: run.parent, ...timing };
    if (end.kind === "done") {
      const m = end.result;
      this.outcomes.set(run.id, { ...base, status: m.status, metrics: m.metrics, ...(m.error ? { error: m.error } : {}) });
      if (m.status === "succeeded") this.measured.push({ run, seconds });
      const acc = m.metrics.question_accuracy;
      const total = this.plan.runs.length;
      this.log(`[${String(this.outcomes.size).padStart(String(total).length)}/${total} ${this.since().toFixed(0).padStart(4)}s] ${m.status === "succeeded" ? "ok  " : m.status.padEnd(4)} ${run.id}`
        + ` ${seconds.toFixed(1)}s${acc !== undefined ? ` acc ${acc.toFixed(3)}` : ""}${m.metrics.validation_loss !== undefined ? ` val ${m.metrics.validation_loss.toFixed(3)}` : ""}`
        + `${m.error ? ` — ${m.error}` : ""}`);
      return;
    }
    const why = end.kind === "exited" ? `worker exited (${end.signal ?? end.code})` : end.message;
    this.outcomes.set(run.id, { ...base, status: this.stopping ? "killed" : "failed", error: why });
    if (this.stopping) rmSync(join(this.o.runsRoot, run.id), { recursive: true, force: true });
    this.log(`${this.stopping ? "killed" : "fail"} ${run.id}: ${why}`);
  }

  /** Hard deadline or Ctrl-C: pending runs are skipped with `reason`, running ones killed. */
  stop(reason: string): void {
    this.stopping = true;
    for (const r of this.pending.splice(0)) this.skip(r, "skipped", reason);
    this.pool.killAll();
    this.settle();
  }

  async close(): Promise<ExecuteResult> {
    await this.pool.close();
    const finishedAt = Date.now();
    return {
      started_at: new Date(this.t0).toISOString(), finished_at: new Date(finishedAt).toISOString(), wall_seconds: (finishedAt - this.t0) / 1000, jobs: this.jobs,
      outcomes: this.plan.runs.map((r) => this.outcomes.get(r.id)
        ?? { id: r.id, kind: r.kind, parent: r.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null, error: "not started" }),
    };
  }
}

export async function executePlan(plan: StudyPlan, o: ExecuteOptions): Promise<ExecuteResult> {
  mkdirSync(o.runsRoot, { recursive: true });
  const ex = new PlanExecution(plan, o, Math.max(1, Math.min(o.jobs ?? 1, plan.runs.length)));
  if (o.resume) ex.keepDone();
  let timer: NodeJS.Timeout | undefined;
  if (o.hardDeadline !== undefined) {
    timer = setTimeout(() => {
      (o.log ?? ((l: string) => process.stderr.write(l + "\n")))(`study ${plan.study.name}: hard deadline reached; stopping ${ex.running} running run(s)`);
      ex.stop("deadline");
    }, Math.max(0, o.hardDeadline - Date.now()));
  }
  const onSigint = () => ex.stop("interrupted");
  process.once("SIGINT", onSigint);
  ex.dispatch();
  await ex.finished;
  if (timer) clearTimeout(timer);
  process.off("SIGINT", onSigint);
  return ex.close();
}
