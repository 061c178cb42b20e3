// Runs executed by the CLI process itself (calib train / eval / sweep / import), registered in
// the same registry as the API's runs: the same validation (submitRun), the same lanes (the CLI
// waits while a server or another CLI runs something on its device), the same records, events
// and run.json. A cancel through the API or `calib runs cancel` sets a request in the registry,
// which this process polls; Ctrl-C cancels too (a second Ctrl-C exits at once).
//
// For the train/eval commands:
//   const run = await runLocally(config, { progress: true });   // RunRecord, status succeeded | failed | cancelled
import { executeJob, type JobEvent } from "./jobs.js";
import { finalizeRun, settleSweep } from "./finish.js";
import { dataDir as defaultDataDir, registryPath, runDir } from "./paths.js";
import { processTag, Registry, TERMINAL, type Progress, type RunRecord } from "./registry.js";
import { precheckRunConfig, submitRun } from "./submit.js";

export interface LocalRunOptions {
  /** default: CALIB_DATA_DIR or <repo>/data */
  dataDir?: string;
  /** an open registry (default: opened here and closed at the end) */
  registry?: Registry;
  /** progress bars and waiting notes on stderr (default true) */
  progress?: boolean;
  /** every job event as it happens (after it is recorded) */
  onEvent?: (run: RunRecord, event: JobEvent) => void;
  /** called once the run is registered, before it waits for its lane */
  onCreated?: (run: RunRecord) => void;
  /** how often to look for a free lane and cancel requests (ms, default 1000) */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Validates, registers and executes a run (or a sweep, child after child) in this process. */
export async function runLocally(config: unknown, o: LocalRunOptions = {}): Promise<RunRecord> {
  const dataDir = o.dataDir ?? defaultDataDir();
  precheckRunConfig(config, { allowPaths: true }); // bad input never opens (or creates) the registry
  const registry = o.registry ?? Registry.open(registryPath(dataDir));
  try {
    const run = await submitRun(registry, config, { source: "cli", owner: processTag(), allowPaths: true, dataDir });
    o.onCreated?.(run);
    return await executeLocally(registry, run.id, { ...o, dataDir });
  } finally {
    if (!o.registry) registry.close();
  }
}

/** Executes a registered run that this process owns (waiting for its lane and dependencies). */
export async function executeLocally(registry: Registry, id: string, o: LocalRunOptions & { dataDir: string }): Promise<RunRecord> {
  const tag = processTag();
  const progress = o.progress ?? true;
  const pollMs = o.pollMs ?? 1000;
  const first = registry.get(id);
  if (!first) throw new RangeError(`id: no run '${id}'`);
  if (first.kind === "sweep") return executeSweep(registry, first, o);
  let noted = false;
  let run: RunRecord | undefined;
  for (;;) {
    const current = registry.get(id)!;
    // already claimed by this process (e.g. by the caller): go ahead
    run = current.status === "running" && current.owner === tag ? current : registry.claim(id, tag);
    if (run) break;
    const now = registry.get(id)!;
    if (TERMINAL.has(now.status)) return now;
    if (now.cancel_requested) {
      registry.finish(id, "cancelled");
      return registry.get(id)!;
    }
    if (!noted && progress) {
      const busy = registry.list({ status: "running" }).find((r) => r.device === now.device);
      const dep = now.depends_on.map((d) => registry.get(d)).find((d) => d && !TERMINAL.has(d.status));
      process.stderr.write(`run ${id} is queued: ${dep ? `waiting for run ${dep.id} (${dep.status})` : busy ? `the ${now.device} lane is busy with run ${busy.id}` : "waiting"}\n`);
      noted = true;
    }
    await sleep(pollMs);
  }
  registry.setWorker(id, tag);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write("\ncancelling (Ctrl-C again to quit at once)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const watch = setInterval(() => {
    if (registry.get(id)?.cancel_requested) controller.abort();
  }, pollMs);
  let lastProgress = 0;
  let pending: Progress | null = null;
  const flush = () => {
    if (!pending) return;
    registry.setProgress(id, pending);
    registry.appendEvent(id, "progress", pending);
    pending = null;
    lastProgress = Date.now();
  };
  const emit = (e: JobEvent) => {
    if (e.type === "progress") {
      pending = e.progress;
      if (Date.now() - lastProgress >= 250) flush();
    } else if (e.type === "row") registry.appendEvent(id, "row", e.row);
    else registry.appendEvent(id, "log", { message: e.message });
    o.onEvent?.(run!, e);
  };
  try {
    const result = await executeJob({ run, dataDir: o.dataDir, dir: runDir(id, o.dataDir), signal: controller.signal, progress, emit });
    flush();
    finalizeRun(registry, o.dataDir, run, result.status, { metrics: result.metrics });
  } catch (err) {
    flush();
    finalizeRun(registry, o.dataDir, run, "failed", { error: err instanceof Error ? err.message : String(err) });
  } finally {
    clearInterval(watch);
    process.off("SIGINT", onSigint);
  }
  return registry.get(id)!;
}

async function executeSweep(registry: Registry, sweep: RunRecord, o: LocalRunOptions & { dataDir: string }): Promise<RunRecord> {
  if (sweep.status === "queued") registry.claim(sweep.id, processTag());
  const children = registry.list({ parentId: sweep.id, order: "asc" });
  for (const [i, c] of children.entries()) {
    if (registry.get(sweep.id)?.cancel_requested) {
      for (const rest of children.slice(i)) registry.finish(rest.id, "cancelled");
      break;
    }
    if (o.progress ?? true) process.stderr.write(`sweep ${sweep.id}: run ${i + 1}/${children.length} ${c.name}\n`);
    await executeLocally(registry, c.id, o);
  }
  const latest = registry.get(sweep.id)!;
  if (!TERMINAL.has(latest.status)) settleSweep(registry, o.dataDir, latest);
  return registry.get(sweep.id)!;
}

/**
 * `calib train` / `calib eval` without --out: the run is registered and executed by runLocally
 * (records in data/runs/<id>, listed by `calib runs` and the API) and printed like those commands
 * print. Returns the exit code (0 succeeded, 1 failed or cancelled).
 */
export async function runFromCli(config: unknown, o: { quiet?: boolean; json?: boolean; dataDir?: string } = {}): Promise<number> {
  const dataDir = o.dataDir ?? defaultDataDir();
  const run = await runLocally(config, {
    dataDir, progress: !o.quiet,
    onCreated: (r) => {
      if (!o.quiet) process.stderr.write(`run ${r.id} registered (${r.kind} on ${r.device}); records in ${runDir(r.id, dataDir)}\n`);
    },
  });
  if (o.json) {
    const { owner: _o, worker: _w, ...pub } = run;
    console.log(JSON.stringify(pub, null, 2));
  } else {
    console.log(`${run.kind} run ${run.id}: ${run.status}${run.error ? ` (${run.error})` : ""} → ${runDir(run.id, dataDir)}`);
    for (const [k, v] of Object.entries(run.metrics)) console.log(`  ${k.padEnd(20)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`);
  }
  return run.status === "succeeded" ? 0 : 1;
}
