// The float64 reference's view of a Hugging Face model folder written by the tests: its engine
// configuration by hand from config.json (transformers' semantics, independent of backend/hf), its
// weights from the values the test stored (stacked by the fixtures' own name map), and the
// log-likelihood of a continuation (what multiple-choice scoring sums).
import type { LlamaConfig, ModelConfig } from "../../backend/engine/index.js";
import { llamaReference, type Tensors } from "../engine/llama-reference.js";
import { engineTable, engineTarget, type Family, type TinyModel } from "./fixtures.js";

const f = Math.fround;

/** The engine configuration of a config.json, by hand from transformers' definitions. */
export function referenceConfig(family: Family, c: Record<string, unknown>, context: number): { cfg: ModelConfig; softcap: number } {
  const d = c.hidden_size as number, H = c.num_attention_heads as number;
  const hd = (c.head_dim as number | undefined) ?? d / H;
  const rope = c.rope_scaling as Record<string, number> | undefined;
  const gemma = family === "gemma2";
  const llama: LlamaConfig = {
    nKvHead: c.num_key_value_heads as number, headDim: hd, dFf: c.intermediate_size as number, normEps: c.rms_norm_eps as number,
    normPlusOne: gemma, postNorms: gemma, qkvBias: family === "qwen2", mlpAct: gemma ? "gelu_tanh" : "silu",
    embedScale: gemma ? f(Math.sqrt(d)) : 1, ropeTheta: c.rope_theta as number,
    ropeType: rope ? "llama3" : "default", ropeFactor: rope?.factor ?? 1, ropeLowFreqFactor: rope?.low_freq_factor ?? 1,
    ropeHighFreqFactor: rope?.high_freq_factor ?? 4, ropeOriginalContext: rope?.original_max_position_embeddings ?? 8192,
    attnScale: gemma ? (c.query_pre_attn_scalar as number) ** -0.5 : 1 / Math.sqrt(hd),
    attnSoftcap: gemma ? (c.attn_logit_softcapping as number) : 0,
    // Mistral: every layer; Gemma 2: layers 0, 2, … (transformers 5's layer_types); Qwen2 without use_sliding_window: none
    slidingWindow: family === "mistral" || gemma ? (c.sliding_window as number) : 0, slidingPeriod: gemma ? 2 : 1,
  };
  const cfg: ModelConfig = {
    arch: "llama", nLayer: c.num_hidden_layers as number, nHead: H, dModel: d, context, vocab: c.vocab_size as number, tied: c.tie_word_embeddings !== false, llama,
  };
  return { cfg, softcap: gemma ? (c.final_logit_softcapping as number) : 0 };
}

/** The stored values (float64, decoded by the fixtures) stacked into the engine's tensors by the fixtures' name map. */
export function referenceTensors(m: TinyModel): Tensors {
  const out: Tensors = new Map();
  for (const [name, shape] of engineTable(m.family, m.config)) out.set(name, { shape, data: new Float64Array(shape.reduce((a, b) => a * b, 1)) });
  for (const [hfName, t] of m.tensors) {
    const { tensor, layer } = engineTarget(m.family, hfName);
    const dst = out.get(tensor)!;
    dst.data.set(t.values, layer === null ? 0 : layer * t.values.length);
  }
  return out;
}

/** Σ log p(cont[k] | ctx, cont[<k]) of the reference in float64 (the model's distribution: soft-capped for Gemma 2). */
export function referenceLogLik(ref: { cfg: ModelConfig; softcap: number }, w: Tensors, ctx: readonly number[], cont: readonly number[]): number {
  const seq = [...ctx, ...cont.slice(0, -1)];
  const targets = new Int32Array(seq.length).fill(-100);
  cont.forEach((id, k) => (targets[ctx.length - 1 + k] = id));
  const r = llamaReference({ ...ref.cfg, context: Math.max(ref.cfg.context, seq.length) }, w, Int32Array.from(seq), targets, 1, seq.length, { softcap: ref.softcap });
  return -r.lossSum;
}
