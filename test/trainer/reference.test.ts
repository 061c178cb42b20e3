// The forward pass of a saved checkpoint against an independent float64 implementation of the
// same equations (nanoGPT's GPT), written here: it reads model.safetensors with its own parser
// and never calls the engine. The engine's logits, logsumexp, probabilities, entropy, top-5
// and label-smoothed loss must match to 1e-5.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { GptModel, type ModelConfig } from "../../backend/engine/index.js";
import { saveCheckpoint } from "../../backend/train/index.js";
import { ints, normal, rng, tempDir } from "./helpers.js";
import { readWeights, referenceLogits } from "./gpt-reference.js";

function transform(z: number[], T: number, cap: number): number[] {
  return z.map((v) => (cap > 0 ? cap * Math.tanh(v / T / cap) : v / T));
}

function logSumExp(s: number[]): number {
  const m = Math.max(...s);
  return m + Math.log(s.reduce((a, v) => a + Math.exp(v - m), 0));
}

for (const tied of [true, false]) {
  test(`forward of a saved ${tied ? "tied" : "untied"} checkpoint = float64 reference (logits, lse, p, entropy, top-5, loss) to 1e-5`, (t) => {
    const cfg: ModelConfig = { nLayer: 2, nHead: 2, dModel: 16, context: 30, vocab: 23, tied };
    const { dir, cleanup } = tempDir("ref");
    try {
      const model = GptModel.create(cfg, { maxBatch: 2 });
      model.init(11, 0.3); // a larger std than GPT-2's 0.02: logits of order 1, not near-uniform
      const rand = rng(12);
      // LayerNorm weights and biases away from 1 and 0 so that every term of the equations matters
      const params = model.getParams() as Float32Array;
      for (const ti of model.tensors()) if (ti.name.startsWith("ln")) for (let i = 0; i < ti.numel; i++) params[ti.offset + i] = (ti.name.endsWith("w") ? 1 : 0) + 0.3 * normal(rand);
      model.setParams(params);
      saveCheckpoint(dir, model, { tokenizer: null });
      const w = readWeights(join(dir, "model.safetensors"));
      assert.equal(w.has("lm_head.weight"), !tied);

      const b = 2, T = 30, V = cfg.vocab;
      const inputs = ints(rand, b * T, V), targets = ints(rand, b * T, V);
      const ref = [0, 1].flatMap((r) => referenceLogits(w, cfg, inputs.subarray(r * T, (r + 1) * T)));
      const all = Int32Array.from({ length: V }, (_, i) => i);
      for (const [temperature, softcap] of [[1, 0], [0.7, 2.5]] as const) {
        const e = model.evaluate({ inputs, targets, b, t: T }, { optionIds: all, topK: 5, temperature, softcap });
        let worst = 0;
        for (let i = 0; i < b * T; i++) {
          const s = transform(ref[i]!, temperature, softcap);
          const lse = logSumExp(s);
          const p = s.map((v) => Math.exp(v - lse));
          const entropy = -p.reduce((a, q) => a + q * Math.log(q), 0);
          const order = p.map((q, k) => [q, k] as const).sort((x, y) => y[0] - x[0]);
          for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(e.optionLogits![i * V + v]! - s[v]!));
          worst = Math.max(worst, Math.abs(e.lse[i]! - lse), Math.abs(e.entropy[i]! - entropy), Math.abs(e.pTarget![i]! - p[targets[i]!]!),
            Math.abs(e.pMax[i]! - order[0]![0]), Math.abs(e.nll![i]! + Math.log(p[targets[i]!]!)));
          assert.equal(e.argmax[i], order[0]![1], `argmax at row ${i}`);
          for (let k = 0; k < 5; k++) {
            assert.equal(e.topIds[i * 5 + k], order[k]![1], `top-${k + 1} id at row ${i}`);
            worst = Math.max(worst, Math.abs(e.topP[i * 5 + k]! - order[k]![0]));
          }
        }
        assert.ok(worst < 1e-5, `T=${temperature} cap=${softcap}: largest difference ${worst}`);
        const scale = Math.max(...ref.flat().map(Math.abs));
        t.diagnostic(`T=${temperature} softcap=${softcap}: largest difference to the reference ${worst.toExponential(2)} (largest |logit| ${scale.toFixed(2)})`);
      }
      // the training loss (fused op) with smoothing, temperature and softcap
      for (const loss of [{ labelSmoothing: 0 }, { labelSmoothing: 0.1, temperature: 0.8, softcap: 3 }]) {
        const eps = loss.labelSmoothing, Tt = loss.temperature ?? 1, cap = loss.softcap ?? 0;
        let want = 0;
        for (let i = 0; i < b * T; i++) {
          const s = transform(ref[i]!, Tt, cap);
          const lse = logSumExp(s);
          want += Tt * (lse - (1 - eps) * s[targets[i]!]! - (eps / V) * s.reduce((a, v) => a + v, 0));
        }
        const got = model.forward({ inputs, targets, b, t: T }, loss).lossSum;
        assert.ok(Math.abs(got - want) / want < 1e-5, `loss ${got} vs reference ${want}`);
        t.diagnostic(`loss ε=${eps} T=${Tt} cap=${cap}: relative difference ${(Math.abs(got - want) / want).toExponential(2)}`);
      }
      model.free();
    } finally {
      cleanup();
    }
  });
}
