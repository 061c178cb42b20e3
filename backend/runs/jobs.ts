// What a run does, whoever executes it (the server's child worker or the CLI in-process):
//   pretrain / sft  backend/train's train() into data/runs/<id>/, then calibration.arrow
//   eval            a checkpoint evaluated into tokens.arrow + questions.arrow, or a model (Hugging
//                   Face folder or checkpoint) scored on a questions file into questions.arrow;
//                   then calibration.arrow
//   import          lm-eval-harness samples (uploaded into .upload/) → questions.arrow (backend/imports), then calibration.arrow
// calibration.arrow is written by backend/records with the run config's calibration settings.
// Progress goes out through ctx.emit (train_log rows, progress with ETA, log lines); the
// records are written atomically by their writers; run.json is written by finishRecords().
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { runLmEvalImport, UPLOAD_DIR, type ImportConfig } from "../imports/index.js";
import type { TrainLogRow } from "../records/train-log.js";
import { CALIBRATION_DEFAULTS, writeRunCalibration, writeRunJson, type CalibrationSettings, type RunJson } from "../records/index.js";
import { checkpointDir } from "./submit.js";
import { ensureDir } from "./paths.js";
import type { Progress, RunRecord } from "./registry.js";
import type { EvalRunConfig } from "./schema.js";

export type JobEvent =
  | { type: "progress"; progress: Progress }
  | { type: "row"; row: TrainLogRow }
  | { type: "log"; message: string };

export interface JobContext {
  run: RunRecord;
  dataDir: string;
  /** data/runs/<id> */
  dir: string;
  signal: AbortSignal;
  /** progress bars on stderr */
  progress: boolean;
  emit(event: JobEvent): void;
}

export interface JobResult {
  status: "succeeded" | "cancelled";
  metrics: Record<string, number | string | null>;
}

/** Record files a run may have, in the order they are listed. Only complete files are listed. */
export const RECORD_FILES = ["run.json", "train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"] as const;

function finite(metrics: Record<string, unknown>): Record<string, number | string | null> {
  const out: Record<string, number | string | null> = {};
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v === "number") out[k] = Number.isFinite(v) ? v : null;
    else if (typeof v === "string" || v === null) out[k] = v;
  }
  return out;
}

function eta(elapsed: number, fraction: number): number | null {
  return fraction > 0 && fraction <= 1 ? (elapsed * (1 - fraction)) / fraction : null;
}

async function trainJob(ctx: JobContext): Promise<JobResult> {
  const { train } = await import("../train/index.js");
  const cfg = ctx.run.config as Record<string, unknown> & { kind: "pretrain" | "sft"; steps?: number; epochs?: number; init?: unknown };
  // the trainer's config: the run config without the calibration settings (used after training)
  const { calibration: _calibration, ...trainer } = cfg;
  const config: Record<string, unknown> = { ...trainer, name: ctx.run.name, device: ctx.run.device };
  if (cfg.kind === "sft" && typeof cfg.init === "string") config.init = checkpointDir(cfg.init, ctx.dataDir);
  const started = performance.now();
  ctx.emit({ type: "log", message: `${cfg.kind} started on ${ctx.run.device}` });
  const result = await train(config, {
    outDir: ctx.dir, runId: ctx.run.id, progress: ctx.progress, signal: ctx.signal,
    onRow: (row) => {
      ctx.emit({ type: "row", row });
      const fraction = cfg.kind === "pretrain" ? row.step / cfg.steps! : row.epoch / cfg.epochs!;
      // the trainer's own clock (time_s) excludes data preparation, so the ETA extrapolates training only
      const elapsed = Number.isFinite(row.time_s) ? row.time_s : (performance.now() - started) / 1000;
      ctx.emit({
        type: "progress",
        progress: {
          phase: cfg.kind, step: row.step, ...(cfg.kind === "pretrain" ? { total_steps: cfg.steps } : { total_epochs: cfg.epochs }),
          epoch: row.epoch, fraction: Math.min(1, fraction), split: row.split, loss: row.loss, lr: row.lr,
          ...(Number.isFinite(row.tokens_per_s) ? { tokens_per_s: row.tokens_per_s } : {}), elapsed_s: elapsed, eta_s: eta(elapsed, fraction),
        },
      });
    },
  });
  return { status: result.completed ? "succeeded" : "cancelled", metrics: finite(result.metrics) };
}

async function evalJob(ctx: JobContext): Promise<JobResult> {
  const cfg = ctx.run.config as EvalRunConfig;
  const { evaluateCheckpointDir, evaluateModelQuestions } = await import("../train/index.js");
  if (cfg.model !== undefined) {
    const model = checkpointDir(cfg.model, ctx.dataDir);
    ctx.emit({ type: "log", message: `scoring ${cfg.questions!.jsonl} with ${cfg.model}` });
    ctx.emit({ type: "progress", progress: { phase: "eval", fraction: 0, message: "evaluating" } });
    const r = evaluateModelQuestions({
      model, questions: cfg.questions!, outDir: ctx.dir, runId: ctx.run.id, eval: cfg.eval, threads: cfg.threads, progress: ctx.progress,
      device: ctx.run.device === "cuda" ? "cuda" : "cpu", ...(cfg.context !== undefined ? { context: cfg.context } : {}), ...(cfg.epoch !== undefined ? { epoch: cfg.epoch } : {}),
    });
    return { status: ctx.signal.aborted ? "cancelled" : "succeeded", metrics: finite(r.metrics) };
  }
  const checkpoint = checkpointDir(cfg.checkpoint!, ctx.dataDir);
  ctx.emit({ type: "log", message: `evaluating checkpoint ${cfg.checkpoint} on ${ctx.run.device}` });
  ctx.emit({ type: "progress", progress: { phase: "eval", fraction: 0, message: "evaluating" } });
  // synchronous inside the worker: a cancel ends it by SIGKILL after the grace period
  const r = evaluateCheckpointDir({
    checkpoint, outDir: ctx.dir, runId: ctx.run.id, eval: cfg.eval, splitSeed: cfg.splitSeed, threads: cfg.threads,
    device: ctx.run.device === "cuda" ? "cuda" : "cpu", progress: ctx.progress, ...(cfg.epoch !== undefined ? { epoch: cfg.epoch } : {}),
  });
  return { status: ctx.signal.aborted ? "cancelled" : "succeeded", metrics: finite(r.metrics) };
}

async function importJob(ctx: JobContext): Promise<JobResult> {
  const metrics = await runLmEvalImport(ctx.dir, ctx.run.id, ctx.run.config as ImportConfig, (message) => ctx.emit({ type: "log", message }));
  return { status: "succeeded", metrics };
}

/** The settings of a run's calibration.arrow, from its config (the defaults for runs registered before they existed). */
export function calibrationOf(config: unknown): CalibrationSettings {
  return (config as { calibration?: CalibrationSettings } | null)?.calibration ?? CALIBRATION_DEFAULTS;
}

/** Runs the job of a run (not sweeps: those have no job of their own). */
export async function executeJob(ctx: JobContext): Promise<JobResult> {
  ensureDir(ctx.dir);
  let result: JobResult;
  switch (ctx.run.kind) {
    case "pretrain":
    case "sft":
      result = await trainJob(ctx);
      break;
    case "eval":
      result = await evalJob(ctx);
      break;
    case "import":
      result = await importJob(ctx);
      break;
    default:
      throw new Error(`run kind '${ctx.run.kind}' has no job`);
  }
  if (result.status === "succeeded" && (existsSync(join(ctx.dir, "questions.arrow")) || existsSync(join(ctx.dir, "tokens.arrow")))) {
    ctx.emit({ type: "log", message: "computing calibration records (bootstrap intervals)" });
    const n = writeRunCalibration(ctx.dir, ctx.run.id, calibrationOf(ctx.run.config));
    result.metrics.calibration_rows = n;
  }
  if (result.status === "succeeded" && ctx.run.kind === "import") rmSync(join(ctx.dir, UPLOAD_DIR), { recursive: true, force: true });
  return result;
}

/** The complete record files of a run directory (temporary files and directories are never listed). */
export function listArtifacts(dir: string, opts: { withLog?: boolean } = {}): string[] {
  if (!existsSync(dir)) return [];
  const present = new Set(readdirSync(dir));
  return RECORD_FILES.filter((f) => present.has(f) && (f !== "job.log" || opts.withLog !== false) && statSync(join(dir, f)).isFile());
}

/** Removes temporary files a killed writer left behind (".<name>.<pid>.<rand>.tmp" and ".<dir>.<pid>.tmp"). */
export function removeTemporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (f.startsWith(".") && f.endsWith(".tmp")) {
        rmSync(p, { recursive: true, force: true });
        removed.push(p);
      } else if (f !== UPLOAD_DIR && statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return removed;
}

/** The model description the job wrote into run.json (the registry does not hold it), if any. */
function modelOfRunJson(dir: string): RunJson["model"] | undefined {
  try {
    const m = (JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as RunJson).model;
    return m && typeof m === "object" && typeof m.family === "string" ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Writes run.json from the registry's view of a finished (or running) run (keeping the job's model description). */
export function writeRunRecord(dir: string, run: RunRecord, artifacts: string[]): void {
  ensureDir(dir);
  const model = modelOfRunJson(dir);
  const json: RunJson = {
    id: run.id, name: run.name, kind: run.kind, status: run.status, created_at: run.created_at, started_at: run.started_at,
    finished_at: run.finished_at, config: run.config, metrics: run.metrics, artifacts, ...(model ? { model } : {}),
  };
  if (run.error) json.error = run.error;
  writeRunJson(join(dir, "run.json"), json);
}
