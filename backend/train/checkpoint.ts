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
// Llama-family models (arch 'llama': models fine-tuned from a Hugging Face folder) are stored as
// format calib-llama/1 in the same directory layout:
//   config.json            {format: "calib-llama/1", model (the engine config with every llama
//                          field), tokenizer ("hf:<model>"), naming: "engine", hf: {family,
//                          finalSoftcap, source}, training, created_at}
//   model.safetensors      the weights, float32, under the engine's tensor names and shapes
//                          (backend/engine/layout.ts tensorTable: embed [V, d], attn_norm [L, d],
//                          q [L, H·hd, d], …, per-layer tensors stacked over the layers)
//   optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name>; trainer_state.json as above
//   hf/                    the source folder's config.json and tokenizer / chat template /
//                          generation files: the checkpoint alone can be tokenized, evaluated
//                          and exported (`calib export`) after the source folder is gone
// Writes are atomic per file and config.json is written last, so a directory with a
// config.json is complete. Reading checks names, shapes, dtypes and finiteness, and every
// problem is a CheckpointError that names the directory and what is wrong.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import type { GptModel, ModelConfig, TensorInfo } from "../engine/index.js";
import { tensorTable, validateModelConfig } from "../engine/index.js";
import { CheckpointError, readSafetensors, SafetensorsReader, writeSafetensors, writeSafetensorsStream, type SafeTensor } from "../io/safetensors.js";
import { HF_MODEL_TYPES, type HfFamily } from "../hf/config.js";

export { CheckpointError } from "../io/safetensors.js";

export const CHECKPOINT_FORMAT = "calib-gpt/1";
export const LLAMA_CHECKPOINT_FORMAT = "calib-llama/1";
/** The folder of a Llama-family checkpoint that holds the source's config.json and tokenizer files. */
export const HF_SUBDIR = "hf";
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

/** What a Llama-family checkpoint keeps of its Hugging Face origin. */
const HfInfoSchema = z.strictObject({
  family: z.enum(HF_MODEL_TYPES as unknown as [HfFamily, ...HfFamily[]]),
  /** Gemma 2's final soft-cap: applied to every logit (the loss's softcap); null = none */
  finalSoftcap: z.number().positive().finite().nullable(),
  /** the folder the weights first came from (informational: hf/ holds what is needed) */
  source: z.string(),
});
export type HfCheckpointInfo = z.infer<typeof HfInfoSchema>;

const LlamaCheckpointConfigSchema = z.object({
  format: z.literal(LLAMA_CHECKPOINT_FORMAT),
  /** the engine's configuration, every llama field filled in (validateModelConfig) */
  model: z.object({ arch: z.literal("llama") }).passthrough(),
  tokenizer: z.string(),
  naming: z.literal("engine"),
  dtype: z.literal("float32"),
  hf: HfInfoSchema,
  training: z.record(z.string(), z.unknown()).default({}),
  created_at: z.string(),
});

export type GptCheckpointConfig = z.infer<typeof CheckpointConfigSchema>;
export type LlamaCheckpointConfig = Omit<z.infer<typeof LlamaCheckpointConfigSchema>, "model"> & { model: ModelConfig & { arch: "llama" } };
export type CheckpointConfig = GptCheckpointConfig | LlamaCheckpointConfig;

/** A checkpoint of the Llama family (calib-llama/1). */
export function isLlamaCheckpoint(c: CheckpointConfig): c is LlamaCheckpointConfig {
  return c.format === LLAMA_CHECKPOINT_FORMAT;
}

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
  /** Llama-family models (required for them): the Hugging Face origin and the files of hf/ (name → bytes) */
  hf?: { info: HfCheckpointInfo; files: ReadonlyMap<string, Uint8Array> };
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
  if (model.config.arch === "llama") return writeLlamaFiles(dir, model, options);
  if (options.hf) throw new TypeError("hf info belongs to Llama-family checkpoints");
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

/** The engine-named tensors of a flat buffer (views, no copy), under a name prefix. */
function engineTensors(tensors: readonly TensorInfo[], flat: Float32Array, prefix = ""): Array<{ name: string; shape: number[]; dtype: "F32"; data: Float32Array }> {
  return tensors.map((t) => ({ name: prefix + t.name, shape: t.shape.slice(), dtype: "F32" as const, data: flat.subarray(t.offset, t.offset + t.numel) }));
}

function writeLlamaFiles(dir: string, model: GptModel, options: SaveOptions): void {
  if (!options.hf) throw new TypeError("a Llama-family checkpoint needs options.hf (its Hugging Face origin and tokenizer files)");
  if (!options.tokenizer) throw new TypeError("a Llama-family checkpoint needs its tokenizer's name");
  if (!options.hf.files.has("config.json")) throw new TypeError("options.hf.files must hold the source's config.json");
  const tensors = model.tensors();
  const config: LlamaCheckpointConfig = {
    format: LLAMA_CHECKPOINT_FORMAT,
    model: { ...(model.config as LlamaCheckpointConfig["model"]) },
    tokenizer: options.tokenizer,
    naming: "engine",
    dtype: "float32",
    hf: HfInfoSchema.parse(options.hf.info),
    training: options.training ?? {},
    created_at: new Date().toISOString(),
  };
  const meta = { format: LLAMA_CHECKPOINT_FORMAT };
  writeSafetensorsStream(join(dir, "model.safetensors"), engineTensors(tensors, model.read("params") as Float32Array), meta);
  if (options.optimizer) {
    const m = model.read("m") as Float32Array, v = model.read("v") as Float32Array;
    writeSafetensorsStream(join(dir, "optimizer.safetensors"), [...engineTensors(tensors, m, "exp_avg."), ...engineTensors(tensors, v, "exp_avg_sq.")], {
      ...meta, step: String(options.state?.step ?? 0),
    });
  }
  mkdirSync(join(dir, HF_SUBDIR));
  for (const [name, bytes] of options.hf.files) {
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) throw new TypeError(`hf file name '${name}' is not a plain file name`);
    writeFileSync(join(dir, HF_SUBDIR, name), bytes);
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
  if ((raw as { format?: unknown } | null)?.format === LLAMA_CHECKPOINT_FORMAT) return readLlamaConfig(dir, raw);
  const r = CheckpointConfigSchema.safeParse(raw);
  if (!r.success) {
    const hf = raw !== null && typeof raw === "object" && "model_type" in raw ? "; it is a Hugging Face model folder: train from it with \"init\": {\"hf\": …}, evaluate it with --model" : "";
    throw new CheckpointError(`checkpoint ${dir}: config.json is not a ${CHECKPOINT_FORMAT} config (${issues(r.error)})${hf}`);
  }
  const m = r.data.model;
  if (m.dModel % m.nHead !== 0) throw new CheckpointError(`checkpoint ${dir}: config.json has nHead ${m.nHead} that does not divide dModel ${m.dModel}`);
  return r.data;
}

function readLlamaConfig(dir: string, raw: unknown): LlamaCheckpointConfig {
  const r = LlamaCheckpointConfigSchema.safeParse(raw);
  if (!r.success) throw new CheckpointError(`checkpoint ${dir}: config.json is not a ${LLAMA_CHECKPOINT_FORMAT} config (${issues(r.error)})`);
  let model: ModelConfig;
  try {
    model = validateModelConfig(r.data.model as unknown as ModelConfig);
  } catch (err) {
    throw new CheckpointError(`checkpoint ${dir}: config.json: model.${(err as Error).message}`);
  }
  return { ...r.data, model: model as LlamaCheckpointConfig["model"] };
}

/** The tensors of one safetensors file, as gather() reads them. */
interface StoredTensors {
  names: Iterable<string>;
  get(name: string): { dtype: string; shape: readonly number[]; read(dst: Float32Array): void } | undefined;
}

/** The flat buffers stored under each prefix of one file, checked against the config: every name, dtype, shape and value. */
function gather(dir: string, file: string, c: ModelConfig, prefixes: readonly string[], slices: readonly NamedSlice[], stored: StoredTensors, head: string): Float32Array[] {
  const total = slices.reduce((a, s) => a + s.numel, 0);
  const expected = new Set<string>();
  const out = prefixes.map((prefix) => {
    const flat = new Float32Array(total);
    for (const s of slices) {
      const name = prefix + s.name;
      expected.add(name);
      const t = stored.get(name);
      if (!t) throw new CheckpointError(`checkpoint ${dir}: ${file} has no tensor '${name}' (config.json: nLayer ${c.nLayer}, tied ${c.tied})`);
      if (t.dtype !== "F32") throw new CheckpointError(`checkpoint ${dir}: ${file}: tensor '${name}' is ${t.dtype}, expected F32`);
      if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
        throw new CheckpointError(
          `checkpoint ${dir}: ${file}: tensor '${name}' has shape [${t.shape.join(", ")}], expected [${s.shape.join(", ")}] ` +
            `for config.json (nLayer ${c.nLayer}, dModel ${c.dModel}, context ${c.context}, vocab ${c.vocab})`,
        );
      }
      const data = flat.subarray(s.offset, s.offset + s.numel);
      t.read(data);
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i]!)) throw new CheckpointError(`checkpoint ${dir}: ${file}: tensor '${name}' contains ${data[i]} at element ${i}`);
      }
    }
    return flat;
  });
  for (const name of stored.names) {
    if (!expected.has(name)) {
      throw new CheckpointError(`checkpoint ${dir}: ${file} has an unexpected tensor '${name}'${name === head ? " (config.json says the head is tied)" : ""}`);
    }
  }
  return out;
}

/** A GPT checkpoint's file (small: read whole) under nanoGPT's names. */
function gatherGpt(dir: string, file: string, c: ModelConfig, prefixes: readonly string[]): Float32Array[] {
  const path = join(dir, file);
  if (!existsSync(path)) throw new CheckpointError(`checkpoint ${dir}: ${file} is missing`);
  const f = readSafetensors(path);
  const stored: StoredTensors = {
    names: f.tensors.keys(),
    get: (name) => {
      const t = f.tensors.get(name);
      return t && { dtype: t.dtype, shape: t.shape, read: (dst) => dst.set(t.data as Float32Array) };
    },
  };
  return gather(dir, file, c, prefixes, namedSlices(tensorTable(c)), stored, "lm_head.weight");
}

/** A Llama-family checkpoint's file (large: each tensor read by offset) under the engine's names. */
function gatherLlama(dir: string, file: string, c: ModelConfig, prefixes: readonly string[]): Float32Array[] {
  const path = join(dir, file);
  if (!existsSync(path)) throw new CheckpointError(`checkpoint ${dir}: ${file} is missing`);
  let reader: SafetensorsReader;
  try {
    reader = SafetensorsReader.open(path);
  } catch (err) {
    throw new CheckpointError(`checkpoint ${dir}: ${(err as Error).message}`);
  }
  try {
    const stored: StoredTensors = {
      names: reader.header.entries.keys(),
      get: (name) => {
        const e = reader.entry(name);
        return e && {
          dtype: e.dtype, shape: e.shape,
          read: (dst) => {
            try {
              reader.readFloat32(name, dst);
            } catch (err) {
              throw new CheckpointError(`checkpoint ${dir}: ${(err as Error).message}`);
            }
          },
        };
      },
    };
    return gather(dir, file, c, prefixes, tensorTable(c), stored, "lm_head");
  } finally {
    reader.close();
  }
}

/** Reads and checks a checkpoint; optimizer and trainer state when present and asked for. */
export function loadCheckpoint(dir: string, opts: { optimizer?: boolean } = {}): LoadedCheckpoint {
  const config = readCheckpointConfig(dir);
  const read = isLlamaCheckpoint(config) ? gatherLlama : gatherGpt;
  const [params] = read(dir, "model.safetensors", config.model, [""]) as [Float32Array];
  const out: LoadedCheckpoint = { dir, config, params };
  if (opts.optimizer) {
    const [m, v] = read(dir, "optimizer.safetensors", config.model, ["exp_avg.", "exp_avg_sq."]) as [Float32Array, Float32Array];
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
  const a = model.config, b: ModelConfig = ckpt.config.model;
  const keys = ["nLayer", "nHead", "dModel", "context", "vocab", "tied"] as const;
  const diff: string[] = keys.filter((k) => a[k] !== b[k]);
  if ((a.arch ?? "gpt2") !== (b.arch ?? "gpt2")) diff.push("arch");
  else if (a.arch === "llama") {
    const la = a.llama as Record<string, unknown>, lb = b.llama as Record<string, unknown>;
    for (const k of Object.keys(la)) if (la[k] !== lb[k]) diff.push(`llama.${k}`);
  }
  if (diff.length > 0) {
    const show = (c: ModelConfig, k: string) => String(k === "arch" ? c.arch ?? "gpt2" : k.startsWith("llama.") ? (c.llama as Record<string, unknown>)[k.slice(6)] : c[k as keyof ModelConfig]);
    throw new CheckpointError(`checkpoint ${ckpt.dir} does not match the model: ${diff.map((k) => `${k} ${show(b, k)} ≠ ${show(a, k)}`).join(", ")}`);
  }
  const toModel = (x: Float32Array) => (model.precision === "float64" ? Float64Array.from(x) : x);
  model.write("params", toModel(ckpt.params));
  if (ckpt.optimizer) {
    model.write("m", toModel(ckpt.optimizer.m));
    model.write("v", toModel(ckpt.optimizer.v));
  }
}
