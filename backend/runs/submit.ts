// Creating runs: the one code path behind POST /api/runs, `calib runs submit`, and the
// train/eval CLI commands (through runLocally in local.ts). It validates the configuration,
// resolves the device to a lane, checks run references, and inserts the registry entries (a
// sweep inserts itself and all its child runs in one transaction). Imports (POST
// /api/imports/lm-eval, `calib import`) are registered here too: submitLmEvalImport.
import { copyFileSync, existsSync, renameSync, statSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import { FieldError, fromZod } from "../errors.js";
import { checkDistinctTasks, parseSamplesPath, UPLOAD_DIR, type ImportConfig, type ParsedSamples } from "../imports/index.js";
import { CALIBRATION_DEFAULTS, type CalibrationSettings } from "../records/calibration.js";
import { ensureDir, runDir } from "./paths.js";
import { TERMINAL, type Lane, type Registry, type RunRecord, type RunSource } from "./registry.js";
import { describePoint, expandGrid } from "./grid.js";
import { MAX_SWEEP_RUNS, parseRunConfig, PretrainRunSchema, SftRunSchema, runReference, type EvalRunConfig, type RunConfig, type SweepConfig } from "./schema.js";
import { readCheckpointConfig } from "../train/checkpoint.js";
import { isCheckpointDir } from "../train/hf-run.js";
import { openHfFolder } from "../hf/index.js";
import { readChatJsonl, readMcqJsonl } from "../data/index.js";

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

/** A local file or folder a run config names: a checkpoint, a model (a checkpoint or a Hugging Face folder), a Hugging Face folder, chat or multiple-choice JSONL. */
interface LocalPath {
  field: string;
  value: string;
  kind: "checkpoint" | "model" | "hf" | "chat" | "mcq";
  /** hf / model: the context to open it with */
  context?: number;
}

/** The run references and local paths of a config (run references only for checkpoint / model). */
function localPaths(config: RunConfig): LocalPath[] {
  const out: LocalPath[] = [];
  const questions = (q: { jsonl: string; fewshot?: string | undefined } | undefined, prefix: string) => {
    if (!q) return;
    out.push({ field: `${prefix}.jsonl`, value: q.jsonl, kind: "mcq" });
    if (q.fewshot !== undefined) out.push({ field: `${prefix}.fewshot`, value: q.fewshot, kind: "mcq" });
  };
  if (config.kind === "sft") {
    if (typeof config.init === "string") out.push({ field: "init", value: config.init, kind: "checkpoint" });
    else out.push({ field: "init.hf", value: config.init.hf, kind: "hf", ...(config.init.context !== undefined ? { context: config.init.context } : {}) });
    if (config.data) {
      out.push({ field: "data.jsonl", value: config.data.jsonl, kind: "chat" });
      if (config.data.validation !== undefined) out.push({ field: "data.validation", value: config.data.validation, kind: "chat" });
    }
    questions(config.questions, "questions");
  }
  if (config.kind === "eval") {
    if (config.checkpoint !== undefined) out.push({ field: "checkpoint", value: config.checkpoint, kind: "checkpoint" });
    if (config.model !== undefined) out.push({ field: "model", value: config.model, kind: "model", ...(config.context !== undefined ? { context: config.context } : {}) });
    questions(config.questions, "questions");
  }
  return out;
}

/** Checks a local path with the loaders' own checks and messages (`parse`: read JSONL files whole too). */
function checkLocal(p: LocalPath, parse: boolean): void {
  const path = resolve(p.value);
  try {
    if (p.kind === "checkpoint") readCheckpointConfig(path);
    else if (p.kind === "model" && isCheckpointDir(path)) readCheckpointConfig(path);
    else if (p.kind === "model" || p.kind === "hf") {
      if (!existsSync(path)) throw new TypeError(`${path}: no such folder`);
      openHfFolder(path, p.context !== undefined ? { context: p.context } : {});
    } else if (!existsSync(path) || !statSync(path).isFile()) throw new TypeError(`${path}: no such file`);
    else if (parse) (p.kind === "chat" ? readChatJsonl : readMcqJsonl)(path);
  } catch (err) {
    throw new FieldError(p.field, (err as Error).message);
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

function normalizePaths(config: RunConfig): RunConfig {
  // store absolute paths so that the worker (another cwd) finds them
  const abs = (v: string) => (runReference(v) === null ? resolve(v) : v);
  const questions = <Q extends { jsonl: string; fewshot?: string | undefined }>(q: Q | undefined) =>
    q && { ...q, jsonl: resolve(q.jsonl), ...(q.fewshot !== undefined ? { fewshot: resolve(q.fewshot) } : {}) };
  if (config.kind === "sft") {
    return {
      ...config, init: typeof config.init === "string" ? abs(config.init) : { ...config.init, hf: resolve(config.init.hf) },
      ...(config.data ? { data: { ...config.data, jsonl: resolve(config.data.jsonl), ...(config.data.validation !== undefined ? { validation: resolve(config.data.validation) } : {}) } } : {}),
      ...(config.questions ? { questions: questions(config.questions) } : {}),
    };
  }
  if (config.kind === "eval") {
    return {
      ...config, ...(config.checkpoint !== undefined ? { checkpoint: abs(config.checkpoint) } : {}), ...(config.model !== undefined ? { model: abs(config.model) } : {}),
      ...(config.questions ? { questions: questions(config.questions) } : {}),
    };
  }
  return config;
}

/**
 * What can be checked without the registry: the schema and (CLI) checkpoint directories. The CLI
 * calls it before opening the registry, so a bad config leaves no trace.
 */
export function precheckRunConfig(input: unknown, o: { allowPaths?: boolean } = {}): RunConfig {
  const config = parseRunConfig(input);
  for (const p of localPaths(config)) {
    if (p.kind === "checkpoint" || p.kind === "model") {
      let ref: string | null;
      try {
        ref = runReference(p.value);
      } catch (err) {
        throw new FieldError(p.field, (err as Error).message);
      }
      if (ref !== null) continue;
    }
    if (!o.allowPaths) throw new FieldError(p.field, PATHS_CLI_ONLY[p.kind]);
    checkLocal(p, true);
  }
  return config;
}

const PATHS_CLI_ONLY: Record<LocalPath["kind"], string> = {
  checkpoint: "must be 'run:<id>' (checkpoint directories are accepted from the CLI only)",
  model: "must be 'run:<id>' (model folders and checkpoint directories are accepted from the CLI only)",
  hf: "Hugging Face model folders are accepted from the CLI only",
  chat: "local files are accepted from the CLI only",
  mcq: "local files are accepted from the CLI only",
};

/** Validates and registers a run (or a sweep and its children). Returns the new run. */
export async function submitRun(registry: Registry, input: unknown, o: SubmitOptions): Promise<RunRecord> {
  const config = parseRunConfig(input);
  const laneOf = o.resolveLane ?? resolveLane;
  if (config.kind === "sweep") return submitSweep(registry, config, o, laneOf);
  const lane = await laneOf(config.device);
  const deps: string[] = [];
  for (const p of localPaths(config)) {
    if (p.kind === "checkpoint" || (p.kind === "model" && runReference(p.value) !== null)) {
      const d = checkReference(registry, p.value, p.field, o);
      if (d) deps.push(d);
    } else if (!o.allowPaths) throw new FieldError(p.field, PATHS_CLI_ONLY[p.kind]);
    else checkLocal(p, false);
  }
  const stored = normalizePaths(config);
  const name = config.name ?? defaultName(config);
  return registry.create({ name, kind: config.kind, device: lane, config: stored, source: o.source, dependsOn: deps, owner: o.owner ?? null });
}

function defaultName(config: Exclude<RunConfig, SweepConfig> | EvalRunConfig): string {
  switch (config.kind) {
    case "pretrain":
      return `pretrain ${config.tokenizer} d${config.model.dModel} L${config.model.nLayer}`;
    case "sft":
      if (config.data) return `sft ${typeof config.init === "string" ? config.init : basename(config.init.hf)} on ${basename(config.data.jsonl)} ε=${config.loss.labelSmoothing}`;
      return `sft ${config.tasks.join("+")} ε=${config.loss.labelSmoothing}`;
    case "eval":
      return config.model !== undefined ? `eval ${config.model} on ${basename(config.questions!.jsonl)}` : `eval ${config.checkpoint}`;
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
