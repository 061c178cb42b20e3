// Checkpoints of the Llama family (calib-llama/1): the engine's tensor names and stacked shapes in
// model.safetensors, AdamW moments, hf/ with the source's config.json and tokenizer files; save →
// load restores everything bit for bit, the checkpoint reopens as a model source (tokenizer, chat
// template, weights) after the source folder is gone, and damaged checkpoints give errors that
// name the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GptModel } from "../../backend/engine/index.js";
import { SafetensorsReader } from "../../backend/io/safetensors.js";
import { CheckpointError, loadCheckpoint, loadIntoModel, openLlamaSource, saveCheckpoint } from "../../backend/train/index.js";
import { llama3TokenizerFiles, writeTinyModel } from "../hf/fixtures.js";
import { tempDir } from "./helpers.js";

test("calib-llama/1: engine tensor names and shapes, moments and hf/ files; save → load → reopen equals, without the source folder", () => {
  const { dir, cleanup } = tempDir("llama-ck");
  try {
    const src = writeTinyModel(join(dir, "src"), "qwen2", { dtype: "F32", files: llama3TokenizerFiles() });
    const source = openLlamaSource(src.dir, { context: 12 });
    const model = GptModel.create(source.config, { maxBatch: 1 });
    model.write("params", source.params());
    const batch = { inputs: Int32Array.from([1, 5, 9, 200]), targets: Int32Array.from([5, 9, 200, 3]), b: 1, t: 4 };
    for (let step = 1; step <= 2; step++) {
      model.zeroGrad();
      model.forwardBackward(batch, { labelSmoothing: 0.1 });
      model.adamw({ lr: 1e-2, step });
    }
    const state = {
      format: "calib-trainer-state/1" as const, phase: "sft" as const, step: 2, microBatches: 2, epoch: 1, batchInEpoch: 0, seed: 0, configHash: "x",
      tokens: 8, elapsedSeconds: 1, logRows: 0, pendingLossSum: 0, pendingTokens: 0,
    };
    const ck = join(dir, "ck");
    saveCheckpoint(ck, model, { tokenizer: source.folder.tokenizer.name, optimizer: true, state, hf: source.hf });
    // names, dtypes and shapes of the weights: the engine's table, per-layer tensors stacked
    const r = SafetensorsReader.open(join(ck, "model.safetensors"));
    const entries = [...r.header.entries].map(([name, e]) => [name, e.dtype, e.shape]);
    r.close();
    assert.deepEqual(entries, model.tensors().map((t) => [t.name, "F32", t.shape]));
    assert.deepEqual(entries.slice(0, 6).map((e) => e[0]), ["embed", "attn_norm", "q", "k", "v", "q_bias"]);
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
      assert.ok(readFileSync(join(ck, "hf", f)).equals(readFileSync(join(src.dir, f))), `hf/${f} is the source's`);
    }
    const loaded = loadCheckpoint(ck, { optimizer: true });
    assert.equal(loaded.config.format, "calib-llama/1");
    assert.deepEqual(loaded.params, model.read("params"));
    assert.deepEqual(loaded.optimizer!.m, model.read("m"));
    assert.deepEqual(loaded.optimizer!.v, model.read("v"));
    assert.deepEqual(loaded.state, state);
    const other = GptModel.create(source.config, { maxBatch: 1 });
    loadIntoModel(other, loaded);
    assert.deepEqual(other.read("v"), model.read("v"));

    // the checkpoint alone: tokenizer, chat template and weights, the source folder removed
    rmSync(src.dir, { recursive: true });
    const again = openLlamaSource(ck);
    assert.equal(again.kind, "checkpoint");
    assert.equal(again.info.family, "qwen2");
    assert.deepEqual(Array.from(again.folder.tokenizer.encode("hello world")), Array.from(source.folder.tokenizer.encode("hello world")));
    assert.ok(again.folder.chatTemplate, "the chat template comes along");
    assert.deepEqual(again.params(), model.read("params"));

    // mismatches and damage
    const gpt = GptModel.create({ nLayer: 2, nHead: 4, dModel: 8, context: 12, vocab: 272, tied: true }, { maxBatch: 1 });
    assert.throws(() => loadIntoModel(gpt, loaded), /does not match the model: arch llama ≠ gpt2/);
    const fewerKv = GptModel.create({ ...source.config, llama: { ...source.config.llama, dFf: 12, nKvHead: 1 } }, { maxBatch: 1 });
    assert.throws(() => loadIntoModel(fewerKv, loaded), /llama\.nKvHead 2 ≠ 1/);
    assert.throws(() => saveCheckpoint(join(dir, "x"), model, { tokenizer: "t" }), /a Llama-family checkpoint needs options\.hf/);
    assert.ok(!existsSync(join(dir, "x")), "nothing written");
    const hfConfig = join(ck, "hf", "config.json");
    const raw = JSON.parse(readFileSync(hfConfig, "utf8"));
    writeFileSync(hfConfig, JSON.stringify({ ...raw, intermediate_size: 16 }));
    assert.throws(() => openLlamaSource(ck), (e: Error) => e instanceof CheckpointError && /hf\/config\.json does not describe the checkpoint's model/.test(e.message));
    writeFileSync(hfConfig, JSON.stringify(raw));
    const cfgPath = join(ck, "config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, model: { ...cfg.model, llama: { ...cfg.model.llama, dFf: 16 } } }));
    assert.throws(() => loadCheckpoint(ck), /model\.safetensors: tensor 'gate' has shape \[2, 12, 8\], expected \[2, 16, 8\]/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, model: { ...cfg.model, llama: { ...cfg.model.llama, nKvHead: 3 } } }));
    assert.throws(() => loadCheckpoint(ck), /config\.json: model\.llama\.nKvHead \(3\) must divide nHead \(4\)/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, hf: { ...cfg.hf, family: "phi3" } }));
    assert.throws(() => loadCheckpoint(ck), /is not a calib-llama\/1 config \(hf\.family/);
    for (const m of [model, other, gpt, fewerKv]) m.free();
  } finally {
    cleanup();
  }
});
