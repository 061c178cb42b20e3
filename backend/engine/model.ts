// The models of the engine (native/src/model/): a typed facade over the addon's Model class,
// for both architectures — GPT-2 (the default) and the Llama family (arch 'llama': Llama,
// Qwen2, Mistral, SmolLM2, Gemma 2; CPU only for now). Parameters, gradients and AdamW moments
// live in the engine in flat buffers with per-tensor offsets (`tensors()`); everything here
// copies in and out explicitly.
import { addon } from "./addon.js";
import { resolveDevice, type Device } from "./device.js";

/** gpt2: LayerNorm, learned positions, GELU MLP, biases; llama: Hugging Face's LlamaForCausalLM family. */
export type Arch = "gpt2" | "llama";
export type RopeType = "default" | "linear" | "llama3";
/** The gated MLP's activation: SiLU (SwiGLU) or tanh-GELU (GeGLU, Gemma). */
export type MlpAct = "silu" | "gelu_tanh";

/** The Llama family's architecture (native calib_llama_config; Hugging Face config.json names in brackets). */
export interface LlamaConfig {
  /** Key/value heads; divides nHead [num_key_value_heads]. */
  nKvHead: number;
  /** Size of a head, independent of dModel [head_dim]. */
  headDim: number;
  /** The MLP's intermediate size [intermediate_size]. */
  dFf: number;
  /** [rms_norm_eps] */
  normEps: number;
  /** Gemma: RMSNorm scales by 1 + w. */
  normPlusOne: boolean;
  /** Gemma 2: RMSNorm of the attention and MLP outputs before the residual adds. */
  postNorms: boolean;
  /** Qwen2: biases on q, k, v. */
  qkvBias: boolean;
  mlpAct: MlpAct;
  /** Factor of the embedding rows (Gemma: √dModel). */
  embedScale: number;
  /** [rope_theta] */
  ropeTheta: number;
  /** [rope_scaling.rope_type]; ropeFactor is its factor, the rest are llama3's. */
  ropeType: RopeType;
  ropeFactor: number;
  ropeLowFreqFactor: number;
  ropeHighFreqFactor: number;
  ropeOriginalContext: number;
  /** Factor of q·k (1/√headDim; Gemma 2: query_pre_attn_scalar^-1/2). */
  attnScale: number;
  /** Attention-logit soft-cap c·tanh(x/c); 0 none [attn_logit_softcapping]. */
  attnSoftcap: number;
  /** 0 none; else a query sees the keys of the last slidingWindow positions, itself included [sliding_window]. */
  slidingWindow: number;
  /** With a window, layer l slides when l % slidingPeriod == 0 (Gemma 2: 2). */
  slidingPeriod: number;
}

/** The Llama options a config gives: dFf is required, the rest default as in transformers
 * (nKvHead = nHead, headDim = dModel / nHead, normEps 1e-6, ropeTheta 10000, attnScale 1/√headDim, …). */
export type LlamaOptions = Partial<LlamaConfig> & Pick<LlamaConfig, "dFf">;

export interface ModelConfig {
  /** Default gpt2 (a GPT-2 config carries no arch field). */
  arch?: Arch;
  nLayer: number;
  nHead: number;
  dModel: number;
  /** Maximum sequence length (gpt2: rows of the position embedding; llama: rotary angles are computed up to it). */
  context: number;
  vocab: number;
  /** LM head tied to the token embedding (default true). */
  tied: boolean;
  /** arch llama only. */
  llama?: LlamaOptions;
}

/** float32 trains (on CUDA in fp32, no TF32); float64 is the CPU reference for gradient checks;
 * bfloat16 is CUDA mixed precision (fp32 master weights: the flat buffers stay float32). */
export type Precision = "float32" | "float64" | "bfloat16";

export interface ModelOptions {
  /** Activations are allocated once for maxBatch × context positions: a call takes b sequences
   * of t ≤ context tokens with b·t ≤ maxBatch·context. */
  maxBatch: number;
  device?: Device;
  /** Default: float32 on the CPU, bfloat16 (mixed precision) on CUDA. */
  precision?: Precision;
  /** CPU threads (0 = engine default, CALIB_THREADS or all cores). */
  threads?: number;
  /** CUDA: bytes of logits the LM head's fused loss may keep (its workspaceBytes): enough for min(1024, rows)
   * rows of V fp32 logits computes them once, in chunks; 0 = fully streamed (computed twice, 32 MiB blocks).
   * Default DEFAULT_HEAD_WORKSPACE_BYTES (4 GiB: the loss takes at most rows × V × 4 of it). */
  headWorkspaceBytes?: number;
  /** Gradient checkpointing (the Llama family on CUDA): the first checkpointLayers layers keep only their input
   * and recompute their activations in the backward — less memory for one more forward of those layers, the
   * same numbers bit for bit. 0 (default) … nLayer; other models accept it and keep every activation. */
  checkpointLayers?: number;
}

/** The LM head's default logit workspace on CUDA (the trainer's run config records its own value). */
export const DEFAULT_HEAD_WORKSPACE_BYTES = 4 * 2 ** 30;

export type BufferName = "params" | "grads" | "m" | "v";

export type GptTensorName = "wte" | "wpe" | "ln1w" | "ln1b" | "qkvw" | "qkvb" | "attprojw" | "attprojb" | "ln2w" | "ln2b"
  | "fcw" | "fcb" | "fcprojw" | "fcprojb" | "lnfw" | "lnfb" | "lm_head";
/** The Llama family's tensors (calib.h): biases with qkvBias, post-norms with postNorms, lm_head when untied. */
export type LlamaTensorName = "embed" | "attn_norm" | "q" | "k" | "v" | "q_bias" | "k_bias" | "v_bias" | "o"
  | "attn_post_norm" | "mlp_norm" | "gate" | "up" | "down" | "mlp_post_norm" | "norm_f" | "lm_head";

/** A parameter tensor of the flat buffers. Block tensors are stacked: shape[0] = nLayer. */
export interface TensorInfo {
  name: GptTensorName | LlamaTensorName;
  offset: number;
  numel: number;
  shape: number[];
  perLayer: boolean;
  /** AdamW weight decay applies (matmul weights only; not LayerNorm, biases or embeddings). */
  decay: boolean;
}

/** b sequences of t tokens, row-major; targets = ignoreIndex where nothing is supervised. */
export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
  b: number;
  t: number;
}

export interface LossOptions {
  labelSmoothing?: number;
  temperature?: number;
  softcap?: number | null;
  ignoreIndex?: number;
}

export interface StepResult {
  /** Σ over supervised tokens of the per-token (label-smoothed, temperature-scaled) loss. */
  lossSum: number;
  validCount: number;
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Multiplies the gradients first (clipping); default 1. */
  gradScale?: number;
  /** Optimizer step, 1-based (bias correction). */
  step: number;
}

export interface EvalOptions {
  /** Rows (b·t + position) to evaluate; all when absent. */
  rows?: Int32Array;
  /** Logit transform of the evaluated distribution: softmax(softcap(z/T)); defaults T=1, none. */
  temperature?: number;
  softcap?: number | null;
  /** Top-k ids and probabilities per row (0..16, default 5). */
  topK?: number;
  /** Token ids whose transformed logits are returned per row (option letters). */
  optionIds?: Int32Array;
  ignoreIndex?: number;
}

/** One entry per evaluated row (topIds/topP: topK per row, optionLogits: optionIds.length per row). */
export interface EvalResult {
  argmax: Int32Array;
  pMax: Float32Array;
  entropy: Float32Array;
  lse: Float32Array;
  /** p(target); NaN where the target is ignoreIndex. Absent without targets. */
  pTarget?: Float32Array;
  /** −log p(target) computed as lse − s_target in float64; NaN where ignored. Absent without targets. */
  nll?: Float32Array;
  topIds: Int32Array;
  topP: Float32Array;
  optionLogits?: Float32Array;
}

interface NativeModel {
  free(): void;
  numParams(): number;
  tensors(): TensorInfo[];
  read(buffer: BufferName, offset?: number, count?: number): Float32Array | Float64Array;
  write(buffer: BufferName, values: Float32Array | Float64Array, offset?: number): void;
  init(seed: number, std?: number): void;
  step(o: Record<string, unknown>): StepResult;
  zeroGrad(): void;
  gradNorm(): { norm: number; tensorNorms: Float64Array };
  adamw(o: Record<string, unknown>): void;
  adamwRange(o: Record<string, unknown>): void;
  eval(o: Record<string, unknown>): EvalResult;
}

type NativeModelClass = new (o: Record<string, unknown>) => NativeModel;

function positiveInt(value: unknown, name: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer (got ${String(value)})`);
  if (value < 1 || value > max) throw new RangeError(`${name} must be in [1, ${max}] (got ${value})`);
  return value;
}

function finitePositive(value: unknown, name: string): number {
  if (typeof value !== "number") throw new TypeError(`${name} must be a number (got ${String(value)})`);
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number > 0 (got ${value})`);
  return value;
}

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw new TypeError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(", ")} (got ${String(value)})`);
  }
  return value as T;
}

function bool(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") throw new TypeError(`${name} must be a boolean (got ${String(value)})`);
  return value;
}

const LLAMA_KEYS: ReadonlyArray<keyof LlamaConfig> = [
  "nKvHead", "headDim", "dFf", "normEps", "normPlusOne", "postNorms", "qkvBias", "mlpAct", "embedScale", "ropeTheta",
  "ropeType", "ropeFactor", "ropeLowFreqFactor", "ropeHighFreqFactor", "ropeOriginalContext", "attnScale", "attnSoftcap",
  "slidingWindow", "slidingPeriod",
];

/** The Llama options with their defaults filled in, checked as the engine checks them. */
function validateLlama(options: LlamaOptions | undefined, nHead: number, dModel: number): LlamaConfig {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError("llama (the Llama family's options, at least {dFf}) must be an object for arch 'llama'");
  }
  for (const key of Object.keys(options)) {
    if (!(LLAMA_KEYS as readonly string[]).includes(key)) throw new TypeError(`llama.${key} is not a Llama option (known: ${LLAMA_KEYS.join(", ")})`);
  }
  const o = options as Partial<LlamaConfig>;
  const nKvHead = positiveInt(o.nKvHead ?? nHead, "llama.nKvHead", nHead);
  if (nHead % nKvHead !== 0) throw new RangeError(`llama.nKvHead (${nKvHead}) must divide nHead (${nHead})`);
  if (o.headDim === undefined && dModel % nHead !== 0) throw new TypeError(`llama.headDim is required when nHead (${nHead}) does not divide dModel (${dModel})`);
  const headDim = positiveInt(o.headDim ?? dModel / nHead, "llama.headDim", 65536);
  if (headDim % 2 !== 0) throw new RangeError(`llama.headDim must be even: rotary embeddings rotate pairs (got ${headDim})`);
  if (o.dFf === undefined) throw new TypeError("llama.dFf (the MLP's intermediate size) is required");
  const dFf = positiveInt(o.dFf, "llama.dFf", 2 ** 20);
  const ropeType = oneOf(o.ropeType ?? "default", "llama.ropeType", ["default", "linear", "llama3"] as const);
  for (const key of ropeType === "llama3" ? ["ropeFactor", "ropeLowFreqFactor", "ropeHighFreqFactor", "ropeOriginalContext"] as const : ropeType === "linear" ? ["ropeFactor"] as const : []) {
    if (o[key] === undefined) throw new TypeError(`llama.${key} is required for ropeType '${ropeType}'`);
  }
  const ropeLowFreqFactor = finitePositive(o.ropeLowFreqFactor ?? 1, "llama.ropeLowFreqFactor");
  const ropeHighFreqFactor = finitePositive(o.ropeHighFreqFactor ?? 4, "llama.ropeHighFreqFactor");
  if (ropeType === "llama3" && !(ropeHighFreqFactor > ropeLowFreqFactor)) {
    throw new RangeError(`llama.ropeHighFreqFactor (${ropeHighFreqFactor}) must be greater than llama.ropeLowFreqFactor (${ropeLowFreqFactor})`);
  }
  const attnSoftcap = o.attnSoftcap ?? 0;
  if (typeof attnSoftcap !== "number") throw new TypeError(`llama.attnSoftcap must be a number (got ${String(attnSoftcap)})`);
  if (!(attnSoftcap >= 0) || !Number.isFinite(attnSoftcap)) throw new RangeError(`llama.attnSoftcap must be a finite number > 0, or 0 for none (got ${attnSoftcap})`);
  const slidingWindow = o.slidingWindow ?? 0;
  if (!Number.isInteger(slidingWindow)) throw new TypeError(`llama.slidingWindow must be an integer (got ${String(slidingWindow)})`);
  if (slidingWindow < 0 || slidingWindow > 2 ** 31 - 1) throw new RangeError(`llama.slidingWindow must be ≥ 0, 0 for none (got ${slidingWindow})`);
  return {
    nKvHead,
    headDim,
    dFf,
    normEps: finitePositive(o.normEps ?? 1e-6, "llama.normEps"),
    normPlusOne: bool(o.normPlusOne ?? false, "llama.normPlusOne"),
    postNorms: bool(o.postNorms ?? false, "llama.postNorms"),
    qkvBias: bool(o.qkvBias ?? false, "llama.qkvBias"),
    mlpAct: oneOf(o.mlpAct ?? "silu", "llama.mlpAct", ["silu", "gelu_tanh"] as const),
    embedScale: finitePositive(o.embedScale ?? 1, "llama.embedScale"),
    ropeTheta: finitePositive(o.ropeTheta ?? 10000, "llama.ropeTheta"),
    ropeType,
    ropeFactor: finitePositive(o.ropeFactor ?? 1, "llama.ropeFactor"),
    ropeLowFreqFactor,
    ropeHighFreqFactor,
    ropeOriginalContext: positiveInt(o.ropeOriginalContext ?? 8192, "llama.ropeOriginalContext", 2 ** 31 - 1),
    attnScale: finitePositive(o.attnScale ?? 1 / Math.sqrt(headDim), "llama.attnScale"),
    attnSoftcap,
    slidingWindow,
    slidingPeriod: positiveInt(o.slidingPeriod ?? 1, "llama.slidingPeriod", 2 ** 31 - 1),
  };
}

/** Checks a model configuration, throwing TypeError/RangeError that name the field. Returns it in
 * canonical form: a GPT-2 config without arch (as checkpoints store it), a Llama config with every
 * llama field filled in. */
export function validateModelConfig(config: ModelConfig): ModelConfig {
  if (config === null || typeof config !== "object") throw new TypeError("model config must be an object");
  const arch = oneOf(config.arch ?? "gpt2", "arch", ["gpt2", "llama"] as const);
  const nLayer = positiveInt(config.nLayer, "nLayer", 4096);
  const nHead = positiveInt(config.nHead, "nHead", 65536);
  const dModel = positiveInt(config.dModel, "dModel", 65536);
  const context = positiveInt(config.context, "context", 65536);
  const vocab = positiveInt(config.vocab, "vocab", 2 ** 31 - 1);
  if (vocab < 2) throw new RangeError(`vocab must be ≥ 2 (got ${vocab})`);
  if (typeof config.tied !== "boolean") throw new TypeError("tied must be a boolean");
  if (arch === "llama") {
    return { arch, nLayer, nHead, dModel, context, vocab, tied: config.tied, llama: validateLlama(config.llama, nHead, dModel) };
  }
  if (config.llama !== undefined) throw new TypeError("llama options are only for arch 'llama'");
  if (dModel % nHead !== 0) throw new RangeError(`nHead (${nHead}) must divide dModel (${dModel})`);
  return { nLayer, nHead, dModel, context, vocab, tied: config.tied };
}

/** Parameters of a configuration, without creating a model. */
export function countParams(config: ModelConfig): number {
  const { nLayer: L, dModel: C, context: T, vocab: V, tied } = config;
  const head = tied ? 0 : V * C;
  if (config.arch !== "llama") return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + head;
  const m = validateModelConfig(config).llama as LlamaConfig;
  const Q = config.nHead * m.headDim, K = m.nKvHead * m.headDim;
  const perLayer = C * (2 * Q + 2 * K + 3 * m.dFf) + (m.qkvBias ? Q + 2 * K : 0) + (m.postNorms ? 4 : 2) * C;
  return V * C + L * perLayer + C + head;
}

function checkBatch(batch: Batch, withTargets: boolean): void {
  if (batch === null || typeof batch !== "object") throw new TypeError("batch must be an object {inputs, targets, b, t}");
  const { b, t } = batch;
  if (!Number.isInteger(b) || b < 1) throw new RangeError(`batch.b must be a positive integer (got ${String(b)})`);
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`batch.t must be a positive integer (got ${String(t)})`);
  if (!(batch.inputs instanceof Int32Array)) throw new TypeError("batch.inputs must be an Int32Array");
  if (batch.inputs.length !== b * t) throw new TypeError(`batch.inputs has ${batch.inputs.length} entries, expected b·t = ${b * t}`);
  if (withTargets || batch.targets !== undefined) {
    if (!(batch.targets instanceof Int32Array)) throw new TypeError("batch.targets must be an Int32Array");
    if (batch.targets.length !== b * t) throw new TypeError(`batch.targets has ${batch.targets.length} entries, expected b·t = ${b * t}`);
  }
}

export class GptModel {
  readonly config: ModelConfig;
  readonly device: "cpu" | "cuda";
  /** Precision of the flat buffers (read/write/checkpoints): float32 also for bfloat16 compute. */
  readonly precision: "float32" | "float64";
  /** Precision of the arithmetic: float32, float64 (CPU) or bfloat16 (CUDA mixed precision). */
  readonly compute: Precision;
  readonly maxBatch: number;
  readonly numParams: number;
  private native: NativeModel | null;
  private tensorList: TensorInfo[];

  private constructor(config: ModelConfig, options: Required<Omit<ModelOptions, "device">> & { device: "cpu" | "cuda" }, native: NativeModel) {
    this.config = config;
    this.device = options.device;
    this.compute = options.precision;
    this.precision = options.precision === "float64" ? "float64" : "float32";
    this.maxBatch = options.maxBatch;
    this.native = native;
    this.numParams = native.numParams();
    this.tensorList = native.tensors();
  }

  /** Creates a model (parameters zero until init or setParams). */
  static create(config: ModelConfig, options: ModelOptions): GptModel {
    const cfg = validateModelConfig(config);
    if (options === null || typeof options !== "object") throw new TypeError("model options must be an object");
    const maxBatch = positiveInt(options.maxBatch, "maxBatch", 1 << 20);
    const threads = options.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`threads must be an integer ≥ 0 (got ${String(threads)})`);
    const device = resolveDevice(options.device ?? "cpu");
    const precision = options.precision ?? (device === "cuda" ? "bfloat16" : "float32");
    if (precision !== "float32" && precision !== "float64" && precision !== "bfloat16") {
      throw new TypeError(`precision must be 'float32', 'float64' or 'bfloat16' (got ${String(precision)})`);
    }
    const headWorkspaceBytes = options.headWorkspaceBytes ?? DEFAULT_HEAD_WORKSPACE_BYTES;
    if (!Number.isSafeInteger(headWorkspaceBytes) || headWorkspaceBytes < 0)
      throw new RangeError(`headWorkspaceBytes must be an integer ≥ 0 (got ${String(headWorkspaceBytes)})`);
    const checkpointLayers = options.checkpointLayers ?? 0;
    if (!Number.isInteger(checkpointLayers) || checkpointLayers < 0 || checkpointLayers > cfg.nLayer)
      throw new RangeError(`checkpointLayers must be an integer in [0, nLayer = ${cfg.nLayer}] (got ${String(checkpointLayers)})`);
    const Model = addon().Model as NativeModelClass;
    const native = new Model({ ...cfg, maxBatch, device, precision, threads, headWorkspaceBytes, checkpointLayers });
    return new GptModel(cfg, { maxBatch, device, precision: precision as Precision, threads, headWorkspaceBytes, checkpointLayers }, native);
  }

  private get m(): NativeModel {
    if (!this.native) throw new Error("the model was freed");
    return this.native;
  }

  /** Releases the engine memory now (otherwise at garbage collection). */
  free(): void {
    this.native?.free();
    this.native = null;
  }

  tensors(): TensorInfo[] {
    return this.tensorList.map((t) => ({ ...t, shape: [...t.shape] }));
  }

  /** Initialisation from a seed (see calib_model_init: GPT-2's, or transformers' for the Llama family:
   * matrices and embedding N(0, std), norms 1 (0 with normPlusOne), biases 0); zeroes grads and moments. */
  init(seed: number, std = 0.02): void {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer (got ${String(seed)})`);
    if (!(std > 0) || !Number.isFinite(std)) throw new RangeError(`init std must be a finite number > 0 (got ${String(std)})`);
    this.m.init(seed, std);
  }

  /** A copy of a flat buffer (Float32Array, or Float64Array for float64 models). */
  read(buffer: BufferName = "params"): Float32Array | Float64Array {
    return this.m.read(buffer);
  }

  write(buffer: BufferName, values: Float32Array | Float64Array): void {
    if (values.length !== this.numParams) throw new TypeError(`${buffer} has ${values.length} values, the model has ${this.numParams} parameters`);
    this.m.write(buffer, values);
  }

  getParams(): Float32Array | Float64Array {
    return this.m.read("params");
  }

  setParams(values: Float32Array | Float64Array): void {
    this.write("params", values);
  }

  getGrads(): Float32Array | Float64Array {
    return this.m.read("grads");
  }

  /** One micro-batch: loss, and with backward its gradients *added* to the grads buffer.
   * gradScale = 0 (default) scales by 1/validCount (the mean); pass 1/(tokens of the whole step) for accumulation. */
  step(batch: Batch, loss: LossOptions = {}, backward = false, gradScale = 0): StepResult {
    checkBatch(batch, true);
    if (!(gradScale >= 0) || !Number.isFinite(gradScale)) throw new RangeError(`gradScale must be a finite number ≥ 0 (got ${String(gradScale)})`);
    return this.m.step({
      b: batch.b,
      t: batch.t,
      inputs: batch.inputs,
      targets: batch.targets,
      labelSmoothing: loss.labelSmoothing ?? 0,
      temperature: loss.temperature ?? 1,
      softcap: loss.softcap ?? 0,
      ignoreIndex: loss.ignoreIndex ?? -100,
      backward,
      gradScale,
    });
  }

  forward(batch: Batch, loss: LossOptions = {}): StepResult {
    return this.step(batch, loss, false);
  }

  forwardBackward(batch: Batch, loss: LossOptions = {}, gradScale = 0): StepResult {
    return this.step(batch, loss, true, gradScale);
  }

  zeroGrad(): void {
    this.m.zeroGrad();
  }

  /** Global gradient L2 norm and the norm of each tensor (same order as tensors()). */
  gradNorm(): { norm: number; tensorNorms: Float64Array } {
    return this.m.gradNorm();
  }

  adamw(options: AdamWOptions): void {
    if (options === null || typeof options !== "object") throw new TypeError("adamw options must be an object");
    this.m.adamw({ ...options });
  }

  /** AdamW on the flat range [begin, end) only (each tensor's part, with its decay): one rank's
   * shard under ZeRO-1. Elementwise, so the range gets the values adamw() gives there. CPU only. */
  adamwRange(options: AdamWOptions & { begin: number; end: number }): void {
    if (options === null || typeof options !== "object") throw new TypeError("adamwRange options must be an object");
    this.range(options.begin, options.end - options.begin, "begin", "end");
    this.m.adamwRange({ ...options });
  }

  /** A copy of values [offset, offset + count) of a flat buffer. */
  readRange(buffer: BufferName, offset: number, count: number): Float32Array | Float64Array {
    this.range(offset, count, "offset", "count");
    return this.m.read(buffer, offset, count);
  }

  /** Writes values into a flat buffer from offset on. */
  writeRange(buffer: BufferName, values: Float32Array | Float64Array, offset: number): void {
    this.range(offset, values.length, "offset", "values.length");
    this.m.write(buffer, values, offset);
  }

  private range(offset: number, count: number, what: string, size: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${what} must be an integer ≥ 0 (got ${String(offset)})`);
    if (!Number.isSafeInteger(count) || count < 0 || offset + count > this.numParams) {
      throw new RangeError(`${what} ${offset} + ${size} ${String(count)} is outside the ${this.numParams} parameters`);
    }
  }

  /** Distribution statistics at the chosen rows (see EvalResult). */
  evaluate(batch: Omit<Batch, "targets"> & { targets?: Int32Array }, options: EvalOptions = {}): EvalResult {
    checkBatch(batch as Batch, false);
    return this.m.eval({
      b: batch.b,
      t: batch.t,
      inputs: batch.inputs,
      targets: batch.targets,
      rows: options.rows,
      temperature: options.temperature ?? 1,
      softcap: options.softcap ?? 0,
      topK: options.topK ?? 5,
      optionIds: options.optionIds,
      ignoreIndex: options.ignoreIndex ?? -100,
    });
  }
}
