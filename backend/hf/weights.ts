// The weights of a Hugging Face model folder → the engine's flat float32 parameter buffer.
//
// Files, as transformers looks for them: model.safetensors; else the shards listed in
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor: shard file}}).
// Tensors may be BF16, F16 or F32 (converted to float32 exactly), each read by offset in chunks:
// a file is never held in memory whole. Everything is checked before any data is read: every
// tensor the configuration needs is present with its shape and a float dtype, nothing else is
// there (except the rotary inv_freq buffers of old checkpoints and, in a tied model, an
// lm_head.weight, which transformers ignores as well), every index entry points at a shard that
// holds the tensor. Values must be finite. Each problem is an HfFolderError naming the file and
// the tensor.
import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { progressBar } from "../term/progress.js";
import { FLOAT_DTYPES, SafetensorsReader, type SafeEntry } from "../io/safetensors.js";
import { readJson, type HfModelSpec } from "./config.js";
import { asFolderError, HfFolderError } from "./errors.js";
import { hfSlices, llamaTensorTable, tableSize, type EngineTensor, type HfSlice } from "./layout.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** Where the weights of a folder are. */
export interface WeightFiles {
  /** the index file, or null for a single model.safetensors */
  index: string | null;
  /** safetensors files (paths), in shard order */
  files: string[];
  /** tensor → file path (sharded only) */
  weightMap: Map<string, string> | null;
}

const SHARD_NAME = /^[^/\\]+\.safetensors$/;

/** Finds the weight files of `dir` and checks the index (names of shards, their existence). */
export function findWeightFiles(dir: string): WeightFiles {
  const single = join(dir, SINGLE_FILE);
  if (existsSync(single)) return { index: null, files: [single], weightMap: null };
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) {
    const other = ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.gguf"].find((f) => existsSync(join(dir, f)));
    throw new HfFolderError(
      dir,
      `has neither ${SINGLE_FILE} nor ${INDEX_FILE}` + (other ? ` (found ${other}: save the model with save_pretrained(safe_serialization=True))` : ""),
    );
  }
  const raw = readJson(indexPath) as { weight_map?: unknown } | null;
  const map = raw && typeof raw === "object" ? raw.weight_map : undefined;
  if (map === null || typeof map !== "object" || Array.isArray(map)) throw new HfFolderError(indexPath, "has no weight_map object (bad index)", "weight_map");
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string" || !SHARD_NAME.test(file) || file.startsWith(".")) {
      throw new HfFolderError(indexPath, `weight_map['${tensor}'] = ${JSON.stringify(file)} is not a .safetensors file of the folder (bad index)`, tensor);
    }
    const path = join(dir, file);
    if (!files.includes(path)) {
      if (!existsSync(path) || !statSync(path).isFile()) throw new HfFolderError(indexPath, `lists shard ${file} (for tensor '${tensor}'), which is missing`, tensor);
      files.push(path);
    }
    weightMap.set(tensor, path);
  }
  if (weightMap.size === 0) throw new HfFolderError(indexPath, "has an empty weight_map (bad index)", "weight_map");
  files.sort();
  return { index: indexPath, files, weightMap };
}

export interface LoadWeightsOptions {
  /** the engine's tensor table (model.tensors()); default llamaTensorTable(spec.model) */
  table?: readonly EngineTensor[];
  /** a progress bar on stderr (true) or a callback of bytes read / to read; default none */
  progress?: boolean | ((doneBytes: number, totalBytes: number) => void);
}

export interface HfWeights {
  /** the tensor table `params` is laid out by */
  table: EngineTensor[];
  /** every parameter, float32, at the table's offsets */
  params: Float32Array;
  files: string[];
  /** tensors read, by stored dtype */
  dtypes: Record<string, number>;
  /** tensors present and deliberately not read (rotary inv_freq buffers, a tied model's lm_head) */
  ignored: string[];
}

interface Located {
  slice: HfSlice;
  reader: SafetensorsReader;
  entry: SafeEntry;
}

const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/** Loads and checks the weights of the folder of `spec` into one flat float32 buffer. */
export function loadHfWeights(spec: HfModelSpec, opts: LoadWeightsOptions = {}): HfWeights {
  const where = findWeightFiles(spec.dir);
  const table = (opts.table ?? llamaTensorTable(spec.model)).map((t) => ({ ...t, shape: t.shape.slice() }));
  const slices = hfSlices(spec.family, spec.model, table);
  const readers: SafetensorsReader[] = [];
  try {
    for (const file of where.files) readers.push(asFolderError(file, () => SafetensorsReader.open(file)));
    const located = locate(spec, where, readers, slices);
    const params = new Float32Array(tableSize(table));
    const total = located.reduce((a, l) => a + (l.entry.end - l.entry.begin), 0);
    const report = progressOf(opts.progress, total, spec.dir);
    let done = 0;
    const dtypes: Record<string, number> = {};
    // in file order, so that each shard is read front to back
    located.sort((a, b) => (a.reader.path < b.reader.path ? -1 : a.reader.path > b.reader.path ? 1 : a.entry.begin - b.entry.begin));
    for (const { slice, reader, entry } of located) {
      asFolderError(reader.path, () => reader.readFloat32(slice.hfName, params.subarray(slice.offset, slice.offset + slice.numel), { finite: true }));
      dtypes[entry.dtype] = (dtypes[entry.dtype] ?? 0) + 1;
      done += entry.end - entry.begin;
      report(done);
    }
    report(total, true);
    const ignored = readers.flatMap((r) => [...r.header.entries.keys()].filter((n) => isIgnorable(spec, n)));
    return { table, params, files: where.files, dtypes, ignored };
  } finally {
    for (const r of readers) r.close();
  }
}

function isIgnorable(spec: HfModelSpec, name: string): boolean {
  return IGNORED.test(name) || (spec.model.tied && name === "lm_head.weight");
}

/** Finds every needed tensor, checks its shape and dtype, and rejects what should not be there. */
function locate(spec: HfModelSpec, where: WeightFiles, readers: SafetensorsReader[], slices: HfSlice[]): Located[] {
  const byPath = new Map(readers.map((r) => [r.path, r]));
  const holder = new Map<string, SafetensorsReader>();
  for (const r of readers) {
    for (const name of r.header.entries.keys()) {
      const listed = where.weightMap?.get(name);
      if (where.weightMap && listed !== r.path) {
        if (isIgnorable(spec, name)) continue;
        throw new HfFolderError(
          r.path,
          listed ? `holds tensor '${name}', which ${basename(where.index!)} puts in ${basename(listed)} (bad index)` : `has tensor '${name}', which ${basename(where.index!)} does not list (bad index)`,
          name,
        );
      }
      holder.set(name, r);
    }
  }
  if (where.weightMap) {
    for (const [name, path] of where.weightMap) {
      if (!byPath.get(path)!.header.entries.has(name)) {
        throw new HfFolderError(where.index!, `puts tensor '${name}' in ${basename(path)}, which does not contain it (bad index)`, name);
      }
    }
  }
  const m = spec.model;
  const cfg = `config.json: ${spec.family}, ${m.nLayer} layers, hidden ${m.dModel}, heads ${m.nHead}/${m.llama.nKvHead} × ${m.llama.headDim}, ff ${m.llama.dFf}, vocab ${m.vocab}, tied ${m.tied}`;
  const needed = new Set<string>();
  const out: Located[] = [];
  for (const slice of slices) {
    needed.add(slice.hfName);
    const reader = holder.get(slice.hfName);
    if (!reader) {
      const file = where.index ?? where.files[0]!;
      throw new HfFolderError(file, `has no tensor '${slice.hfName}' (${cfg})`, slice.hfName);
    }
    const entry = reader.entry(slice.hfName)!;
    if (entry.shape.length !== slice.shape.length || entry.shape.some((d, i) => d !== slice.shape[i])) {
      throw new HfFolderError(reader.path, `tensor '${slice.hfName}' has shape [${entry.shape.join(", ")}], expected [${slice.shape.join(", ")}] (${cfg})`, slice.hfName);
    }
    if (!(FLOAT_DTYPES as readonly string[]).includes(entry.dtype)) {
      throw new HfFolderError(reader.path, `tensor '${slice.hfName}' has dtype ${entry.dtype}; only ${FLOAT_DTYPES.join(", ")} weights can be loaded (quantized checkpoints are not supported)`, slice.hfName);
    }
    out.push({ slice, reader, entry });
  }
  for (const [name, reader] of holder) {
    if (needed.has(name) || isIgnorable(spec, name)) continue;
    const hint = name === "lm_head.weight" ? " (config.json says the embeddings are tied)" : /\.bias$/.test(name) ? " (this family has no such bias)" : "";
    throw new HfFolderError(reader.path, `has an unexpected tensor '${name}'${hint} (${cfg})`, name);
  }
  if (spec.model.tied) {
    const head = holder.get("lm_head.weight")?.entry("lm_head.weight");
    if (head && (head.shape[0] !== m.vocab || head.shape[1] !== m.dModel)) {
      throw new HfFolderError(holder.get("lm_head.weight")!.path, `tensor 'lm_head.weight' has shape [${head.shape.join(", ")}], expected [${m.vocab}, ${m.dModel}] (${cfg})`, "lm_head.weight");
    }
  }
  return out;
}

function progressOf(progress: LoadWeightsOptions["progress"], total: number, dir: string): (done: number, last?: boolean) => void {
  if (typeof progress === "function") return (done) => progress(done, total);
  if (!progress) return () => {};
  const MB = 1 << 20;
  const bar = progressBar(`loading ${basename(dir)}`, Math.ceil(total / MB), { unit: "MiB" });
  let shown = 0;
  return (done, last) => {
    const now = Math.floor(done / MB);
    bar.tick(now - shown);
    shown = now;
    if (last) bar.done();
  };
}
