// Issue 19's CPU acceptance: tiny random models of each family (Llama 3, Qwen2, Mistral, Gemma 2),
// written in Hugging Face's format by the test (test/hf/fixtures.ts: config.json, safetensors in
// BF16 / F16 / F32, tokenizer files), load through backend/hf into the engine (float32, CPU), and
// their forward logits and lse (eval), label-smoothed loss (ε = 0.1) and gradients match the
// float64 reference of test/engine/llama-reference.ts. The reference's configuration is written
// here by hand from config.json (transformers' semantics), and its weights are the values the test
// stored (decoded by hand), laid out by the fixtures' own name map — nothing of backend/hf.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { GptModel, type ModelConfig } from "../../backend/engine/index.js";
import { loadHfModel } from "../../backend/hf/index.js";
import { llamaReference, type Tensors } from "../engine/llama-reference.js";
import { referenceConfig, referenceTensors } from "./reference.js";
import { ints, rng } from "../trainer/helpers.js";
import { gemmaTokenizerFiles, llama3TokenizerFiles, tinyConfig, withTemp, writeTinyModel, type Dtype, type Family } from "./fixtures.js";

const f = Math.fround;
const EPS = 0.1;

interface Case {
  family: Family;
  dtype: Dtype;
  /** config.json changes that make the windows and soft-caps bite at T = 10 */
  config: Record<string, unknown>;
}

const CASES: Case[] = [
  { family: "llama", dtype: "BF16", config: {} },                       // llama3 rope scaling (a smoothed band at head_dim 4), GQA 4/2, tied
  { family: "qwen2", dtype: "F16", config: {} },                        // q/k/v biases, tied
  { family: "mistral", dtype: "F32", config: { sliding_window: 4 } },   // window 4 on every layer, untied
  { family: "gemma2", dtype: "BF16", config: { sliding_window: 3, attn_logit_softcapping: 1.5, final_logit_softcapping: 2.5 } },
];

interface Loaded {
  model: GptModel;
  ref: { cfg: ModelConfig; softcap: number };
  weights: Tensors;
  batch: { inputs: Int32Array; targets: Int32Array; b: number; t: number };
}

function load(dir: string, c: Case, seed: number): Loaded {
  const files = c.family === "gemma2" ? gemmaTokenizerFiles() : llama3TokenizerFiles();
  const written = writeTinyModel(join(dir, c.family), c.family, { dtype: c.dtype, seed, files, config: { ...tinyConfig(c.family), ...c.config } });
  const b = 2, t = 10;
  const hf = loadHfModel(written.dir, { context: 16 });
  assert.equal(hf.spec.family, c.family);
  const model = GptModel.create(hf.spec.model, { maxBatch: b, precision: "float32", threads: 2 });
  model.write("params", hf.weights.params);
  const ref = referenceConfig(c.family, written.config, 16);
  assert.equal(hf.spec.finalSoftcap ?? 0, ref.softcap, "final soft-cap");
  const rand = rng(seed + 1);
  const V = written.config.vocab_size as number;
  const inputs = ints(rand, b * t, V);
  const targets = ints(rand, b * t, V);
  for (let i = 2; i < targets.length; i += 4) targets[i] = -100;
  return { model, ref, weights: referenceTensors(written), batch: { inputs, targets, b, t } };
}

const loss = (x: Loaded) => ({ labelSmoothing: EPS, softcap: x.ref.softcap });
const refRun = (x: Loaded, w = x.weights) => llamaReference(x.ref.cfg, w, x.batch.inputs, x.batch.targets, x.batch.b, x.batch.t, { labelSmoothing: f(EPS), softcap: x.ref.softcap });

for (const c of CASES) {
  test(`${c.family} (${c.dtype} safetensors) through backend/hf: logits, lse and the ε = 0.1 loss of the float32 engine match the float64 reference`, (t) => {
    withTemp(`engine-${c.family}`, (dir) => {
      const x = load(dir, c, 3);
      const ref = refRun(x);
      const V = x.ref.cfg.vocab, n = x.batch.b * x.batch.t;
      // raw logits z through eval's option logits (every id, no transform)
      const all = Int32Array.from({ length: V }, (_, i) => i);
      const raw = x.model.evaluate(x.batch, { optionIds: all, topK: 0 });
      let worstZ = 0, scale = 0;
      for (let i = 0; i < n; i++) for (let k = 0; k < V; k++) {
        const z = ref.logits[i]![k]!;
        scale = Math.max(scale, Math.abs(z));
        worstZ = Math.max(worstZ, Math.abs(raw.optionLogits![i * V + k]! - z) / Math.max(1, Math.abs(z)));
      }
      // lse of the model's distribution (Gemma 2: of the soft-capped logits)
      const ev = x.model.evaluate(x.batch, { softcap: x.ref.softcap, topK: 0 });
      let worstLse = 0;
      for (let i = 0; i < n; i++) worstLse = Math.max(worstLse, Math.abs(ev.lse[i]! - ref.lse[i]!) / Math.max(1, Math.abs(ref.lse[i]!)));
      const got = x.model.forward(x.batch, loss(x));
      const relLoss = Math.abs(got.lossSum - ref.lossSum) / Math.abs(ref.lossSum);
      t.diagnostic(`largest |z| ${scale.toFixed(2)}; relative errors: logits ${worstZ.toExponential(2)}, lse ${worstLse.toExponential(2)}, loss ${relLoss.toExponential(2)} (${got.lossSum.toFixed(6)} vs ${ref.lossSum.toFixed(6)})`);
      assert.equal(got.validCount, ref.valid);
      assert.ok(worstZ < 2e-5, `logits: relative error ${worstZ}`);
      assert.ok(worstLse < 2e-5, `lse: relative error ${worstLse}`);
      assert.ok(relLoss < 1e-5, `loss: relative error ${relLoss}`);
      x.model.free();
    });
  });

  test(`${c.family}: the float32 engine's gradients of the ε = 0.1 loss match central differences of the float64 reference (6 elements of every tensor)`, (t) => {
    withTemp(`grad-${c.family}`, (dir) => {
      const x = load(dir, c, 5);
      x.model.zeroGrad();
      x.model.forwardBackward(x.batch, loss(x), 1); // gradients of the loss sum
      const grads = x.model.getGrads();
      const h = 1e-5; // float64 central differences: truncation error ~h², rounding ~1e-16·loss/h
      let worst = 0, where = "", checked = 0;
      for (const ti of x.model.tensors()) {
        const g = grads.subarray(ti.offset, ti.offset + ti.numel);
        let gmax = 0;
        for (const v of g) gmax = Math.max(gmax, Math.abs(v));
        assert.ok(gmax > 1e-4, `${ti.name}: the gradient is all (near) zero`);
        const w = x.weights.get(ti.name)!;
        const r = rng(ti.offset + 11);
        for (const k of new Set(Array.from({ length: 6 }, () => Math.floor(r() * ti.numel)))) {
          const v0 = w.data[k]!;
          w.data[k] = v0 + h;
          const up = refRun(x).lossSum;
          w.data[k] = v0 - h;
          const down = refRun(x).lossSum;
          w.data[k] = v0;
          const fd = (up - down) / (2 * h);
          // float32 tolerance: relative to the tensor's largest gradient and to the element's own
          const err = Math.abs(g[k]! - fd) / (2e-5 * gmax + 2e-4 * Math.abs(fd));
          if (err > worst) [worst, where] = [err, `${ti.name}[${k}]: engine ${g[k]}, reference ${fd}`];
          checked++;
        }
      }
      t.diagnostic(`${checked} elements: worst ${worst.toFixed(3)}× the tolerance (${where})`);
      assert.ok(worst < 1, `${worst}× the tolerance at ${where}`);
      x.model.free();
    });
  });
}
