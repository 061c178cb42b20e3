// npm run bench -- train-cuda [--run | --json FILE] [--out FILE | --no-write] [--commit REV] [--impls …] [--configs …]
// The CUDA trainer against PyTorch on one GPU: training tokens/s, step time and peak memory of the
// engine's CUDA model (bf16 mixed precision, the fused loss as LM head) and of the same GPT in PyTorch
// (bf16 autocast, eager and torch.compile), for GPT-2 124M (d 768 / 12 layers / context 1024 / V 50257,
// batch 16) and a large-vocabulary small model (d 256 / 4 layers / context 256 / V 200019, batch 64).
//   --run        measure now (needs a GPU, python3 with torch, and .device/libcalib_model.so from
//                scripts/gpu/bundle-trainer.sh): bench/gpu/gpt_ref.py benchall runs every impl × config
//                in its own process and leaves its JSON in data/scratch/train_cuda.json
//   --json FILE  a finished benchall JSON instead (scripts/gpu/trainer-job.sh bench: bench.json)
//   Either way the result becomes data/bench/trainer.arrow (an Arrow IPC stream, one row per
//   config × impl) and trainer_meta.json (card, driver, torch, date, engine commit, method), which
//   the site's Speed page shows; --out names another .arrow, --no-write writes nothing, --commit
//   records the engine's commit (the GPU job passes the one scripts/gpu/bundle-trainer.sh saw).
//   Neither: prints the tables of the published data/bench/trainer.arrow.
// Ratios are against PyTorch eager and torch.compile measured in the same job.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { tableToIPC } from "apache-arrow";
import { formatTable } from "../backend/term/table.js";
import { benchTable, readBenchFiles, writeBenchFiles, type BenchColumns } from "./bench_file.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const TRAINER_ARROW = join(ROOT, "data", "bench", "trainer.arrow");

/** One measured (config, impl): a row of bench/gpu/gpt_ref.py's `bench` mode, as stored in trainer.arrow. */
export interface TrainerRow {
  config: string; impl: string;
  n_layer: number; n_head: number; d_model: number; context: number; vocab: number; batch: number; tokens_per_step: number;
  precision: string; tokens_per_s: number; step_ms: number; step_ms_min: number; peak_mib: number; timed_steps: number;
  first_step_s: number | null; loss: number; profile: string | null;
}

/** trainer_meta.json. */
export interface TrainerMeta {
  card: string; driver: string | null; torch: string | null; date: string; commit: string | null;
  description: string; errors: string[];
}

/** What `gpt_ref.py benchall` writes (rows of failed runs carry `error` instead of measurements). */
export interface BenchallJson {
  started?: string; card?: string | null; device?: string; driver?: string | null; torch?: string | null;
  rows: Array<Record<string, unknown>>;
}

export const METHOD = "bench/gpu/gpt_ref.py benchall (scripts/gpu/trainer-job.sh bench, or the gpt part of scripts/gpu/speed-job.sh): each implementation × config in its " +
  "own process; median of the timed steps after 3 warm-up steps. A step = zero grads + forward + label-smoothed loss " +
  "(ε = 0.1) + backward + grad norm + clip + AdamW, on random tokens. ours = the engine's CUDA model in bf16 mixed " +
  "precision through its C API, with the fused linear + cross-entropy as the LM head; eager / compile = the same GPT in " +
  "PyTorch (bench/gpu/gpt_ref.py) with bf16 autocast, F.scaled_dot_product_attention, F.cross_entropy(label_smoothing=0.1) " +
  "and fused AdamW, compile = torch.compile of the step. Peak memory: ours = the device memory the model takes " +
  "(cudaMemGetInfo before / after), PyTorch = torch.cuda.max_memory_allocated.";

// Column order and types of trainer.arrow (card and measured_at repeat the meta on every row, as in kernels.arrow).
const COLUMNS: BenchColumns<TrainerRow> = [
  ["config", "str"], ["impl", "str"], ["n_layer", "int"], ["n_head", "int"], ["d_model", "int"], ["context", "int"],
  ["vocab", "int"], ["batch", "int"], ["tokens_per_step", "int"], ["precision", "str"], ["tokens_per_s", "f64"],
  ["step_ms", "f64"], ["step_ms_min", "f64"], ["peak_mib", "f64"], ["timed_steps", "int"], ["first_step_s", "f64"],
  ["loss", "f64"], ["profile", "str"],
];
const OPTIONAL = new Set<keyof TrainerRow>(["first_step_s", "profile"]);

/** The measured rows and the meta of a benchall JSON; failed rows become meta.errors. Throws a TypeError
 *  naming the field when a row that claims a measurement lacks part of it. */
export function fromBenchall(json: BenchallJson, commit: string | null): { rows: TrainerRow[]; meta: TrainerMeta } {
  if (!json || !Array.isArray(json.rows)) throw new TypeError("benchall JSON: 'rows' must be an array");
  const card = json.card ?? json.device;
  if (!card) throw new TypeError("benchall JSON: neither 'card' nor 'device' names the GPU");
  if (!json.started) throw new TypeError("benchall JSON: 'started' (the job's UTC time) is missing");
  const rows: TrainerRow[] = [];
  const errors: string[] = [];
  json.rows.forEach((r, i) => {
    if (r.error !== undefined) {
      errors.push(`${String(r.config)} ${String(r.impl)}: ${Array.isArray(r.error) ? r.error.join(" ") : String(r.error)}`);
      return;
    }
    const row: Record<string, unknown> = {};
    for (const [name, kind] of COLUMNS) {
      const v = r[name];
      if ((v === undefined || v === null) && OPTIONAL.has(name)) row[name] = null;
      else if (kind === "str" ? typeof v !== "string" : typeof v !== "number" || !Number.isFinite(v) || (kind === "int" && !Number.isInteger(v)))
        throw new TypeError(`benchall JSON: rows[${i}].${name} must be ${kind === "str" ? "a string" : kind === "int" ? "an integer" : "a finite number"} (got ${JSON.stringify(v)})`);
      else row[name] = v;
    }
    rows.push(row as unknown as TrainerRow);
  });
  return { rows, meta: { card, driver: json.driver ?? null, torch: json.torch ?? null, date: json.started, commit, description: METHOD, errors } };
}

/** trainer.arrow's bytes: an Arrow IPC stream (the format the site's loaders and DuckDB-wasm read). */
export function trainerArrow(rows: TrainerRow[], meta: TrainerMeta): Uint8Array {
  return tableToIPC(benchTable(COLUMNS, rows, meta), "stream");
}

/** Writes FILE (.arrow) and FILE_meta.json, each atomically. */
export function writeTrainerBench(file: string, rows: TrainerRow[], meta: TrainerMeta): void {
  writeBenchFiles(file, benchTable(COLUMNS, rows, meta), meta);
}

export function readTrainerBench(file: string): { rows: TrainerRow[]; meta: TrainerMeta } {
  return readBenchFiles<TrainerRow, TrainerMeta>(file);
}

function table(rows: TrainerRow[], meta: TrainerMeta): void {
  console.log(`\nCUDA trainer vs PyTorch on ${meta.card} (driver ${meta.driver ?? "?"}, torch ${meta.torch ?? "?"}), ${meta.date}${meta.commit ? `, engine ${meta.commit}` : ""}`);
  const cells: string[][] = [];
  for (const c of [...new Set(rows.map((r) => r.config))]) {
    const of = (impl: string) => rows.find((r) => r.config === c && r.impl === impl);
    const eager = of("eager"), compiled = of("compile");
    for (const r of rows.filter((x) => x.config === c)) {
      const x = (b?: TrainerRow) => (b ? (r.tokens_per_s / b.tokens_per_s).toFixed(2) : "–");
      const mem = eager ? (r.peak_mib / eager.peak_mib).toFixed(2) : "–";
      cells.push([c, r.impl, Math.round(r.tokens_per_s).toLocaleString("en-US"), r.step_ms.toFixed(1), Math.round(r.peak_mib).toLocaleString("en-US"), x(eager), x(compiled), mem]);
    }
  }
  console.log(formatTable(["config", "impl", "tokens/s", "step ms", "peak MiB", "× eager", "× compile", "memory / eager"], cells,
    { style: "markdown", align: ["left", "left", "right", "right", "right", "right", "right", "right"] }));
  for (const r of rows) if (r.profile) console.log(`  ${r.config} ${r.impl}: ${r.profile.replace(/^calib profile /, "")}`);
  for (const e of meta.errors) console.log(`  error: ${e}`);
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

export async function main(argv: string[]): Promise<void> {
  const run = argv.includes("--run");
  let file = arg(argv, "json");
  if (run) {
    const { cudaAvailable, engineInfo } = await import("../backend/engine/index.js");
    if (!cudaAvailable()) throw new Error(`train-cuda --run needs a GPU: ${engineInfo().cudaMessage}`);
    if (!existsSync(".device/libcalib_model.so")) throw new Error("run scripts/gpu/bundle-trainer.sh first (.device/libcalib_model.so is missing)");
    file ??= "data/scratch/train_cuda.json";
    mkdirSync(dirname(file), { recursive: true });
    const r = spawnSync("python3", ["bench/gpu/gpt_ref.py", "benchall", "--out", file,
      "--impls", arg(argv, "impls") ?? "ours,eager,compile", "--configs", arg(argv, "configs") ?? "gpt2-124m,d256-v200k"], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`bench/gpu/gpt_ref.py exited with ${r.status}`);
  }
  if (file === undefined) {
    if (!existsSync(TRAINER_ARROW)) throw new Error(`${TRAINER_ARROW} not found (--run on a GPU machine, or scripts/gpu/trainer-job.sh bench)`);
    const { rows, meta } = readTrainerBench(TRAINER_ARROW);
    table(rows, meta);
    return;
  }
  const { rows, meta } = fromBenchall(JSON.parse(readFileSync(file, "utf8")) as BenchallJson, arg(argv, "commit") ?? null);
  if (!argv.includes("--no-write")) {
    const out = arg(argv, "out") ?? TRAINER_ARROW;
    writeTrainerBench(out, rows, meta);
    console.error(`wrote ${out} and its _meta.json (${rows.length} rows${meta.errors.length ? `, ${meta.errors.length} errors` : ""})`);
  }
  table(rows, meta);
}
