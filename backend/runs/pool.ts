// The one worker pool: child processes (child_process.fork) that run jobs for the server's
// executor (executor.ts, a fresh process per run) and for studies (backend/study/execute.ts,
// long-lived workers that run job after job). Both ends of its IPC protocol live here:
//
//   parent → worker   {type: "job", job}   {type: "cancel"} (abort the job's signal)   {type: "exit"} (after the current job)
//   worker → parent   {type: "ready"}   {type: "event", event}   {type: "done", result}   {type: "failed", message}
//
// A job ends with its result, with the message of what it threw, or — when its process dies
// first — with the exit code or signal and the tail of its stderr. With `reuse: false` a job's
// end is reported once its process has exited, so nothing it started still writes. A worker
// whose parent goes away (the IPC channel closes) exits at once. Node built-ins only: the study's
// GPU bundle (scripts/gpu/study.ts) carries this file.
import { fork, type ChildProcess } from "node:child_process";

export interface WorkerSpec {
  module: string;
  args: string[];
  execArgv: string[];
}

export type ToWorker<J> = { type: "job"; job: J } | { type: "cancel" } | { type: "exit" };
export type FromWorker<E, R> = { type: "ready" } | { type: "event"; event: E } | { type: "done"; result: R } | { type: "failed"; message: string };

export type JobEnd<R> =
  | { kind: "done"; result: R }
  | { kind: "failed"; message: string }
  | { kind: "exited"; code: number | null; signal: NodeJS.Signals | null; stderrTail: string };

export interface PoolOptions {
  worker: WorkerSpec;
  /** most jobs at a time (one per worker) */
  size: number;
  /** false: a fresh process per job, which exits after it; true: workers serve job after job until close() */
  reuse: boolean;
  env?: NodeJS.ProcessEnv;
  /** "pipe": a job's hooks.onOutput gets its worker's stdout and stderr; "inherit": they are this process's */
  output: "pipe" | "inherit";
}

export interface JobHooks<E> {
  onEvent?(event: E): void;
  onOutput?(chunk: Buffer, stream: "stdout" | "stderr"): void;
}

export interface JobHandle<R> {
  /** the worker's process id */
  readonly pid: number | undefined;
  /** which of the pool's workers (0 … size − 1) */
  readonly worker: number;
  readonly ended: Promise<JobEnd<R>>;
  /** asks the job to stop ({type: "cancel"}); its process is killed if it still runs after graceMs */
  cancel(graceMs: number): void;
  /** SIGKILL now */
  kill(): void;
}

const TAIL_CHARS = 4000;

interface Job<J, E, R> {
  job: J;
  hooks: JobHooks<E>;
  sent: boolean;
  end: JobEnd<R> | null;
  stderrTail: string;
  killTimer: NodeJS.Timeout | null;
  resolve(end: JobEnd<R>): void;
}

interface Slot<J, E, R> {
  child: ChildProcess | null;
  ready: boolean;
  current: Job<J, E, R> | null;
  exited: Promise<void>;
}

export class WorkerPool<J, E, R> {
  private readonly slots: Slot<J, E, R>[] = [];

  constructor(private readonly o: PoolOptions) {
    for (let i = 0; i < Math.max(1, o.size); i++) this.slots.push({ child: null, ready: false, current: null, exited: Promise.resolve() });
  }

  /** Jobs that can start now. */
  get idle(): number {
    return this.slots.filter((s) => s.current === null).length;
  }

  /** Starts a job on a free worker (spawning it when needed); throws when every worker is busy. */
  run(job: J, hooks: JobHooks<E> = {}): JobHandle<R> {
    const slot = this.slots.find((s) => s.current === null);
    if (!slot) throw new Error("worker pool: every worker is busy");
    if (!slot.child) this.spawn(slot);
    const child = slot.child!;
    let resolve!: (end: JobEnd<R>) => void;
    const ended = new Promise<JobEnd<R>>((r) => (resolve = r));
    const j: Job<J, E, R> = { job, hooks, sent: false, end: null, stderrTail: "", killTimer: null, resolve };
    slot.current = j;
    if (slot.ready) this.send(slot, j);
    return {
      pid: child.pid,
      worker: this.slots.indexOf(slot),
      ended,
      cancel: (graceMs) => {
        if (slot.current !== j) return;
        this.post(child, { type: "cancel" });
        j.killTimer ??= setTimeout(() => child.kill("SIGKILL"), graceMs);
      },
      kill: () => {
        if (slot.current === j) child.kill("SIGKILL");
      },
    };
  }

  /** SIGKILL to every worker (their jobs end as "exited"). */
  killAll(): void {
    for (const s of this.slots) s.child?.kill("SIGKILL");
  }

  /** Lets every worker finish its job, then exit; resolves when all have. */
  async close(): Promise<void> {
    for (const s of this.slots) if (s.child) this.post(s.child, { type: "exit" });
    await Promise.all(this.slots.map((s) => s.exited));
  }

  private post(child: ChildProcess, msg: ToWorker<J>): void {
    try {
      if (child.connected) child.send(msg);
    } catch {
      // the worker is gone: its exit ends the job
    }
  }

  private send(slot: Slot<J, E, R>, j: Job<J, E, R>): void {
    j.sent = true;
    this.post(slot.child!, { type: "job", job: j.job });
  }

  private finish(slot: Slot<J, E, R>, end: JobEnd<R>): void {
    const j = slot.current!;
    if (j.killTimer) clearTimeout(j.killTimer);
    slot.current = null;
    j.resolve(end);
  }

  private spawn(slot: Slot<J, E, R>): void {
    const { worker, env, output } = this.o;
    const child = fork(worker.module, worker.args, {
      execArgv: worker.execArgv, env: env ?? process.env, serialization: "json",
      stdio: output === "pipe" ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "inherit", "inherit", "ipc"],
    });
    slot.child = child;
    slot.ready = false;
    let exited!: () => void;
    slot.exited = new Promise<void>((r) => (exited = r));
    const onOutput = (chunk: Buffer, stream: "stdout" | "stderr") => {
      const j = slot.current;
      if (!j) return;
      j.hooks.onOutput?.(chunk, stream);
      if (stream === "stderr") j.stderrTail = (j.stderrTail + chunk.toString("utf8")).slice(-TAIL_CHARS);
    };
    child.stdout?.on("data", (c: Buffer) => onOutput(c, "stdout"));
    child.stderr?.on("data", (c: Buffer) => onOutput(c, "stderr"));
    child.on("message", (m: FromWorker<E, R>) => this.onMessage(slot, child, m));
    child.on("error", (err) => {
      if (slot.current && !slot.current.end) slot.current.end = { kind: "failed", message: `worker process error: ${err.message}` };
    });
    child.on("exit", (code, signal) => {
      if (slot.child === child) {
        slot.child = null;
        slot.ready = false;
      }
      const j = slot.current;
      if (j) this.finish(slot, j.end ?? { kind: "exited", code, signal, stderrTail: j.stderrTail });
      exited();
    });
  }

  private onMessage(slot: Slot<J, E, R>, child: ChildProcess, m: FromWorker<E, R>): void {
    const j = slot.current;
    if (m.type === "ready") {
      slot.ready = true;
      if (j && !j.sent) this.send(slot, j);
      return;
    }
    if (!j) return;
    if (m.type === "event") {
      j.hooks.onEvent?.(m.event);
      return;
    }
    j.end = m.type === "done" ? { kind: "done", result: m.result } : { kind: "failed", message: m.message };
    // a reused worker takes the next job now; a one-job worker ends the job when its process has exited
    if (this.o.reuse) this.finish(slot, j.end);
    else this.post(child, { type: "exit" });
  }
}

export interface JobContext<E> {
  /** aborted by {type: "cancel"} */
  signal: AbortSignal;
  emit(event: E): void;
}

/**
 * The worker's side: runs the handler for every job, one at a time, and reports its result (or
 * what it threw, with the stack on stderr). Exits after {type: "exit"} once the current job is
 * done, and at once when the parent goes away.
 */
export function serveJobs<J, E, R>(handler: (job: J, ctx: JobContext<E>) => Promise<R>): void {
  if (!process.send) throw new Error("a pool worker is started by its parent (child_process.fork), not by hand");
  const send = (msg: FromWorker<E, R>) =>
    new Promise<void>((resolve) => {
      if (!process.connected) process.exit(1);
      process.send!(msg, undefined, {}, () => resolve());
    });
  let busy = Promise.resolve();
  let controller: AbortController | null = null;
  process.on("disconnect", () => process.exit(1));
  process.on("message", (m: ToWorker<J>) => {
    if (m.type === "cancel") return void controller?.abort();
    if (m.type === "exit") return void busy.then(() => process.exit(0));
    busy = busy.then(async () => {
      const c = (controller = new AbortController());
      try {
        const result = await handler(m.job, {
          signal: c.signal,
          emit: (event) => {
            if (!process.connected) process.exit(1);
            process.send!({ type: "event", event } satisfies FromWorker<E, R>);
          },
        });
        await send({ type: "done", result });
      } catch (err) {
        if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
        await send({ type: "failed", message: err instanceof Error ? err.message : String(err) });
      } finally {
        controller = null;
      }
    });
  });
  process.send({ type: "ready" } satisfies FromWorker<E, R>);
}
