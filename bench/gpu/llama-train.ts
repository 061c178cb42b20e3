// Our engine's training step for the Llama family on one GPU (issues 19 and 21): the shapes of a real model
// (its config.json fields, every layer, random weights from calib_model_init), bf16 mixed precision, random
// token ids at batch × context, ε = 0.1, and per step what `calib train` does: zero the gradients, one
// forward + backward through the fused LM head, the gradient norm, AdamW (clipping at 1). Prints one JSON line:
// median step time, tokens/s, and the GPU memory the process holds after the steps (nvidia-smi's per-process
// figure, else the device's use minus what was in use before: the engine allocates its buffers once, so this
// is its peak, with the CUDA context). Bundled by scripts/gpu/bundle-trainer.sh as .device/b/llama-bench.mjs; run by
// scripts/gpu/llama-job.sh beside transformers' own step (bench/gpu/llama_step.py).
//   node .device/b/llama-bench.mjs --model llama-3.2-1b|qwen2.5-0.5b [--batch 4] [--context 2048] [--steps 12]
//                                  [--plans WS:K,…] [--out FILE.jsonl]
// --plans: the engine plans to time, one model each in turn on the same initial weights: WS the LM head's logit
// workspace in MiB (headWorkspaceBytes; 4096 is the trainer's default), K the layers that recompute their
// activations (checkpointLayers; 'all' for every layer). Default 4096:0.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { GptModel, type Batch } from "../../backend/engine/index.js";
import { parseHfConfig } from "../../backend/hf/config.js";
import realModels from "./real_models.json" with { type: "json" };

/** config.json of the real models (the fields that set the shapes; random weights): bench/gpu/real_models.json, which
 * hf_parity.py and llama_step.py read too; the two this benchmark times. */
const REAL: Record<string, Record<string, unknown>> = Object.fromEntries(
  (["llama-3.2-1b", "qwen2.5-0.5b"] as const).map((name) => {
    const m = realModels[name];
    return [name, { model_type: m.model_type, num_hidden_layers: m.num_hidden_layers, ...m.config }];
  }),
);

function gpuMemoryMiB(): number {
  const out = execFileSync("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"], { encoding: "utf8" });
  return Number(out.trim().split("\n")[0]);
}
/** This process's GPU memory as nvidia-smi lists it (null where the container hides the process list). */
function processMemoryMiB(): number | null {
  const out = execFileSync("nvidia-smi", ["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], { encoding: "utf8" });
  for (const line of out.trim().split("\n")) {
    const [pid, mib] = line.split(",").map((x) => Number(x.trim()));
    if (pid === process.pid) return mib!;
  }
  return null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "llama-3.2-1b" }, batch: { type: "string", default: "4" }, context: { type: "string", default: "2048" },
    steps: { type: "string", default: "12" }, plans: { type: "string", default: "4096:0" }, out: { type: "string" },
  },
});
const raw = REAL[values.model!];
if (!raw) throw new RangeError(`--model must be one of ${Object.keys(REAL).join(", ")}`);
const B = Number(values.batch), T = Number(values.context), steps = Number(values.steps);
const spec = parseHfConfig(raw, `${values.model} config.json`, { context: T });
const plans = values.plans!.split(",").map((p) => {
  const [ws, k] = p.split(":");
  const plan = { headWorkspaceBytes: Number(ws) * 2 ** 20, checkpointLayers: k === "all" ? spec.model.nLayer : Number(k) };
  if (!Number.isSafeInteger(plan.headWorkspaceBytes) || plan.headWorkspaceBytes < 0 || !Number.isInteger(plan.checkpointLayers))
    throw new RangeError(`--plans: '${p}' is not WORKSPACE_MIB:LAYERS`);
  return plan;
});
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const V = spec.model.vocab;
const batch = (): Batch => {
  const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    inputs[i] = Math.floor(rand() * V);
    targets[i] = Math.floor(rand() * V);
  }
  return { inputs, targets, b: B, t: T };
};
const batches = Array.from({ length: 3 }, batch);
let weights: Float32Array | null = null;
const lines: string[] = [];
for (const plan of plans) {
  const before = gpuMemoryMiB();
  const t0 = performance.now();
  const model = GptModel.create(spec.model, { maxBatch: B, device: "cuda", precision: "bfloat16", ...plan });
  if (weights) model.setParams(weights);
  else {
    model.init(1234);
    weights = model.getParams() as Float32Array;
  }
  const setup = (performance.now() - t0) / 1000;
  const times: number[] = [], losses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const t = performance.now();
    model.zeroGrad();
    const r = model.forwardBackward(batches[s % batches.length]!, { labelSmoothing: 0.1 });
    const { norm } = model.gradNorm();
    model.adamw({ lr: 1e-5, weightDecay: 0.1, gradScale: Math.min(1, 1 / (norm + 1e-6)), step: s });
    times.push((performance.now() - t) / 1000);
    losses.push(r.lossSum / r.validCount);
  }
  model.gradNorm(); // waits for the last AdamW
  const held = gpuMemoryMiB();
  const own = processMemoryMiB();
  const warm = Math.min(3, steps - 1);
  const stepS = median(times.slice(warm));
  const result = {
    engine: "calib", model: values.model, params: model.numParams, batch: B, context: T, checkpoint_layers: plan.checkpointLayers,
    head_workspace_bytes: plan.headWorkspaceBytes, steps, step_ms: stepS * 1e3, tokens_per_s: (B * T) / stepS,
    gpu_mib: own ?? held - before, gpu_mib_source: own === null ? "device total − before" : "process", setup_s: setup, losses, step_times_s: times,
  };
  model.free();
  lines.push(JSON.stringify(result));
  console.log(lines[lines.length - 1]);
}
if (values.out) writeFileSync(values.out, lines.join("\n") + "\n");
