// Run configurations accepted by POST /api/runs and the CLI: the trainer's own schemas for
// pretrain and sft (backend/train/config.ts: the same JSON file works with `calib train
// --config` and the API), plus eval (a checkpoint evaluated into tokens/questions/calibration
// records) and sweep (a grid of pretrain runs, each followed by a grid of SFT runs). Every run
// kind has `calibration` ({resamples, seed}: the settings of its calibration.arrow), recorded
// with the rest of the config in run.json.
//
// References between runs: sft.init, eval.checkpoint and eval.model take "run:<id>" (that run's
// checkpoint/ directory; the new run waits until it succeeded, and fails if it did not) or, from
// the CLI only, a directory path. Local files and folders — a Hugging Face model (sft.init.hf,
// eval.model), JSONL data (sft.data, sft.questions, eval.questions) — are accepted from the CLI
// only too. Unknown fields are errors everywhere.
import { z } from "zod";
import { CALIBRATION_DEFAULTS } from "../records/calibration.js";
import { EvalSchema, PretrainSchema, QuestionsSchema, SftSchema } from "../train/config.js";
import { FieldError, fromZod } from "../errors.js";
import { GridSchema } from "./grid.js";
import { RUN_ID_RE } from "./paths.js";

const int = (min: number) => z.number().int().min(min);

/** The settings of a run's calibration.arrow (backend/records/calibration.ts): percentile-bootstrap resamples (0: no intervals) and seed. */
export const CalibrationSchema = z.strictObject({
  resamples: int(0).max(1_000_000).default(CALIBRATION_DEFAULTS.resamples),
  seed: int(0).max(2 ** 32 - 1).default(CALIBRATION_DEFAULTS.seed),
});

/** Run configs of the trainer's kinds: the trainer's config plus the calibration settings (stripped before train()). */
export const PretrainRunSchema = PretrainSchema.extend({ calibration: CalibrationSchema.prefault({}) });
export const SftRunSchema = SftSchema.extend({ calibration: CalibrationSchema.prefault({}) });

export const EvalRunSchema = z.strictObject({
  kind: z.literal("eval"),
  name: z.string().min(1).max(200).optional(),
  /** "run:<id>" (that run's checkpoint) or, from the CLI, a checkpoint directory: tokens and Brown / world questions */
  checkpoint: z.string().min(1).max(4096).optional(),
  /** "run:<id>" or, from the CLI, a Hugging Face model folder or checkpoint directory: the `questions` file scored by it */
  model: z.string().min(1).max(4096).optional(),
  questions: QuestionsSchema.optional(),
  /** model (Llama family): the sequence length to allocate for */
  context: int(1).max(65536).optional(),
  device: z.enum(["cpu", "cuda", "auto"]).default("cpu"),
  threads: int(0).max(1024).default(0),
  splitSeed: int(0).default(0),
  /** epoch written into the records (default: the checkpoint's SFT epoch, else 0) */
  epoch: int(0).max(1_000_000).optional(),
  eval: EvalSchema.prefault({}),
  calibration: CalibrationSchema.prefault({}),
}).superRefine((c, ctx) => {
  if ((c.checkpoint === undefined) === (c.model === undefined)) ctx.addIssue({ code: "custom", path: ["checkpoint"], message: "give either checkpoint or model (with questions)" });
  if (c.model !== undefined && c.questions === undefined) ctx.addIssue({ code: "custom", path: ["questions"], message: 'is required with model: {"jsonl": "questions.jsonl"}' });
  if (c.model === undefined && c.questions !== undefined) ctx.addIssue({ code: "custom", path: ["questions"], message: "applies to model (a checkpoint is evaluated on its own tasks)" });
  if (c.model === undefined && c.context !== undefined) ctx.addIssue({ code: "custom", path: ["context"], message: "applies to model" });
});

export const SweepSchema = z.strictObject({
  kind: z.literal("sweep"),
  name: z.string().min(1).max(200).optional(),
  /** one pretrain run per combination of the grid (cartesian product); the bases may set `calibration` */
  pretrain: z.strictObject({ base: z.record(z.string(), z.unknown()).default({}), grid: GridSchema }),
  /** for every pretrain run, one SFT run per combination (init = that pretrain run) */
  sft: z.strictObject({ base: z.record(z.string(), z.unknown()).default({}), grid: GridSchema }).optional(),
});

export const RunConfigSchema = z.discriminatedUnion("kind", [PretrainRunSchema, SftRunSchema, EvalRunSchema, SweepSchema]);

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
