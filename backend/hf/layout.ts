// The engine's parameter tensors for arch 'llama' (native/include/calib.h: names, shapes, order;
// matmul weights out×in as nn.Linear; per-layer tensors stacked over layers) and the Hugging
// Face state-dict name of each slice. No weight needs transforming on the way: HF stores linear
// weights out×in too, Gemma's RMSNorm weights are stored as w (the engine applies 1 + w), and
// the embedding scale and rotary layout (rotate-half) are the engine's own.
import { tensorTable, type TensorInfo } from "../engine/index.js";
import type { HfFamily, LlamaModelConfig } from "./config.js";

export type LlamaTensorName =
  | "embed" | "attn_norm" | "q" | "k" | "v" | "q_bias" | "k_bias" | "v_bias" | "o" | "attn_post_norm"
  | "mlp_norm" | "gate" | "up" | "down" | "mlp_post_norm" | "norm_f" | "lm_head";

/** A tensor of the flat parameter buffer: the engine's TensorInfo, by name. */
export type EngineTensor = Omit<TensorInfo, "name"> & { name: string };

/** The tensors of a configuration in calib.h's order, with their offsets. */
export function llamaTensorTable(m: LlamaModelConfig): EngineTensor[] {
  return tensorTable(m) as EngineTensor[];
}

/** Elements of the flat buffer a table describes. */
export function tableSize(table: readonly EngineTensor[]): number {
  return table.reduce((a, t) => Math.max(a, t.offset + t.numel), 0);
}

const LAYER_NAMES: Record<string, string> = {
  attn_norm: "input_layernorm.weight",
  q: "self_attn.q_proj.weight", k: "self_attn.k_proj.weight", v: "self_attn.v_proj.weight",
  q_bias: "self_attn.q_proj.bias", k_bias: "self_attn.k_proj.bias", v_bias: "self_attn.v_proj.bias",
  o: "self_attn.o_proj.weight",
  attn_post_norm: "post_attention_layernorm.weight",
  // Llama's post_attention_layernorm is the norm *before* the MLP; Gemma 2 calls that one
  // pre_feedforward_layernorm and uses post_attention_layernorm on the attention output.
  mlp_norm: "post_attention_layernorm.weight",
  gate: "mlp.gate_proj.weight", up: "mlp.up_proj.weight", down: "mlp.down_proj.weight",
  mlp_post_norm: "post_feedforward_layernorm.weight",
};
const GLOBAL_NAMES: Record<string, string> = { embed: "model.embed_tokens.weight", norm_f: "model.norm.weight", lm_head: "lm_head.weight" };

/** The Hugging Face state-dict name of one engine tensor (of one layer, for per-layer tensors). */
export function hfTensorName(family: HfFamily, tensor: string, layer: number | null): string {
  if (layer === null) {
    const g = GLOBAL_NAMES[tensor];
    if (!g) throw new TypeError(`'${tensor}' is not a global tensor of the llama architecture`);
    return g;
  }
  const local = family === "gemma2" && tensor === "mlp_norm" ? "pre_feedforward_layernorm.weight" : LAYER_NAMES[tensor];
  if (!local) throw new TypeError(`'${tensor}' is not a per-layer tensor of the llama architecture`);
  return `model.layers.${layer}.${local}`;
}

/** One Hugging Face tensor and where it lives in the flat buffer. */
export interface HfSlice {
  hfName: string;
  tensor: string;
  layer: number | null;
  /** the Hugging Face shape (the engine's without the layer axis) */
  shape: number[];
  offset: number;
  numel: number;
}

/**
 * Every Hugging Face tensor of the model and its slice of the flat buffer, in the table's order.
 * `table` defaults to llamaTensorTable(spec.model); an engine's own table (model.tensors()) may be
 * given instead and is checked against the configuration (same names and shapes, any order).
 */
export function hfSlices(family: HfFamily, model: LlamaModelConfig, table: readonly EngineTensor[] = llamaTensorTable(model)): HfSlice[] {
  const want = new Map(llamaTensorTable(model).map((t) => [t.name, t.shape]));
  const seen = new Set<string>();
  const out: HfSlice[] = [];
  for (const t of table) {
    const shape = want.get(t.name);
    if (!shape) throw new TypeError(`tensor table: '${t.name}' is not a tensor of this configuration (${[...want.keys()].join(", ")})`);
    if (shape.length !== t.shape.length || shape.some((x, i) => x !== t.shape[i])) {
      throw new TypeError(`tensor table: '${t.name}' has shape [${t.shape}], the configuration gives [${shape}]`);
    }
    seen.add(t.name);
    if (t.perLayer) {
      const per = t.numel / model.nLayer;
      for (let i = 0; i < model.nLayer; i++) {
        out.push({ hfName: hfTensorName(family, t.name, i), tensor: t.name, layer: i, shape: t.shape.slice(1), offset: t.offset + i * per, numel: per });
      }
    } else {
      out.push({ hfName: hfTensorName(family, t.name, null), tensor: t.name, layer: null, shape: t.shape.slice(), offset: t.offset, numel: t.numel });
    }
  }
  const missing = [...want.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) throw new TypeError(`tensor table lacks ${missing.join(", ")}`);
  return out;
}
