// calib runs list|show|cancel|submit|follow: the run registry from the command line. It reads
// and writes the same SQLite registry as the API server (safe while a server runs).
import { readFileSync } from "node:fs";
import { num, parse } from "../args.js";
import { UsageError } from "../errors.js";
import type { RunRecord } from "../../runs/registry.js";
import { formatTable } from "../../term/table.js";

export const summary = "the run registry: list, show, cancel, submit (queue for the server), follow a run's events";

const HELP = `usage: calib runs <list|show|cancel|submit|follow> [options]

  calib runs list [--status S[,S]] [--kind K[,K]] [--parent ID] [--limit N] [--json]
        newest first; statuses queued, running, succeeded, failed, cancelled;
        kinds pretrain, sft, eval, sweep, import
  calib runs show ID [--json]       one run: config, metrics, artifacts, latest progress
  calib runs cancel ID [--wait S]   cancel a queued or running run (waits up to S seconds, default 30)
  calib runs submit FILE [--json]   queue a run config (the JSON of POST /api/runs) for the server
  calib runs follow ID              print the run's events until it finishes

  --data-dir DIR   registry location (default $CALIB_DATA_DIR or data/)

examples:
  calib runs list --status running,queued
  calib runs show 20260101-120000-a1b2c3 --json`;

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
const KINDS = ["pretrain", "sft", "eval", "sweep", "import"] as const;

function list<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const p of parts) if (!(choices as readonly string[]).includes(p)) throw new UsageError(`--${flag}: '${p}' is not one of ${choices.join(", ")}`);
  return parts as T[];
}

function fmtTime(iso: string | null): string {
  return iso ? iso.replace("T", " ").slice(0, 19) : "-";
}

function duration(r: RunRecord): string {
  if (!r.started_at) return "-";
  const end = r.finished_at ? Date.parse(r.finished_at) : Date.now();
  const s = Math.max(0, (end - Date.parse(r.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${(s / 3600).toFixed(1)}h`;
}

function progressText(r: RunRecord): string {
  const p = r.progress;
  if (r.status !== "running" || !p) return "";
  const parts: string[] = [];
  if (typeof p.fraction === "number") parts.push(`${Math.round(p.fraction * 100)}%`);
  if (typeof p.step === "number") parts.push(`step ${p.step}${typeof p.total_steps === "number" ? `/${p.total_steps}` : ""}`);
  if (typeof p.loss === "number") parts.push(`loss ${p.loss.toFixed(4)}`);
  if (typeof p.eta_s === "number") parts.push(`ETA ${Math.round(p.eta_s)}s`);
  return parts.join(" ");
}

async function openRegistry(dataDirFlag: string | undefined) {
  if (dataDirFlag !== undefined) process.env.CALIB_DATA_DIR = dataDirFlag;
  const { Registry } = await import("../../runs/registry.js");
  const { registryPath, dataDir } = await import("../../runs/paths.js");
  return { registry: Registry.open(registryPath()), dataDir: dataDir() };
}

function publicRun(r: RunRecord) {
  const { owner: _o, worker: _w, ...rest } = r;
  return rest;
}

const OPTIONS = {
  status: { type: "string" }, kind: { type: "string" }, parent: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" },
  wait: { type: "string" }, "data-dir": { type: "string" }, help: { type: "boolean", short: "h" },
} as const;

type Args = ReturnType<typeof parse<typeof OPTIONS>>;

function one(args: Args, sub: string, what: string): string {
  if (args.positionals.length !== 1) throw new UsageError(`calib runs ${sub} takes one ${what} (see calib runs --help)`);
  return args.positionals[0]!;
}

async function checkRunId(id: string, field?: string): Promise<string> {
  return (await import("../../runs/paths.js")).checkRunId(id, field);
}

/** calib runs list: newest first, filtered, as a table or JSON. */
async function listRuns({ values, positionals }: Args): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const limit = num(values.limit, "limit", 50, (x) => Number.isInteger(x) && x >= 1, "a positive integer");
  const status = list(values.status, "status", STATUSES);
  const kind = list(values.kind, "kind", KINDS);
  if (values.parent !== undefined) await checkRunId(values.parent, "--parent");
  const { registry } = await openRegistry(values["data-dir"]);
  try {
    const runs = registry.list({ ...(status ? { status } : {}), ...(kind ? { kind } : {}), ...(values.parent ? { parentId: values.parent } : {}), limit });
    if (values.json) console.log(JSON.stringify(runs.map(publicRun), null, 2));
    else if (runs.length === 0) console.log("no runs");
    else {
      console.log(formatTable(
        ["ID", "KIND", "STATUS", "DEVICE", "CREATED", "TIME", "NAME", "PROGRESS / ERROR"],
        runs.map((r) => [r.id, r.kind, r.status, r.device, fmtTime(r.created_at), duration(r), r.name.slice(0, 40), r.error ? r.error.slice(0, 60) : progressText(r)]),
        { align: [], rule: false },
      ));
    }
  } finally {
    registry.close();
  }
  return 0;
}

function describeRun(r: RunRecord): string {
  return [
    `run ${r.id}  ${r.kind}  ${r.status}  on ${r.device}  (${r.source})`,
    `name      ${r.name}`,
    `created   ${fmtTime(r.created_at)}   started ${fmtTime(r.started_at)}   finished ${fmtTime(r.finished_at)}   (${duration(r)})`,
    ...(r.parent_id ? [`sweep     ${r.parent_id}`] : []),
    ...(r.depends_on.length ? [`after     ${r.depends_on.join(", ")}`] : []),
    ...(r.error ? [`error     ${r.error}`] : []),
    ...(progressText(r) ? [`progress  ${progressText(r)}`] : []),
    `artifacts ${r.artifacts.join(", ") || "none yet"}`,
    "metrics:",
    ...Object.entries(r.metrics).map(([k, v]) => `  ${k.padEnd(24)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`),
    "config:",
    ...JSON.stringify(r.config, null, 2).split("\n").map((l) => `  ${l}`),
  ].join("\n");
}

/** calib runs show ID: one run's config, metrics, artifacts and latest progress. */
async function showRun(args: Args): Promise<number> {
  const id = await checkRunId(one(args, "show", "run id"));
  const { registry } = await openRegistry(args.values["data-dir"]);
  try {
    const r = registry.get(id);
    if (!r) throw new UsageError(`no run '${id}'`);
    console.log(args.values.json ? JSON.stringify(publicRun(r), null, 2) : describeRun(r));
  } finally {
    registry.close();
  }
  return 0;
}

/** calib runs cancel ID: cancels a queued run at once, a running one through its owner (waits up to --wait s). */
async function cancelRun(args: Args): Promise<number> {
  const id = await checkRunId(one(args, "cancel", "run id"));
  const wait = num(args.values.wait, "wait", 30, (x) => x >= 0, "a number of seconds ≥ 0");
  const { registry, dataDir } = await openRegistry(args.values["data-dir"]);
  const { requestCancel, waitFinished } = await import("../../runs/cancel.js");
  const { ConflictError, NotFoundError } = await import("../../errors.js");
  try {
    let r: RunRecord;
    try {
      r = requestCancel(registry, dataDir, id);
    } catch (err) {
      if (err instanceof NotFoundError) throw new UsageError(err.message);
      if (err instanceof ConflictError) {
        console.error(`calib runs cancel: ${err.message}`);
        return 1;
      }
      throw err;
    }
    if (r.status === "running") {
      process.stderr.write(`cancel requested; waiting for run ${id} to stop…\n`);
      r = await waitFinished(registry, id, wait * 1000);
    }
    console.log(`run ${id}: ${r.status}${r.status === "running" ? " (cancel requested; its process will stop it at the next step)" : ""}`);
    return r.status === "running" ? 1 : 0;
  } finally {
    registry.close();
  }
}

/** calib runs submit FILE: queues a run config (the JSON of POST /api/runs) for the server. */
async function submitRunFile(args: Args): Promise<number> {
  const file = one(args, "submit", "config file");
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`${file}: ${e.code === "ENOENT" ? "no such file" : `not valid JSON (${e.message})`}`);
  }
  const { registry, dataDir } = await openRegistry(args.values["data-dir"]);
  const { submitRun } = await import("../../runs/submit.js");
  try {
    const r = await submitRun(registry, config, { source: "cli", dataDir, allowPaths: true });
    if (args.values.json) console.log(JSON.stringify(publicRun(r), null, 2));
    else console.log(`queued run ${r.id} (${r.kind} on ${r.device}); a running server (calib serve / npm start) executes it`);
  } finally {
    registry.close();
  }
  return 0;
}

/** calib runs follow ID: prints the run's events until it finishes (exit 0 when it succeeded). */
async function followRun(args: Args): Promise<number> {
  const id = await checkRunId(one(args, "follow", "run id"));
  const { registry } = await openRegistry(args.values["data-dir"]);
  const { TERMINAL } = await import("../../runs/registry.js");
  try {
    if (!registry.get(id)) throw new UsageError(`no run '${id}'`);
    let after = 0;
    for (;;) {
      for (const e of registry.events(id, after)) {
        after = e.seq;
        const d = e.data as Record<string, unknown>;
        const text = e.type === "log" ? String(d.message) : e.type === "status" ? `status ${d.status}${d.error ? `: ${d.error}` : ""}` : JSON.stringify(d);
        console.log(`${e.time.slice(11, 19)} ${e.type.padEnd(8)} ${text}`);
      }
      const r = registry.get(id)!;
      if (TERMINAL.has(r.status) && r.event_seq <= after) return r.status === "succeeded" ? 0 : 1;
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    registry.close();
  }
}

const SUB: Record<string, (args: Args) => Promise<number>> = {
  list: listRuns, show: showRun, cancel: cancelRun, submit: submitRunFile, follow: followRun,
};

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h") {
    console.log(HELP);
    return sub ? 0 : 2;
  }
  const args = parse(rest, OPTIONS);
  if (args.values.help) return (console.log(HELP), 0);
  const fn = SUB[sub];
  if (!fn) throw new UsageError(`unknown subcommand '${sub}' (${Object.keys(SUB).join(", ")})`);
  return fn(args);
}
