// Executes a study plan (definition.ts) with a pool of worker processes (worker.ts). Every run
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
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { PlannedRun, StudyPlan } from "./definition.js";
import type { DoneMessage, JobMessage } from "./worker.js";

export interface WorkerSpec {
  module: string;
  args: string[];
  execArgv: string[];
}

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
    const sameConfig = strip(j.config) === strip(run.config as unknown as Record<string, unknown>);
    return sameConfig && (run.kind === "sft" || existsSync(join(runsRoot, run.id, "checkpoint", "model.safetensors")));
  } catch {
    return false;
  }
}

export async function executePlan(plan: StudyPlan, o: ExecuteOptions): Promise<ExecuteResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const jobs = Math.max(1, Math.min(o.jobs ?? 1, plan.runs.length));
  mkdirSync(o.runsRoot, { recursive: true });
  const t0 = Date.now();
  const started_at = new Date(t0).toISOString();
  const since = () => (Date.now() - t0) / 1000;
  const outcomes = new Map<string, RunOutcome>();
  const pending = scheduleOrder(plan);
  const byId = new Map(plan.runs.map((r) => [r.id, r]));
  const total = plan.runs.length;
  const done = () => outcomes.size;

  if (o.resume) {
    for (const r of [...pending]) {
      if (alreadyDone(o.runsRoot, r)) {
        outcomes.set(r.id, { id: r.id, kind: r.kind, parent: r.parent, status: "kept", seconds: null, started_s: null, finished_s: null, worker: null });
        pending.splice(pending.indexOf(r), 1);
      }
    }
    if (outcomes.size > 0) log(`study ${plan.study.name}: ${outcomes.size} run(s) already done in ${o.runsRoot}, kept`);
  }

  // measured seconds per (kind, tokenizer) and per kind, for the deadline estimates
  const measured: Array<{ run: PlannedRun; seconds: number }> = [];
  const tokenizerOf = (r: PlannedRun): string =>
    r.kind === "pretrain" ? (r.config as { tokenizer: string }).tokenizer : (byId.get(r.parent!)?.config as { tokenizer?: string } | undefined)?.tokenizer ?? "?";
  // the mean measured time of the closest runs: same pretrained model (SFT), else same kind and
  // tokenizer, else same kind. Small models are dominated by per-step overhead, so the mean of
  // similar runs predicts better than a FLOP count (which under-estimated d = 64 SFT runs by 2×).
  const estimate = (r: PlannedRun): number | null => {
    const mean = (xs: Array<{ seconds: number }>) => xs.reduce((a, m) => a + m.seconds, 0) / xs.length;
    for (const same of [
      (m: PlannedRun) => m.kind === r.kind && r.kind === "sft" && m.parent === r.parent,
      (m: PlannedRun) => m.kind === r.kind && tokenizerOf(m) === tokenizerOf(r),
      (m: PlannedRun) => m.kind === r.kind,
    ]) {
      const pool = measured.filter((m) => same(m.run));
      if (pool.length > 0) return mean(pool);
    }
    return null;
  };

  const spec = o.worker ?? defaultWorker();
  const env = { ...process.env, ...(o.env ?? {}) };
  type Slot = { index: number; child: ChildProcess; ready: boolean; current: PlannedRun | null; startedAt: number };
  const slots: Slot[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  let stopping = false;

  const status = (id: string) => outcomes.get(id)?.status;
  const parentOk = (r: PlannedRun) => r.parent === null || status(r.parent) === "succeeded" || status(r.parent) === "kept";
  const parentBad = (r: PlannedRun) => r.parent !== null && status(r.parent) !== undefined && !parentOk(r);

  const settle = () => {
    // children of failed parents can never run
    for (const r of [...pending]) {
      if (parentBad(r)) {
        pending.splice(pending.indexOf(r), 1);
        outcomes.set(r.id, { id: r.id, kind: r.kind, parent: r.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null, error: `pretrained run ${r.parent} ${status(r.parent!)}` });
      }
    }
    if (pending.length === 0 && slots.every((s) => s.current === null)) finish();
  };

  const dispatch = (slot: Slot) => {
    if (stopping || !slot.ready || slot.current) return;
    for (;;) {
      const next = pending.find((r) => parentOk(r));
      if (!next) {
        settle();
        return;
      }
      const est = estimate(next);
      if (o.deadline !== undefined && Date.now() + (est ?? 0) * 1000 > o.deadline) {
        pending.splice(pending.indexOf(next), 1);
        outcomes.set(next.id, {
          id: next.id, kind: next.kind, parent: next.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null,
          error: `deadline: expected ${est === null ? "?" : est.toFixed(0)} s, ${((o.deadline - Date.now()) / 1000).toFixed(0)} s left`,
        });
        continue;
      }
      pending.splice(pending.indexOf(next), 1);
      slot.current = next;
      slot.startedAt = Date.now();
      const msg: JobMessage = { type: "job", run: next, runsRoot: o.runsRoot, keepCheckpoint: next.kind === "pretrain" || (o.keepCheckpoints ?? false) };
      slot.child.send(msg);
      return;
    }
  };

  const spawn = (index: number): Slot => {
    const child = fork(spec.module, spec.args, { execArgv: spec.execArgv, env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const slot: Slot = { index, child, ready: false, current: null, startedAt: 0 };
    child.on("message", (m: DoneMessage | { type: "ready" }) => {
      if (m.type === "ready") {
        slot.ready = true;
        dispatch(slot);
        return;
      }
      const run = slot.current!;
      slot.current = null;
      const seconds = (Date.now() - slot.startedAt) / 1000;
      outcomes.set(run.id, {
        id: run.id, kind: run.kind, parent: run.parent, status: m.status, seconds, started_s: (slot.startedAt - t0) / 1000, finished_s: since(),
        worker: index, metrics: m.metrics, ...(m.error ? { error: m.error } : {}),
      });
      if (m.status === "succeeded") measured.push({ run, seconds });
      const acc = m.metrics.question_accuracy;
      log(`[${String(done()).padStart(String(total).length)}/${total} ${since().toFixed(0).padStart(4)}s] ${m.status === "succeeded" ? "ok  " : m.status.padEnd(4)} ${run.id}`
        + ` ${seconds.toFixed(1)}s${acc !== undefined ? ` acc ${acc.toFixed(3)}` : ""}${m.metrics.validation_loss !== undefined ? ` val ${m.metrics.validation_loss.toFixed(3)}` : ""}`
        + `${m.error ? ` — ${m.error}` : ""}`);
      settle();
      for (const s of slots) dispatch(s);
    });
    child.on("exit", (code, signal) => {
      const run = slot.current;
      slot.current = null;
      slot.ready = false;
      if (run) {
        outcomes.set(run.id, {
          id: run.id, kind: run.kind, parent: run.parent, status: stopping ? "killed" : "failed", seconds: (Date.now() - slot.startedAt) / 1000,
          started_s: (slot.startedAt - t0) / 1000, finished_s: since(), worker: index, error: `worker exited (${signal ?? code})`,
        });
        if (stopping) rmSync(join(o.runsRoot, run.id), { recursive: true, force: true });
        log(`${stopping ? "killed" : "fail"} ${run.id}: worker ${index} exited (${signal ?? code})`);
      }
      if (!stopping && pending.length > 0) {
        slots[index] = spawn(index);
        return;
      }
      settle();
    });
    return slot;
  };

  for (let i = 0; i < jobs; i++) slots.push(spawn(i));
  let timer: NodeJS.Timeout | undefined;
  if (o.hardDeadline !== undefined) {
    timer = setTimeout(() => {
      stopping = true;
      log(`study ${plan.study.name}: hard deadline reached; stopping ${slots.filter((s) => s.current).length} running run(s)`);
      for (const r of pending.splice(0)) {
        outcomes.set(r.id, { id: r.id, kind: r.kind, parent: r.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null, error: "deadline" });
      }
      for (const s of slots) s.child.kill("SIGKILL");
      setTimeout(finish, 2000);
    }, Math.max(0, o.hardDeadline - Date.now()));
  }
  const onSigint = () => {
    stopping = true;
    for (const s of slots) s.child.kill("SIGKILL");
    for (const r of pending.splice(0)) outcomes.set(r.id, { id: r.id, kind: r.kind, parent: r.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null, error: "interrupted" });
    setTimeout(finish, 1000);
  };
  process.once("SIGINT", onSigint);
  settle();
  await finished;
  if (timer) clearTimeout(timer);
  process.off("SIGINT", onSigint);
  for (const s of slots) {
    if (s.child.connected) s.child.send({ type: "exit" });
  }
  await Promise.all(slots.map((s) => (s.child.exitCode !== null || s.child.signalCode !== null ? Promise.resolve() : new Promise((r) => s.child.once("exit", r)))));
  const finishedAt = Date.now();
  return {
    started_at, finished_at: new Date(finishedAt).toISOString(), wall_seconds: (finishedAt - t0) / 1000, jobs,
    outcomes: plan.runs.map((r) => outcomes.get(r.id) ?? { id: r.id, kind: r.kind, parent: r.parent, status: "skipped", seconds: null, started_s: null, finished_s: null, worker: null, error: "not started" }),
  };
}
