// TEST-ONLY data for the site tests: a temporary data directory with REAL tiny records, made by
// the project's own code in a few seconds on the CPU:
//   runs/fx-pt        a 1-layer, d=32 byte-level GPT pretrained for 60 steps (tokens.arrow, train_log.arrow)
//   runs/fx-sft-0     SFT of fx-pt on pos + cloze for 2 epochs with ε = 0   (questions/tokens at epochs 0, 1, 2)
//   runs/fx-sft-0.1   the same with ε = 0.1 (same questions, so the runs pair up)
//   runs/fxw-pt, fxw-sft-0, fxw-sft-0.1   the same on a 48-person knowledge world with the word-level
//                     vocabulary: held-out questions scored by option and letter, exposures recorded
//   study/fxb.json, study/fxw.json   the two as published studies: fxb the Brown regime, fxw the
//                     knowledge-world regime (marked not evidence), so the pages show a study selector
//   bench/kernels.arrow  wall-clock times of the engine's fused and naive CPU loss at two small shapes,
//                        in the column layout of bench/loss_cuda.ts (card = "CPU (site test fixture)")
//   bench/trainer.arrow  the published trainer benchmark (data/bench/trainer.arrow + _meta.json), copied
//   bench/llama_train.arrow  the published Llama-family training-step benchmark (+ _meta.json), copied
// The SFT runs get calibration.arrow from backend/runs/calibration.ts (when present) so that both
// loader paths run: published calibration rows (SFT) and rows computed by the loader (pretrain).
// Nothing here is a made-up number; the models are just very small.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { writeFileSync } from "node:fs";

export const FIXTURE_RUNS = ["fx-pt", "fx-sft-0", "fx-sft-0.1"] as const;
export const FIXTURE_WORLD_RUNS = ["fxw-pt", "fxw-sft-0", "fxw-sft-0.1"] as const;
export const FIXTURE_WORLD = { seed: 11, people: 48, attributes: { birth_city: 8, employer: 8, birth_year: 10 }, exposures: { min: 1, max: 6 } };

export async function makeFixture(root: string): Promise<void> {
  const { train } = await import("../../backend/train/index.js");
  mkdirSync(join(root, "runs"), { recursive: true });
  await train({
    kind: "pretrain", name: "fx-pretrain", tokenizer: "byte", model: { nLayer: 1, nHead: 2, dModel: 32, context: 256 }, batchSize: 8, steps: 60,
    optim: { lr: 3e-3, warmupSteps: 5 }, evalEvery: 30, evalWindows: 8, logEvery: 10, eval: { maxTokens: 1024, tasks: ["pos"], maxQuestions: 0 },
  }, { outDir: join(root, "runs", "fx-pt"), progress: false });
  for (const eps of [0, 0.1]) {
    const id = `fx-sft-${eps}`;
    await train({
      kind: "sft", name: id, init: join(root, "runs", "fx-pt", "checkpoint"), tasks: ["pos", "cloze"], maxExamples: 100, epochs: 2, batchSize: 16,
      loss: { labelSmoothing: eps }, optim: { lr: 2e-3, warmupSteps: 2 }, logEvery: 2, eval: { maxTokens: 512, tasks: ["pos", "cloze"], maxQuestions: 80 },
    }, { outDir: join(root, "runs", id), progress: false });
    const cal = (await import("../../backend/records/calibration.js").catch(() => null)) as
      | { writeRunCalibration?: (dir: string, runId: string, o: { resamples: number; seed: number }) => number } | null;
    cal?.writeRunCalibration?.(join(root, "runs", id), id, { resamples: 200, seed: 0 });
  }
  // the knowledge world: base model and two SFT runs (chat format), option and letter scoring
  await train({
    kind: "pretrain", name: "fxw-pretrain", tokenizer: "word", seed: 0, world: { config: FIXTURE_WORLD, scoring: ["option", "letter"] },
    model: { nLayer: 1, nHead: 2, dModel: 32, context: 64 }, batchSize: 8, steps: 40, optim: { lr: 3e-3, warmupSteps: 5 }, evalEvery: 20, evalWindows: 4,
    logEvery: 10, eval: { maxTokens: 256, maxQuestions: 24, batchSize: 16 },
  }, { outDir: join(root, "runs", "fxw-pt"), progress: false });
  for (const eps of [0, 0.1]) {
    const id = `fxw-sft-${eps}`;
    await train({
      kind: "sft", name: id, init: join(root, "runs", "fxw-pt", "checkpoint"), seed: 0, world: { scoring: ["option", "letter"] }, epochs: 1, batchSize: 8,
      maxExamples: 40, loss: { labelSmoothing: eps }, optim: { lr: 2e-3, warmupSteps: 2 }, logEvery: 2, eval: { maxTokens: 0, maxQuestions: 24, batchSize: 16 },
    }, { outDir: join(root, "runs", id), progress: false });
  }
  const { writeRunCalibration } = await import("../../backend/records/calibration.js");
  for (const id of FIXTURE_WORLD_RUNS) writeRunCalibration(join(root, "runs", id), id, { resamples: 200, seed: 0 });
  mkdirSync(join(root, "study"), { recursive: true });
  const manifest = (name: string, regime: string, evidence: boolean, ids: readonly string[], title: string) => writeFileSync(join(root, "study", `${name}.json`), JSON.stringify({
    format: "calib-study/1", name, title, description: null, regime, evidence, source: `${name}.json`, device: "cpu (site test fixture)", published_at: "2026-01-01T00:00:00Z",
    execution: null, runs: ids.map((id) => ({ id, kind: id.includes("sft") ? "sft" : "pretrain", parent: null, arm: null, point: {}, status: "succeeded", seconds: null, published: true })), bytes: 0,
  }, null, 1));
  manifest("fxb", "brown", true, FIXTURE_RUNS, "Site fixture: Brown corpus");
  manifest("fxw", "world", false, FIXTURE_WORLD_RUNS, "Site fixture: knowledge world");
  await writeKernelBench(join(root, "bench", "kernels.arrow"));
  for (const f of ["trainer.arrow", "trainer_meta.json", "llama_train.arrow", "llama_train_meta.json"]) copyFileSync(join(PUBLISHED_BENCH, f), join(root, "bench", f));
}

/** data/bench/ of the checkout: the published benchmarks. */
export const PUBLISHED_BENCH = join(import.meta.dirname, "..", "..", "data", "bench");

/** Median wall-clock time of the fused and naive CPU loss (real engine calls), as kernels.arrow rows,
 *  and, in kernels_meta.json, the same two timed round-robin (as the GPU harness's `interleaved`). */
async function writeKernelBench(file: string): Promise<void> {
  const { linearCrossEntropy } = await import("../../backend/engine/index.js");
  const { rng, normals, integers } = await import("../helpers/random.js");
  const inputs = (N: number, D: number, V: number, seed: number) => {
    const r = rng(seed);
    const e = { data: normals(r, N * D), rows: N, cols: D };
    const c = { data: normals(r, V * D, 1 / Math.sqrt(D)), rows: V, cols: D };
    return { e, c, t: integers(r, N, V) };
  };
  const rows: Array<{ impl: string; n: number; d: number; v: number; pass: string; time_ms: number }> = [];
  for (const [N, D, V] of [[256, 64, 2048], [512, 64, 4096]] as const) {
    const { e, c, t } = inputs(N, D, V, 7);
    for (const impl of ["fused", "naive"] as const) {
      for (const grad of [false, true]) {
        const ms: number[] = [];
        for (let k = 0; k < 3; k++) {
          const t0 = performance.now();
          linearCrossEntropy(e, c, t, { labelSmoothing: 0.1, grad, impl, threads: 1 });
          ms.push(performance.now() - t0);
        }
        rows.push({ impl: impl === "fused" ? "ours" : "naive", n: N, d: D, v: V, pass: grad ? "fwd+bwd" : "fwd", time_ms: ms.sort((a, b) => a - b)[1]! });
      }
    }
  }
  const now = new Date().toISOString();
  const table = new Table({
    impl: vectorFromArray(rows.map((x) => x.impl), new Utf8()),
    n: vectorFromArray(rows.map((x) => x.n), new Int32()),
    d: vectorFromArray(rows.map((x) => x.d), new Int32()),
    v: vectorFromArray(rows.map((x) => x.v), new Int32()),
    regime: vectorFromArray(rows.map(() => "random"), new Utf8()),
    pass: vectorFromArray(rows.map((x) => x.pass), new Utf8()),
    time_ms: vectorFromArray(rows.map((x) => x.time_ms), new Float64()),
    extra_bytes: vectorFromArray(rows.map(() => null), new Float64()),
    card: vectorFromArray(rows.map(() => "CPU (site test fixture)"), new Utf8()),
    note: vectorFromArray(rows.map(() => "1 thread, median of 3"), new Utf8()),
    measured_at: vectorFromArray(rows.map(() => now), new Utf8()),
  });
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, tableToIPC(table, "stream"));
  // round-robin: one call of each per round, fwd+bwd at the first shape
  const [N, D, V] = [256, 64, 2048];
  const { e, c, t } = inputs(N, D, V, 8);
  const times: Record<string, number[]> = { ours: [], naive: [] };
  for (let round = 0; round < 5; round++)
    for (const [name, impl] of [["ours", "fused"], ["naive", "naive"]] as const) {
      const t0 = performance.now();
      linearCrossEntropy(e, c, t, { labelSmoothing: 0.1, grad: true, impl, threads: 1 });
      times[name]!.push(performance.now() - t0);
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const meta = {
    card: "CPU (site test fixture)", eps: 0.1, started: now, floors: [], skipped: [], errors: [],
    interleaved: [{ n: N, d: D, v: V, regime: "random", rounds: 5, ms: { ours: median(times.ours!), naive: median(times.naive!) } }],
  };
  writeFileSync(file.replace(/\.arrow$/, "") + "_meta.json", JSON.stringify(meta, null, 1) + "\n");
}
