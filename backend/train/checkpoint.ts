// Checkpoints: a directory with
//   config.json            {format, model, tokenizer, naming, training, created_at}
//   model.safetensors      the weights, float32, nanoGPT names and nn.Linear (out×in) shapes:
//                            transformer.wte.weight [V, C]        transformer.wpe.weight [T, C]
//                            transformer.h.{i}.ln_1.weight/bias [C]
//                            transformer.h.{i}.attn.c_attn.weight [3C, C] / .bias [3C]
//                            transformer.h.{i}.attn.c_proj.weight [C, C]  / .bias [C]
//                            transformer.h.{i}.ln_2.weight/bias [C]
//                            transformer.h.{i}.mlp.c_fc.weight [4C, C]    / .bias [4C]
//                            transformer.h.{i}.mlp.c_proj.weight [C, 4C]  / .bias [C]
//                            transformer.ln_f.weight/bias [C]
//                            lm_head.weight [V, C]               only when the head is untied
//                          (a tied nanoGPT module loads it with strict=False: lm_head shares wte)
//   optimizer.safetensors  AdamW moments: exp_avg.<name>, exp_avg_sq.<name> (same shapes)
//   trainer_state.json     step, data position, seed, config hash, … (what resume needs)
// Writes are atomic per file and config.json is written last, so a directory with a
// config.json is complete. Reading checks names, shapes, dtypes and finiteness, and every
// problem is a CheckpointError that names the directory and what is wrong.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import type { GptModel, ModelConfig, TensorInfo } from "../engine/index.js";
import { tensorTable } from "../engine/index.js";
import { CheckpointError, readSafetensors, writeSafetensors, type SafeTensor } from "../io/safetensors.js";

export { CheckpointError } from "../io/safetensors.js";

export const CHECKPOINT_FORMAT = "calib-gpt/1";
export const TRAINER_STATE_FORMAT = "calib-trainer-state/1";

const NANO: Record<string, string> = {
  ln1w: "ln_1.weight", ln1b: "ln_1.bias",
  qkvw: "attn.c_attn.weight", qkvb: "attn.c_attn.bias",
  attprojw: "attn.c_proj.weight", attprojb: "attn.c_proj.bias",
  ln2w: "ln_2.weight", ln2b: "ln_2.bias",
  fcw: "mlp.c_fc.weight", fcb: "mlp.c_fc.bias",
  fcprojw: "mlp.c_proj.weight", fcprojb: "mlp.c_proj.bias",
};
const GLOBAL: Record<string, string> = {
  wte: "transformer.wte.weight",
  wpe: "transformer.wpe.weight",
  lnfw: "transformer.ln_f.weight",
  lnfb: "transformer.ln_f.bias",
  lm_head: "lm_head.weight",
};

/** One named tensor of the state dict and where it lives in the flat buffer. */
export interface NamedSlice {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}

/** The nanoGPT state-dict names of the engine's flat tensors, in buffer order. */
export function namedSlices(tensors: readonly TensorInfo[]): NamedSlice[] {
  const out: NamedSlice[] = [];
  for (const t of tensors) {
    if (t.perLayer) {
      const L = t.shape[0]!;
      const per = t.numel / L;
      for (let i = 0; i < L; i++) {
        out.push({ name: `transformer.h.${i}.${NANO[t.name]!}`, shape: t.shape.slice(1), offset: t.offset + i * per, numel: per });
      }
    } else {
      out.push({ name: GLOBAL[t.name]!, shape: t.shape.slice(), offset: t.offset, numel: t.numel });
    }
  }
  return out;
}

/** The model's buffer as named tensors (views into `flat`, no copy). */
export function stateDict(tensors: readonly TensorInfo[], flat: Float32Array, prefix = ""): SafeTensor[] {
  return namedSlices(tensors).map((s) => ({
    name: prefix + s.name,
    dtype: "F32" as const,
    shape: s.shape,
    data: flat.subarray(s.offset, s.offset + s.numel),
  }));
}

const ModelConfigSchema = z.strictObject({
  nLayer: z.number().int().min(1),
  nHead: z.number().int().min(1),
  dModel: z.number().int().min(1),
  context: z.number().int().min(1),
  vocab: z.number().int().min(2),
  tied: z.boolean(),
});

const CheckpointConfigSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  model: ModelConfigSchema,
  tokenizer: z.string().nullable(),
  naming: z.literal("nanoGPT"),
  dtype: z.literal("float32"),
  /** the run that wrote it: kind, loss options, step, … (informational) */
  training: z.record(z.string(), z.unknown()).default({}),
  created_at: z.string(),
});

export type CheckpointConfig = z.infer<typeof CheckpointConfigSchema>;

const TrainerStateSchema = z.strictObject({
  format: z.literal(TRAINER_STATE_FORMAT),
  phase: z.enum(["pretrain", "sft"]),
  /** optimizer steps done */
  step: z.number().int().min(0),
  /** micro-batches consumed (the data position; epoch and batch follow from it) */
  microBatches: z.number().int().min(0),
  epoch: z.number().int().min(0),
  batchInEpoch: z.number().int().min(0),
  seed: z.number().int().min(0),
  configHash: z.string(),
  tokens: z.number().min(0),
  elapsedSeconds: z.number().min(0),
  /** rows of train_log.arrow written up to this checkpoint */
  logRows: z.number().int().min(0),
  /** Σ loss and supervised tokens of the steps since the last train row (its running mean) */
  pendingLossSum: z.number(),
  pendingTokens: z.number().int().min(0),
});

export type TrainerState = z.infer<typeof TrainerStateSchema>;

export interface SaveOptions {
  tokenizer: string | null;
  training?: Record<string, unknown>;
  /** also save the AdamW moments (optimizer.safetensors) */
  optimizer?: boolean;
  state?: TrainerState;
}

/**
 * Writes the model (and optionally its optimizer and trainer state) into `dir`. The files go
 * to a sibling temporary directory first, which then replaces `dir` (the previous checkpoint
 * is moved aside and removed), so `dir` never holds files from two different steps.
 */
export function saveCheckpoint(dir: string, model: GptModel, options: SaveOptions): void {
  if (model.precision !== "float32") throw new TypeError("checkpoints hold float32 models");
  writeDirAtomic(dir, (tmp) => writeCheckpointFiles(tmp, model, options));
}

function writeCheckpointFiles(dir: string, model: GptModel, options: SaveOptions): void {
  const tensors = model.tensors();
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT,
    model: { ...model.config },
    tokenizer: options.tokenizer,
    naming: "nanoGPT",
    dtype: "float32",
    training: options.training ?? {},
    created_at: new Date().toISOString(),
  };
  const meta = { format: CHECKPOINT_FORMAT, config: JSON.stringify(config.model) };
  writeSafetensors(join(dir, "model.safetensors"), stateDict(tensors, model.read("params") as Float32Array), meta);
  if (options.optimizer) {
    const m = model.read("m") as Float32Array;
    const v = model.read("v") as Float32Array;
    writeSafetensors(join(dir, "optimizer.safetensors"), [...stateDict(tensors, m, "exp_avg."), ...stateDict(tensors, v, "exp_avg_sq.")], {
      format: CHECKPOINT_FORMAT,
      step: String(options.state?.step ?? 0),
    });
  }
  if (options.state) writeFileAtomic(join(dir, "trainer_state.json"), JSON.stringify(TrainerStateSchema.parse(options.state), null, 2) + "\n");
  writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
}

export interface LoadedCheckpoint {
  dir: string;
  config: CheckpointConfig;
  /** the weights in the engine's flat order (see namedSlices) */
  params: Float32Array;
  optimizer?: { m: Float32Array; v: Float32Array };
  state?: TrainerState;
}

function parseJson(path: string, dir: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CheckpointError(`checkpoint ${dir}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`checkpoint ${dir}: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

export function readCheckpointConfig(dir: string): CheckpointConfig {
  if (!existsSync(dir)) throw new CheckpointError(`checkpoint ${dir}: no such directory`);
  const raw = parseJson(join(dir, "config.json"), dir);
  const r = CheckpointConfigSchema.safeParse(raw);
  if (!r.success) throw new CheckpointError(`checkpoint ${dir}: config.json is not a ${CHECKPOINT_FORMAT} config (${issues(r.error)})`);
  const m = r.data.model;
  if (m.dModel % m.nHead !== 0) throw new CheckpointError(`checkpoint ${dir}: config.json has nHead ${m.nHead} that does not divide dModel ${m.dModel}`);
  return r.data;
}

/** The flat buffers stored under each prefix of one safetensors file, checked against the config. */
function gather(dir: string, file: string, c: ModelConfig, prefixes: readonly string[]): Float32Array[] {
  const path = join(dir, file);
  if (!existsSync(path)) throw new CheckpointError(`checkpoint ${dir}: ${file} is missing`);
  const f = readSafetensors(path);
  const slices = namedSlices(tensorTable(c));
  const total = slices.reduce((a, s) => a + s.numel, 0);
  const expected = new Set<string>();
  const out = prefixes.map((prefix) => {
    const flat = new Float32Array(total);
    for (const s of slices) {
      const name = prefix + s.name;
      expected.add(name);
      const t = f.tensors.get(name);
      if (!t) throw new CheckpointError(`checkpoint ${dir}: ${file} has no tensor '${name}' (config.json: nLayer ${c.nLayer}, tied ${c.tied})`);
      if (t.dtype !== "F32") throw new CheckpointError(`checkpoint ${dir}: ${file}: tensor '${name}' is ${t.dtype}, expected F32`);
      if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
        throw new CheckpointError(
          `checkpoint ${dir}: ${file}: tensor '${name}' has shape [${t.shape.join(", ")}], expected [${s.shape.join(", ")}] ` +
            `for config.json (nLayer ${c.nLayer}, dModel ${c.dModel}, context ${c.context}, vocab ${c.vocab})`,
        );
      }
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i]!)) throw new CheckpointError(`checkpoint ${dir}: ${file}: tensor '${name}' contains ${data[i]} at element ${i}`);
      }
      flat.set(data, s.offset);
    }
    return flat;
  });
  for (const name of f.tensors.keys()) {
    if (!expected.has(name)) {
      throw new CheckpointError(`checkpoint ${dir}: ${file} has an unexpected tensor '${name}'${name === "lm_head.weight" ? " (config.json says the head is tied)" : ""}`);
    }
  }
  return out;
}

/** Reads and checks a checkpoint; optimizer and trainer state when present and asked for. */
export function loadCheckpoint(dir: string, opts: { optimizer?: boolean } = {}): LoadedCheckpoint {
  const config = readCheckpointConfig(dir);
  const [params] = gather(dir, "model.safetensors", config.model, [""]) as [Float32Array];
  const out: LoadedCheckpoint = { dir, config, params };
  if (opts.optimizer) {
    const [m, v] = gather(dir, "optimizer.safetensors", config.model, ["exp_avg.", "exp_avg_sq."]) as [Float32Array, Float32Array];
    out.optimizer = { m, v };
    const statePath = join(dir, "trainer_state.json");
    if (!existsSync(statePath)) throw new CheckpointError(`checkpoint ${dir}: trainer_state.json is missing (cannot resume)`);
    const r = TrainerStateSchema.safeParse(parseJson(statePath, dir));
    if (!r.success) throw new CheckpointError(`checkpoint ${dir}: trainer_state.json is invalid (${issues(r.error)})`);
    out.state = r.data;
  }
  return out;
}

/** Copies a loaded checkpoint into a model of the same configuration. */
export function loadIntoModel(model: GptModel, ckpt: LoadedCheckpoint): void {
  const a = model.config, b = ckpt.config.model;
  const keys = ["nLayer", "nHead", "dModel", "context", "vocab", "tied"] as const;
  const diff = keys.filter((k) => a[k] !== b[k]);
  if (diff.length > 0) {
    throw new CheckpointError(`checkpoint ${ckpt.dir} does not match the model: ${diff.map((k) => `${k} ${String(b[k])} ≠ ${String(a[k])}`).join(", ")}`);
  }
  const toModel = (x: Float32Array) => (model.precision === "float64" ? Float64Array.from(x) : x);
  model.write("params", toModel(ckpt.params));
  if (ckpt.optimizer) {
    model.write("m", toModel(ckpt.optimizer.m));
    model.write("v", toModel(ckpt.optimizer.v));
  }
}
