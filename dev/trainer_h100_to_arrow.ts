// Run once (issue 17): the H100 trainer benchmark of issue 9, kept until then in bench/gpu/trainer_h100.json,
// published as data/bench/trainer.arrow (+ trainer_meta.json) in the format the GPU job now writes itself
// (bench/train_cuda.ts), until that job measures it again with the current engine:
//   git show e00b3b3:bench/gpu/trainer_h100.json > /tmp/trainer_h100.json
//   node --import tsx dev/trainer_h100_to_arrow.ts /tmp/trainer_h100.json
// It takes the final job's rows (bench_job3). That job timed two LM heads: 'ours-fused' (the fused loss, the
// default head since) is reported as 'ours'; its 'ours' (the chunked cuBLAS head, not the default) is left out.
// The JSON's rows lack the model sizes, which come from bench/gpu/gpt_ref.py's CONFIGS (read through python3).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fromBenchall, TRAINER_ARROW, writeTrainerBench } from "../bench/train_cuda.js";

const src = process.argv[2];
if (!src) throw new Error("usage: node --import tsx dev/trainer_h100_to_arrow.ts trainer_h100.json");
const old = JSON.parse(readFileSync(src, "utf8")) as { device: string; torch: string; bench_job3: Array<Record<string, unknown>> };
const configs = JSON.parse(execFileSync("python3", ["-c",
  "import json, sys; sys.path.insert(0, 'bench/gpu'); import gpt_ref; print(json.dumps(gpt_ref.CONFIGS))"], { encoding: "utf8" })) as
  Record<string, { nLayer: number; nHead: number; dModel: number; context: number; vocab: number }>;
const rows = old.bench_job3.filter((r) => r.impl !== "ours").map((r) => {
  const c = configs[r.config as string]!;
  return { ...r, impl: r.impl === "ours-fused" ? "ours" : r.impl, n_layer: c.nLayer, n_head: c.nHead, d_model: c.dModel, context: c.context, vocab: c.vocab };
});
// The job's day (its pipeline runs are named 20261126-1013…); driver from the JSON's "about".
const { rows: out, meta } = fromBenchall({ started: "2026-11-26", card: old.device, driver: "580.159.04", torch: old.torch, rows }, "0bcb21d");
meta.description += " Measured by the job of issue 9 on the engine committed with it (0bcb21d), then 'ours-fused'; " +
  "converted from bench/gpu/trainer_h100.json (bench_job3) by dev/trainer_h100_to_arrow.ts.";
writeTrainerBench(TRAINER_ARROW, out, meta);
console.log(`wrote ${TRAINER_ARROW}: ${out.length} rows`);
