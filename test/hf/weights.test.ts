// Weights: tiny random models of each family, written by the test in BF16 / F16 / F32, single
// file and sharded, load into the engine's table (calib.h, written out by hand in fixtures.ts)
// with each Hugging Face tensor at its hand-mapped place and its value decoded independently;
// bad folders give one HfFolderError naming the file and the tensor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError } from "../../backend/io/safetensors.js";
import { HfFolderError, loadHfWeights, readHfConfig, type EngineTensor, type HfWeights } from "../../backend/hf/index.js";
import {
  engineTable, engineTarget, randomTensor, safetensorsBytes, withTemp, tinyConfig, writeTinyModel,
  type Dtype, type Family, type StoredTensor, type TinyModel,
} from "./fixtures.js";
import { rng } from "../helpers/random.js";

function load(dir: string, table?: EngineTensor[]): HfWeights {
  return loadHfWeights(readHfConfig(dir), table ? { table } : {});
}

/** Every stored tensor sits at its engine tensor's offset (+ layer·per-layer size), value for value. */
function checkPlacement(m: TinyModel, w: HfWeights): void {
  const byName = new Map(w.table.map((t) => [t.name, t]));
  const L = m.config.num_hidden_layers as number;
  let covered = 0;
  for (const t of m.tensors.values()) {
    const { tensor, layer } = engineTarget(m.family, t.name);
    const e = byName.get(tensor);
    assert.ok(e, `${t.name} → ${tensor} is in the table`);
    const per = e!.numel / (layer === null ? 1 : L);
    assert.equal(per, t.values.length, `${t.name}: size`);
    const start = e!.offset + (layer ?? 0) * per;
    for (let i = 0; i < t.values.length; i++) {
      if (w.params[start + i] !== t.values[i]) assert.fail(`${t.name}[${i}]: ${w.params[start + i]} ≠ ${t.values[i]}`);
    }
    covered += t.values.length;
  }
  assert.equal(covered, w.params.length, "every parameter comes from a stored tensor");
}

const CASES: Array<[Family, Dtype]> = [["llama", "BF16"], ["llama", "F32"], ["qwen2", "BF16"], ["mistral", "F16"], ["mistral", "BF16"], ["gemma2", "F32"], ["gemma2", "BF16"]];

for (const [family, dtype] of CASES) {
  test(`${family} in ${dtype}: the engine's table and every tensor in its place, exactly`, () => {
    withTemp(`${family}-${dtype}`, (dir) => {
      const m = writeTinyModel(dir, family, { dtype });
      const w = load(dir);
      assert.deepEqual(w.table.map((t) => [t.name, t.shape]), engineTable(family, m.config));
      let offset = 0;
      for (const t of w.table) {
        assert.equal(t.offset, offset, `${t.name}: offsets follow one another`);
        assert.equal(t.numel, t.shape.reduce((a, b) => a * b, 1));
        offset += t.numel;
      }
      assert.equal(w.params.length, offset);
      checkPlacement(m, w);
      assert.deepEqual(w.dtypes, { [dtype]: m.tensors.size });
      assert.deepEqual(w.ignored, []);
    });
  });
}

test("sharded: model-0000i-of-00003.safetensors + index give the same buffer as one file", () => {
  withTemp("shards", (dir) => {
    const one = writeTinyModel(join(dir, "one"), "qwen2", { seed: 3 });
    const three = writeTinyModel(join(dir, "three"), "qwen2", { seed: 3, shards: 3 });
    const a = load(one.dir), b = load(three.dir);
    assert.deepEqual(b.params, a.params);
    assert.equal(b.files.length, 3);
    assert.match(b.files[2]!, /model-00003-of-00003\.safetensors$/);
    checkPlacement(three, b);
  });
});

test("an engine's own tensor table (another order) lays the buffer out by its offsets", () => {
  withTemp("table", (dir) => {
    const m = writeTinyModel(dir, "gemma2", { dtype: "BF16" });
    const std = load(dir);
    let off = 0;
    const reversed = std.table.slice().reverse().map((t) => {
      const r = { ...t, offset: off };
      off += t.numel;
      return r;
    });
    const w = load(dir, reversed);
    for (const t of reversed) {
      const s = std.table.find((x) => x.name === t.name)!;
      assert.deepEqual(w.params.subarray(t.offset, t.offset + t.numel), std.params.subarray(s.offset, s.offset + s.numel), t.name);
    }
    checkPlacement(m, w);
    assert.throws(() => load(dir, reversed.slice(1)), /tensor table lacks/);
    assert.throws(() => load(dir, reversed.map((t) => (t.name === "q" ? { ...t, shape: [9, 9, 9] } : t))), /'q' has shape \[9,9,9\]/);
  });
});

test("ignored as transformers does: rotary inv_freq buffers, and lm_head.weight in a tied model", () => {
  withTemp("ignored", (dir) => {
    const m = writeTinyModel(dir, "llama");
    const r = rng(5);
    const extra = [randomTensor("model.layers.0.self_attn.rotary_emb.inv_freq", [2], "F32", r), randomTensor("lm_head.weight", [272, 8], "BF16", r)];
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes([...m.tensors.values(), ...extra]));
    const w = load(dir);
    checkPlacement(m, w);
    assert.deepEqual(w.ignored.sort(), ["lm_head.weight", "model.layers.0.self_attn.rotary_emb.inv_freq"]);
  });
});

// --- bad folders -------------------------------------------------------------------------------

function expectFolderError(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HfFolderError && err instanceof CheckpointError, `expected an HfFolderError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${file}: `), `names ${file}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.equal(err.message.split("\n").length, 1, "one line");
    return true;
  });
}

function rewrite(m: TinyModel, edit: (list: StoredTensor[]) => StoredTensor[]): void {
  writeFileSync(join(m.dir, "model.safetensors"), safetensorsBytes(edit([...m.tensors.values()])));
}

test("missing, misshapen, unexpected, non-float and non-finite tensors name the file and the tensor", () => {
  withTemp("bad", (dir) => {
    const m = writeTinyModel(dir, "mistral");
    const file = join(dir, "model.safetensors");
    const r = rng(9);

    rewrite(m, (l) => l.filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight"));
    expectFolderError(() => load(dir), file, /has no tensor 'model\.layers\.1\.mlp\.up_proj\.weight' \(config\.json: mistral, 2 layers, hidden 8/);

    rewrite(m, (l) => l.map((t) => (t.name === "model.layers.0.self_attn.k_proj.weight" ? randomTensor(t.name, [4, 8], "BF16", r) : t)));
    expectFolderError(() => load(dir), file, /tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[4, 8\], expected \[2, 8\]/);

    rewrite(m, (l) => l.filter((t) => t.name !== "lm_head.weight"));
    expectFolderError(() => load(dir), file, /has no tensor 'lm_head\.weight'.*tied false/);

    rewrite(m, (l) => [...l, randomTensor("model.layers.0.self_attn.o_proj.bias", [8], "BF16", r)]);
    expectFolderError(() => load(dir), file, /unexpected tensor 'model\.layers\.0\.self_attn\.o_proj\.bias' \(this family has no such bias\)/);

    rewrite(m, (l) => [...l, randomTensor("model.layers.2.mlp.up_proj.weight", [12, 8], "BF16", r)]);
    expectFolderError(() => load(dir), file, /unexpected tensor 'model\.layers\.2\.mlp\.up_proj\.weight'/);

    rewrite(m, (l) => l.map((t) => (t.name === "model.norm.weight" ? { ...t, dtype: "I8" as Dtype, bytes: new Uint8Array(8) } : t)));
    expectFolderError(() => load(dir), file, /tensor 'model\.norm\.weight' has dtype I8; only F32, F16, BF16/);

    rewrite(m, (l) => l.map((t) => {
      if (t.name !== "model.layers.1.self_attn.v_proj.weight") return t;
      const bytes = t.bytes.slice();
      new Uint16Array(bytes.buffer)[5] = 0x7fc0; // a bfloat16 NaN
      return { ...t, bytes };
    }));
    expectFolderError(() => load(dir), file, /tensor 'model\.layers\.1\.self_attn\.v_proj\.weight' contains NaN at element 5/);
  });
});

test("a tied model's lm_head.weight with the wrong shape is an error, not silently ignored", () => {
  withTemp("tiedhead", (dir) => {
    const m = writeTinyModel(dir, "gemma2");
    rewrite(m, (l) => [...l, randomTensor("lm_head.weight", [5, 6], "BF16", rng(1))]);
    expectFolderError(() => load(dir), join(dir, "model.safetensors"), /'lm_head\.weight' has shape \[5, 6\], expected \[288, 6\]/);
  });
});

test("truncated files and unreadable headers name the file (and the tensor cut off)", () => {
  withTemp("trunc", (dir) => {
    writeTinyModel(dir, "llama", { shards: 2 });
    const shard = join(dir, "model-00002-of-00002.safetensors");
    const good = readFileSync(shard);
    writeFileSync(shard, good.subarray(0, good.length - 10));
    expectFolderError(() => load(dir), shard, /tensor 'model\.norm\.weight' ends at byte \d+ but the data section has \d+ bytes \(truncated file\)/);
    writeFileSync(shard, good.subarray(0, 6));
    expectFolderError(() => load(dir), shard, /too short for a safetensors header/);
    const bad = Buffer.from(good);
    bad.write("{oops", 8);
    writeFileSync(shard, bad);
    expectFolderError(() => load(dir), shard, /header is not valid JSON/);
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(shard, huge);
    expectFolderError(() => load(dir), shard, /header length \d+ does not fit/);
  });
});

test("bad indexes: a tensor in the wrong shard, an unlisted one, a missing shard, a path outside the folder, no weight_map", () => {
  withTemp("index", (dir) => {
    writeTinyModel(dir, "qwen2", { shards: 2 });
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
    const s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
    const put = (wm: Record<string, unknown>) => writeFileSync(indexPath, JSON.stringify({ metadata: {}, weight_map: wm }));

    put({ ...index.weight_map, "model.norm.weight": s1 });
    expectFolderError(() => load(dir), join(dir, s2), /holds tensor 'model\.norm\.weight', which model\.safetensors\.index\.json puts in model-00001-of-00002\.safetensors \(bad index\)/);

    const { ["model.norm.weight"]: _n, ...unlisted } = index.weight_map;
    put(unlisted);
    expectFolderError(() => load(dir), join(dir, s2), /has tensor 'model\.norm\.weight', which model\.safetensors\.index\.json does not list/);

    put({ ...index.weight_map, "model.extra.weight": s1 });
    expectFolderError(() => load(dir), indexPath, /puts tensor 'model\.extra\.weight' in model-00001-of-00002\.safetensors, which does not contain it/);

    put({ ...index.weight_map, "model.norm.weight": "model-00003-of-00003.safetensors" });
    expectFolderError(() => load(dir), indexPath, /lists shard model-00003-of-00003\.safetensors \(for tensor 'model\.norm\.weight'\), which is missing/);

    put({ ...index.weight_map, "model.norm.weight": "../elsewhere.safetensors" });
    expectFolderError(() => load(dir), indexPath, /weight_map\['model\.norm\.weight'\] = "\.\.\/elsewhere\.safetensors" is not a \.safetensors file of the folder/);

    writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
    expectFolderError(() => load(dir), indexPath, /has no weight_map object \(bad index\)/);

    writeFileSync(indexPath, "{");
    expectFolderError(() => load(dir), indexPath, /is not valid JSON/);

    const { ["model.layers.1.self_attn.q_proj.bias"]: _b, ...noBias } = index.weight_map;
    put(noBias);
    rmSync(join(dir, s2));
    expectFolderError(() => load(dir), indexPath, /lists shard model-00002-of-00002\.safetensors/);
  });
});

test("a folder without safetensors weights says what it found", () => {
  withTemp("noweights", (dir) => {
    writeTinyModel(dir, "llama");
    rmSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "pytorch_model.bin"), "x");
    expectFolderError(() => load(dir), dir, /has neither model\.safetensors nor model\.safetensors\.index\.json \(found pytorch_model\.bin: save the model with save_pretrained\(safe_serialization=True\)\)/);
  });
});

test("the missing tensor of a sharded model is reported against the index", () => {
  withTemp("shardmiss", (dir) => {
    const m = writeTinyModel(dir, "llama", { shards: 2 });
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
    const name = "model.layers.1.input_layernorm.weight";
    const shard = index.weight_map[name]!;
    delete index.weight_map[name];
    writeFileSync(indexPath, JSON.stringify(index));
    const part = [...m.tensors.values()].filter((t) => index.weight_map[t.name] === shard);
    writeFileSync(join(dir, shard), safetensorsBytes(part));
    expectFolderError(() => load(dir), indexPath, new RegExp(`has no tensor '${name.replace(/\./g, "\\.")}'`));
  });
});

test("config.json vocab_size and hidden_size are checked against the embeddings", () => {
  withTemp("cfgmismatch", (dir) => {
    writeTinyModel(dir, "qwen2");
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...tinyConfig("qwen2"), vocab_size: 300 }));
    expectFolderError(() => load(dir), join(dir, "model.safetensors"), /'model\.embed_tokens\.weight' has shape \[272, 8\], expected \[300, 8\]/);
  });
});
