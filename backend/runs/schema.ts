// Run configurations accepted by POST /api/runs and the CLI: the trainer's own schemas for
// pretrain and sft (backend/train/config.ts: the same JSON file works with `calib train
// --config` and the API), plus eval (a checkpoint evaluated into tokens/questions/calibration
// records) and sweep (a grid of pretrain runs, each followed by a grid of SFT runs).
//
// References between runs: sft.init and eval.checkpoint take "run:<id>" (that run's
// checkpoint/ directory; the new run waits until it succeeded, and fails if it did not) or, from
// the CLI only, a directory path. Unknown fields are errors everywhere.
import { z } from "zod";
import { EvalSchema, PretrainSchema, SftSchema } from "../train/config.js";
import { FieldError, fromZod } from "./errors.js";
import { RUN_ID_RE } from "./paths.js";

const int = (min: number) => z.number().int().min(min);

export const EvalRunSchema = z.strictObject({
  kind: z.literal("eval"),
  name: z.string().min(1).max(200).optional(),
  /** "run:<id>" (that run's checkpoint) or, from the CLI, a checkpoint directory */
  checkpoint: z.string().min(1).max(4096),
  device: z.enum(["cpu", "cuda", "auto"]).default("cpu"),
  threads: int(0).max(1024).default(0),
  splitSeed: int(0).default(0),
  /** epoch written into the records (default: the checkpoint's SFT epoch, else 0) */
  epoch: int(0).max(1_000_000).optional(),
  eval: EvalSchema.prefault({}),
});

const GridSchema = z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, "grid keys are dotted config paths like loss.labelSmoothing"),
  z.array(z.union([z.number(), z.string(), z.boolean(), z.null()])).min(1).max(1000)).default({});

export const SweepSchema = z.strictObject({
  kind: z.literal("sweep"),
  name: z.string().min(1).max(200).optional(),
  /** one pretrain run per combination of the grid (cartesian product) */
  pretrain: z.strictObject({ base: z.record(z.string(), z.unknown()).default({}), grid: GridSchema }),
  /** for every pretrain run, one SFT run per combination (init = that pretrain run) */
  sft: z.strictObject({ base: z.record(z.string(), z.unknown()).default({}), grid: GridSchema }).optional(),
});

export const RunConfigSchema = z.discriminatedUnion("kind", [PretrainSchema, SftSchema, EvalRunSchema, SweepSchema]);

export type EvalRunConfig = z.infer<typeof EvalRunSchema>;
export type SweepConfig = z.infer<typeof SweepSchema>;
export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

export const SUBMIT_KINDS = ["pretrain", "sft", "eval", "sweep"] as const;

/** Most child runs one sweep may create. */
export const MAX_SWEEP_RUNS = 2000;

/** Validates a run configuration and fills its defaults (FieldError naming the field). */
export function parseRunConfig(input: unknown): RunConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new FieldError("(body)", "must be a JSON object (a run configuration)");
  const kind = (input as { kind?: unknown }).kind;
  if (!(SUBMIT_KINDS as readonly unknown[]).includes(kind)) {
    throw new FieldError("kind", `must be one of ${SUBMIT_KINDS.join(", ")} (got ${JSON.stringify(kind) ?? "nothing"})`);
  }
  const r = RunConfigSchema.safeParse(input);
  if (!r.success) throw fromZod(r.error);
  return r.data;
}

/** "run:<id>" → id; anything else → null (a path). */
export function runReference(value: string): string | null {
  if (!value.startsWith("run:")) return null;
  const id = value.slice(4);
  if (!RUN_ID_RE.test(id)) throw new TypeError(`'${value}' is not a run reference (run:<id>)`);
  return id;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (next === undefined) o[k] = {};
    else if (next === null || typeof next !== "object" || Array.isArray(next)) throw new FieldError(`grid.${path}`, `'${k}' is not an object in the base config`);
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

export interface GridPoint {
  /** the varied values, by path */
  point: Record<string, unknown>;
  config: Record<string, unknown>;
}

/** The cartesian product of a grid over a base config (in key order, last key fastest). */
export function expandGrid(base: Record<string, unknown>, grid: Record<string, readonly unknown[]>): GridPoint[] {
  let points: Array<Record<string, unknown>> = [{}];
  for (const [path, values] of Object.entries(grid)) {
    const next: Array<Record<string, unknown>> = [];
    for (const p of points) for (const v of values) next.push({ ...p, [path]: v });
    points = next;
    if (points.length > MAX_SWEEP_RUNS) throw new FieldError("grid", `expands to more than ${MAX_SWEEP_RUNS} runs`);
  }
  return points.map((point) => {
    const config = structuredClone(base);
    for (const [path, v] of Object.entries(point)) setPath(config, path, v);
    return { point, config };
  });
}

/** "dModel=64 labelSmoothing=0.1" for run names. */
export function describePoint(point: Record<string, unknown>): string {
  return Object.entries(point).map(([k, v]) => `${k.split(".").pop()}=${String(v)}`).join(" ");
}
