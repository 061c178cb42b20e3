// npm run bench -- llama-train [--jsonl FILE [--log JOB.LOG] [--card NAME] [--driver V] [--torch V]
//                               [--transformers V] [--date YYYY-MM-DD] [--commit REV] [--out FILE.arrow | --no-write]]
// The Llama family's training step on one GPU, ours against transformers, in its published form.
// scripts/gpu/llama-job.sh runs each benchmark in its own process — ours (bench/gpu/llama-train.ts,
// engine "calib") and transformers' own step (bench/gpu/llama_step.py: transformers+sdpa, +liger,
// +compile) — and collects their JSON lines in llama_bench.json (one object per line). This turns
// such a file into data/bench/llama_train.arrow (an Arrow IPC stream, one row per benchmark, the meta
// JSON also in the schema metadata under "meta") and llama_train_meta.json (card, driver, torch and
// transformers versions, date, engine commit, source files, method, benchmarks without a row), which
// the site's Speed page shows.
//   --jsonl FILE   the job's llama_bench.json. Blank lines are skipped; every other line must be one
//                  benchmark: engine, model, params, batch, context, steps, step_ms, tokens_per_s,
//                  gpu_mib, gpu_mib_source; optional checkpoint_layers (0), head_workspace_bytes,
//                  max_allocated_gib, max_reserved_gib (null). A bad line is a TypeError / RangeError
//                  naming FILE:LINE and the field (exit 2).
//   --log JOB.LOG  the job's log: the card and driver (its nvidia-smi line), torch and transformers,
//                  the engine commit, the start time, and the benchmarks that left no JSON line
//   --card …       override (or replace, without --log) what the log says; --date defaults to the
//                  log's "started" line, else a YYYY-MM-DD folder in FILE's path (dev/gpu-runs/<date>/)
//   --out          another .arrow than data/bench/llama_train.arrow; --no-write prints only
// Without --jsonl: prints the table of the published data/bench/llama_train.arrow.
// Ratios: each row's tokens/s over the fastest transformers row and its GPU memory over the leanest
// one, of the same model, batch and context, from the same job.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Table } from "apache-arrow";
import { parse } from "../backend/cli/args.js";
import { UsageError } from "../backend/cli/errors.js";
import { formatTable } from "../backend/term/table.js";
import { benchTable, readBenchFiles, writeBenchFiles, type BenchColumns } from "./bench_file.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const LLAMA_ARROW = join(ROOT, "data", "bench", "llama_train.arrow");
/** The engine name of our rows (bench/gpu/llama-train.ts); every other engine is a peer. */
export const OURS = "calib";

/** One benchmark: a line of llama_bench.json, plus the two ratios against the peers of its model. */
export interface LlamaRow {
  engine: string;
  /** how the page and the tables name the row: "ours", "ours, 16 layers checkpointed", "transformers+liger" */
  label: string;
  model: string; params: number; batch: number; context: number;
  checkpoint_layers: number; head_workspace_bytes: number | null;
  step_ms: number; tokens_per_s: number; gpu_mib: number; gpu_mib_source: string;
  max_allocated_gib: number | null; max_reserved_gib: number | null; steps: number;
  /** tokens_per_s ÷ the fastest peer's (same model, batch, context); null without peers. */
  speed_vs_fastest_peer: number | null;
  /** gpu_mib ÷ the leanest peer's; null without peers. */
  memory_vs_leanest_peer: number | null;
}

/** llama_train_meta.json. */
export interface LlamaMeta {
  card: string; driver: string | null; torch: string | null; transformers: string | null; date: string; commit: string | null;
  /** the llama_bench.json and job log it was made from (repository-relative where inside it) */
  source: string; log: string | null;
  description: string;
  /** benchmarks of the job that left no row: "NAME: reason" */
  errors: string[];
}

export const METHOD = "scripts/gpu/llama-job.sh: each benchmark in its own process, one after the other on the same card; the " +
  "shapes of the real model (every layer, random weights), random token ids, batch 4 × context 2048, label smoothing ε = 0.1; " +
  "a step = zero grads + forward + loss + backward + gradient norm + clipping at 1 + AdamW (lr 1e-5, weight decay 0.1); " +
  "median of the steps after 3 warm-up steps. ours (engine calib, bench/gpu/llama-train.ts) = the engine's CUDA model with " +
  "fp32 master weights and bf16 compute (flash attention, the fused linear + cross-entropy as LM head; checkpoint_layers = " +
  "layers recomputed in the backward, head_workspace_bytes = the head's logit workspace where set). transformers " +
  "(bench/gpu/llama_step.py): fp32 weights under bf16 autocast, SDPA attention, torch.optim.AdamW(fused=True); sdpa and " +
  "compile compute the loss as F.cross_entropy(label_smoothing=0.1) over fp32 logits, compile = torch.compile(model); liger = " +
  "Liger's RoPE, RMSNorm, SwiGLU and fused linear cross-entropy. GPU memory (gpu_mib) = what nvidia-smi lists for the process " +
  "after the steps (gpu_mib_source 'process'; the CUDA context and, for PyTorch, its caching allocator's reserve included), or " +
  "the device's use minus what was in use before the process started where the container hides the process list; " +
  "max_allocated_gib / max_reserved_gib = torch.cuda.max_memory_allocated / reserved.";

// Column order and kinds of llama_train.arrow (then card and measured_at, as in trainer.arrow).
const COLUMNS: BenchColumns<LlamaRow> = [
  ["engine", "str"], ["label", "str"], ["model", "str"], ["params", "f64"], ["batch", "int"], ["context", "int"], ["checkpoint_layers", "int"],
  ["head_workspace_bytes", "f64"], ["step_ms", "f64"], ["tokens_per_s", "f64"], ["gpu_mib", "f64"], ["gpu_mib_source", "str"],
  ["max_allocated_gib", "f64"], ["max_reserved_gib", "f64"], ["steps", "int"], ["speed_vs_fastest_peer", "f64"],
  ["memory_vs_leanest_peer", "f64"],
];

// What a line must hold: str = a non-empty string, count = an integer ≥ 1, index = an integer ≥ 0,
// positive = a finite number > 0, amount = a finite number ≥ 0. Optional fields may be absent or null.
type Rule = "str" | "count" | "index" | "positive" | "amount";
const FIELDS: ReadonlyArray<readonly [keyof LlamaRow, Rule, "required" | "optional"]> = [
  ["engine", "str", "required"], ["model", "str", "required"], ["params", "count", "required"], ["batch", "count", "required"],
  ["context", "count", "required"], ["checkpoint_layers", "index", "optional"], ["head_workspace_bytes", "index", "optional"],
  ["step_ms", "positive", "required"], ["tokens_per_s", "positive", "required"], ["gpu_mib", "amount", "required"],
  ["gpu_mib_source", "str", "required"], ["max_allocated_gib", "amount", "optional"], ["max_reserved_gib", "amount", "optional"],
  ["steps", "count", "required"],
];
const RULE_TEXT: Record<Rule, string> = {
  str: "a non-empty string", count: "an integer ≥ 1", index: "an integer ≥ 0", positive: "a finite number > 0", amount: "a finite number ≥ 0",
};

/** One line's field, checked: a TypeError for a wrong type, a RangeError for a number out of its range. */
function field(obj: Record<string, unknown>, name: string, rule: Rule, optional: boolean, where: string): unknown {
  const v = obj[name];
  if (v === undefined || v === null) {
    if (optional) return name === "checkpoint_layers" ? 0 : null;
    throw new TypeError(`${where}: '${name}' is missing (it must be ${RULE_TEXT[rule]})`);
  }
  if (rule === "str") {
    if (typeof v !== "string" || v === "") throw new TypeError(`${where}: '${name}' must be ${RULE_TEXT[rule]} (got ${JSON.stringify(v)})`);
    return v;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`${where}: '${name}' must be ${RULE_TEXT[rule]} (got ${JSON.stringify(v)})`);
  const ok = rule === "count" ? Number.isInteger(v) && v >= 1 : rule === "index" ? Number.isInteger(v) && v >= 0 : rule === "positive" ? v > 0 : v >= 0;
  if (!ok) throw new RangeError(`${where}: '${name}' must be ${RULE_TEXT[rule]} (got ${v})`);
  return v;
}

/** What makes two rows the same benchmark. */
const benchKey = (r: LlamaRow) => JSON.stringify([r.engine, r.model, r.batch, r.context, r.checkpoint_layers, r.head_workspace_bytes]);
/** The peers' group of a row: the same model at the same batch and context. */
const groupKey = (r: LlamaRow) => JSON.stringify([r.model, r.batch, r.context]);

/**
 * The rows of a llama_bench.json text (`source` names it in errors). Each line is checked — every
 * field (TypeError / RangeError naming `source:line` and the field), tokens_per_s against
 * batch × context / step time (within 1e-6), no benchmark twice — and the rows get their ratios
 * to the peers of the same model (`withPeerRatios`).
 */
export function parseLlamaBench(text: string, source: string): LlamaRow[] {
  const rows: LlamaRow[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((line, i) => {
    const where = `${source}:${i + 1}`;
    if (line.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new TypeError(`${where}: not a JSON line (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new TypeError(`${where}: not a JSON object`);
    const row: Record<string, unknown> = {};
    for (const [name, rule, need] of FIELDS) row[name] = field(obj as Record<string, unknown>, name, rule, need === "optional", where);
    const r = row as unknown as LlamaRow;
    r.label = rowLabel(r);
    const expected = (r.batch * r.context) / (r.step_ms / 1e3);
    if (Math.abs(r.tokens_per_s - expected) > 1e-6 * expected)
      throw new RangeError(`${where}: 'tokens_per_s' ${r.tokens_per_s} is not batch × context / step time (${r.batch} × ${r.context} / ${r.step_ms} ms = ${expected})`);
    const key = benchKey(r), first = seen.get(key);
    if (first !== undefined) throw new RangeError(`${where}: the same benchmark as line ${first} (${r.engine}, ${r.model}, checkpoint_layers ${r.checkpoint_layers}, head_workspace_bytes ${r.head_workspace_bytes})`);
    seen.set(key, i + 1);
    rows.push(r);
  });
  if (rows.length === 0) throw new TypeError(`${source}: no benchmark lines`);
  return withPeerRatios(rows);
}

/** Sets speed_vs_fastest_peer and memory_vs_leanest_peer of every row against the peers (engine ≠ calib)
 *  of its model, batch and context; null where the group has no peer. */
export function withPeerRatios(rows: LlamaRow[]): LlamaRow[] {
  return rows.map((r) => {
    const peers = rows.filter((p) => p.engine !== OURS && groupKey(p) === groupKey(r));
    if (peers.length === 0) return { ...r, speed_vs_fastest_peer: null, memory_vs_leanest_peer: null };
    const fastest = Math.max(...peers.map((p) => p.tokens_per_s)), leanest = Math.min(...peers.map((p) => p.gpu_mib));
    return { ...r, speed_vs_fastest_peer: r.tokens_per_s / fastest, memory_vs_leanest_peer: leanest > 0 ? r.gpu_mib / leanest : null };
  });
}

/** What a scripts/gpu/llama-job.sh log says about the job (null where it does not say). */
export interface JobLog {
  card: string | null; driver: string | null; torch: string | null; transformers: string | null; commit: string | null;
  started: string | null;
  /** benchmark steps (those piping into the collected lines) without a JSON line, and steps not run */
  errors: string[];
}

/** Reads the header lines of the job (nvidia-smi's name, driver, memory, clock; "torch X transformers Y";
 *  "engine commit C; …"; "started T") and its "===== NAME: …" sections. */
export function parseJobLog(text: string): JobLog {
  const lines = text.split("\n");
  const match = (re: RegExp) => lines.map((l) => re.exec(l.trim())).find((m) => m !== null) ?? null;
  const smi = match(/^(.+?), (\d+(?:\.\d+)+), \d+ MiB, \d+ MHz$/);
  const versions = match(/^torch (\S+) transformers (\S+)$/);
  const commit = match(/^engine commit (\S+?);/)?.[1] ?? null;
  const errors: string[] = [];
  // A benchmark step tees its output into the collected lines; one without a line starting with "{" left no row.
  let step: { name: string; bench: boolean; json: boolean; last: string } | null = null;
  const close = () => {
    if (step?.bench && !step.json) errors.push(`${step.name}: no result line${step.last ? ` (last output: ${step.last})` : ""}`);
  };
  for (const line of lines) {
    const head = /^===== (\S+): (.*)$/.exec(line);
    if (head) {
      close();
      step = { name: head[1]!, bench: /bench-lines\.jsonl|llama_bench\.json/.test(head[2]!), json: false, last: "" };
      continue;
    }
    const notRun = /^(\S+)\s+not run: (.*)$/.exec(line.trim());
    if (notRun) errors.push(`${notRun[1]}: not run (${notRun[2]})`);
    if (!step) continue;
    if (line.startsWith("{")) step.json = true;
    else if (line.trim() && !/^\S+\s+exit \d+\s+\d+s$/.test(line.trim())) step.last = line.trim().slice(0, 200);
    if (/^\S+\s+exit \d+\s+\d+s$/.test(line.trim())) {
      close();
      step = null;
    }
  }
  close();
  return {
    card: smi?.[1] ?? null, driver: smi?.[2] ?? null, torch: versions?.[1] ?? null, transformers: versions?.[2] ?? null,
    commit: commit === "?" ? null : commit, started: match(/^started (\S+)$/)?.[1] ?? null, errors,
  };
}

/** llama_train.arrow's table: the rows, card and measured_at, and the meta JSON in the schema metadata
 *  (`llamaTable([], null)`: the columns with no rows and no metadata, what the site's loader gives when
 *  nothing is published). */
export function llamaTable(rows: readonly LlamaRow[], meta: LlamaMeta | null): Table {
  return benchTable(COLUMNS, rows, meta ?? { card: "", date: "" }, meta ? { meta: JSON.stringify(meta) } : undefined);
}

/** Writes FILE (.arrow) and FILE_meta.json, each atomically. */
export function writeLlamaBench(file: string, rows: readonly LlamaRow[], meta: LlamaMeta): void {
  writeBenchFiles(file, llamaTable(rows, meta), meta);
}

/** A row of llama_train.arrow: the benchmark with the card and date of its meta. */
export type PublishedLlamaRow = LlamaRow & { card: string; measured_at: string };

export function readLlamaBench(file: string): { rows: PublishedLlamaRow[]; meta: LlamaMeta } {
  return readBenchFiles<PublishedLlamaRow, LlamaMeta>(file);
}

/** "ours", "ours, 16 layers checkpointed, head workspace 1 GiB", "transformers+liger". */
export function rowLabel(r: Pick<LlamaRow, "engine" | "checkpoint_layers" | "head_workspace_bytes">): string {
  if (r.engine !== OURS) return r.engine;
  const parts = ["ours"];
  if (r.checkpoint_layers > 0) parts.push(`${r.checkpoint_layers} layers checkpointed`);
  if (r.head_workspace_bytes !== null) parts.push(`head workspace ${formatBytes(r.head_workspace_bytes)}`);
  return parts.join(", ");
}

function formatBytes(b: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) if (b >= size) return `${+(b / size).toFixed(2)} ${unit}`;
  return `${b} B`;
}

function printTable(rows: readonly LlamaRow[], meta: LlamaMeta): void {
  console.log(`\nLlama-family training step, ours vs transformers, on ${meta.card} (driver ${meta.driver ?? "?"}, torch ${meta.torch ?? "?"}, ` +
    `transformers ${meta.transformers ?? "?"}), ${meta.date}${meta.commit ? `, engine ${meta.commit}` : ""}`);
  const ratio = (x: number | null) => (x === null ? "–" : x.toFixed(2));
  const cells = rows.map((r) => [r.model, r.label, String(r.batch * r.context), Math.round(r.tokens_per_s).toLocaleString("en-US"), r.step_ms.toFixed(1),
    (r.gpu_mib / 1024).toFixed(1) + (r.gpu_mib_source === "process" ? "" : "*"), r.max_allocated_gib === null ? "–" : r.max_allocated_gib.toFixed(1),
    ratio(r.speed_vs_fastest_peer), ratio(r.memory_vs_leanest_peer)]);
  console.log(formatTable(["model", "engine", "tokens/step", "tokens/s", "ms/step", "GPU GiB", "max alloc GiB", "× fastest peer", "memory ÷ leanest peer"], cells,
    { style: "markdown", align: ["left", "left", "right", "right", "right", "right", "right", "right", "right"] }));
  if (rows.some((r) => r.gpu_mib_source !== "process")) console.log("  * GPU memory: the device's use minus what was in use before (the container hid the process list)");
  for (const e of meta.errors) console.log(`  no row: ${e}`);
}

/** The path as the meta records it: repository-relative when inside the repository. */
function recorded(path: string): string {
  const rel = relative(ROOT, resolve(path));
  return rel.startsWith("..") ? resolve(path) : rel;
}

function readInput(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`--${flag}: no such file ${path}`);
  return readFileSync(path, "utf8");
}

const OPTIONS = {
  jsonl: { type: "string" }, log: { type: "string" }, card: { type: "string" }, driver: { type: "string" }, torch: { type: "string" },
  transformers: { type: "string" }, date: { type: "string" }, commit: { type: "string" }, out: { type: "string" }, "no-write": { type: "boolean" },
} as const;

/** The rows and meta of a job's files and the options that override them (the converter without its output). */
export function convert(v: { jsonl: string; log?: string; card?: string; driver?: string; torch?: string; transformers?: string; date?: string; commit?: string }): { rows: LlamaRow[]; meta: LlamaMeta } {
  const rows = parseLlamaBench(readInput(v.jsonl, "jsonl"), v.jsonl);
  const log = v.log !== undefined ? parseJobLog(readInput(v.log, "log")) : null;
  const card = v.card ?? log?.card;
  if (!card) throw new UsageError(v.log ? `${v.log} names no card (no nvidia-smi line): give --card` : "give --log JOB.LOG or --card NAME (the GPU the job ran on)");
  const date = v.date ?? log?.started ?? /(?:^|[/\\])(\d{4}-\d{2}-\d{2})(?:[/\\]|$)/.exec(dirname(resolve(v.jsonl)))?.[1];
  if (!date) throw new UsageError("give --date YYYY-MM-DD (the job log has no 'started' line and the file's path names no date)");
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z)?$/.test(date)) throw new UsageError(`--date must be YYYY-MM-DD or an ISO UTC time (got '${date}')`);
  const torch = v.torch ?? log?.torch ?? null;
  return {
    rows,
    meta: {
      card, driver: v.driver ?? log?.driver ?? null, torch, transformers: v.transformers ?? log?.transformers ?? null, date,
      commit: v.commit ?? log?.commit ?? null, source: recorded(v.jsonl), log: v.log ? recorded(v.log) : null, description: METHOD,
      errors: log?.errors ?? [],
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse(argv, OPTIONS);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (the file goes after --jsonl)`);
  if (v.jsonl === undefined) {
    const extra = Object.keys(v).find((k) => k !== "out");
    if (extra) throw new UsageError(`--${extra} needs --jsonl FILE`);
    const file = v.out ?? LLAMA_ARROW;
    if (!existsSync(file)) throw new UsageError(`${file} not found: run scripts/gpu/llama-job.sh on a GPU machine, then --jsonl its llama_bench.json`);
    const { rows, meta } = readLlamaBench(file);
    printTable(rows, meta);
    return;
  }
  const { rows, meta } = convert({ ...v, jsonl: v.jsonl });
  if (!v["no-write"]) {
    const out = v.out ?? LLAMA_ARROW;
    writeLlamaBench(out, rows, meta);
    console.error(`wrote ${recorded(out)} and its _meta.json (${rows.length} rows${meta.errors.length ? `, ${meta.errors.length} benchmarks without a row` : ""})`);
  }
  printTable(rows, meta);
}
