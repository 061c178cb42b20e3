// npm run bench -- train-cuda [--json FILE] [--run] [--impls ours,eager,compile] [--configs gpt2-124m,d256-v200k]
// The CUDA trainer (issue 9) against PyTorch on one GPU: training tokens/s and peak memory of the
// engine's CUDA model (bf16 mixed precision) and of the same GPT in PyTorch (bf16 autocast, eager and
// torch.compile), for GPT-2 124M (d 768 / 12 layers / context 1024 / V 50257, batch 16) and a
// large-vocabulary small model (d 256 / 4 layers / context 256 / V 200019, batch 64).
//   --run   measure now (needs a GPU, python3 with torch, and .device/libcalib_model.so from
//           scripts/gpu/bundle-trainer.sh): runs bench/gpu/gpt_ref.py benchall, every impl × config
//           in its own process, and writes --json (default data/scratch/train_cuda.json)
//   else    prints the tables of a finished job's JSON (default bench/gpu/trainer_h100.json, the
//           committed H100 run of scripts/gpu/trainer-job.sh)
// Ratios are against PyTorch eager and torch.compile measured in the same job.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { formatTable } from "../backend/term/table.js";

interface Row {
  impl: string;
  config: string;
  batch?: number;
  tokens_per_s?: number;
  step_ms?: number;
  peak_mib?: number;
  profile?: string;
  error?: unknown;
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

function table(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  const configs = [...new Set(rows.map((r) => r.config))];
  const cells: string[][] = [];
  for (const c of configs) {
    const of = (impl: string) => rows.find((r) => r.config === c && r.impl === impl && r.tokens_per_s);
    const eager = of("eager"), compiled = of("compile");
    for (const r of rows.filter((x) => x.config === c)) {
      if (!r.tokens_per_s) {
        cells.push([c, r.impl, `error: ${JSON.stringify(r.error)}`, "", "", "", "", ""]);
        continue;
      }
      const x = (b?: Row) => (b?.tokens_per_s ? (r.tokens_per_s! / b.tokens_per_s).toFixed(2) : "–");
      const mem = eager?.peak_mib ? (r.peak_mib! / eager.peak_mib).toFixed(2) : "–";
      cells.push([c, r.impl, Math.round(r.tokens_per_s).toLocaleString("en-US"), r.step_ms!.toFixed(1), Math.round(r.peak_mib!).toLocaleString("en-US"), x(eager), x(compiled), mem]);
    }
  }
  console.log(formatTable(["config", "impl", "tokens/s", "step ms", "peak MiB", "× eager", "× compile", "memory / eager"], cells,
    { style: "markdown", align: ["left", "left", "right", "right", "right", "right", "right", "right"] }));
  for (const r of rows) if (r.profile) console.log(`  ${r.config} ${r.impl}: ${r.profile.replace(/^calib profile /, "")}`);
}

export async function main(argv: string[]): Promise<void> {
  const run = argv.includes("--run");
  const file = arg(argv, "json") ?? (run ? "data/scratch/train_cuda.json" : "bench/gpu/trainer_h100.json");
  if (run) {
    const { cudaAvailable, engineInfo } = await import("../backend/engine/index.js");
    if (!cudaAvailable()) throw new Error(`train-cuda --run needs a GPU: ${engineInfo().cudaMessage}`);
    if (!existsSync(".device/libcalib_model.so")) throw new Error("run scripts/gpu/bundle-trainer.sh first (.device/libcalib_model.so is missing)");
    mkdirSync(dirname(file), { recursive: true });
    const r = spawnSync("python3", ["bench/gpu/gpt_ref.py", "benchall", "--out", file,
      "--impls", arg(argv, "impls") ?? "ours,eager,compile", "--configs", arg(argv, "configs") ?? "gpt2-124m,d256-v200k"], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`bench/gpu/gpt_ref.py exited with ${r.status}`);
  }
  if (!existsSync(file)) throw new Error(`${file} not found (run with --run on a GPU machine, or scripts/gpu/trainer-job.sh bench)`);
  const j = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  const device = (j.device as string | undefined) ?? "unknown GPU";
  if (Array.isArray(j.rows)) {
    table(`CUDA trainer vs PyTorch (${device})`, j.rows as Row[]);
    return;
  }
  table(`CUDA trainer vs PyTorch, final job (${device}, torch ${String(j.torch)}); ours-fused is the default head`, j.bench_job3 as Row[]);
  table("earlier job (fused head, before the 32-bit index fix of the permutes)", j.bench_job2 as Row[]);
  for (const key of ["numerics_init", "numerics_checkpoint"]) {
    const n = j[key] as { source: string; rows: { impl: string; rel_err: number; argmax_agree?: number }[] } | undefined;
    if (!n) continue;
    console.log(`\nlogits vs PyTorch fp32 forward (${n.source}): relative Frobenius error`);
    for (const r of n.rows) console.log(`  ${r.impl.padEnd(22)} ${r.rel_err.toExponential(2)}${r.argmax_agree !== undefined ? `  argmax agreement ${r.argmax_agree.toFixed(4)}` : ""}`);
  }
  for (const key of ["curve_job2_fused_head", "curve_job3_cublas_head"]) {
    const c = j[key] as { steps: number; runs: Record<string, { max_rel: number; mean_rel: number; final_ours: number; final_torch: number }> } | undefined;
    if (!c) continue;
    console.log(`\nloss curve, first ${c.steps} steps, ε = 0.1 (${key.replace("curve_", "")}): |ours − torch| / torch`);
    for (const [p, r] of Object.entries(c.runs)) console.log(`  ${p.padEnd(9)} max ${(100 * r.max_rel).toFixed(3)}%  mean ${(100 * r.mean_rel).toFixed(4)}%  final ${r.final_ours.toFixed(4)} vs ${r.final_torch.toFixed(4)}`);
  }
}
