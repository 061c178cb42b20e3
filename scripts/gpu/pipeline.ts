// The GPU pipeline of issue 9, through the unchanged TypeScript trainer (backend/train) with
// device 'cuda': pretrain a GPT on Brown text with the r50k tokenizer, fine-tune it on the
// multiple-choice tasks (SFT, label smoothing ε = 0.1, evaluation after every epoch), then
// evaluate the final checkpoint (`calib eval`). Records go to data/runs/<id>/ (docs/records.md),
// where the site's loaders find them. Bundled by scripts/gpu/bundle.sh into .device/b/pipeline.mjs
// (the GPU machine has no node_modules); prints one JSON summary on stdout.
//
//   node .device/b/pipeline.mjs [--steps 600] [--epochs 2] [--precision bfloat16] [--quick] [--device cpu] [--max-examples N]
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseTrainConfig, train, evaluateCheckpointDir } from "../../backend/train/index.js";
import { engineInfo } from "../../backend/engine/index.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function runId(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}-${randomBytes(3).toString("hex")}`;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const steps = Number(arg("steps", quick ? "40" : "600"));
  const epochs = Number(arg("epochs", quick ? "1" : "2"));
  process.env.CALIB_CUDA_PRECISION = arg("precision", process.env.CALIB_CUDA_PRECISION ?? "bfloat16");
  const device = arg("device", "cuda") as "cuda" | "cpu";
  const info = engineInfo();
  if (device === "cuda" && (!info.cudaBuilt || info.cudaDevices < 1)) throw new Error(`no GPU: ${info.cudaMessage}`);
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const lap = (name: string, since: number) => (timings[name] = (performance.now() - since) / 1000);

  const model = { nLayer: 4, nHead: 4, dModel: 256, context: 256, tied: true };
  const evalCfg = { maxTokens: quick ? 4096 : 32768, maxQuestions: quick ? 100 : 500, batchSize: 32 };
  const ptId = runId();
  const ptDir = join("data", "runs", ptId);
  let t = performance.now();
  const pt = await train(parseTrainConfig({
    kind: "pretrain", name: `gpu pretrain r50k (${process.env.CALIB_CUDA_PRECISION})`, tokenizer: "r50k", device, model,
    batchSize: 32, steps, evalEvery: Math.max(1, Math.floor(steps / 3)), evalWindows: 64, logEvery: 10,
    loss: { labelSmoothing: 0 }, optim: { lr: 1e-3, warmupSteps: Math.min(100, Math.floor(steps / 5)) }, eval: evalCfg,
  }), { outDir: ptDir, runId: ptId, progress: true });
  lap("pretrain_s", t);

  const sftId = runId();
  const sftDir = join("data", "runs", sftId);
  t = performance.now();
  const sft = await train(parseTrainConfig({
    kind: "sft", name: "gpu sft r50k ε=0.1", init: join(ptDir, "checkpoint"), device, batchSize: 32, epochs,
    maxExamples: Number(arg("max-examples", "0")),
    loss: { labelSmoothing: 0.1 }, eval: evalCfg,
  }), { outDir: sftDir, runId: sftId, progress: true });
  lap("sft_s", t);

  const evId = runId();
  t = performance.now();
  const ev = evaluateCheckpointDir({ checkpoint: join(sftDir, "checkpoint"), outDir: join("data", "runs", evId), runId: evId, device, eval: evalCfg });
  lap("eval_s", t);
  lap("total_s", t0);
  console.log(JSON.stringify({
    device: info.cudaMessage, precision: process.env.CALIB_CUDA_PRECISION, timings,
    runs: [
      { id: pt.runId, kind: pt.kind, steps: pt.steps, completed: pt.completed, metrics: pt.metrics },
      { id: sft.runId, kind: sft.kind, steps: sft.steps, completed: sft.completed, metrics: sft.metrics },
      { id: ev.runId, kind: "eval", metrics: ev.metrics, artifacts: ev.artifacts },
    ],
  }, null, 1));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
