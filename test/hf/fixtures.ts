// Tiny Hugging Face model folders written by the tests themselves, in the format save_pretrained
// writes (config.json as transformers 5 serializes it, safetensors with {"format": "pt"}, shards
// with an index), with their own safetensors writer and their own bfloat16 / float16 decoding
// (the value of each bit pattern computed from sign, exponent and mantissa in float64), so the
// loader is checked against an independent reference. The HF tensor names and the engine's
// tensor table (calib.h) are written out here by hand.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rng } from "../helpers/random.js";

export type Family = "llama" | "qwen2" | "mistral" | "gemma2";
export type Dtype = "BF16" | "F16" | "F32";

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `calib-hf-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs fn in a fresh temporary folder, removed afterwards. */
export function withTemp<T>(prefix: string, fn: (dir: string) => T): T {
  const { dir, cleanup } = tempDir(prefix);
  try {
    return fn(dir);
  } finally {
    cleanup();
  }
}

/** The value of a bfloat16 bit pattern, from its fields (float64). */
export function bf16Math(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1, e = (bits >> 7) & 0xff, m = bits & 0x7f;
  if (e === 0) return s * m * 2 ** -133; // 2^-126 · m/128
  return s * (1 + m / 128) * 2 ** (e - 127);
}

/** The value of a float16 bit pattern, from its fields (float64). */
export function f16Math(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** One stored tensor: its bytes and the float64 values they mean. */
export interface StoredTensor {
  name: string;
  shape: number[];
  dtype: Dtype;
  bytes: Uint8Array;
  values: Float64Array;
}

/** Random values of a dtype: bit patterns drawn directly (finite, never zero), values decoded by hand. */
export function randomTensor(name: string, shape: number[], dtype: Dtype, rand: () => number): StoredTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float64Array(n);
  if (dtype === "F32") {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = (rand() * 2 - 1 || 0.5) * (rand() < 0.1 ? 1e-3 : 1);
    values.set(f);
    return { name, shape, dtype, bytes: new Uint8Array(f.buffer), values };
  }
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rand() < 0.5 ? 0x8000 : 0;
    // exponents around 1 (values in ~[2^-8, 4)), a few subnormals for float16
    if (dtype === "BF16") bits[i] = sign | ((119 + Math.floor(rand() * 10)) << 7) | Math.floor(rand() * 128);
    else bits[i] = sign | (i % 17 === 3 ? 0 : (7 + Math.floor(rand() * 10)) << 10) | (1 + Math.floor(rand() * 1023));
    values[i] = dtype === "BF16" ? bf16Math(bits[i]!) : f16Math(bits[i]!);
  }
  return { name, shape, dtype, bytes: new Uint8Array(bits.buffer), values };
}

/** safetensors bytes written the plain way (8-byte length, JSON padded to 8 bytes, data in the order given). */
export function safetensorsBytes(tensors: readonly StoredTensor[], metadata: Record<string, string> = { format: "pt" }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  let text = JSON.stringify(header);
  text += " ".repeat((8 - ((Buffer.byteLength(text) + 8) % 8)) % 8); // safetensors pads the header with spaces
  const json = Buffer.from(text);
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of tensors) {
    out.set(t.bytes, pos);
    pos += t.bytes.length;
  }
  return out;
}

/** Tiny configurations of each family, with the fields the published config.json files carry. */
export function tinyConfig(family: Family): Record<string, unknown> {
  // vocabularies a little larger than the fixture tokenizers' (270 and 279 ids), as real models pad them
  const common = family === "gemma2"
    ? { vocab_size: 288, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, initializer_range: 0.02, use_cache: true, transformers_version: "5.0.0" }
    : { vocab_size: 272, bos_token_id: 265, eos_token_id: 269, initializer_range: 0.02, use_cache: true, transformers_version: "5.0.0" };
  switch (family) {
    case "llama": // Llama 3.2 style: llama3 rope scaling, tied, explicit head_dim
      return {
        architectures: ["LlamaForCausalLM"], model_type: "llama", ...common, hidden_size: 8, intermediate_size: 12,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4, hidden_act: "silu",
        max_position_embeddings: 131072, rms_norm_eps: 1e-5, tie_word_embeddings: true, attention_bias: false, mlp_bias: false,
        rope_theta: 500000.0, rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
        torch_dtype: "bfloat16", pretraining_tp: 1, attention_dropout: 0.0,
      };
    case "qwen2": // Qwen2.5 style: q/k/v biases, tied, no sliding window
      return {
        architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", ...common, hidden_size: 8, intermediate_size: 12,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, hidden_act: "silu", max_position_embeddings: 32768,
        max_window_layers: 21, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768, use_sliding_window: false,
        tie_word_embeddings: true, dtype: "bfloat16", attention_dropout: 0.0,
      };
    case "mistral": // Mistral 7B v0.1 style: untied, sliding window on every layer
      return {
        architectures: ["MistralForCausalLM"], model_type: "mistral", ...common, hidden_size: 8, intermediate_size: 12,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, hidden_act: "silu", max_position_embeddings: 32768,
        rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: "bfloat16",
      };
    case "gemma2": // Gemma 2 style: head_dim ≠ hidden/heads, four norms per layer, soft-caps, alternating windows
      return {
        architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", ...common, hidden_size: 6, intermediate_size: 10,
        num_hidden_layers: 3, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, hidden_act: "gelu_pytorch_tanh",
        hidden_activation: "gelu_pytorch_tanh", max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000.0,
        attention_bias: false, query_pre_attn_scalar: 144, sliding_window: 4096, final_logit_softcapping: 30.0,
        attn_logit_softcapping: 50.0, cache_implementation: "hybrid", tie_word_embeddings: true, torch_dtype: "float32",
      };
  }
}

/** The Hugging Face tensors of a configuration: name and shape, in state-dict order (by hand). */
export function hfTensorList(family: Family, c: Record<string, unknown>): Array<[string, number[]]> {
  const d = c.hidden_size as number, ff = c.intermediate_size as number, V = c.vocab_size as number, L = c.num_hidden_layers as number;
  const H = c.num_attention_heads as number, KV = c.num_key_value_heads as number;
  const hd = (c.head_dim as number | undefined) ?? d / H;
  const out: Array<[string, number[]]> = [["model.embed_tokens.weight", [V, d]]];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    out.push([`${p}self_attn.q_proj.weight`, [H * hd, d]], [`${p}self_attn.k_proj.weight`, [KV * hd, d]], [`${p}self_attn.v_proj.weight`, [KV * hd, d]]);
    if (family === "qwen2") out.push([`${p}self_attn.q_proj.bias`, [H * hd]], [`${p}self_attn.k_proj.bias`, [KV * hd]], [`${p}self_attn.v_proj.bias`, [KV * hd]]);
    out.push([`${p}self_attn.o_proj.weight`, [d, H * hd]]);
    out.push([`${p}mlp.gate_proj.weight`, [ff, d]], [`${p}mlp.up_proj.weight`, [ff, d]], [`${p}mlp.down_proj.weight`, [d, ff]]);
    out.push([`${p}input_layernorm.weight`, [d]], [`${p}post_attention_layernorm.weight`, [d]]);
    if (family === "gemma2") out.push([`${p}pre_feedforward_layernorm.weight`, [d]], [`${p}post_feedforward_layernorm.weight`, [d]]);
  }
  out.push(["model.norm.weight", [d]]);
  if (c.tie_word_embeddings === false) out.push(["lm_head.weight", [V, d]]);
  return out;
}

/**
 * The engine tensor (calib.h) each HF tensor goes to, and its layer. Note the trap: Llama's
 * post_attention_layernorm is the pre-MLP norm; in Gemma 2 it normalizes the attention output.
 */
export function engineTarget(family: Family, hfName: string): { tensor: string; layer: number | null } {
  const g: Record<string, string> = { "model.embed_tokens.weight": "embed", "model.norm.weight": "norm_f", "lm_head.weight": "lm_head" };
  if (g[hfName]) return { tensor: g[hfName]!, layer: null };
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName)!;
  const local: Record<string, string> = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "q", "self_attn.k_proj.weight": "k", "self_attn.v_proj.weight": "v", "self_attn.o_proj.weight": "o",
    "self_attn.q_proj.bias": "q_bias", "self_attn.k_proj.bias": "k_bias", "self_attn.v_proj.bias": "v_bias",
    "post_attention_layernorm.weight": family === "gemma2" ? "attn_post_norm" : "mlp_norm",
    "pre_feedforward_layernorm.weight": "mlp_norm",
    "post_feedforward_layernorm.weight": "mlp_post_norm",
    "mlp.gate_proj.weight": "gate", "mlp.up_proj.weight": "up", "mlp.down_proj.weight": "down",
  };
  return { tensor: local[m[2]!]!, layer: Number(m[1]) };
}

/** calib.h's parameter table for a configuration, by hand: [name, shape] in buffer order. */
export function engineTable(family: Family, c: Record<string, unknown>): Array<[string, number[]]> {
  const d = c.hidden_size as number, ff = c.intermediate_size as number, V = c.vocab_size as number, L = c.num_hidden_layers as number;
  const H = c.num_attention_heads as number, KV = c.num_key_value_heads as number;
  const hd = (c.head_dim as number | undefined) ?? d / H;
  const t: Array<[string, number[]]> = [["embed", [V, d]], ["attn_norm", [L, d]], ["q", [L, H * hd, d]], ["k", [L, KV * hd, d]], ["v", [L, KV * hd, d]]];
  if (family === "qwen2") t.push(["q_bias", [L, H * hd]], ["k_bias", [L, KV * hd]], ["v_bias", [L, KV * hd]]);
  t.push(["o", [L, d, H * hd]]);
  if (family === "gemma2") t.push(["attn_post_norm", [L, d]]);
  t.push(["mlp_norm", [L, d]], ["gate", [L, ff, d]], ["up", [L, ff, d]], ["down", [L, d, ff]]);
  if (family === "gemma2") t.push(["mlp_post_norm", [L, d]]);
  t.push(["norm_f", [d]]);
  if (c.tie_word_embeddings === false) t.push(["lm_head", [V, d]]);
  return t;
}

export interface TinyModel {
  dir: string;
  family: Family;
  config: Record<string, unknown>;
  tensors: Map<string, StoredTensor>;
}

export interface WriteOptions {
  dtype?: Dtype;
  /** split into this many shards with an index (1: model.safetensors) */
  shards?: number;
  seed?: number;
  config?: Record<string, unknown>;
  /** a tokenizer folder's files to add (name → content) */
  files?: Record<string, string>;
}

/** Writes a tiny random model of `family` into `dir`. */
export function writeTinyModel(dir: string, family: Family, opts: WriteOptions = {}): TinyModel {
  const config = opts.config ?? tinyConfig(family);
  const rand = rng(opts.seed ?? 7);
  const tensors = new Map<string, StoredTensor>();
  for (const [name, shape] of hfTensorList(family, config)) tensors.set(name, randomTensor(name, shape, opts.dtype ?? "BF16", rand));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  const list = [...tensors.values()];
  const n = opts.shards ?? 1;
  if (n === 1) {
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(list));
  } else {
    const per = Math.ceil(list.length / n);
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let s = 0; s < n; s++) {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
      const part = list.slice(s * per, (s + 1) * per);
      writeFileSync(join(dir, file), safetensorsBytes(part));
      for (const t of part) {
        weightMap[t.name] = file;
        total += t.bytes.length;
      }
    }
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  }
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  return { dir, family, config, tensors };
}

// ---------------------------------------------------------------------------------------------
// Tokenizers

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards. */
export function byteChars(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
}

export const LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
/** Byte-level BPE merges (ids 256…264 for the merged tokens). */
export const BYTE_MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];

const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function added(content: string, id: number, special = true) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/**
 * A Llama 3 style tokenizer.json: byte-level BPE over the 256 byte characters (id = byte value),
 * 9 merges (ids 256–264), special tokens 265–269, Llama 3's split regex and its
 * TemplateProcessing post-processor that puts <|begin_of_text|> first. `bos: false` gives
 * SmolLM2's shape instead (a ByteLevel post-processor only).
 */
export function byteLevelTokenizerJson(opts: { bos?: boolean } = {}): Record<string, unknown> {
  const chars = byteChars();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => (vocab[c] = b));
  BYTE_MERGES.forEach((m, i) => (vocab[m.replace(" ", "")] = 256 + i));
  const bos = { type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [265], tokens: ["<|begin_of_text|>"] } } };
  const byteLevel = { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: LLAMA3_SPECIALS.map((s, i) => added(s, 265 + i)),
    normalizer: null,
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Split", pattern: { Regex: LLAMA3_SPLIT }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] },
    post_processor: opts.bos === false ? byteLevel : { type: "Sequence", processors: [byteLevel, bos] },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: BYTE_MERGES },
  };
}

/** Gemma's tokens: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <0x00>…<0xFF> 4–259, characters 260–267, merges 268–276, turns 277–278. */
export const GEMMA_CHARS = ["▁", "h", "e", "l", "o", "w", "r", "d"];
export const GEMMA_MERGES = ["h e", "l l", "he ll", "hell o", "▁ w", "o r", "▁w or", "▁wor l", "▁worl d"];

/** A Gemma style tokenizer.json: SentencePiece-like BPE with "▁" for spaces and byte fallback. */
export function gemmaTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { "<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 4 + b;
  GEMMA_CHARS.forEach((c, i) => (vocab[c] = 260 + i));
  GEMMA_MERGES.forEach((m, i) => (vocab[m.replace(" ", "")] = 268 + i));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [added("<pad>", 0), added("<eos>", 1), added("<bos>", 2), added("<unk>", 3), added("<start_of_turn>", 277), added("<end_of_turn>", 278)],
    normalizer: { type: "Replace", pattern: { String: " " }, content: "▁" },
    pre_tokenizer: null,
    post_processor: { type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<bos>": { id: "<bos>", ids: [2], tokens: ["<bos>"] } } },
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }] },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: GEMMA_MERGES },
  };
}

// The chat templates as the models' tokenizer_config.json files contain them (JSON string
// literals, so the escapes are those of the files).

/** meta-llama/Meta-Llama-3-8B-Instruct */
export const LLAMA3_TEMPLATE: string = JSON.parse(
  String.raw`"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"`,
);

/** meta-llama/Llama-3.1-8B-Instruct (and 3.2 without the image branch): a system header with dates, tools */
export const LLAMA31_TEMPLATE: string = JSON.parse(
  String.raw`"{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- endif %}\n{%- if not tools_in_user_message is defined %}\n    {%- set tools_in_user_message = true %}\n{%- endif %}\n{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n\n{#- This block extracts the system message, so we can slot it into the right place. #}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n\n{#- System message #}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- if tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{%- if tools is not none and not tools_in_user_message %}\n    {{- \"You have access to the following functions. To call a function, please respond with JSON for a function call.\" }}\n    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor %}\n{%- endif %}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n\n{#- Custom tools are passed in a user message with some extra guidance #}\n{%- if tools_in_user_message and not tools is none %}\n    {#- Extract the first user message so we can plug it in here #}\n    {%- if messages | length != 0 %}\n        {%- set first_user_message = messages[0]['content']|trim %}\n        {%- set messages = messages[1:] %}\n    {%- else %}\n        {{- raise_exception(\"Cannot put tools in the first user message when there's no first user message!\") }}\n{%- endif %}\n    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n    {{- \"Given the following functions, please respond with a JSON for a function call \" }}\n    {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor %}\n    {{- first_user_message + \"<|eot_id|>\"}}\n{%- endif %}\n\n{%- for message in messages %}\n    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n    {%- elif 'tool_calls' in message %}\n        {%- if not message.tool_calls|length == 1 %}\n            {{- raise_exception(\"This model only supports single tool-calls at once!\") }}\n        {%- endif %}\n        {%- set tool_call = message.tool_calls[0].function %}\n        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n        {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n        {{- '\"parameters\": ' }}\n        {{- tool_call.arguments | tojson }}\n        {{- \"}\" }}\n        {{- \"<|eot_id|>\" }}\n    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n        {%- if message.content is mapping or message.content is iterable %}\n            {{- message.content | tojson }}\n        {%- else %}\n            {{- message.content }}\n        {%- endif %}\n        {{- \"<|eot_id|>\" }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"`,
);

/** google/gemma-2-2b-it */
export const GEMMA2_TEMPLATE: string = JSON.parse(
  String.raw`"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"`,
);

/** tokenizer_config.json of a Llama 3 Instruct folder (no add_bos_token: the post-processor adds BOS). */
export function llama3TokenizerConfig(template = LLAMA3_TEMPLATE): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  LLAMA3_SPECIALS.forEach((s, i) => (decoder[String(265 + i)] = added(s, 265 + i)));
  return {
    added_tokens_decoder: decoder, bos_token: "<|begin_of_text|>", chat_template: template, clean_up_tokenization_spaces: true,
    eos_token: "<|eot_id|>", model_input_names: ["input_ids", "attention_mask"], model_max_length: 131072, tokenizer_class: "PreTrainedTokenizerFast",
  };
}

/** tokenizer_config.json of a Gemma 2 folder (GemmaTokenizer, add_bos_token). */
export function gemmaTokenizerConfig(): Record<string, unknown> {
  return {
    add_bos_token: true, add_eos_token: false, bos_token: "<bos>", chat_template: GEMMA2_TEMPLATE, clean_up_tokenization_spaces: false,
    eos_token: "<eos>", pad_token: "<pad>", unk_token: "<unk>", spaces_between_special_tokens: false, tokenizer_class: "GemmaTokenizer",
    additional_special_tokens: ["<start_of_turn>", "<end_of_turn>"], sp_model_kwargs: {}, use_default_system_prompt: false,
  };
}

/** The files of a Llama 3 style tokenizer folder. */
export function llama3TokenizerFiles(template = LLAMA3_TEMPLATE): Record<string, string> {
  return {
    "tokenizer.json": JSON.stringify(byteLevelTokenizerJson()),
    "tokenizer_config.json": JSON.stringify(llama3TokenizerConfig(template), null, 2),
    "generation_config.json": JSON.stringify({ bos_token_id: 265, eos_token_id: [266, 269], do_sample: true, temperature: 0.6, top_p: 0.9, transformers_version: "5.0.0" }, null, 2),
  };
}

/** The files of a Gemma 2 style tokenizer folder. */
export function gemmaTokenizerFiles(): Record<string, string> {
  return {
    "tokenizer.json": JSON.stringify(gemmaTokenizerJson()),
    "tokenizer_config.json": JSON.stringify(gemmaTokenizerConfig(), null, 2),
    "generation_config.json": JSON.stringify({ bos_token_id: 2, eos_token_id: [1, 278], pad_token_id: 0, cache_implementation: "hybrid" }, null, 2),
  };
}
