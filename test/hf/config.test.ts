// config.json → the engine's description: each family's fields with hand-computed values, the
// forms transformers 4 and 5 write (rope_scaling / rope_parameters, layer_types), the defaults
// of the families' configuration classes, and errors that name config.json and the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError } from "../../backend/io/safetensors.js";
import { embedScaleFor, HfFolderError, parseHfConfig, readHfConfig, type HfModelSpec } from "../../backend/hf/index.js";
import { withTemp, tinyConfig } from "./fixtures.js";

const FILE = "/models/x/config.json";
const parse = (c: Record<string, unknown>, context?: number) => parseHfConfig(c, FILE, context === undefined ? {} : { context });

function fails(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HfFolderError && err instanceof CheckpointError, `expected an HfFolderError, got ${String(err)}`);
    assert.equal(err.file, FILE);
    assert.equal(err.what, field);
    assert.ok(err.message.startsWith(`${FILE}: ${field} `), err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test("Llama 3.2 style: GQA, explicit head_dim, llama3 rope scaling, tied, context capped at 4096", () => {
  const s = parse(tinyConfig("llama"));
  assert.equal(s.family, "llama");
  assert.deepEqual(s.model, {
    arch: "llama", nLayer: 2, nHead: 4, dModel: 8, context: 4096, vocab: 272, tied: true,
    llama: {
      nKvHead: 2, headDim: 4, dFf: 12, normEps: 1e-5, normPlusOne: false, postNorms: false, qkvBias: false, mlpAct: "silu",
      embedScale: 1, ropeTheta: 500000, ropeType: "llama3", ropeFactor: 32, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalContext: 8192,
      attnScale: 0.5, attnSoftcap: 0, slidingWindow: 0, slidingPeriod: 1,
    },
  });
  assert.equal(s.finalSoftcap, null);
  assert.equal(s.maxContext, 131072);
  assert.equal(s.dtype, "bfloat16");
  assert.deepEqual([s.bosTokenId, s.eosTokenIds, s.padTokenId], [265, [269], null]);
  assert.equal(parse(tinyConfig("llama"), 2048).model.context, 2048);
  assert.throws(() => parse(tinyConfig("llama"), 200000), (e: unknown) => e instanceof RangeError && /context 200000 exceeds .*131072/.test((e as Error).message));
});

test("Qwen2.5 style: q/k/v biases, head_dim = hidden / heads, θ = 1e6, no sliding window unless use_sliding_window", () => {
  const s = parse(tinyConfig("qwen2"));
  assert.equal(s.model.llama.qkvBias, true);
  assert.equal(s.model.llama.headDim, 2);
  assert.equal(s.model.llama.attnScale, 1 / Math.sqrt(2));
  assert.equal(s.model.llama.ropeTheta, 1e6);
  assert.equal(s.model.llama.ropeType, "default");
  assert.deepEqual([s.model.llama.slidingWindow, s.model.llama.slidingPeriod], [0, 1]);
  assert.equal(s.dtype, "bfloat16", "transformers 5 writes dtype");
  // use_sliding_window: layers ≥ max_window_layers slide; all of them is the engine's period 1
  const all = parse({ ...tinyConfig("qwen2"), use_sliding_window: true, sliding_window: 64, max_window_layers: 0 });
  assert.deepEqual([all.model.llama.slidingWindow, all.model.llama.slidingPeriod], [64, 1]);
  fails(() => parse({ ...tinyConfig("qwen2"), use_sliding_window: true, max_window_layers: 1 }), "max_window_layers", /layers \[1\] slide/);
});

test("Mistral: untied, sliding_window on every layer, null for none; num_key_value_heads defaults to 8", () => {
  const s = parse(tinyConfig("mistral"));
  assert.equal(s.model.tied, false);
  assert.deepEqual([s.model.llama.slidingWindow, s.model.llama.slidingPeriod, s.model.llama.nKvHead], [4096, 1, 1]);
  assert.equal(parse({ ...tinyConfig("mistral"), sliding_window: null }).model.llama.slidingWindow, 0);
  const { num_key_value_heads: _, ...noKv } = tinyConfig("mistral");
  assert.equal(parse({ ...noKv, num_attention_heads: 8, hidden_size: 16 }).model.llama.nKvHead, 8);
  assert.equal(parse({ ...tinyConfig("mistral"), sliding_window: undefined }).model.llama.slidingWindow, 4096, "MistralConfig's default");
});

test("Gemma 2: (1 + w) norms, post-norms, GeGLU, √d embedding scale, query_pre_attn_scalar, soft-caps, even layers slide", () => {
  const s = parse(tinyConfig("gemma2"));
  const l = s.model.llama;
  assert.deepEqual([l.normPlusOne, l.postNorms, l.qkvBias, l.mlpAct], [true, true, false, "gelu_tanh"]);
  assert.equal(l.embedScale, Math.fround(Math.sqrt(6)));
  assert.equal(l.attnScale, 1 / 12, "144^-½");
  assert.deepEqual([l.attnSoftcap, s.finalSoftcap], [50, 30]);
  assert.deepEqual([l.slidingWindow, l.slidingPeriod, l.headDim, l.nKvHead], [4096, 2, 4, 1]);
  assert.equal(s.model.tied, true);
  assert.equal(s.dtype, "float32");
  // transformers 5 writes layer_types: its default is the same pattern
  const v5 = parse({ ...tinyConfig("gemma2"), layer_types: ["sliding_attention", "full_attention", "sliding_attention"] });
  assert.deepEqual([v5.model.llama.slidingWindow, v5.model.llama.slidingPeriod], [4096, 2]);
  const allSlide = parse({ ...tinyConfig("gemma2"), layer_types: ["sliding_attention", "sliding_attention", "sliding_attention"] });
  assert.equal(allSlide.model.llama.slidingPeriod, 1);
  const none = parse({ ...tinyConfig("gemma2"), layer_types: ["full_attention", "full_attention", "full_attention"] });
  assert.equal(none.model.llama.slidingWindow, 0);
  fails(() => parse({ ...tinyConfig("gemma2"), layer_types: ["sliding_attention", "sliding_attention", "full_attention"] }), "layer_types", /layers \[0, 1\] slide/);
  fails(() => parse({ ...tinyConfig("gemma2"), layer_types: ["sliding_attention"] }), "layer_types", /3 entries/);
  // class defaults: head_dim 256, query_pre_attn_scalar 256, soft-caps 50 / 30; null turns a cap off
  const { head_dim: _h, query_pre_attn_scalar: _q, final_logit_softcapping: _f, attn_logit_softcapping: _a, ...bare } = tinyConfig("gemma2");
  const d = parse(bare);
  assert.deepEqual([d.model.llama.headDim, d.model.llama.attnScale, d.model.llama.attnSoftcap, d.finalSoftcap], [256, 1 / 16, 50, 30]);
  const off = parse({ ...tinyConfig("gemma2"), final_logit_softcapping: null, attn_logit_softcapping: null });
  assert.deepEqual([off.model.llama.attnSoftcap, off.finalSoftcap], [0, null]);
});

test("rope: transformers 5's rope_parameters, the `type` alias, linear, dynamic, per-layer-type dicts", () => {
  const { rope_theta: _t, rope_scaling: _s, ...base } = tinyConfig("llama");
  const v5 = parse({ ...base, rope_parameters: { rope_theta: 500000, rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  assert.equal(v5.model.llama.ropeTheta, 500000);
  const rope = (m: { llama: object }) => Object.fromEntries(Object.entries(m.llama).filter(([k]) => k.startsWith("rope") && k !== "ropeTheta"));
  assert.deepEqual(rope(v5.model), { ropeType: "llama3", ropeFactor: 8, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalContext: 8192 });
  // rope_parameters' theta wins over a top-level one; no theta at all is 10000
  assert.equal(parse({ ...base, rope_theta: 1, rope_parameters: { rope_theta: 7, rope_type: "default" } }).model.llama.ropeTheta, 7);
  assert.equal(parse(base).model.llama.ropeTheta, 10000);
  const linear = rope(parse({ ...base, rope_theta: 1e4, rope_scaling: { type: "linear", factor: 4 } }).model);
  assert.deepEqual([linear.ropeType, linear.ropeFactor], ["linear", 4]);
  assert.equal(parse({ ...base, rope_scaling: { type: "dynamic", factor: 2 } }).model.llama.ropeType, "default", "dynamic = default within max_position_embeddings");
  // llama3 without original_max_position_embeddings: max_position_embeddings
  assert.equal(parse({ ...base, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }).model.llama.ropeOriginalContext, 131072);
  const g = tinyConfig("gemma2");
  const nested = { full_attention: { rope_type: "default", rope_theta: 10000 }, sliding_attention: { rope_type: "default", rope_theta: 10000 } };
  const lt = ["sliding_attention", "full_attention", "sliding_attention"];
  assert.equal(parse({ ...g, layer_types: lt, rope_parameters: nested }).model.llama.ropeTheta, 10000);
  fails(() => parse({ ...g, layer_types: lt, rope_parameters: { ...nested, sliding_attention: { rope_type: "default", rope_theta: 1e6 } } }), "rope_parameters", /differs between layer types/);
  fails(() => parse({ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } }), "rope_scaling.rope_type", /'yarn' is not supported/);
  fails(() => parse({ ...base, rope_scaling: { rope_type: "llama3", factor: 8 } }), "rope_scaling.low_freq_factor", /missing/);
  fails(() => parse({ ...base, partial_rotary_factor: 0.5 }), "partial_rotary_factor", /only full rotary/);
});

test("bad config.json: unknown model_type, missing or invalid fields, unsupported features name the field", () => {
  fails(() => parse({ ...tinyConfig("llama"), model_type: "phi3" }), "model_type", /'phi3' is not supported \(llama, qwen2, mistral, gemma2\)/);
  const { model_type: _m, ...noType } = tinyConfig("llama");
  fails(() => parse(noType), "model_type", /missing/);
  const { hidden_size: _h, ...noHidden } = tinyConfig("qwen2");
  fails(() => parse(noHidden), "hidden_size", /is missing/);
  fails(() => parse({ ...tinyConfig("llama"), num_hidden_layers: 0 }), "num_hidden_layers", /integer ≥ 1/);
  fails(() => parse({ ...tinyConfig("llama"), num_key_value_heads: 3 }), "num_key_value_heads", /must divide num_attention_heads/);
  const { head_dim: _d, ...noHeadDim } = tinyConfig("llama");
  fails(() => parse({ ...noHeadDim, num_attention_heads: 3, num_key_value_heads: 3 }), "head_dim", /not a multiple/);
  fails(() => parse({ ...tinyConfig("llama"), attention_bias: true }), "attention_bias", /not supported/);
  fails(() => parse({ ...tinyConfig("llama"), hidden_act: "gelu" }), "hidden_act", /'gelu' is not supported/);
  fails(() => parse({ ...tinyConfig("gemma2"), hidden_activation: "relu" }), "hidden_activation", /'relu'/);
  fails(() => parse({ ...tinyConfig("llama"), rms_norm_eps: -1 }), "rms_norm_eps", /positive/);
  fails(() => parse({ ...tinyConfig("llama"), eos_token_id: "x" }), "eos_token_id", /token id/);
  assert.throws(() => parseHfConfig([], FILE), (e: unknown) => e instanceof HfFolderError && /not a JSON object/.test((e as Error).message));
});

test("readHfConfig names the folder's config.json when it is missing or not JSON", () => {
  withTemp("cfg", (dir) => {
    const path = join(dir, "config.json");
    assert.throws(() => readHfConfig(dir), (e: unknown) => e instanceof HfFolderError && e.message === `${path}: is missing`);
    writeFileSync(path, "{ nope");
    assert.throws(() => readHfConfig(dir), (e: unknown) => e instanceof HfFolderError && e.message.startsWith(`${path}: is not valid JSON`));
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "config.json"), JSON.stringify(tinyConfig("mistral")));
    const s: HfModelSpec = readHfConfig(join(dir, "sub"));
    assert.equal(s.configPath, join(dir, "sub", "config.json"));
    assert.equal(s.raw.model_type, "mistral");
  });
});

test("embedScaleFor: √hidden rounded to the compute dtype, as transformers' torch.tensor(√d, dtype)", () => {
  const spec = (d: number) => ({ family: "gemma2" as const, model: { ...parse(tinyConfig("gemma2")).model, dModel: d } });
  // √2304 = 48 exactly; √3584 = 59.866… → bfloat16 spacing in [32, 64) is 0.25 → 59.75; √3072 = 55.4256 → 55.5
  assert.deepEqual([embedScaleFor(spec(2304), "bfloat16"), embedScaleFor(spec(2304), "float32")], [48, 48]);
  assert.equal(embedScaleFor(spec(3584), "bfloat16"), 59.75);
  assert.equal(embedScaleFor(spec(3072), "bfloat16"), 55.5);
  assert.equal(embedScaleFor(spec(3584), "float32"), Math.fround(Math.sqrt(3584)));
  assert.equal(embedScaleFor(spec(3584), "float64"), Math.sqrt(3584));
  assert.equal(embedScaleFor({ family: "llama", model: parse(tinyConfig("llama")).model }, "bfloat16"), 1);
});
