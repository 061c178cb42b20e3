// config.json of a Hugging Face model folder → the engine's description of the model (arch
// 'llama', the fields of calib_llama_config in native/include/calib.h). Defaults and semantics
// are those of transformers 5's configuration_{llama,qwen2,mistral,gemma2}.py and modeling code,
// read field by field; docs/hf.md lists them. Every problem is an HfFolderError naming
// config.json and the field.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaConfig as EngineLlamaConfig, ModelConfig } from "../engine/index.js";
import { bf16Value, f32ToBf16 } from "../io/half.js";
import { HfFolderError } from "./errors.js";

export type HfFamily = "llama" | "qwen2" | "mistral" | "gemma2";
/** model_type values we load (SmolLM2 and Llama 3 are `llama`). */
export const HF_MODEL_TYPES: readonly HfFamily[] = Object.freeze(["llama", "qwen2", "mistral", "gemma2"] as const);

/** rope_scaling / rope_parameters of the types the engine implements (no scaling: null). */
export interface RopeScaling {
  type: "linear" | "llama3";
  factor: number;
  /** llama3 only (else null) */
  lowFreqFactor: number | null;
  highFreqFactor: number | null;
  /** llama3: original_max_position_embeddings */
  originalContext: number | null;
}

/** calib_llama_config, field by field: the engine's own description (rope scaling flattened into its fields). */
export type LlamaConfig = EngineLlamaConfig;

/** The engine's rope fields of a config.json's scaling (none: the default rotation). */
export function ropeFields(scaling: RopeScaling | null): Pick<LlamaConfig, "ropeType" | "ropeFactor" | "ropeLowFreqFactor" | "ropeHighFreqFactor" | "ropeOriginalContext"> {
  if (!scaling) return { ropeType: "default", ropeFactor: 1, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalContext: 8192 };
  return {
    ropeType: scaling.type, ropeFactor: scaling.factor, ropeLowFreqFactor: scaling.lowFreqFactor ?? 1,
    ropeHighFreqFactor: scaling.highFreqFactor ?? 4, ropeOriginalContext: scaling.originalContext ?? 8192,
  };
}

/** The engine's model configuration for arch 'llama' (calib_model_config): the GPT's fields
 * (context: the longest sequence allocated for, ≤ max_position_embeddings) + calib_llama_config. */
export interface LlamaModelConfig extends ModelConfig {
  arch: "llama";
  llama: LlamaConfig;
}

export type HfDtype = "bfloat16" | "float16" | "float32";

export interface HfModelSpec {
  /** the folder */
  dir: string;
  /** config.json's path */
  configPath: string;
  family: HfFamily;
  model: LlamaModelConfig;
  /** Gemma 2's final_logit_softcapping: the LM head's soft-cap (our loss's softcap); null = none */
  finalSoftcap: number | null;
  /** max_position_embeddings */
  maxContext: number;
  /** the dtype config.json states (dtype / torch_dtype); null when absent or another */
  dtype: HfDtype | null;
  /** config.json's special token ids (the tokenizer files may add to them) */
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** config.json as read; export writes it back with its dtype updated */
  raw: Readonly<Record<string, unknown>>;
}

export interface HfConfigOptions {
  /** sequence length to allocate for; default min(max_position_embeddings, DEFAULT_CONTEXT) */
  context?: number;
}

/** The default context when none is asked for: long contexts (Llama 3's 131,072) are opt-in. */
export const DEFAULT_CONTEXT = 4096;

interface FamilyDefaults {
  nKvHead: number | "heads";
  headDim: number | null;
  act: string;
  maxContext: number;
  tied: boolean;
}

// transformers 5 class defaults for the fields a config.json may leave out.
const DEFAULTS: Record<HfFamily, FamilyDefaults> = {
  llama: { nKvHead: "heads", headDim: null, act: "silu", maxContext: 2048, tied: false },
  qwen2: { nKvHead: 32, headDim: null, act: "silu", maxContext: 32768, tied: false },
  mistral: { nKvHead: 8, headDim: null, act: "silu", maxContext: 4096 * 32, tied: false },
  gemma2: { nKvHead: 4, headDim: 256, act: "gelu_pytorch_tanh", maxContext: 8192, tied: true },
};

const ACTIVATIONS: Record<string, LlamaConfig["mlpAct"]> = {
  silu: "silu",
  swish: "silu",
  gelu_pytorch_tanh: "gelu_tanh",
  gelu_new: "gelu_tanh",
};

type Raw = Record<string, unknown>;

class Fields {
  constructor(readonly raw: Raw, readonly file: string) {}

  fail(field: string, msg: string): never {
    throw new HfFolderError(this.file, `${field} ${msg}`, field);
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined;
  }

  int(field: string, dflt?: number, min = 1): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(field, "is missing");
      return dflt!;
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) this.fail(field, `must be an integer ≥ ${min} (got ${JSON.stringify(v)})`);
    return v as number;
  }

  positive(field: string, dflt: number | null, where: Raw = this.raw, name = field): number | null {
    const v = where[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(name, `must be a positive number (got ${JSON.stringify(v)})`);
    return v as number;
  }

  /** a soft-cap: absent → the default, null → none */
  cap(field: string, dflt: number): number | null {
    return this.raw[field] === null ? null : this.positive(field, dflt);
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== "boolean") this.fail(field, `must be true or false (got ${JSON.stringify(v)})`);
    return v as boolean;
  }

  ids(field: string): number[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) this.fail(field, `must be a token id or a list of them (got ${JSON.stringify(v)})`);
    return list as number[];
  }
}

export function isHfFamily(x: unknown): x is HfFamily {
  return typeof x === "string" && (HF_MODEL_TYPES as readonly string[]).includes(x);
}

/** Parses a config.json object (`file` names it in errors). */
export function parseHfConfig(raw: unknown, file: string, opts: HfConfigOptions = {}): Omit<HfModelSpec, "dir" | "configPath"> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new HfFolderError(file, "is not a JSON object");
  const f = new Fields(raw as Raw, file);
  const modelType = f.raw.model_type;
  if (modelType === undefined) f.fail("model_type", `is missing (one of ${HF_MODEL_TYPES.join(", ")})`);
  if (!isHfFamily(modelType)) f.fail("model_type", `'${String(modelType)}' is not supported (${HF_MODEL_TYPES.join(", ")})`);
  const family = modelType as HfFamily;
  const d = DEFAULTS[family];

  const dModel = f.int("hidden_size");
  const dFf = f.int("intermediate_size");
  const nLayer = f.int("num_hidden_layers");
  const nHead = f.int("num_attention_heads");
  const vocab = f.int("vocab_size", undefined, 2);
  const nKvHead = f.int("num_key_value_heads", d.nKvHead === "heads" ? nHead : d.nKvHead);
  if (nHead % nKvHead !== 0) f.fail("num_key_value_heads", `(${nKvHead}) must divide num_attention_heads (${nHead})`);
  if (!f.has("head_dim") && d.headDim === null && dModel % nHead !== 0) {
    f.fail("head_dim", `is missing and hidden_size (${dModel}) is not a multiple of num_attention_heads (${nHead})`);
  }
  const headDim = f.int("head_dim", d.headDim ?? dModel / nHead);
  if (headDim % 2 !== 0) f.fail("head_dim", `(${headDim}) must be even for rotary embeddings`);
  const maxContext = f.int("max_position_embeddings", d.maxContext);
  const normEps = f.positive("rms_norm_eps", 1e-6)!;
  const tied = f.bool("tie_word_embeddings", d.tied);

  const actField = family === "gemma2" && f.has("hidden_activation") ? "hidden_activation" : "hidden_act";
  const actName = f.raw[actField] ?? d.act;
  const mlpAct = typeof actName === "string" ? ACTIVATIONS[actName] : undefined;
  if (!mlpAct) f.fail(actField, `'${String(actName)}' is not supported (${Object.keys(ACTIVATIONS).join(", ")})`);

  for (const field of ["attention_bias", "mlp_bias"] as const) {
    if (f.bool(field, false)) f.fail(field, "is true: biases on every projection are not supported (Qwen2's q/k/v biases are)");
  }
  if (f.bool("use_bidirectional_attention", false)) f.fail("use_bidirectional_attention", "is true: only causal attention is supported");

  const layerTypes = layerTypesOf(f, family, nLayer);
  const { theta, scaling } = ropeOf(f, maxContext, layerTypes.names);
  const gemma = family === "gemma2";
  const attnScale = gemma ? 1 / Math.sqrt(f.positive("query_pre_attn_scalar", 256)!) : 1 / Math.sqrt(headDim);

  const context = opts.context ?? Math.min(maxContext, DEFAULT_CONTEXT);
  if (!Number.isSafeInteger(context) || context < 1) throw new TypeError(`context must be a positive integer (got ${String(opts.context)})`);
  if (context > maxContext) throw new RangeError(`context ${context} exceeds the model's max_position_embeddings (${maxContext}, ${file})`);

  const dtypeField = f.raw.dtype ?? f.raw.torch_dtype;
  const dtype = dtypeField === "bfloat16" || dtypeField === "float16" || dtypeField === "float32" ? dtypeField : null;
  const bos = f.ids("bos_token_id");
  const pad = f.ids("pad_token_id");

  return {
    family,
    model: {
      arch: "llama",
      nLayer,
      nHead,
      dModel,
      context,
      vocab,
      tied,
      llama: {
        nKvHead,
        headDim,
        dFf,
        normEps,
        normPlusOne: gemma,
        postNorms: gemma,
        qkvBias: family === "qwen2",
        mlpAct: mlpAct!,
        embedScale: gemma ? Math.fround(Math.sqrt(dModel)) : 1,
        ropeTheta: theta,
        ...ropeFields(scaling),
        attnScale,
        attnSoftcap: gemma ? f.cap("attn_logit_softcapping", 50) ?? 0 : 0,
        slidingWindow: layerTypes.window,
        slidingPeriod: layerTypes.period,
      },
    },
    finalSoftcap: gemma ? f.cap("final_logit_softcapping", 30) : null,
    maxContext,
    dtype,
    bosTokenId: bos[0] ?? null,
    eosTokenIds: f.ids("eos_token_id"),
    padTokenId: pad[0] ?? null,
    raw: Object.freeze({ ...(raw as Raw) }),
  };
}

const LAYER_TYPES = ["full_attention", "sliding_attention"] as const;

/**
 * Which layers slide, as transformers 5 decides it, reduced to the engine's (window, period):
 *   llama:   never (LlamaConfig has no sliding window)
 *   mistral: every layer when sliding_window is a number (default 4096), none when null
 *   qwen2:   only with use_sliding_window (default false): layer_types, else layers ≥ max_window_layers
 *   gemma2:  layer_types, else layer i slides when (i + 1) % 2 (i.e. even i), window sliding_window (4096)
 */
function layerTypesOf(f: Fields, family: HfFamily, nLayer: number): { window: number; period: number; names: string[] | null } {
  const given = f.raw.layer_types;
  let names: string[] | null = null;
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== nLayer || !given.every((t) => (LAYER_TYPES as readonly unknown[]).includes(t))) {
      f.fail("layer_types", `must list ${nLayer} entries of ${LAYER_TYPES.join(" / ")}`);
    }
    names = given as string[];
  }
  let window: number | null = null;
  let sliding: boolean[] = [];
  const windowField = (dflt: number | null): number | null => (f.raw.sliding_window === undefined ? dflt : f.raw.sliding_window === null ? null : f.int("sliding_window"));
  if (family === "mistral") {
    window = windowField(4096);
    sliding = Array.from({ length: nLayer }, () => true);
  } else if (family === "qwen2") {
    window = f.bool("use_sliding_window", false) ? windowField(4096) : null;
    const first = f.int("max_window_layers", 28, 0);
    sliding = names ? names.map((t) => t === "sliding_attention") : Array.from({ length: nLayer }, (_, i) => i >= first);
  } else if (family === "gemma2") {
    window = windowField(4096);
    sliding = names ? names.map((t) => t === "sliding_attention") : Array.from({ length: nLayer }, (_, i) => (i + 1) % 2 === 1);
  }
  if (window === null || !sliding.some(Boolean)) return { window: 0, period: 1, names };
  for (let p = 1; p <= nLayer; p++) {
    if (sliding.every((s, l) => s === (l % p === 0))) return { window, period: p, names };
  }
  const which = sliding.flatMap((s, l) => (s ? [l] : []));
  return f.fail(names ? "layer_types" : "max_window_layers", `makes layers [${which.join(", ")}] slide; the engine slides layers l with l % p == 0 only`);
}

/**
 * rope_theta and the scaling, as transformers 5 standardizes them: rope_scaling (older files)
 * or rope_parameters, whose rope_theta wins over the top-level one; rope_type (or `type`)
 * 'default' | 'linear' | 'llama3'; 'dynamic' is the default rotation within max_position_embeddings.
 */
function ropeOf(f: Fields, maxContext: number, layerTypes: string[] | null): { theta: number; scaling: RopeScaling | null } {
  const field = f.raw.rope_scaling != null ? "rope_scaling" : "rope_parameters";
  let p = f.raw[field] ?? null;
  if (p !== null && (typeof p !== "object" || Array.isArray(p))) f.fail(field, "must be an object or null");
  const keys = p ? Object.keys(p as Raw) : [];
  if (p && layerTypes && keys.length > 0 && keys.every((k) => layerTypes.includes(k))) {
    // one dict per layer type (transformers 5's nested form): the engine has one rotation
    const values = Object.values(p as Raw);
    if (!values.every((v) => JSON.stringify(v) === JSON.stringify(values[0]))) f.fail(field, "differs between layer types; the engine has one rotary embedding");
    p = values[0] as Raw;
  }
  const params = (p ?? {}) as Raw;
  const theta = f.positive("rope_theta", null, params, `${field}.rope_theta`) ?? f.positive("rope_theta", 10000)!;
  const partial = params.partial_rotary_factor ?? f.raw.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) f.fail("partial_rotary_factor", `is ${JSON.stringify(partial)}: only full rotary embeddings are supported`);
  const type = params.rope_type ?? params.type ?? "default";
  if (type === "default" || type === "dynamic") return { theta, scaling: null };
  const need = (k: string): number => f.positive(k, null, params, `${field}.${k}`) ?? f.fail(`${field}.${k}`, "is missing");
  if (type === "linear") return { theta, scaling: { type, factor: need("factor"), lowFreqFactor: null, highFreqFactor: null, originalContext: null } };
  if (type === "llama3") {
    const low = need("low_freq_factor"), high = need("high_freq_factor");
    if (!(high > low)) f.fail(`${field}.high_freq_factor`, `(${high}) must exceed low_freq_factor (${low})`);
    const original = f.raw.original_max_position_embeddings ?? params.original_max_position_embeddings ?? maxContext;
    if (!Number.isSafeInteger(original) || (original as number) < 1) f.fail(`${field}.original_max_position_embeddings`, `must be a positive integer (got ${JSON.stringify(original)})`);
    return { theta, scaling: { type, factor: need("factor"), lowFreqFactor: low, highFreqFactor: high, originalContext: original as number } };
  }
  return f.fail(`${field}.rope_type`, `'${String(type)}' is not supported (default, linear, llama3, dynamic)`);
}

/** Reads and parses `dir`/config.json. */
export function readHfConfig(dir: string, opts: HfConfigOptions = {}): HfModelSpec {
  const configPath = join(dir, "config.json");
  const raw = readJson(configPath);
  return { dir, configPath, ...parseHfConfig(raw, configPath, opts) };
}

/** A JSON file of the folder; a missing file or bad JSON is an HfFolderError naming it. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HfFolderError(path, code === "ENOENT" ? "is missing" : `cannot be read (${code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HfFolderError(path, `is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Gemma's embedding scale in the precision the model computes in: transformers multiplies by
 * torch.tensor(√hidden_size, dtype=model dtype), so a bfloat16 model scales by √d rounded to
 * bfloat16 (√3584 = 59.866 → 59.75), a float32 model by √d in float32.
 */
export function embedScaleFor(spec: Pick<HfModelSpec, "family" | "model">, precision: "float32" | "float64" | "bfloat16"): number {
  if (spec.family !== "gemma2") return 1;
  const root = Math.sqrt(spec.model.dModel);
  if (precision === "float64") return root;
  if (precision === "float32") return Math.fround(root);
  const half = new Uint16Array(1);
  f32ToBf16(Float32Array.of(root), half);
  return bf16Value(half[0]!);
}
