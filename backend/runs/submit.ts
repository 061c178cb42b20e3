// Creating runs: the one code path behind POST /api/runs, `calib runs submit`, and the
// train/eval CLI commands (through runLocally in local.ts). It validates the configuration,
// resolves the device to a lane, checks run references, and inserts the registry entries (a
// sweep inserts itself and all its child runs in one transaction). Imports (POST
// /api/imports/lm-eval, `calib import`) are registered here too: submitLmEvalImport.
import { copyFileSync, renameSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { FieldError, fromZod } from "../errors.js";
import { checkDistinctTasks, parseSamplesPath, UPLOAD_DIR, type ImportConfig, type ParsedSamples } from "../imports/index.js";
import { CALIBRATION_DEFAULTS, type CalibrationSettings } from "../records/calibration.js";
import { ensureDir, runDir } from "./paths.js";
import { TERMINAL, type Lane, type Registry, type RunRecord, type RunSource } from "./registry.js";
import { describePoint, expandGrid } from "./grid.js";
import { MAX_SWEEP_RUNS, parseRunConfig, PretrainRunSchema, SftRunSchema, runReference, type EvalRunConfig, type RunConfig, type SweepConfig } from "./schema.js";
import { readCheckpointConfig } from "../train/checkpoint.js";

export interface SubmitOptions {
  source: RunSource;
  /** the process that will execute it (CLI local runs); default null = the server's queue */
  owner?: string | null;
  /** allow directory paths in sft.init / eval.checkpoint (CLI only) */
  allowPaths?: boolean;
  /** the data directory (for checking referenced runs and paths) */
  dataDir: string;
  /** override the device lane resolution (tests) */
  resolveLane?: (device: "cpu" | "cuda" | "auto") => Promise<Lane>;
}

/** cpu stays cpu; cuda must be available; auto takes cuda when the engine can. */
export async function resolveLane(device: "cpu" | "cuda" | "auto"): Promise<Lane> {
  if (device === "cpu") return "cpu";
  let engine: typeof import("../engine/index.js");
  try {
    engine = await import("../engine/index.js");
  } catch (err) {
    if (device === "auto") return "cpu";
    throw new FieldError("device", `cuda is not available: the engine cannot be loaded (${(err as Error).message.split("\n")[0]})`);
  }
  try {
    return engine.resolveDevice(device);
  } catch (err) {
    throw new FieldError("device", (err as Error).message);
  }
}

/** Checks a run reference or (CLI) a checkpoint path; returns the run id it depends on, if any. */
function checkReference(registry: Registry, value: string, field: string, o: SubmitOptions): string | null {
  let id: string | null;
  try {
    id = runReference(value);
  } catch (err) {
    throw new FieldError(field, (err as Error).message);
  }
  if (id !== null) {
    const dep = registry.get(id);
    if (!dep) throw new FieldError(field, `no run '${id}' in the registry`);
    if (dep.kind !== "pretrain" && dep.kind !== "sft") throw new FieldError(field, `run '${id}' is a ${dep.kind} run and has no checkpoint`);
    if (dep.status === "failed" || dep.status === "cancelled") throw new FieldError(field, `run '${id}' ${dep.status === "failed" ? "failed" : "was cancelled"}; it has no checkpoint`);
    return TERMINAL.has(dep.status) ? null : id;
  }
  if (!o.allowPaths) throw new FieldError(field, "must be 'run:<id>' (checkpoint directories are accepted from the CLI only)");
  try {
    readCheckpointConfig(resolve(value)); // the trainer's own checks and messages
  } catch (err) {
    throw new FieldError(field, (err as Error).message);
  }
  return null;
}

/** The checkpoint directory a reference names (at execution time). */
export function checkpointDir(value: string, dataDir: string): string {
  const id = runReference(value);
  if (id !== null) return join(runDir(id, dataDir), "checkpoint");
  return isAbsolute(value) ? value : resolve(value);
}

function normalizePaths(config: RunConfig, o: SubmitOptions): RunConfig {
  // store absolute paths so that the worker (another cwd) finds them
  if (config.kind === "sft" && runReference(config.init) === null) return { ...config, init: resolve(config.init) };
  if (config.kind === "eval" && runReference(config.checkpoint) === null) return { ...config, checkpoint: resolve(config.checkpoint) };
  void o;
  return config;
}

/**
 * What can be checked without the registry: the schema and (CLI) checkpoint directories. The CLI
 * calls it before opening the registry, so a bad config leaves no trace.
 */
export function precheckRunConfig(input: unknown, o: { allowPaths?: boolean } = {}): RunConfig {
  const config = parseRunConfig(input);
  const paths: Array<[string, string]> = [];
  if (config.kind === "sft") paths.push(["init", config.init]);
  if (config.kind === "eval") paths.push(["checkpoint", config.checkpoint]);
  for (const [field, value] of paths) {
    let ref: string | null;
    try {
      ref = runReference(value);
    } catch (err) {
      throw new FieldError(field, (err as Error).message);
    }
    if (ref !== null) continue;
    if (!o.allowPaths) throw new FieldError(field, "must be 'run:<id>' (checkpoint directories are accepted from the CLI only)");
    try {
      readCheckpointConfig(resolve(value));
    } catch (err) {
      throw new FieldError(field, (err as Error).message);
    }
  }
  return config;
}

/** Validates and registers a run (or a sweep and its children). Returns the new run. */
export async function submitRun(registry: Registry, input: unknown, o: SubmitOptions): Promise<RunRecord> {
  const config = parseRunConfig(input);
  const laneOf = o.resolveLane ?? resolveLane;
  if (config.kind === "sweep") return submitSweep(registry, config, o, laneOf);
  const lane = await laneOf(config.device);
  const deps: string[] = [];
  if (config.kind === "sft") {
    const d = checkReference(registry, config.init, "init", o);
    if (d) deps.push(d);
  } else if (config.kind === "eval") {
    const d = checkReference(registry, config.checkpoint, "checkpoint", o);
    if (d) deps.push(d);
  }
  const stored = normalizePaths(config, o);
  const name = config.name ?? defaultName(config);
  return registry.create({ name, kind: config.kind, device: lane, config: stored, source: o.source, dependsOn: deps, owner: o.owner ?? null });
}

function defaultName(config: Exclude<RunConfig, SweepConfig> | EvalRunConfig): string {
  switch (config.kind) {
    case "pretrain":
      return `pretrain ${config.tokenizer} d${config.model.dModel} L${config.model.nLayer}`;
    case "sft":
      return `sft ${config.tasks.join("+")} ε=${config.loss.labelSmoothing}`;
    case "eval":
      return `eval ${config.checkpoint}`;
  }
}

async function submitSweep(registry: Registry, sweep: SweepConfig, o: SubmitOptions, laneOf: (d: "cpu" | "cuda" | "auto") => Promise<Lane>): Promise<RunRecord> {
  const pre = expandGrid({ ...sweep.pretrain.base, kind: "pretrain" }, sweep.pretrain.grid, { max: MAX_SWEEP_RUNS, field: "pretrain.grid" });
  const sft = sweep.sft ? expandGrid({ ...sweep.sft.base, kind: "sft", init: "run:placeholder" }, sweep.sft.grid, { max: MAX_SWEEP_RUNS, field: "sft.grid" }) : [];
  const total = pre.length * (1 + sft.length);
  if (total > MAX_SWEEP_RUNS) throw new FieldError("sft.grid", `the sweep expands to ${total} runs (at most ${MAX_SWEEP_RUNS})`);
  // validate every child before inserting anything
  const pretrains = pre.map((p, i) => {
    const r = PretrainRunSchema.safeParse(p.config);
    if (!r.success) throw fromZod(r.error, `pretrain (grid point ${i + 1}: ${describePoint(p.point) || "base"})`);
    return { ...p, parsed: r.data };
  });
  const sfts = sft.map((p, i) => {
    const r = SftRunSchema.safeParse(p.config);
    if (!r.success) throw fromZod(r.error, `sft (grid point ${i + 1}: ${describePoint(p.point) || "base"})`);
    return { ...p, parsed: r.data };
  });
  const lanes = new Map<string, Lane>();
  for (const d of new Set([...pretrains.map((p) => p.parsed.device), ...sfts.map((s) => s.parsed.device)])) lanes.set(d, await laneOf(d));
  const name = sweep.name ?? `sweep of ${total} runs`;
  return registry.db.transaction(() => {
    const parent = registry.create({ name, kind: "sweep", device: "none", config: sweep, source: o.source, owner: o.owner ?? null });
    for (const p of pretrains) {
      const ptName = `${name} / pretrain ${describePoint(p.point)}`.trim();
      const pt = registry.create({
        name: ptName, kind: "pretrain", device: lanes.get(p.parsed.device)!, config: { ...p.parsed, name: ptName }, source: o.source, parentId: parent.id,
        owner: o.owner ?? null,
      });
      for (const s of sfts) {
        const sName = `${ptName} / sft ${describePoint(s.point)}`.trim();
        registry.create({
          name: sName, kind: "sft", device: lanes.get(s.parsed.device)!, config: { ...s.parsed, name: sName, init: `run:${pt.id}` }, source: o.source,
          parentId: parent.id, dependsOn: [pt.id], owner: o.owner ?? null,
        });
      }
    }
    return registry.get(parent.id)!;
  }).immediate();
}

export interface ImportFile {
  /** where the file is now */
  path: string;
  /** its name (the task is read from samples_<task>_<timestamp>.jsonl) */
  filename: string;
  /** the task, when the name does not carry it */
  task?: string;
}

export interface ImportOptions {
  name: string;
  source: RunSource;
  dataDir: string;
  /** the executing process (the CLI); null: the server's queue */
  owner?: string | null;
  /** move the files into the run (uploads) instead of copying them (the CLI's own files) */
  move?: boolean;
  /** settings of the run's calibration.arrow (default: 1000 resamples, seed 0) */
  calibration?: CalibrationSettings;
}

export function checkImportName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200 || /[\u0000-\u001f]/.test(name)) {
    throw new FieldError("name", "must be a non-empty string of at most 200 characters without control characters");
  }
  return name;
}

/** Validates lm-eval samples files and registers an import run (queued on lane io). */
export async function submitLmEvalImport(registry: Registry, files: readonly ImportFile[], o: ImportOptions): Promise<{ run: RunRecord; parsed: ParsedSamples[] }> {
  const name = checkImportName(o.name);
  if (files.length === 0) throw new FieldError("files", "no samples file given");
  const parsed: ParsedSamples[] = [];
  for (const f of files) parsed.push(await parseSamplesPath(f.path, f.filename, f.task));
  checkDistinctTasks(parsed);
  const config: ImportConfig = {
    kind: "import", format: "lm-eval", name,
    files: parsed.map((p, i) => ({ filename: p.filename, task: p.task, bytes: statSync(files[i]!.path).size })),
    calibration: { ...CALIBRATION_DEFAULTS, ...o.calibration },
  };
  const run = registry.db.transaction(() => {
    const r = registry.create({ name, kind: "import", device: "io", config, source: o.source, owner: o.owner ?? null });
    const up = ensureDir(join(runDir(r.id, o.dataDir), UPLOAD_DIR));
    files.forEach((f, i) => (o.move ? renameSync : copyFileSync)(f.path, join(up, `${i}.jsonl`)));
    return r;
  }).immediate();
  return { run, parsed };
}
