// The server's job executor: claims queued runs from the registry, one per lane (cpu, cuda,
// io) at a time across every process that shares the registry, and runs each in a child
// process (worker.ts, forked through tsx), so training never blocks the HTTP event loop.
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
import { fork, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConflictError, NotFoundError } from "./errors.js";
import { listArtifacts, RECORD_FILES, removeTemporaries, writeRunRecord, type JobResult } from "./jobs.js";
import { finalizeRun, settleSweep } from "./finish.js";
import { requestCancel } from "./cancel.js";
import { ensureDir, runDir } from "./paths.js";
import { processAlive, processTag, TERMINAL, type Lane, type Progress, type Registry, type RunRecord } from "./registry.js";
import type { FromWorker, ToWorker } from "./worker.js";

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
  child: ChildProcess;
  log: WriteStream;
  stderrTail: string;
  result?: JobResult;
  failure?: string;
  cancelled: boolean;
  lastProgressAt: number;
  pendingProgress: Progress | null;
  progressTimer: NodeJS.Timeout | null;
  exited: Promise<void>;
  killTimer: NodeJS.Timeout | null;
}

const PROGRESS_INTERVAL_MS = 250;
const TAIL_BYTES = 4000;

export class Executor {
  readonly tag = processTag();
  private readonly active = new Map<string, Active>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  private lastRecover = 0;
  private readonly lanes: Lane[];
  private readonly log: (m: string) => void;

  constructor(readonly registry: Registry, readonly options: ExecutorOptions) {
    this.lanes = options.lanes ?? ["cpu", "cuda", "io"];
    this.log = options.log ?? (() => {});
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
    const child = fork(WORKER_PATH, [run.id], {
      execArgv: ["--import", TSX_LOADER],
      env: { ...process.env, CALIB_DATA_DIR: this.options.dataDir },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
    });
    let resolveExit!: () => void;
    const a: Active = {
      run, child, log, stderrTail: "", cancelled: false, lastProgressAt: 0, pendingProgress: null, progressTimer: null,
      exited: new Promise<void>((r) => (resolveExit = r)), killTimer: null,
    };
    this.active.set(run.id, a);
    if (child.pid) this.registry.setWorker(run.id, processTag(child.pid));
    this.log(`run ${run.id} (${run.kind}) started on ${run.device}, worker pid ${child.pid}`);
    const onOutput = (chunk: Buffer, isErr: boolean) => {
      log.write(chunk);
      if (isErr) a.stderrTail = (a.stderrTail + chunk.toString("utf8")).slice(-TAIL_BYTES);
    };
    child.stdout!.on("data", (c: Buffer) => onOutput(c, false));
    child.stderr!.on("data", (c: Buffer) => onOutput(c, true));
    child.on("message", (m: unknown) => this.onMessage(a, m as FromWorker));
    child.on("error", (err) => {
      a.failure ??= `worker process error: ${err.message}`;
    });
    child.on("exit", (code, signal) => {
      void this.onExit(a, code, signal).finally(() => {
        resolveExit();
        this.kick();
      });
    });
    const start: ToWorker = { type: "start", run, dataDir: this.options.dataDir };
    child.send(start);
  }

  private onMessage(a: Active, m: FromWorker): void {
    const id = a.run.id;
    try {
      switch (m.type) {
        case "progress":
          a.pendingProgress = m.progress;
          this.flushProgress(a, false);
          break;
        case "row":
          this.registry.appendEvent(id, "row", m.row);
          break;
        case "log":
          a.log.write(`[calib] ${m.message}\n`);
          this.registry.appendEvent(id, "log", { message: m.message });
          break;
        case "done":
          a.result = m.result;
          break;
        case "failed":
          a.failure = m.message;
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

  private async onExit(a: Active, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (a.killTimer) clearTimeout(a.killTimer);
    this.flushProgress(a, true);
    await new Promise<void>((r) => a.log.end(r));
    this.active.delete(a.run.id);
    const run = this.registry.get(a.run.id) ?? a.run;
    if (TERMINAL.has(run.status)) return;
    const dir = runDir(run.id, this.options.dataDir);
    removeTemporaries(dir);
    let status: "succeeded" | "failed" | "cancelled";
    let error: string | null = null;
    let metrics: Record<string, unknown> | undefined;
    if (a.cancelled) {
      // a job that finished before the cancel reached it keeps its result
      status = a.result?.status === "succeeded" ? "succeeded" : "cancelled";
      metrics = a.result?.metrics;
    } else if (a.result) {
      status = a.result.status;
      metrics = a.result.metrics;
    } else {
      status = "failed";
      const tail = a.stderrTail.trim().split("\n").slice(-3).join(" | ");
      error = a.failure ?? `the job process exited ${signal ? `on signal ${signal}` : `with code ${code}`}${tail ? `: ${tail}` : ""}`;
    }
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
    const msg: ToWorker = { type: "cancel" };
    try {
      a.child.send(msg);
    } catch {
      // already gone
    }
    a.killTimer = setTimeout(() => a.child.kill("SIGKILL"), this.options.cancelGraceMs ?? 5000);
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
      a.child.kill("SIGKILL");
    }
    await Promise.all(all.map((a) => a.exited));
  }
}
