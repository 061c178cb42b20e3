// An engine model's flat parameters → a Hugging Face model folder that transformers'
// from_pretrained loads: config.json (the source's fields, dtype updated), model.safetensors (or
// shards model-0000i-of-0000N.safetensors + model.safetensors.index.json above maxShardBytes, as
// save_pretrained writes them; metadata {"format": "pt"}), and the tokenizer and generation files
// copied from the source folder. Atomic: everything is written into a temporary sibling folder,
// renamed into place at the end; on any failure nothing is left behind.
import { copyFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { safetensorsDataBytes, writeSafetensorsStream, type StreamTensor } from "../io/safetensors.js";
import { parseHfConfig, type HfModelSpec } from "./config.js";
import { hfSlices, llamaTensorTable, tableSize, type EngineTensor } from "./layout.js";
import { INDEX_FILE, SINGLE_FILE } from "./weights.js";

/** Files copied from the source folder when present. */
export const COPIED_FILES: readonly string[] = Object.freeze([
  "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
  "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "generation_config.json",
]);

/** transformers' default max_shard_size ("5GB" = 5·10⁹ bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

export interface ExportOptions {
  /** the configuration the parameters belong to (from readHfConfig of the source folder) */
  spec: HfModelSpec;
  /** the flat float32 parameters (laid out by `table`) */
  params: Float32Array;
  /** the tensor table of `params`; default llamaTensorTable(spec.model) */
  table?: readonly EngineTensor[];
  /** stored dtype; default the source's when bfloat16 or float32, else bfloat16 */
  dtype?: "bfloat16" | "float32";
  /** shard above this many bytes of tensor data; default 5e9 */
  maxShardBytes?: number;
  /** replace an existing folder (default: refuse) */
  overwrite?: boolean;
  /** the folder the tokenizer files come from; default spec.dir */
  source?: string;
}

export interface ExportResult {
  dir: string;
  dtype: "bfloat16" | "float32";
  /** weight files written (names) */
  weightFiles: string[];
  /** other files: config.json and those copied */
  files: string[];
  /** bytes of tensor data */
  totalSize: number;
}

/** The number of the shard file names save_pretrained writes: model-00001-of-00003.safetensors. */
export function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
}

/** Writes `out` as a Hugging Face model folder. */
export function exportHfFolder(out: string, opts: ExportOptions): ExportResult {
  const { spec, params } = opts;
  const table = opts.table ?? llamaTensorTable(spec.model);
  if (!(params instanceof Float32Array)) throw new TypeError("params must be a Float32Array");
  if (params.length !== tableSize(table)) throw new RangeError(`params has ${params.length} values; the tensor table needs ${tableSize(table)}`);
  const dtype = opts.dtype ?? (spec.dtype === "float32" ? "float32" : "bfloat16");
  if (dtype !== "bfloat16" && dtype !== "float32") throw new TypeError(`dtype must be bfloat16 or float32 (got '${String(dtype)}')`);
  const maxShard = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShard > 0)) throw new RangeError(`maxShardBytes must be positive (got ${maxShard})`);
  const target = resolve(out);
  const source = resolve(opts.source ?? spec.dir);
  if (target === source) throw new TypeError(`cannot export into the source folder ${source}`);
  if (existsSync(target) && !opts.overwrite) throw new TypeError(`${target} exists (pass overwrite to replace it)`);

  const config = updatedConfig(spec, dtype);
  const tensors = stateDictOrder(spec, table, params, dtype === "bfloat16" ? "BF16" : "F32");
  const shards = shard(tensors, maxShard);
  const weightFiles = shards.length === 1 ? [SINGLE_FILE] : shards.map((_, i) => shardName(i, shards.length));
  const totalSize = safetensorsDataBytes(tensors);
  const files = ["config.json"];
  writeDirAtomic(target, (tmp) => {
    shards.forEach((s, i) => writeSafetensorsStream(join(tmp, weightFiles[i]!), s, { format: "pt" }));
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      shards.forEach((s, i) => s.forEach((t) => (weightMap[t.name] = weightFiles[i]!)));
      const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
      writeFileAtomic(join(tmp, INDEX_FILE), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sorted }, null, 2) + "\n");
    }
    writeFileAtomic(join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n");
    for (const f of COPIED_FILES) {
      if (existsSync(join(source, f))) {
        copyFileSync(join(source, f), join(tmp, f));
        files.push(f);
      }
    }
  });
  return { dir: target, dtype, weightFiles: shards.length > 1 ? [...weightFiles, INDEX_FILE] : weightFiles, files, totalSize };
}

/** config.json of the export: the source's fields, its dtype updated (dtype, and torch_dtype where
 * the source has it), checked to describe the same model as `spec`. */
function updatedConfig(spec: HfModelSpec, dtype: "bfloat16" | "float32"): Record<string, unknown> {
  const config: Record<string, unknown> = { ...spec.raw };
  if ("torch_dtype" in config) config.torch_dtype = dtype;
  if ("dtype" in config || !("torch_dtype" in config)) config.dtype = dtype;
  const again = parseHfConfig(config, "config.json", { context: spec.model.context });
  if (JSON.stringify(again.model) !== JSON.stringify(spec.model)) {
    throw new TypeError(`the model configuration does not match its config.json (${spec.configPath}); it cannot be exported with it`);
  }
  return config;
}

/** The tensors in save_pretrained's order: embeddings, layer by layer, final norm, head. */
function stateDictOrder(spec: HfModelSpec, table: readonly EngineTensor[], params: Float32Array, dtype: "BF16" | "F32"): StreamTensor[] {
  const slices = hfSlices(spec.family, spec.model, table);
  const rank = (s: (typeof slices)[number]) => (s.layer !== null ? s.layer : s.tensor === "embed" ? -1 : spec.model.nLayer);
  return slices
    .map((s, i) => ({ s, i }))
    .sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i)
    .map(({ s }) => ({ name: s.hfName, shape: s.shape, dtype, data: params.subarray(s.offset, s.offset + s.numel) }));
}

/** Splits tensors into shards of at most maxBytes of data (a larger tensor gets a shard of its own). */
function shard(tensors: StreamTensor[], maxBytes: number): StreamTensor[][] {
  const out: StreamTensor[][] = [];
  let cur: StreamTensor[] = [];
  let bytes = 0;
  for (const t of tensors) {
    const b = safetensorsDataBytes([t]);
    if (cur.length > 0 && bytes + b > maxBytes) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(t);
    bytes += b;
  }
  if (cur.length > 0 || out.length === 0) out.push(cur);
  return out;
}
