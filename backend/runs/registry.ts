// The run registry: one SQLite database (better-sqlite3, WAL mode, busy timeout) shared by the
// API server, its job child processes and the `calib` CLI, which may all read and write it at
// the same time. SQLite rather than DuckDB because DuckDB allows a single writing process.
//
// A run moves queued → running → succeeded | failed | cancelled (queued → cancelled too).
// Every transition is one conditional UPDATE, so two processes can never both start or finish
// the same run. Each run has a lane (cpu, cuda, io for imports, none for sweeps) and at most one
// run per lane is running at a time across all processes: claimNext() checks and claims inside
// one IMMEDIATE transaction.
//
// Processes are named "<pid>:<start time>" (the start time from /proc, so a reused pid does not
// look alive). `owner` is the process that executes a run (NULL while queued for any server);
// `worker` the child doing the work. recover() fails the runs whose owner died (a killed server
// or CLI) and re-queues the queued runs of dead CLI processes.
//
// Events (progress, train_log rows, log lines, status changes) are appended to `events` with a
// per-run sequence number, so a client that reconnects to the SSE stream (Last-Event-ID) gets
// what it missed, whichever process produced it.
import Database from "better-sqlite3";
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { checkRunId, ensureDir, registryPath } from "./paths.js";

export const RUN_KINDS = ["pretrain", "sft", "eval", "sweep", "import"] as const;
export const RUN_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export const LANES = ["cpu", "cuda", "io", "none"] as const;
export const TERMINAL: ReadonlySet<RunStatus> = new Set(["succeeded", "failed", "cancelled"]);

export type RunKind = (typeof RUN_KINDS)[number];
export type RunStatus = (typeof RUN_STATUSES)[number];
export type Lane = (typeof LANES)[number];
export type RunSource = "api" | "cli";

/** Latest progress of a running job (also sent as SSE `progress` events). */
export interface Progress {
  phase?: string;
  step?: number;
  total_steps?: number;
  epoch?: number;
  loss?: number;
  lr?: number;
  tokens_per_s?: number;
  elapsed_s?: number;
  eta_s?: number | null;
  message?: string;
  [k: string]: unknown;
}

export interface RunRecord {
  id: string;
  name: string;
  kind: RunKind;
  status: RunStatus;
  /** lane: the device it runs on (cpu, cuda), io (imports) or none (sweeps) */
  device: Lane;
  config: unknown;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  metrics: Record<string, number | string | null>;
  /** records that are complete and downloadable (names of files in the run directory) */
  artifacts: string[];
  progress: Progress | null;
  error: string | null;
  parent_id: string | null;
  depends_on: string[];
  source: RunSource;
  owner: string | null;
  worker: string | null;
  cancel_requested: boolean;
  /** sequence number of the run's last event */
  event_seq: number;
}

export interface RunEvent {
  run_id: string;
  seq: number;
  type: string;
  data: unknown;
  time: string;
}

export interface CreateRun {
  name: string;
  kind: RunKind;
  device: Lane;
  config: unknown;
  source: RunSource;
  parentId?: string | null;
  dependsOn?: string[];
  /** the process that will execute it (the CLI); null: any server */
  owner?: string | null;
  /** preset id (tests); generated otherwise */
  id?: string;
}

export interface ListOptions {
  status?: RunStatus | RunStatus[];
  kind?: RunKind | RunKind[];
  parentId?: string;
  limit?: number;
  offset?: number;
  /** newest first (default) or oldest first */
  order?: "desc" | "asc";
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  lane TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  metrics TEXT NOT NULL DEFAULT '{}',
  artifacts TEXT NOT NULL DEFAULT '[]',
  progress TEXT,
  error TEXT,
  parent_id TEXT,
  depends_on TEXT NOT NULL DEFAULT '[]',
  source TEXT NOT NULL,
  owner TEXT,
  worker TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  event_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_queue ON runs(status, lane, seq);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  time TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
`;

interface Row {
  seq: number;
  id: string;
  name: string;
  kind: string;
  status: string;
  lane: string;
  config: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  metrics: string;
  artifacts: string;
  progress: string | null;
  error: string | null;
  parent_id: string | null;
  depends_on: string;
  source: string;
  owner: string | null;
  worker: string | null;
  cancel_requested: number;
  event_seq: number;
}

function fromRow(r: Row): RunRecord {
  return {
    id: r.id, name: r.name, kind: r.kind as RunKind, status: r.status as RunStatus, device: r.lane as Lane,
    config: JSON.parse(r.config), created_at: r.created_at, started_at: r.started_at, finished_at: r.finished_at,
    metrics: JSON.parse(r.metrics), artifacts: JSON.parse(r.artifacts), progress: r.progress ? JSON.parse(r.progress) : null,
    error: r.error, parent_id: r.parent_id, depends_on: JSON.parse(r.depends_on), source: r.source as RunSource,
    owner: r.owner, worker: r.worker, cancel_requested: r.cancel_requested !== 0, event_seq: r.event_seq,
  };
}

const now = (): string => new Date().toISOString();

/** JSON that survives NaN/Infinity (as null) so metrics never break the registry. */
function json(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v));
}

/** A sortable, readable run id: yyyymmdd-hhmmss-<6 hex>. */
export function newRunId(date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const stamp = `${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}-${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`;
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

// ---------------------------------------------------------------------------------------------
// Process identity

function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null; // field 22 overall: starttime
  } catch {
    return null;
  }
}

/** "<pid>:<start time>" of a process (this one by default). */
export function processTag(pid = process.pid): string {
  return `${pid}:${startTimeOf(pid) ?? "?"}`;
}

/** Whether the process named by a tag is still the same live process. */
export function processAlive(tag: string | null): boolean {
  if (!tag) return false;
  const [pidText, start] = tag.split(":");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const actual = startTimeOf(pid);
  if (actual === null || start === "?" || start === undefined) return true;
  return actual === start;
}

export function tagPid(tag: string | null): number | null {
  if (!tag) return null;
  const pid = Number(tag.split(":")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

// ---------------------------------------------------------------------------------------------

export class Registry {
  readonly db: Database.Database;
  readonly path: string;
  /** 'change' (runId) whenever this process changes a run or appends one of its events */
  readonly changes = new EventEmitter();

  private constructor(path: string, readonly: boolean) {
    this.path = path;
    if (!readonly) ensureDir(dirname(path));
    this.db = new Database(path, { readonly, fileMustExist: readonly, timeout: 15000 });
    this.db.pragma("busy_timeout = 15000");
    if (!readonly) {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      const version = this.db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(`${path}: registry schema version ${version} is newer than this program's (${SCHEMA_VERSION})`);
      }
      this.db.exec(SCHEMA);
      if (version < SCHEMA_VERSION) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
    this.changes.setMaxListeners(0);
  }

  /** Opens (creating when needed) the registry of a data directory. */
  static open(path = registryPath(), opts: { readonly?: boolean } = {}): Registry {
    return new Registry(path, opts.readonly ?? false);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private emit(id: string): void {
    this.changes.emit("change", id);
  }

  // ------------------------------------------------------------------------------------------
  // Create and read

  create(input: CreateRun): RunRecord {
    const created = now();
    const deps = input.dependsOn ?? [];
    for (const d of deps) checkRunId(d, "depends_on");
    const insert = this.db.prepare(
      `INSERT INTO runs (id, name, kind, status, lane, config, created_at, parent_id, depends_on, source, owner)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (let attempt = 0; ; attempt++) {
      const id = input.id ?? newRunId();
      checkRunId(id);
      try {
        insert.run(id, input.name, input.kind, input.device, json(input.config), created, input.parentId ?? null, json(deps), input.source, input.owner ?? null);
        this.appendEvent(id, "status", { status: "queued" });
        return this.get(id)!;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "SQLITE_CONSTRAINT_UNIQUE" && input.id === undefined && attempt < 5) continue;
        if (code === "SQLITE_CONSTRAINT_UNIQUE") throw new RangeError(`id: a run with id '${id}' already exists`);
        throw err;
      }
    }
  }

  get(id: string): RunRecord | undefined {
    const r = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Runs, newest first by default, filtered by status / kind / parent. */
  list(o: ListOptions = {}): RunRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const many = (col: string, v: string | string[] | undefined) => {
      if (v === undefined) return;
      const vs = Array.isArray(v) ? v : [v];
      if (vs.length === 0) return;
      where.push(`${col} IN (${vs.map(() => "?").join(", ")})`);
      args.push(...vs);
    };
    many("status", o.status);
    many("kind", o.kind);
    if (o.parentId !== undefined) {
      where.push("parent_id = ?");
      args.push(o.parentId);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq ${o.order === "asc" ? "ASC" : "DESC"} LIMIT ? OFFSET ?`;
    args.push(o.limit ?? -1, o.offset ?? 0);
    return (this.db.prepare(sql).all(...args) as Row[]).map(fromRow);
  }

  count(o: Pick<ListOptions, "status" | "kind"> = {}): number {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [["status", o.status], ["kind", o.kind]] as const) {
      if (v === undefined) continue;
      const vs = Array.isArray(v) ? v : [v];
      where.push(`${col} IN (${vs.map(() => "?").join(", ")})`);
      args.push(...vs);
    }
    const r = this.db.prepare(`SELECT count(*) AS n FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}`).get(...args) as { n: number };
    return r.n;
  }

  // ------------------------------------------------------------------------------------------
  // Scheduling

  private pick(lane: Lane, owner: string, only?: string): RunRecord | undefined {
    const busy = this.db.prepare("SELECT id FROM runs WHERE status = 'running' AND lane = ? LIMIT 1").get(lane);
    if (busy && lane !== "none") return undefined;
    const rows = (only
      ? this.db.prepare("SELECT * FROM runs WHERE id = ? AND status = 'queued'").all(only)
      : this.db.prepare("SELECT * FROM runs WHERE status = 'queued' AND lane = ? AND owner IS NULL ORDER BY seq").all(lane)) as Row[];
    const depStatus = this.db.prepare("SELECT status FROM runs WHERE id = ?");
    for (const row of rows) {
      const deps = JSON.parse(row.depends_on) as string[];
      let ready = true;
      let broken: string | null = null;
      for (const d of deps) {
        const s = (depStatus.get(d) as { status: string } | undefined)?.status;
        if (s === undefined) broken = `depends on run ${d}, which does not exist`;
        else if (s === "failed" || s === "cancelled") broken = `depends on run ${d}, which ${s === "failed" ? "failed" : "was cancelled"}`;
        else if (s !== "succeeded") ready = false;
        if (broken) break;
      }
      if (broken) {
        this.db.prepare("UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'queued'").run(now(), broken, row.id);
        this.appendEvent(row.id, "status", { status: "failed", error: broken });
        continue;
      }
      if (!ready) continue;
      const ok = this.db.prepare("UPDATE runs SET status = 'running', started_at = ?, owner = ? WHERE id = ? AND status = 'queued'").run(now(), owner, row.id);
      if (ok.changes === 1) {
        this.appendEvent(row.id, "status", { status: "running" });
        return this.get(row.id);
      }
    }
    return undefined;
  }

  /**
   * Atomically claims the oldest runnable queued run of a lane for `owner` (only when no run of
   * that lane is running anywhere). Runs whose dependencies failed are failed on the way.
   */
  claimNext(lane: Lane, owner: string = processTag()): RunRecord | undefined {
    const r = this.db.transaction(() => this.pick(lane, owner)).immediate();
    if (r) this.emit(r.id);
    return r;
  }

  /** Claims one specific queued run (the CLI's own) when its lane is free; undefined otherwise. */
  claim(id: string, owner: string = processTag()): RunRecord | undefined {
    const run = this.get(id);
    if (!run) throw new RangeError(`id: no run '${id}'`);
    const r = this.db.transaction(() => this.pick(run.device, owner, id)).immediate();
    if (r) this.emit(r.id);
    return r;
  }

  setWorker(id: string, worker: string | null): void {
    this.db.prepare("UPDATE runs SET worker = ? WHERE id = ?").run(worker, id);
  }

  setProgress(id: string, progress: Progress): void {
    this.db.prepare("UPDATE runs SET progress = ? WHERE id = ? AND status = 'running'").run(json(progress), id);
    this.emit(id);
  }

  setMetrics(id: string, metrics: Record<string, unknown>): void {
    this.db.prepare("UPDATE runs SET metrics = ? WHERE id = ?").run(json(metrics), id);
    this.emit(id);
  }

  setArtifacts(id: string, artifacts: string[]): void {
    this.db.prepare("UPDATE runs SET artifacts = ? WHERE id = ?").run(json(artifacts), id);
    this.emit(id);
  }

  /**
   * Ends a run: running → succeeded | failed | cancelled, or queued → cancelled | failed.
   * Returns false when the run was already finished (the first writer wins).
   */
  finish(id: string, status: Exclude<RunStatus, "queued" | "running">, fields: { metrics?: Record<string, unknown>; artifacts?: string[]; error?: string | null } = {}): boolean {
    const from = status === "succeeded" ? ["running"] : ["running", "queued"];
    const sets = ["status = ?", "finished_at = ?"];
    const args: unknown[] = [status, now()];
    if (fields.metrics !== undefined) (sets.push("metrics = ?"), args.push(json(fields.metrics)));
    if (fields.artifacts !== undefined) (sets.push("artifacts = ?"), args.push(json(fields.artifacts)));
    if (fields.error !== undefined) (sets.push("error = ?"), args.push(fields.error));
    const done = this.db.transaction(() => {
      const r = this.db.prepare(`UPDATE runs SET ${sets.join(", ")} WHERE id = ? AND status IN (${from.map(() => "?").join(", ")})`).run(...args, id, ...from);
      if (r.changes !== 1) return false;
      this.appendEvent(id, "status", { status, ...(fields.error ? { error: fields.error } : {}) });
      return true;
    }).immediate();
    if (done) this.emit(id);
    return done;
  }

  /** Marks a cancel request (honoured by the process that executes the run). */
  requestCancel(id: string): void {
    this.db.prepare("UPDATE runs SET cancel_requested = 1 WHERE id = ?").run(id);
    this.emit(id);
  }

  /**
   * After a crash: running runs whose owner is dead are failed (their worker, if still alive, is
   * killed), queued runs of dead CLI owners go back to the server queue. Returns the ids.
   */
  recover(alive: (tag: string | null) => boolean = processAlive): { failed: string[]; requeued: string[]; killedWorkers: number[] } {
    const failed: string[] = [];
    const requeued: string[] = [];
    const killedWorkers: number[] = [];
    const running = this.list({ status: "running", order: "asc" });
    for (const r of running) {
      if (r.device === "none") continue; // sweeps have no process: the scheduler settles them
      if (alive(r.owner)) continue;
      if (r.worker && alive(r.worker)) {
        const pid = tagPid(r.worker);
        if (pid) {
          try {
            process.kill(pid, "SIGKILL");
            killedWorkers.push(pid);
          } catch {
            // gone in between
          }
        }
      }
      const ownerPid = tagPid(r.owner) ?? "?";
      const msg = `the process executing this run (pid ${ownerPid}) stopped while it was running (server or CLI killed); marked failed when the registry was next opened by a server`;
      if (this.finish(r.id, "failed", { error: msg })) failed.push(r.id);
    }
    for (const r of this.list({ status: "queued", order: "asc" })) {
      if (r.owner !== null && !alive(r.owner)) {
        this.db.prepare("UPDATE runs SET owner = NULL WHERE id = ? AND status = 'queued'").run(r.id);
        requeued.push(r.id);
      }
    }
    return { failed, requeued, killedWorkers };
  }

  // ------------------------------------------------------------------------------------------
  // Events

  appendEvent(id: string, type: string, data: unknown): number {
    const seq = this.db.transaction(() => {
      const r = this.db.prepare("UPDATE runs SET event_seq = event_seq + 1 WHERE id = ? RETURNING event_seq").get(id) as { event_seq: number } | undefined;
      if (!r) throw new RangeError(`id: no run '${id}'`);
      this.db.prepare("INSERT INTO events (run_id, seq, type, data, time) VALUES (?, ?, ?, ?, ?)").run(id, r.event_seq, type, json(data), now());
      return r.event_seq;
    })();
    this.emit(id);
    return seq;
  }

  /** Events of a run with seq > after, oldest first. */
  events(id: string, after = 0, limit = 10000): RunEvent[] {
    const rows = this.db.prepare("SELECT run_id, seq, type, data, time FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?").all(id, after, limit) as Array<
      { run_id: string; seq: number; type: string; data: string; time: string }
    >;
    return rows.map((r) => ({ run_id: r.run_id, seq: r.seq, type: r.type, data: JSON.parse(r.data), time: r.time }));
  }
}
