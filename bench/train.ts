// npm run bench -- train [--steps 3] [--batch 8] [--tokenizers byte,r50k] [--threads N]
// CPU training throughput of the engine's GPT (d_model 256, 4 layers, 4 heads, context 256)
// on Brown batches: one optimizer step = zero grads + forward/backward (fused label-smoothed
// loss, ε = 0.1) + gradient norm + AdamW. Each tokenizer runs with all threads and with one
// thread (the baseline of the speed-up column), in this process, after one warm-up step.
import { cpus } from "node:os";
import { formatTable } from "../backend/term/table.js";

interface Row {
  tokenizer: string;
  vocab: number;
  params: number;
  threads: number;
  stepMs: number;
  fbMs: number;
  optMs: number;
  evalMs: number;
  tokensPerS: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const steps = Number(arg("steps") ?? 3);
  const B = Number(arg("batch") ?? 8);
  const all = Number(arg("threads") ?? 0);
  const names = (arg("tokenizers") ?? "byte,r50k").split(",");
  if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(B) || B < 1) throw new RangeError("--steps and --batch must be positive integers");
  const { GptModel, setThreads, engineInfo } = await import("../backend/engine/index.js");
  const { tokenizer, prepareSplits, lmBatches } = await import("../backend/data/index.js");
  const T = 256, cfg = { nLayer: 4, nHead: 4, dModel: 256, context: T, tied: true };
  const threadsAll = all > 0 ? all : engineInfo().cpuThreads;
  const rows: Row[] = [];
  for (const name of names) {
    const tok = tokenizer(name as "byte");
    const data = prepareSplits({ tokenizer: tok, progress: true });
    const epoch = lmBatches(data.splits.train, { contextLength: T, batchSize: B, seed: 0, dropLast: true });
    const model = GptModel.create({ ...cfg, vocab: tok.vocabSize }, { maxBatch: B });
    model.init(0);
    for (const threads of [threadsAll, 1]) {
      setThreads(threads);
      const fb: number[] = [], opt: number[] = [], ev: number[] = [];
      for (let s = 0; s <= steps; s++) {
        const b = epoch.batch(s % epoch.numBatches);
        const batch = { inputs: b.inputs, targets: b.targets, b: B, t: T };
        const t0 = performance.now();
        model.zeroGrad();
        model.forwardBackward(batch, { labelSmoothing: 0.1 });
        const t1 = performance.now();
        const { norm } = model.gradNorm();
        model.adamw({ lr: 1e-4, weightDecay: 0.1, gradScale: Math.min(1, 1 / (norm + 1e-6)), step: s + 1 });
        const t2 = performance.now();
        model.forward(batch, {});
        const t3 = performance.now();
        if (s === 0) continue; // warm-up
        fb.push(t1 - t0);
        opt.push(t2 - t1);
        ev.push(t3 - t2);
      }
      const stepMs = median(fb.map((x, i) => x + opt[i]!));
      rows.push({
        tokenizer: name, vocab: tok.vocabSize, params: model.numParams, threads, stepMs, fbMs: median(fb), optMs: median(opt), evalMs: median(ev),
        tokensPerS: (B * T) / (stepMs / 1000),
      });
      process.stderr.write(`${name} threads=${threads}: ${stepMs.toFixed(0)} ms/step\n`);
    }
    model.free();
  }
  setThreads(0);
  console.log(`\nCPU training throughput — GPT d_model 256, 4 layers, 4 heads, context ${T}, batch ${B} (${B * T} tokens/step), ε=0.1, tied head`);
  console.log(`machine: ${cpus()[0]?.model ?? "?"} × ${cpus().length}; median of ${steps} steps after 1 warm-up\n`);
  console.log(formatTable(
    ["tokenizer", "V", "params", "threads", "step ms", "fwd+bwd ms", "AdamW+norm ms", "forward ms", "tokens/s", "speed-up vs 1 thread"],
    rows.map((r) => {
      const base = rows.find((x) => x.tokenizer === r.tokenizer && x.threads === 1)!;
      return [r.tokenizer, String(r.vocab), `${(r.params / 1e6).toFixed(2)}M`, String(r.threads), r.stepMs.toFixed(0), r.fbMs.toFixed(0), r.optMs.toFixed(1),
        r.evalMs.toFixed(0), String(Math.round(r.tokensPerS)), `${(base.stepMs / r.stepMs).toFixed(2)}×`];
    }),
    { style: "markdown" },
  ));
}
