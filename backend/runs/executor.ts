// The server's job executor: claims queued runs from the registry, one per lane (cpu, cuda,
// io) at a time across every process that shares the registry, and runs each in a child
// process of the worker pool (pool.ts: a fresh worker.ts per run, forked through tsx), so
// training never blocks the HTTP event loop.
//
// Child → parent IPC events are persisted (registry events + latest progress, throttled to
// 4 writes/s per run) and so reach SSE subscribers of any server process. The child's stdout and
// stderr go to data/runs/<id>/job.log. When the child exits, run.json is written and the run is
// finished in the registry with its metrics and the list of complete artifacts.
//
// On start, runs left `running` by a dead server or CLI are failed (their surviving workers
// killed, temporary files removed) and queued runs of dead CLI processes are re-queued.
// Sweeps (lane none) have no process: they run while their children run and finish when the
// last child does. Cancel: queued runs end at once; a running job gets {type: "cancel"} (it
// stops at its next step with a checkpoint) and SIGKILL after a grace period; a run executed by
// another process gets a cancel request in the registry, which its owner honours.
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConflictError, NotFoundError } from "../errors.js";
import { listArtifacts, RECORD_FILES, removeTemporaries, writeRunRecord, type JobEvent, type JobResult } from "./jobs.js";
import { finalizeRun, settleSweep } from "./finish.js";
import { requestCancel } from "./cancel.js";
import { ensureDir, runDir } from "./paths.js";
import { WorkerPool, type JobEnd, type JobHandle } from "./pool.js";
import { processAlive, processTag, TERMINAL, type Lane, type Progress, type Registry, type RunRecord } from "./registry.js";
import type { RunJob } from "./worker.js";

export const WORKER_PATH = fileURLToPath(new URL("./worker.ts", import.meta.url));
const TSX_LOADER = import.meta.resolve("tsx");

export interface ExecutorOptions {
  dataDir: string;
  /** scheduling interval (ms, default 500) */
  pollMs?: number;
  /** how long a cancelled job may take to stop before SIGKILL (ms, default 5000) */
  cancelGraceMs?: number;
  /** lanes this executor runs (default cpu, cuda, io) */
  lanes?: Lane[];
  /** diagnostics (default: none) */
  log?: (message: string) => void;
}

interface Active {
  run: RunRecord;
  job: JobHandle<JobResult>;
  log: WriteStream;
  /** why it failed when the executor stopped it */
  failure?: string;
  cancelled: boolean;
  lastProgressAt: number;
  pendingProgress: Progress | null;
  progressTimer: NodeJS.Timeout | null;
  /** resolves once the job's end is recorded */
  exited: Promise<void>;
}

const PROGRESS_INTERVAL_MS = 250;

export class Executor {
  readonly tag = processTag();
  private readonly active = new Map<string, Active>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  private lastRecover = 0;
  private readonly lanes: Lane[];
  private readonly log: (m: string) => void;
  private readonly pool: WorkerPool<RunJob, JobEvent, JobResult>;

  constructor(readonly registry: Registry, readonly options: ExecutorOptions) {
    this.lanes = options.lanes ?? ["cpu", "cuda", "io"];
    this.log = options.log ?? (() => {});
    this.pool = new WorkerPool({
      worker: { module: WORKER_PATH, args: [], execArgv: ["--import", TSX_LOADER] }, size: this.lanes.length, reuse: false,
      env: { ...process.env, CALIB_DATA_DIR: options.dataDir }, output: "pipe",
    });
  }

  /** Recovers after a crash, then schedules every pollMs. Returns what recovery did. */
  start(): ReturnType<Registry["recover"]> {
    const rec = this.recover();
    this.timer = setInterval(() => this.tick(), this.options.pollMs ?? 500);
    this.timer.unref?.();
    queueMicrotask(() => this.tick());
    return rec;
  }

  private recover(): ReturnType<Registry["recover"]> {
    this.lastRecover = Date.now();
    const rec = this.registry.recover((tag) => tag === this.tag || processAlive(tag));
    for (const id of rec.failed) {
      const dir = runDir(id, this.options.dataDir);
      const removed = removeTemporaries(dir);
      const run = this.registry.get(id)!;
      const present = new Set([...listArtifacts(dir), "run.json"]);
      const artifacts = RECORD_FILES.filter((f) => present.has(f));
      try {
        writeRunRecord(dir, run, artifacts);
        this.registry.setArtifacts(id, artifacts);
      } catch (err) {
        this.log(`run ${id}: cannot write run.json (${(err as Error).message})`);
      }
      this.log(`run ${id}: marked failed (its process died)${removed.length ? `; removed ${removed.length} temporary file(s)` : ""}`);
    }
    for (const pid of rec.killedWorkers) this.log(`killed orphaned worker pid ${pid}`);
    for (const id of rec.requeued) this.log(`run ${id}: re-queued`);
    return rec;
  }

  /** Runs a scheduling pass now (after a submission). */
  kick(): void {
    queueMicrotask(() => this.tick());
  }

  /** Active run ids of this executor. */
  activeRuns(): string[] {
    return [...this.active.keys()];
  }

  private tick(): void {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      if (Date.now() - this.lastRecover > 5000) this.recover();
      const busy = new Set([...this.active.values()].map((a) => a.run.device));
      for (const lane of this.lanes) {
        if (busy.has(lane)) continue;
        const run = this.registry.claimNext(lane, this.tag);
        if (run) this.launch(run);
      }
      // sweeps: start queued ones, settle those whose children are all done
      while (this.registry.claimNext("none", this.tag)) {
        // claimed: now running
      }
      for (const s of this.registry.list({ status: "running", kind: "sweep" })) this.settleSweep(s);
      // cancel requests made through the registry (calib runs cancel)
      for (const a of this.active.values()) {
        if (!a.cancelled && this.registry.get(a.run.id)?.cancel_requested) void this.cancelActive(a);
      }
    } catch (err) {
      this.log(`scheduler: ${(err as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private settleSweep(sweep: RunRecord): void {
    settleSweep(this.registry, this.options.dataDir, sweep);
  }

  private finishWithRecord(run: RunRecord, status: "succeeded" | "failed" | "cancelled", f: { metrics?: Record<string, unknown>; error?: string | null }): void {
    finalizeRun(this.registry, this.options.dataDir, run, status, f);
  }

  private launch(run: RunRecord): void {
    const dir = ensureDir(runDir(run.id, this.options.dataDir));
    removeTemporaries(dir);
    const log = createWriteStream(`${dir}/job.log`, { flags: "a" });
    let a!: Active;
    const job = this.pool.run({ run, dataDir: this.options.dataDir }, {
      onOutput: (chunk) => log.write(chunk),
      onEvent: (e) => this.onEvent(a, e),
    });
    // exited: once the job's end is recorded (registry and run.json)
    const exited = job.ended.then((end) => this.onEnd(a, end)).finally(() => this.kick());
    a = { run, job, log, cancelled: false, lastProgressAt: 0, pendingProgress: null, progressTimer: null, exited };
    this.active.set(run.id, a);
    if (job.pid) this.registry.setWorker(run.id, processTag(job.pid));
    this.log(`run ${run.id} (${run.kind}) started on ${run.device}, worker pid ${job.pid}`);
  }

  private onEvent(a: Active, e: JobEvent): void {
    const id = a.run.id;
    try {
      switch (e.type) {
        case "progress":
          a.pendingProgress = e.progress;
          this.flushProgress(a, false);
          break;
        case "row":
          this.registry.appendEvent(id, "row", e.row);
          break;
        case "log":
          a.log.write(`[calib] ${e.message}\n`);
          this.registry.appendEvent(id, "log", { message: e.message });
          break;
      }
    } catch (err) {
      this.log(`run ${id}: cannot record an event (${(err as Error).message})`);
    }
  }

  private flushProgress(a: Active, force: boolean): void {
    if (!a.pendingProgress) return;
    const now = Date.now();
    if (!force && now - a.lastProgressAt < PROGRESS_INTERVAL_MS) {
      a.progressTimer ??= setTimeout(() => {
        a.progressTimer = null;
        this.flushProgress(a, true);
      }, PROGRESS_INTERVAL_MS - (now - a.lastProgressAt));
      return;
    }
    if (a.progressTimer) (clearTimeout(a.progressTimer), (a.progressTimer = null));
    const p = a.pendingProgress;
    a.pendingProgress = null;
    a.lastProgressAt = now;
    this.registry.setProgress(a.run.id, p);
    this.registry.appendEvent(a.run.id, "progress", p);
  }

  /** The outcome of a finished job: what the registry and run.json record. */
  private outcome(a: Active, end: JobEnd<JobResult>): { status: "succeeded" | "failed" | "cancelled"; error: string | null; metrics?: Record<string, unknown> } {
    const result = end.kind === "done" ? end.result : undefined;
    // a job that finished before the cancel reached it keeps its result
    if (a.cancelled) return { status: result?.status === "succeeded" ? "succeeded" : "cancelled", error: null, ...(result ? { metrics: result.metrics } : {}) };
    if (result) return { status: result.status, error: null, metrics: result.metrics };
    if (a.failure) return { status: "failed", error: a.failure };
    if (end.kind === "failed") return { status: "failed", error: end.message };
    const how = end.kind === "exited" && end.signal ? `on signal ${end.signal}` : `with code ${end.kind === "exited" ? end.code : null}`;
    const tail = end.kind === "exited" ? end.stderrTail.trim().split("\n").slice(-3).join(" | ") : "";
    return { status: "failed", error: `the job process exited ${how}${tail ? `: ${tail}` : ""}` };
  }

  private async onEnd(a: Active, end: JobEnd<JobResult>): Promise<void> {
    this.flushProgress(a, true);
    await new Promise<void>((r) => a.log.end(r));
    this.active.delete(a.run.id);
    const run = this.registry.get(a.run.id) ?? a.run;
    if (TERMINAL.has(run.status)) return;
    removeTemporaries(runDir(run.id, this.options.dataDir));
    const { status, error, metrics } = this.outcome(a, end);
    this.log(`run ${run.id}: ${status}${error ? ` (${error})` : ""}`);
    try {
      this.finishWithRecord(run, status, { ...(metrics ? { metrics } : {}), error });
    } catch (err) {
      this.registry.finish(run.id, "failed", { error: `cannot write the run's records: ${(err as Error).message}` });
    }
  }

  private async cancelActive(a: Active): Promise<void> {
    if (a.cancelled) return a.exited;
    a.cancelled = true;
    a.job.cancel(this.options.cancelGraceMs ?? 5000);
    return a.exited;
  }

  /** Cancels a run; resolves to its record once the cancel took effect (or was requested). */
  async cancel(id: string): Promise<RunRecord> {
    const run = this.registry.get(id);
    if (!run) throw new NotFoundError(`no run '${id}'`);
    if (TERMINAL.has(run.status)) throw new ConflictError(`run ${id} is already ${run.status}`);
    if (run.kind === "sweep") {
      for (const c of this.registry.list({ parentId: id })) if (!TERMINAL.has(c.status)) await this.cancel(c.id).catch(() => undefined);
      const latest = this.registry.get(id)!;
      if (!TERMINAL.has(latest.status)) this.finishWithRecord(latest, "cancelled", { error: "cancelled" });
      return this.registry.get(id)!;
    }
    const a = this.active.get(id);
    if (a) {
      await this.cancelActive(a);
      return this.registry.get(id)!;
    }
    // queued, or running in another process (the CLI polls the registry for the request)
    return requestCancel(this.registry, this.options.dataDir, id);
  }

  /** Stops scheduling; running jobs are killed and marked failed with `reason`. */
  async stop(reason = "the server stopped while the run was running"): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const all = [...this.active.values()];
    for (const a of all) {
      a.failure = reason;
      a.job.kill();
    }
    await Promise.all(all.map((a) => a.exited));
  }
}
