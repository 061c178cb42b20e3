// Run configurations of `calib train` (JSON, validated with zod). Two kinds:
//   pretrain  a GPT on the Brown text of one tokenizer (every token supervised)
//   sft       fine-tuning of a pretrained checkpoint on the multiple-choice tasks (only the
//             answer letter supervised), evaluated after every epoch
// SFT of a Hugging Face model (`"init": {"hf": PATH}`, or a Llama-family checkpoint of ours) reads
// chat conversations from a JSONL file (`data`) and may score a multiple-choice JSONL file
// (`questions`) before SFT and after every epoch (backend/train/hf-run.ts).
// Every field has a default except sft.init; unknown fields are errors (a typo must not
// silently fall back to a default). docs/trainer.md lists the fields.
// With a `world` block both kinds run on a knowledge world instead (backend/data/world): pretraining
// on its documents, SFT on its chat conversations, evaluation by option scoring of its held-out
// questions. Without the block a config means what it always meant (and hashes the same).
import { createHash } from "node:crypto";
import { z } from "zod";
import { DEFAULT_HEAD_WORKSPACE_BYTES } from "../engine/index.js";
import { TASK_NAMES, TOKENIZER_NAMES, WorldConfigSchema } from "../data/index.js";

const int = (min: number) => z.number().int().min(min);
const positive = z.number().positive().finite();

export const ModelSchema = z.strictObject({
  nLayer: int(1).max(4096).default(4),
  nHead: int(1).default(4),
  dModel: int(1).max(65536).default(256),
  context: int(1).max(65536).default(256),
  tied: z.boolean().default(true),
}).refine((m) => m.dModel % m.nHead === 0, { message: "nHead must divide dModel", path: ["nHead"] });

export const LossSchema = z.strictObject({
  /** ε ∈ [0, 1] */
  labelSmoothing: z.number().min(0).max(1).default(0),
  /** training temperature T > 0 (logits/T, loss·T) */
  temperature: positive.default(1),
  /** tanh soft-cap c > 0, or null */
  softcap: positive.nullable().default(null),
});

export const OptimSchema = z.strictObject({
  lr: positive.default(1e-3),
  /** the cosine decays to lr·minLrRatio at the last step */
  minLrRatio: z.number().min(0).max(1).default(0.1),
  warmupSteps: int(0).default(100),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.95),
  eps: positive.default(1e-8),
  weightDecay: z.number().min(0).finite().default(0.1),
  /** clip the global gradient norm to this value; 0 = no clipping */
  gradClip: z.number().min(0).finite().default(1),
});

export const EvalSchema = z.strictObject({
  /** split of the final evaluation records */
  split: z.enum(["validation", "test"]).default("validation"),
  /** tokens.arrow: tokens evaluated (whole windows from the start of the split); 0 = none */
  maxTokens: int(0).default(8192),
  /** questions.arrow: tasks and questions per task (0 = none) */
  tasks: z.array(z.enum(TASK_NAMES as unknown as [string, ...string[]])).default([...TASK_NAMES]),
  maxQuestions: int(0).default(500),
  questionSeed: int(0).default(0),
  /** the evaluated distribution is softmax(softcap(z/T)); default the raw logits */
  temperature: positive.default(1),
  softcap: positive.nullable().default(null),
  batchSize: int(1).default(16),
  /** where a question's prompt sits in the model's context: 'right' ends every prompt at the last
   * position (left padding; SFT trains the same way), 'left' starts it at position 0 */
  promptAlign: z.enum(["left", "right"]).default("right"),
});

// ---- knowledge world (issue 18) ------------------------------------------------------------
export const WorldRunSchema = z.strictObject({
  /** the world: "default" or a world config (docs/data.md); sft: absent = the init checkpoint's world */
  config: z.union([z.literal("default"), WorldConfigSchema]).optional(),
  /** how the held-out questions are scored (questions.arrow `scoring`); the first gives the run's metrics */
  scoring: z.array(z.enum(["option", "letter"])).min(1).default(["option"]),
  /** sft: template of the conversations, and of the evaluation after each SFT epoch (epoch 0, the base model, is scored without one) */
  chatTemplate: z.enum(["calib-chat/1"]).default("calib-chat/1"),
  /** sft: pack several conversations per row (default: one per row, rows trimmed to the batch's longest) */
  pack: z.boolean().default(false),
});
export type WorldRunConfig = z.infer<typeof WorldRunSchema>;
// ----------------------------------------------------------------------------------------------

// ---- Hugging Face models (issue 19) ---------------------------------------------------------
const path = z.string().min(1).max(4096);

/** sft.init of a Hugging Face model folder (config.json, safetensors, tokenizer.json: docs/hf.md). */
export const HfInitSchema = z.strictObject({
  hf: path,
  /** the longest sequence the engine allocates for (tokens); default min(max_position_embeddings, 4096) */
  context: int(1).max(65536).optional(),
});
export type HfInit = z.infer<typeof HfInitSchema>;

/** The conversations of chat SFT: JSONL lines {"messages": [...]}, {"conversations": [...]} or {"prompt", "completion"}. */
export const SftDataSchema = z.strictObject({
  /** training conversations */
  jsonl: path,
  /** held-out conversations: a validation row (NLL of the assistant tokens) after every epoch */
  validation: path.optional(),
  /** several conversations per row (they attend to earlier ones in the row); default one per row */
  pack: z.boolean().default(false),
});
export type SftDataConfig = z.infer<typeof SftDataSchema>;

/** Multiple-choice questions in the common JSONL shape ({question, choices, answer}: MMLU's), scored as lm-evaluation-harness does. */
export const QuestionsSchema = z.strictObject({
  jsonl: path,
  /** letter: " A".." D" after a prompt listing the options; option: each option's text (acc and acc_norm); the first is the headline */
  scoring: z.array(z.enum(["letter", "option"])).min(1).default(["letter", "option"]),
  /** examples before each question: the first k other questions of `fewshot` (default: of the same file) */
  shots: int(0).max(64).default(0),
  fewshot: path.optional(),
  /** render the prompts with the model's chat template (few-shot examples as earlier turns) */
  chat: z.boolean().default(false),
  /** the first N questions of the file (0 = all) */
  maxQuestions: int(0).default(0),
});
export type QuestionsConfig = z.infer<typeof QuestionsSchema>;
// ----------------------------------------------------------------------------------------------

const common = {
  name: z.string().min(1).max(200).optional(),
  seed: int(0).max(2 ** 32 - 1).default(0),
  device: z.enum(["cpu", "cuda", "auto"]).default("cpu"),
  /** CPU threads, 0 = CALIB_THREADS or all cores */
  threads: int(0).max(1024).default(0),
  /** data parallelism: ranks (one per GPU), each taking its rows of every global batch; ZeRO-1 (docs/parallel.md) */
  gpus: int(1).max(1024).default(1),
  splitSeed: int(0).default(0),
  loss: LossSchema.prefault({}),
  batchSize: int(1).max(1 << 20).default(16),
  gradAccum: int(1).max(4096).default(1),
  /** a train row in train_log.arrow every this many steps */
  logEvery: int(1).default(10),
  /** a checkpoint every this many steps (0: only at the end) */
  checkpointEvery: int(0).default(0),
  eval: EvalSchema.prefault({}),
  /** the arithmetic: 'auto' = float32 on the CPU, bfloat16 mixed precision on CUDA */
  precision: z.enum(["auto", "float32", "bfloat16"]).default("auto"),
  /** CUDA: bytes of logits the LM head's fused loss may keep (chunks of whole rows: the logits computed once);
   * 0 = fully streamed (computed twice, 32 MiB blocks) */
  headWorkspaceBytes: int(0).max(2 ** 50).default(DEFAULT_HEAD_WORKSPACE_BYTES),
  /** gradient checkpointing (Hugging Face models on CUDA): the first this-many layers recompute their activations in
   * the backward (less memory, the same numbers); 0 none, at most the model's layers */
  checkpointLayers: int(0).max(4096).default(0),
};

/** Each of the gpus ranks takes rows of every micro-batch, so there must be at least as many rows. */
function checkGpus(c: { gpus: number; batchSize: number }, ctx: z.core.$RefinementCtx): void {
  if (c.gpus > c.batchSize) ctx.addIssue({ code: "custom", path: ["gpus"], message: `${c.gpus} ranks need batchSize ≥ ${c.gpus} (each rank takes its rows of every micro-batch; batchSize is ${c.batchSize})` });
}

/** The model options of a run's engine settings (recorded in run.json with the rest of the config). */
export function engineOptions(config: Pick<TrainConfig, "precision" | "headWorkspaceBytes" | "checkpointLayers">): { precision?: "float32" | "bfloat16"; headWorkspaceBytes: number; checkpointLayers: number } {
  return { ...(config.precision === "auto" ? {} : { precision: config.precision }), headWorkspaceBytes: config.headWorkspaceBytes, checkpointLayers: config.checkpointLayers };
}

export const PretrainSchema = z.strictObject({
  kind: z.literal("pretrain"),
  ...common,
  tokenizer: z.enum([...TOKENIZER_NAMES, "word"] as unknown as [string, ...string[]]).default("byte"),
  model: ModelSchema.prefault({}),
  optim: OptimSchema.prefault({}),
  steps: int(1).default(2000),
  /** sequence-length warm-up: the first `steps` steps train on windows of `length` tokens
   * (batchSize·context/length of them, the same tokens per step); null = none */
  contextWarmup: z.strictObject({ steps: int(0), length: int(1) }).nullable().default(null),
  /** validation loss every this many steps (0: only at the end) */
  evalEvery: int(0).default(200),
  /** validation windows per validation-loss row */
  evalWindows: int(1).default(64),
  /** pretrain on a knowledge world (tokenizer may then be "word", its word-level vocabulary) */
  world: WorldRunSchema.optional(),
}).superRefine((c, ctx) => {
  if (c.tokenizer === "word" && c.world === undefined) ctx.addIssue({ code: "custom", path: ["tokenizer"], message: "the word-level tokenizer needs a world" });
  checkGpus(c, ctx);
});

export const SftSchema = z.strictObject({
  kind: z.literal("sft"),
  ...common,
  /** the pretrained checkpoint directory (its model and tokenizer are used), or {hf: FOLDER} */
  init: z.union([z.string().min(1), HfInitSchema]),
  /** chat SFT of a Llama-family model (init.hf or a calib-llama/1 checkpoint) on a JSONL file */
  data: SftDataSchema.optional(),
  /** Llama-family models: multiple-choice questions scored before SFT and after every epoch (questions.arrow) */
  questions: QuestionsSchema.optional(),
  tasks: z.array(z.enum(TASK_NAMES as unknown as [string, ...string[]])).min(1).default([...TASK_NAMES]),
  /** training questions per task (0 = all) */
  maxExamples: int(0).default(0),
  questionSeed: int(0).default(0),
  epochs: int(1).default(3),
  /** pad: one example per row (rows trimmed to the longest example of the batch) */
  mode: z.enum(["pad"]).default("pad"),
  optim: OptimSchema.extend({ lr: positive.default(3e-4), warmupSteps: int(0).default(20), weightDecay: z.number().min(0).finite().default(0) }).prefault({}),
  /** SFT on a knowledge world's conversations (tasks, questionSeed and mode are then not used) */
  world: WorldRunSchema.optional(),
}).superRefine((c, ctx) => {
  checkGpus(c, ctx);
  if (typeof c.init === "object" && c.data === undefined) {
    ctx.addIssue({ code: "custom", path: ["data"], message: 'is required to fine-tune a Hugging Face model (init.hf): {"jsonl": "conversations.jsonl"}' });
  }
  if (c.world !== undefined && (c.data !== undefined || typeof c.init === "object")) {
    ctx.addIssue({ code: "custom", path: ["world"], message: "a knowledge world run cannot take data or a Hugging Face init" });
  }
  if (c.questions !== undefined && c.data === undefined) {
    ctx.addIssue({ code: "custom", path: ["questions"], message: "applies to chat SFT of Llama-family models (with data)" });
  }
});

export const TrainConfigSchema = z.discriminatedUnion("kind", [PretrainSchema, SftSchema]);

export type PretrainConfig = z.infer<typeof PretrainSchema>;
export type SftConfig = z.infer<typeof SftSchema>;
export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
export type LossConfig = z.infer<typeof LossSchema>;
export type OptimConfig = z.infer<typeof OptimSchema>;
export type EvalConfig = z.infer<typeof EvalSchema>;

function describe(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "config"}: ${i.message}`)
    .join("; ");
}

/** Validates a run configuration (TypeError naming the fields on bad input) and fills the defaults. */
export function parseTrainConfig(input: unknown): TrainConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError("config must be a JSON object");
  const kind = (input as { kind?: unknown }).kind;
  if (kind !== "pretrain" && kind !== "sft") throw new TypeError(`kind must be 'pretrain' or 'sft' (got ${JSON.stringify(kind)})`);
  const r = TrainConfigSchema.safeParse(input);
  if (!r.success) throw new TypeError(`invalid config: ${describe(r.error.issues)}`);
  return r.data;
}

/** Hash of everything that determines the numbers of a run (resume refuses another config). */
export function configHash(config: TrainConfig): string {
  // gpus: the same run on any number of ranks (resume may change it); the sums differ only in rounding
  // checkpointLayers: recomputation gives the same numbers bit for bit (a resume may turn it on to save memory)
  const { name: _n, threads: _t, gpus: _g, logEvery: _l, checkpointEvery: _c, checkpointLayers: _k, eval: ev, precision, headWorkspaceBytes, ...all } = config;
  // multiple-choice evaluation does not change training either
  const { questions: _q, ...rest } = all as typeof all & { questions?: unknown };
  // the engine settings count only where they differ from their defaults (configs written before they existed keep their hash)
  const engine = {
    ...(precision === "auto" ? {} : { precision }),
    ...(headWorkspaceBytes === DEFAULT_HEAD_WORKSPACE_BYTES ? {} : { headWorkspaceBytes }),
  };
  // of the evaluation settings only the prompt alignment changes training (SFT batches)
  const stable = (v: unknown): unknown =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])]))
      : v;
  return createHash("sha256").update(JSON.stringify(stable({ ...rest, ...engine, promptAlign: ev.promptAlign }))).digest("hex").slice(0, 16);
}
