// Checkpoints: nanoGPT names and shapes, exact round trip, and clear errors for corrupt or
// mismatched files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GptModel, type ModelConfig } from "../../backend/engine/index.js";
import {
  CheckpointError, decodeSafetensors, encodeSafetensors, loadCheckpoint, loadIntoModel, saveCheckpoint,
} from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

const CFG: ModelConfig = { nLayer: 2, nHead: 2, dModel: 8, context: 10, vocab: 30, tied: true };

function saved(dir: string, cfg: ModelConfig = CFG, seed = 1): GptModel {
  const m = GptModel.create(cfg, { maxBatch: 1 });
  m.init(seed);
  saveCheckpoint(dir, m, { tokenizer: "byte", optimizer: true, state: {
    format: "calib-trainer-state/1", phase: "pretrain", step: 3, microBatches: 3, epoch: 0, batchInEpoch: 3, seed,
    configHash: "abc", tokens: 30, elapsedSeconds: 1, logRows: 0, pendingLossSum: 0, pendingTokens: 0,
  } });
  return m;
}

function header(path: string): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, "tensor data is 8-byte aligned");
  return JSON.parse(b.subarray(8, 8 + n).toString("utf8"));
}

test("model.safetensors uses nanoGPT names and nn.Linear shapes; lm_head only when untied", () => {
  for (const tied of [true, false]) {
    const { dir, cleanup } = tempDir("ck");
    try {
      saved(dir, { ...CFG, tied }).free();
      const h = header(join(dir, "model.safetensors"));
      const shapes = Object.fromEntries(Object.entries(h).filter(([k]) => k !== "__metadata__").map(([k, v]) => [k, v.shape]));
      const C = 8, want: Record<string, number[]> = {
        "transformer.wte.weight": [30, C], "transformer.wpe.weight": [10, C],
        "transformer.ln_f.weight": [C], "transformer.ln_f.bias": [C],
      };
      for (const i of [0, 1]) {
        Object.assign(want, {
          [`transformer.h.${i}.ln_1.weight`]: [C], [`transformer.h.${i}.ln_1.bias`]: [C],
          [`transformer.h.${i}.attn.c_attn.weight`]: [3 * C, C], [`transformer.h.${i}.attn.c_attn.bias`]: [3 * C],
          [`transformer.h.${i}.attn.c_proj.weight`]: [C, C], [`transformer.h.${i}.attn.c_proj.bias`]: [C],
          [`transformer.h.${i}.ln_2.weight`]: [C], [`transformer.h.${i}.ln_2.bias`]: [C],
          [`transformer.h.${i}.mlp.c_fc.weight`]: [4 * C, C], [`transformer.h.${i}.mlp.c_fc.bias`]: [4 * C],
          [`transformer.h.${i}.mlp.c_proj.weight`]: [C, 4 * C], [`transformer.h.${i}.mlp.c_proj.bias`]: [C],
        });
      }
      if (!tied) want["lm_head.weight"] = [30, C];
      assert.deepEqual(shapes, want);
      for (const v of Object.values(h)) if ("dtype" in v) assert.equal(v.dtype, "F32");
      const opt = header(join(dir, "optimizer.safetensors"));
      assert.ok("exp_avg.transformer.h.1.mlp.c_fc.weight" in opt && "exp_avg_sq.transformer.wte.weight" in opt);
      const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      assert.equal(cfg.format, "calib-gpt/1");
      assert.deepEqual(cfg.model, { ...CFG, tied });
    } finally {
      cleanup();
    }
  }
});

test("save → load restores parameters and AdamW moments bit for bit", () => {
  const { dir: root, cleanup } = tempDir("ck");
  // the checkpoint is a folder of its own inside the temporary directory: its siblings are only what saving it leaves
  const dir = join(root, "checkpoint");
  try {
    const m = saved(dir, { ...CFG, tied: false });
    m.write("m", Float32Array.from({ length: m.numParams }, (_, i) => Math.sin(i)));
    m.write("v", Float32Array.from({ length: m.numParams }, (_, i) => i / 7));
    saveCheckpoint(dir, m, { tokenizer: "byte", optimizer: true, state: {
      format: "calib-trainer-state/1", phase: "pretrain", step: 9, microBatches: 9, epoch: 1, batchInEpoch: 2, seed: 1,
      configHash: "x", tokens: 90, elapsedSeconds: 2, logRows: 1, pendingLossSum: 1.5, pendingTokens: 3,
    } });
    const ck = loadCheckpoint(dir, { optimizer: true });
    assert.equal(ck.state!.step, 9);
    const m2 = GptModel.create({ ...CFG, tied: false }, { maxBatch: 1 });
    loadIntoModel(m2, ck);
    for (const b of ["params", "m", "v"] as const) assert.deepEqual(m2.read(b), m.read(b), b);
    assert.deepEqual(readdirSync(root).filter((f) => f.includes(".tmp") || f.includes(".old")), [], "no temporary directories are left");
    m.free();
    m2.free();
  } finally {
    cleanup();
  }
});

test("safetensors encode/decode round trip keeps order, metadata, and F64", () => {
  const a = Float32Array.from([1, -2, 3.5]), b = Float64Array.from([Math.PI, -0]);
  const bytes = encodeSafetensors([{ name: "a", dtype: "F32", shape: [3], data: a }, { name: "b.c", dtype: "F64", shape: [1, 2], data: b }], { k: "v" });
  const f = decodeSafetensors(bytes);
  assert.deepEqual(f.metadata, { k: "v" });
  assert.deepEqual([...f.tensors.keys()], ["a", "b.c"]);
  assert.deepEqual(f.tensors.get("a")!.data, a);
  assert.deepEqual(f.tensors.get("b.c")!.data, b);
  assert.deepEqual(f.tensors.get("b.c")!.shape, [1, 2]);
});

function expectError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected a CheckpointError, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test("corrupt checkpoints give errors that name the file and the problem", () => {
  const { dir, cleanup } = tempDir("ck");
  try {
    saved(dir).free();
    const model = join(dir, "model.safetensors");
    const good = readFileSync(model);

    writeFileSync(model, good.subarray(0, good.length - 100));
    expectError(() => loadCheckpoint(dir), /model\.safetensors.*truncated/);

    writeFileSync(model, good.subarray(0, 5));
    expectError(() => loadCheckpoint(dir), /too short/);

    const bad = Buffer.from(good);
    bad.write("{not json", 8);
    writeFileSync(model, bad);
    expectError(() => loadCheckpoint(dir), /header is not valid JSON/);

    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(10n ** 12n, 0);
    writeFileSync(model, huge);
    expectError(() => loadCheckpoint(dir), /header length .* does not fit/);

    // a NaN in the weights
    const nan = Buffer.from(good);
    const n = Number(nan.readBigUInt64LE(0));
    nan.writeFloatLE(NaN, 8 + n + 4 * 5);
    writeFileSync(model, nan);
    expectError(() => loadCheckpoint(dir), /contains NaN at element 5/);

    writeFileSync(model, good);
    rmSync(join(dir, "optimizer.safetensors"));
    loadCheckpoint(dir); // weights alone are fine
    expectError(() => loadCheckpoint(dir, { optimizer: true }), /optimizer\.safetensors is missing/);

    writeFileSync(join(dir, "config.json"), "{");
    expectError(() => loadCheckpoint(dir), /config\.json is not valid JSON/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ format: "something-else" }));
    expectError(() => loadCheckpoint(dir), /is not a calib-gpt\/1 config/);
    rmSync(join(dir, "config.json"));
    expectError(() => loadCheckpoint(dir), /cannot read .*config\.json \(ENOENT\)/);
    expectError(() => loadCheckpoint(join(dir, "nope")), /no such directory/);
  } finally {
    cleanup();
  }
});

test("mismatched checkpoints: shapes, missing / unexpected tensors, another model's config", () => {
  const a = tempDir("ck"), b = tempDir("ck");
  try {
    saved(a.dir).free();
    saved(b.dir, { ...CFG, dModel: 12, tied: false }).free();
    // weights of a 12-wide model under the config of an 8-wide one
    copyFileSync(join(b.dir, "model.safetensors"), join(a.dir, "model.safetensors"));
    expectError(() => loadCheckpoint(a.dir), /tensor 'transformer\.wte\.weight' has shape \[30, 12\], expected \[30, 8\]/);
    // untied weights (extra lm_head) under a tied config of the same width
    saved(b.dir, { ...CFG, tied: false }).free();
    copyFileSync(join(b.dir, "model.safetensors"), join(a.dir, "model.safetensors"));
    expectError(() => loadCheckpoint(a.dir), /unexpected tensor 'lm_head\.weight' \(config\.json says the head is tied\)/);
    // a 1-layer file under a 2-layer config
    saved(b.dir, { ...CFG, nLayer: 1 }).free();
    copyFileSync(join(b.dir, "model.safetensors"), join(a.dir, "model.safetensors"));
    expectError(() => loadCheckpoint(a.dir), /has no tensor 'transformer\.h\.1\.ln_1\.weight'/);
    // a valid checkpoint into a model of another shape
    saved(a.dir).free();
    const other = GptModel.create({ ...CFG, context: 12 }, { maxBatch: 1 });
    expectError(() => loadIntoModel(other, loadCheckpoint(a.dir)), /does not match the model: context 10 ≠ 12/);
    other.free();
    assert.ok(existsSync(join(a.dir, "config.json")));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});
