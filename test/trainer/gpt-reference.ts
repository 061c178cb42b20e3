// An independent float64 implementation of the engine's GPT (nanoGPT's GPT with bias, no dropout),
// written from the equations: it reads a saved checkpoint's model.safetensors with its own parser
// and never calls the engine. Used by reference.test.ts and scoring.test.ts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { ModelConfig } from "../../backend/engine/index.js";

export type Weights = Map<string, { shape: number[]; data: Float64Array }>;

export function readWeights(path: string): Weights {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Weights = new Map();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    assert.equal(e.dtype, "F32");
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    out.set(name, { shape: e.shape, data: Float64Array.from(f) });
  }
  return out;
}

function layerNorm(x: number[], w: Float64Array, b: Float64Array): number[] {
  const C = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / C;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / C;
  const r = 1 / Math.sqrt(variance + 1e-5);
  return x.map((v, c) => (v - mean) * r * w[c]! + b[c]!);
}

/** y = x·Wᵀ + b with W stored [out, in] (nn.Linear). */
function linear(x: number[], W: { shape: number[]; data: Float64Array }, b?: Float64Array): number[] {
  const [out, inn] = W.shape as [number, number];
  const y = new Array<number>(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < inn; i++) s += x[i]! * W.data[o * inn + i]!;
    y[o] = s;
  }
  return y;
}

const gelu = (u: number) => 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u ** 3)));

/** nanoGPT forward of one sequence: the logits at every position. */
export function referenceLogits(w: Weights, cfg: ModelConfig, tokens: Int32Array): number[][] {
  const C = cfg.dModel, H = cfg.nHead, hs = C / H, T = tokens.length;
  const g = (name: string) => {
    const t = w.get(name);
    assert.ok(t, `missing ${name}`);
    return t;
  };
  let x = Array.from(tokens, (tok, t) => Array.from({ length: C }, (_, c) => g("transformer.wte.weight").data[tok * C + c]! + g("transformer.wpe.weight").data[t * C + c]!));
  for (let l = 0; l < cfg.nLayer; l++) {
    const p = `transformer.h.${l}.`;
    const h1 = x.map((r) => layerNorm(r, g(p + "ln_1.weight").data, g(p + "ln_1.bias").data));
    const qkv = h1.map((r) => linear(r, g(p + "attn.c_attn.weight"), g(p + "attn.c_attn.bias").data));
    const y = x.map(() => new Array<number>(C).fill(0));
    for (let head = 0; head < H; head++) {
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let k = 0; k < hs; k++) d += qkv[t]![head * hs + k]! * qkv[s]![C + head * hs + k]!;
          scores.push(d / Math.sqrt(hs));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((a, v) => a + v, 0);
        for (let s = 0; s <= t; s++) for (let k = 0; k < hs; k++) y[t]![head * hs + k] += (e[s]! / z) * qkv[s]![2 * C + head * hs + k]!;
      }
    }
    x = x.map((r, t) => {
      const a = linear(y[t]!, g(p + "attn.c_proj.weight"), g(p + "attn.c_proj.bias").data);
      return r.map((v, c) => v + a[c]!);
    });
    x = x.map((r) => {
      const h2 = layerNorm(r, g(p + "ln_2.weight").data, g(p + "ln_2.bias").data);
      const u = linear(h2, g(p + "mlp.c_fc.weight"), g(p + "mlp.c_fc.bias").data).map(gelu);
      const m = linear(u, g(p + "mlp.c_proj.weight"), g(p + "mlp.c_proj.bias").data);
      return r.map((v, c) => v + m[c]!);
    });
  }
  const head = w.get("lm_head.weight") ?? g("transformer.wte.weight");
  return x.map((r) => linear(layerNorm(r, g("transformer.ln_f.weight").data, g("transformer.ln_f.bias").data), head));
}

