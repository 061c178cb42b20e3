// The engine's flat parameter layout, the same table as native/src/model/layout.cc: tensors in
// order, one after another, matmul weights out×in (nn.Linear), per-layer tensors stacked over the
// layers (shape[0] = nLayer), lm_head only when untied. The model reports the same table
// (GptModel.tensors()); this one needs no model: checkpoints and Hugging Face folders are checked
// and laid out against it before an engine exists.
import { validateModelConfig, type LlamaConfig, type ModelConfig, type TensorInfo } from "./model.js";

type Row<N extends string> = readonly [N, number[], boolean, boolean];  // name, shape, perLayer, decay

/** Tensor rows laid out one after another in a flat buffer. */
export function withOffsets<N extends string>(rows: ReadonlyArray<Row<N>>): Array<{ name: N; offset: number; numel: number; shape: number[]; perLayer: boolean; decay: boolean }> {
  let offset = 0;
  return rows.map(([name, shape, perLayer, decay]) => {
    const numel = shape.reduce((a, b) => a * b, 1);
    const t = { name, offset, numel, shape, perLayer, decay };
    offset += numel;
    return t;
  });
}

function gptRows(c: ModelConfig): Array<Row<TensorInfo["name"]>> {
  const { nLayer: L, dModel: C, context: T, vocab: V } = c;
  const rows: Array<Row<TensorInfo["name"]>> = [
    ["wte", [V, C], false, false], ["wpe", [T, C], false, false],
    ["ln1w", [L, C], true, false], ["ln1b", [L, C], true, false],
    ["qkvw", [L, 3 * C, C], true, true], ["qkvb", [L, 3 * C], true, false],
    ["attprojw", [L, C, C], true, true], ["attprojb", [L, C], true, false],
    ["ln2w", [L, C], true, false], ["ln2b", [L, C], true, false],
    ["fcw", [L, 4 * C, C], true, true], ["fcb", [L, 4 * C], true, false],
    ["fcprojw", [L, C, 4 * C], true, true], ["fcprojb", [L, C], true, false],
    ["lnfw", [C], false, false], ["lnfb", [C], false, false],
  ];
  if (!c.tied) rows.push(["lm_head", [V, C], false, true]);
  return rows;
}

function llamaRows(c: ModelConfig, m: LlamaConfig): Array<Row<TensorInfo["name"]>> {
  const { nLayer: L, dModel: d, vocab: V, nHead: H } = c;
  const { headDim: hd, nKvHead: kv, dFf: ff } = m;
  const rows: Array<Row<TensorInfo["name"]>> = [["embed", [V, d], false, false], ["attn_norm", [L, d], true, false]];
  rows.push(["q", [L, H * hd, d], true, true], ["k", [L, kv * hd, d], true, true], ["v", [L, kv * hd, d], true, true]);
  if (m.qkvBias) rows.push(["q_bias", [L, H * hd], true, false], ["k_bias", [L, kv * hd], true, false], ["v_bias", [L, kv * hd], true, false]);
  rows.push(["o", [L, d, H * hd], true, true]);
  if (m.postNorms) rows.push(["attn_post_norm", [L, d], true, false]);
  rows.push(["mlp_norm", [L, d], true, false], ["gate", [L, ff, d], true, true], ["up", [L, ff, d], true, true], ["down", [L, d, ff], true, true]);
  if (m.postNorms) rows.push(["mlp_post_norm", [L, d], true, false]);
  rows.push(["norm_f", [d], false, false]);
  if (!c.tied) rows.push(["lm_head", [V, d], false, true]);
  return rows;
}

/** The tensor table of a configuration (Llama-family fields resolved with their defaults). */
export function tensorTable(c: ModelConfig): TensorInfo[] {
  const cfg = validateModelConfig(c);
  return withOffsets(cfg.arch === "llama" ? llamaRows(cfg, cfg.llama as LlamaConfig) : gptRows(cfg));
}
