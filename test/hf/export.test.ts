// Export: engine parameters → a Hugging Face folder, reloaded to identical weights (float32
// exactly; bfloat16 rounded to nearest even, checked against a reference written here), sharded
// like save_pretrained, config.json kept with its dtype updated, tokenizer files copied, and
// atomic: a failure leaves no folder and no temporary files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { exportHfFolder, llamaTensorTable, loadHfModel, loadHfWeights, readHfConfig, tableSize, type HfModelSpec, type HfWeights } from "../../backend/hf/index.js";
import { bf16Math, gemmaTokenizerFiles, llama3TokenizerFiles, withTemp, writeTinyModel, type Dtype, type Family } from "./fixtures.js";
import { rng } from "../helpers/random.js";

/** A tiny model written into dir/src, its configuration and its weights. */
function sourceModel(dir: string, family: Family, dtype: Dtype, files?: Record<string, string>): { src: string; spec: HfModelSpec; w: HfWeights } {
  const src = join(dir, "src");
  writeTinyModel(src, family, { dtype, ...(files ? { files } : {}) });
  const spec = readHfConfig(src);
  return { src, spec, w: loadHfWeights(spec) };
}

/** A file's safetensors header (parsed here, independently of the reader). */
function header(path: string): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, "the data is 8-byte aligned");
  return JSON.parse(b.subarray(8, 8 + n).toString("utf8"));
}

/** The bfloat16 nearest to a float32 (ties to the even mantissa), by search over the two neighbours. */
function bf16Nearest(x: number): number {
  const bits = new Uint32Array(Float32Array.of(x).buffer)[0]!;
  const lo = bits >>> 16, hi = lo + 1; // truncation and the next pattern away from zero
  const a = bf16Math(lo), b = bf16Math(hi);
  const da = Math.abs(x - a), db = Math.abs(x - b);
  if (da !== db) return da < db ? a : b;
  return (lo & 1) === 0 ? a : b;
}

test("float32 round trip: export → load gives identical parameters; config.json kept; tokenizer files copied", () => {
  withTemp("rt32", (dir) => {
    const src = join(dir, "src");
    writeTinyModel(src, "gemma2", { dtype: "F32", files: gemmaTokenizerFiles() });
    const hf = loadHfModel(src);
    const out = join(dir, "out", "finetuned");
    const r = exportHfFolder(out, { spec: hf.spec, params: hf.weights.params, dtype: "float32" });
    assert.deepEqual(r.weightFiles, ["model.safetensors"]);
    assert.deepEqual(r.files.sort(), ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]);
    const back = loadHfModel(out);
    assert.deepEqual(back.weights.params, hf.weights.params);
    assert.deepEqual(back.spec.model, hf.spec.model);
    const cfgIn = JSON.parse(readFileSync(join(src, "config.json"), "utf8"));
    const cfgOut = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.deepEqual(cfgOut, { ...cfgIn, torch_dtype: "float32" }, "every field kept; a transformers 4 file keeps torch_dtype only");
    for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) assert.deepEqual(readFileSync(join(out, f)), readFileSync(join(src, f)), f);
    const h = header(join(out, "model.safetensors"));
    assert.deepEqual(h.__metadata__, { format: "pt" }, "transformers refuses files without format pt");
    assert.equal(h["model.layers.2.pre_feedforward_layernorm.weight"]!.dtype, "F32");
    assert.ok(!("lm_head.weight" in h), "tied: no lm_head");
    assert.deepEqual(readdirSync(join(dir, "out")), ["finetuned"], "no temporary folder left");
  });
});

test("bfloat16 export rounds to nearest even; a bfloat16 source exports bit for bit", () => {
  withTemp("rt16", (dir) => {
    const { src, spec, w } = sourceModel(dir, "qwen2", "BF16", llama3TokenizerFiles());
    // 1. bfloat16 values survive exactly, and the stored bytes equal the source's
    exportHfFolder(join(dir, "same"), { spec, params: w.params });
    assert.equal(JSON.parse(readFileSync(join(dir, "same", "config.json"), "utf8")).dtype, "bfloat16");
    const a = header(join(src, "model.safetensors")), b = header(join(dir, "same", "model.safetensors"));
    const bytesOf = (file: string, h: typeof a, name: string) => {
      const buf = readFileSync(file);
      const start = 8 + Number(buf.readBigUInt64LE(0));
      return buf.subarray(start + h[name]!.data_offsets[0], start + h[name]!.data_offsets[1]);
    };
    for (const name of Object.keys(a).filter((k) => k !== "__metadata__")) {
      assert.equal(b[name]!.dtype, "BF16");
      assert.deepEqual(bytesOf(join(dir, "same", "model.safetensors"), b, name), bytesOf(join(src, "model.safetensors"), a, name), name);
    }
    // 2. arbitrary float32 values (ties included) round to the nearest bfloat16, ties to even
    const r = rng(11);
    const params = Float32Array.from(w.params, (_, i) => (i % 50 === 0 ? 1 + 2 ** -8 : i % 50 === 1 ? 1 + 3 * 2 ** -8 : (r() - 0.5) * 3));
    exportHfFolder(join(dir, "rounded"), { spec, params });
    const back = loadHfWeights(readHfConfig(join(dir, "rounded")));
    for (let i = 0; i < params.length; i++) {
      const want = bf16Nearest(params[i]!);
      if (back.params[i] !== want) assert.fail(`element ${i}: ${params[i]} → ${back.params[i]}, expected ${want}`);
    }
    assert.equal(back.params[0], 1, "1 + 2^-8 is a tie: to the even 1");
    assert.equal(back.params[1], 1 + 2 ** -6, "1 + 3·2^-8 is a tie: to the even 1 + 2^-6");
  });
});

test("sharded export: model-0000i-of-0000N.safetensors + index as save_pretrained writes them, reloaded equal", () => {
  withTemp("shard", (dir) => {
    const { src, spec, w } = sourceModel(dir, "mistral", "F32", llama3TokenizerFiles());
    const out = join(dir, "out");
    const max = 2000;
    const r = exportHfFolder(out, { spec, params: w.params, dtype: "float32", maxShardBytes: max });
    const n = r.weightFiles.length - 1;
    assert.ok(n >= 3, `several shards (${n})`);
    assert.deepEqual(r.weightFiles, [...Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`), "model.safetensors.index.json"]);
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
    let total = 0;
    for (const f of r.weightFiles.slice(0, n)) {
      const h = header(join(out, f));
      const names = Object.keys(h).filter((k) => k !== "__metadata__");
      const bytes = names.reduce((a, k) => a + h[k]!.data_offsets[1] - h[k]!.data_offsets[0], 0);
      assert.ok(bytes <= max || names.length === 1, `${f}: ${bytes} bytes`);
      for (const k of names) assert.equal(index.weight_map[k], f, k);
      total += bytes;
    }
    assert.equal(index.metadata.total_size, total);
    assert.equal(index.weight_map["model.embed_tokens.weight"], "model-00001-of-" + String(n).padStart(5, "0") + ".safetensors", "embeddings first");
    assert.equal(index.weight_map["lm_head.weight"], r.weightFiles[n - 1], "the head last");
    assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).slice().sort(), "weight_map sorted by name");
    assert.ok(!existsSync(join(out, "model.safetensors")));
    assert.deepEqual(loadHfWeights(readHfConfig(out)).params, w.params);
  });
});

test("atomic: an existing folder is kept unless overwrite; a failure leaves nothing behind", () => {
  withTemp("atomic", (dir) => {
    const { src, spec, w } = sourceModel(dir, "llama", "F32");
    const out = join(dir, "out");
    exportHfFolder(out, { spec, params: w.params, dtype: "float32" });
    const before = readFileSync(join(out, "model.safetensors"));
    assert.throws(() => exportHfFolder(out, { spec, params: w.params }), (e: unknown) => e instanceof TypeError && /exists \(pass overwrite/.test((e as Error).message));

    const bad = w.params.slice();
    bad[bad.length - 3] = Number.NaN;
    assert.throws(() => exportHfFolder(out, { spec, params: bad, overwrite: true }), /tensor 'model\.norm\.weight' contains NaN at element 5/);
    assert.deepEqual(readFileSync(join(out, "model.safetensors")), before, "the old folder is untouched");
    const huge = w.params.slice();
    huge[0] = 3.4e38; // finite in float32, +inf in bfloat16
    assert.throws(() => exportHfFolder(join(dir, "other"), { spec, params: huge, dtype: "bfloat16" }), /'model\.embed_tokens\.weight' element 0 = .* overflows bfloat16/);
    assert.ok(!existsSync(join(dir, "other")));
    assert.deepEqual(readdirSync(dir).sort(), ["out", "src"], "no temporary folders");

    const changed = w.params.map((x) => x * 2);
    exportHfFolder(out, { spec, params: changed, dtype: "float32", overwrite: true });
    assert.deepEqual(loadHfWeights(readHfConfig(out)).params, changed);
    assert.deepEqual(readdirSync(dir).sort(), ["out", "src"]);

    assert.throws(() => exportHfFolder(join(dir, "x"), { spec, params: w.params.subarray(1) }), /params has \d+ values; the tensor table needs/);
    assert.throws(() => exportHfFolder(src, { spec, params: w.params, overwrite: true }), /cannot export into the source folder/);
    assert.throws(() => exportHfFolder(join(dir, "x"), { spec, params: w.params, dtype: "float16" as "float32" }), /dtype must be bfloat16 or float32/);
    assert.throws(() => exportHfFolder(join(dir, "x"), { spec: { ...spec, model: { ...spec.model, nLayer: 3 } }, params: w.params }), /params has/);
  });
});

test("export keeps transformers 5's dtype field and refuses a configuration that does not match config.json", () => {
  withTemp("dtype", (dir) => {
    const { src, spec, w } = sourceModel(dir, "qwen2", "BF16");
    exportHfFolder(join(dir, "a"), { spec, params: w.params, dtype: "float32" });
    const cfg = JSON.parse(readFileSync(join(dir, "a", "config.json"), "utf8"));
    assert.equal(cfg.dtype, "float32");
    assert.ok(!("torch_dtype" in cfg));
    const wrong = { ...spec, model: { ...spec.model, llama: { ...spec.model.llama, qkvBias: false } } };
    const params = new Float32Array(tableSize(llamaTensorTable(wrong.model))).fill(0.5);
    assert.throws(() => exportHfFolder(join(dir, "b"), { spec: wrong, params }), /does not match its config\.json/);
    assert.ok(!existsSync(join(dir, "b")));
  });
});
