// A study worker: a long-lived process of the study's worker pool (backend/runs/pool.ts, started
// by execute.ts) that runs one planned run after another (backend/train's train(), then
// calibration.arrow with the study's calibration settings), so that per-process costs — loading
// the engine, creating the CUDA context, generating the questions (memoized by backend/data) —
// are paid once per worker, not once per run. Several workers share one GPU.
//
// Its jobs: {run, runsRoot, keepCheckpoint} → {id, status, seconds, metrics, error?}. The
// trainer's progress lines of a job go to <run dir>/job.log, not to the console.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { serveJobs } from "../runs/pool.js";
import type { PlannedRun } from "./definition.js";

export interface StudyJob {
  run: PlannedRun;
  runsRoot: string;
  keepCheckpoint: boolean;
}

export interface StudyJobResult {
  id: string;
  status: "succeeded" | "failed" | "cancelled";
  seconds: number;
  metrics: Record<string, number>;
  error?: string;
}

/** model.vocab of a checkpoint's config.json, or null. */
function checkpointVocab(file: string): number | null {
  try {
    const v = (JSON.parse(readFileSync(file, "utf8")) as { model?: { vocab?: unknown } }).model?.vocab;
    return typeof v === "number" && Number.isInteger(v) ? v : null;
  } catch {
    return null;
  }
}

/** Runs one planned run into runsRoot/<id>/ (records, calibration.arrow, run.json). */
export async function runPlanned(run: PlannedRun, runsRoot: string, o: { keepCheckpoint?: boolean; progress?: boolean } = {}): Promise<StudyJobResult> {
  const [{ train }, { writeRunCalibration, writeRunJson }] = await Promise.all([import("../train/index.js"), import("../records/index.js")]);
  const dir = join(runsRoot, run.id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const log = join(dir, "job.log");
  const t0 = performance.now();
  const write = process.stderr.write.bind(process.stderr);
  // the trainer's progress and messages of this job → its job.log
  (process.stderr as unknown as { write: (chunk: unknown, ...rest: unknown[]) => boolean }).write = (chunk: unknown) => {
    try {
      appendFileSync(log, typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array));
    } catch {
      // the log is best effort
    }
    return true;
  };
  try {
    const config = structuredClone(run.config) as unknown as Record<string, unknown>;
    if (run.kind === "sft") config.init = join(runsRoot, run.parent!, "checkpoint");
    const res = await train(config, { outDir: dir, runId: run.id, progress: o.progress ?? true });
    const seconds = (performance.now() - t0) / 1000;
    if (!res.completed) return { id: run.id, status: "cancelled", seconds, metrics: res.metrics };
    const calibrationRows = writeRunCalibration(dir, run.id, run.calibration);
    // V of the model (the checkpoint's; a knowledge world's word vocabulary has no fixed size), for the site's V/d
    const vocab = checkpointVocab(join(dir, "checkpoint", "config.json"));
    // run.json: the config with the calibration settings (as a registered run's), the records
    // actually present (the checkpoint is not a published record), the calibration rows, and the
    // wall time including evaluation and calibration records
    const json = JSON.parse(readFileSync(join(dir, "run.json"), "utf8")) as Record<string, unknown> & { artifacts: string[]; metrics: Record<string, unknown> };
    json.config = { ...(json.config as Record<string, unknown>), calibration: run.calibration };
    if (!(o.keepCheckpoint ?? run.kind === "pretrain")) rmSync(join(dir, "checkpoint"), { recursive: true, force: true });
    rmSync(join(dir, "evals"), { recursive: true, force: true });
    json.artifacts = ["train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"].filter((f) => existsSync(join(dir, f)));
    json.metrics = { ...json.metrics, calibration_rows: calibrationRows, wall_seconds: (performance.now() - t0) / 1000, ...(vocab !== null ? { vocab_size: vocab } : {}) };
    writeRunJson(join(dir, "run.json"), json as unknown as Parameters<typeof writeRunJson>[1]);
    return { id: run.id, status: "succeeded", seconds: (performance.now() - t0) / 1000, metrics: res.metrics };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    try {
      appendFileSync(log, `error: ${err instanceof Error ? err.stack ?? message : message}\n`);
    } catch {
      // ignore
    }
    return { id: run.id, status: "failed", seconds: (performance.now() - t0) / 1000, metrics: {}, error: message };
  } finally {
    (process.stderr as unknown as { write: typeof write }).write = write;
  }
}

if (process.argv.includes("--study-worker") && process.send && !(globalThis as { __calibStudyWorker?: boolean }).__calibStudyWorker) {
  (globalThis as { __calibStudyWorker?: boolean }).__calibStudyWorker = true;
  serveJobs<StudyJob, never, StudyJobResult>((job) => runPlanned(job.run, job.runsRoot, { keepCheckpoint: job.keepCheckpoint }));
}
