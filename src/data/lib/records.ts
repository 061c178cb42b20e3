// Shared code of the site's data loaders (src/data/*.ts, run by Framework through tsx): where the
// records are, reading run.json and the Arrow record files of every run, and writing Arrow
// *stream* output (the format DuckDB-wasm's insertArrowFromIPCStream needs).
//
// The data root is $CALIB_DATA_DIR when set (tests and the benchmark point it at a temporary
// directory), else data/ of this checkout. Runs are the directories data/runs/<id>/ with a
// run.json (docs/records.md). Nothing here invents a number: a missing file is an empty table.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Bool, Field, Float32, Float64, Int32, List, Schema, Table, Utf8, makeData, RecordBatch, Struct, tableFromIPC, tableToIPC,
  vectorFromArray, type DataType, type Vector,
} from "apache-arrow";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The data root: $CALIB_DATA_DIR (resolved against the working directory, as backend/runs does) or data/. */
export function dataDir(): string {
  const env = process.env.CALIB_DATA_DIR;
  return env && env.trim() !== "" ? resolve(env) : join(REPO_ROOT, "data");
}

/** V of each tokenizer (docs/data.md): rows of the embedding / classifier. */
export const VOCAB_SIZES: Record<string, number> = { byte: 256, r50k: 50257, cl100k: 100258, o200k: 200000 };

export interface RunInfo {
  id: string;
  dir: string;
  json: Record<string, unknown>;
  /** where the run is known from: its run.json, the registry (data/registry.sqlite), or both */
  source?: "records" | "registry" | "records+registry";
  device?: string | null;
}

/**
 * Adds the runs of the registry (backend/runs, <data>/registry.sqlite) to the run directories:
 * registry-only runs (queued, or failed before writing run.json) get a row, and for runs in both
 * the registry's live status wins. Without a registry (or backend/runs) the list is unchanged.
 */
export async function withRegistry(runs: RunInfo[], root = dataDir()): Promise<RunInfo[]> {
  const file = join(root, "registry.sqlite");
  if (!existsSync(file)) return runs;
  let records: Array<Record<string, unknown>>;
  try {
    const mod = (await import("../../../backend/runs/registry.js")) as unknown as {
      Registry: { open(path: string, o: { readonly: boolean }): { list(o: { limit: number; order: "asc" }): Array<Record<string, unknown>>; close(): void } };
    };
    const reg = mod.Registry.open(file, { readonly: true });
    try {
      records = reg.list({ limit: 100_000, order: "asc" });
    } finally {
      reg.close();
    }
  } catch (err) {
    process.stderr.write(`warning: registry ${file} not read: ${(err as Error).message}\n`);
    return runs;
  }
  const byId = new Map(runs.map((r) => [r.id, { ...r, source: "records" as RunInfo["source"] }]));
  for (const rec of records) {
    const id = String(rec.id);
    const have = byId.get(id);
    const live = { status: rec.status, started_at: rec.started_at, finished_at: rec.finished_at, error: rec.error ?? undefined };
    if (have) byId.set(id, { ...have, json: { ...have.json, ...live }, source: "records+registry", device: (rec.device as string) ?? null });
    else {
      byId.set(id, {
        id, dir: join(root, "runs", id), source: "registry", device: (rec.device as string) ?? null,
        json: { id, name: rec.name, kind: rec.kind, created_at: rec.created_at, config: rec.config, metrics: rec.metrics, artifacts: rec.artifacts, ...live },
      });
    }
  }
  return [...byId.values()].sort((a, b) => String(a.json.created_at ?? "").localeCompare(String(b.json.created_at ?? "")) || a.id.localeCompare(b.id));
}

/** Every run directory under <data>/runs with a readable run.json, sorted by creation time then id. */
export function listRuns(root = dataDir()): RunInfo[] {
  const runsDir = join(root, "runs");
  if (!existsSync(runsDir)) return [];
  const out: RunInfo[] = [];
  for (const name of readdirSync(runsDir).sort()) {
    const dir = join(runsDir, name);
    const file = join(dir, "run.json");
    if (!statSync(dir).isDirectory() || !existsSync(file)) continue;
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (err) {
      process.stderr.write(`warning: skipping ${file}: ${(err as Error).message}\n`);
      continue;
    }
    out.push({ id: typeof json.id === "string" && json.id !== "" ? json.id : name, dir, json });
  }
  return out.sort((a, b) => String(a.json.created_at ?? "").localeCompare(String(b.json.created_at ?? "")) || a.id.localeCompare(b.id));
}

/** The record file `name` of a run as an Arrow table, or null when absent or unreadable. */
export function readRecord(run: RunInfo, name: string): Table | null {
  const file = join(run.dir, name);
  if (!existsSync(file)) return null;
  try {
    return tableFromIPC(readFileSync(file));
  } catch (err) {
    process.stderr.write(`warning: cannot read ${file}: ${(err as Error).message}\n`);
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Column specs and concatenation

export type ColType = "utf8" | "int32" | "float32" | "float64" | "bool" | "list<float32>" | "list<float64>" | "list<int32>";

export interface ColumnSpec {
  name: string;
  type: ColType;
}

export function arrowType(t: ColType): DataType {
  switch (t) {
    case "utf8": return new Utf8();
    case "int32": return new Int32();
    case "float32": return new Float32();
    case "float64": return new Float64();
    case "bool": return new Bool();
    case "list<float32>": return new List(new Field("item", new Float32(), true));
    case "list<float64>": return new List(new Field("item", new Float64(), true));
    case "list<int32>": return new List(new Field("item", new Int32(), true));
  }
}

export const TOKENS_COLUMNS: ColumnSpec[] = [
  { name: "run_id", type: "utf8" }, { name: "epoch", type: "int32" }, { name: "split", type: "utf8" }, { name: "doc", type: "int32" },
  { name: "position", type: "int32" }, { name: "target", type: "int32" }, { name: "argmax", type: "int32" }, { name: "correct", type: "bool" },
  { name: "p_target", type: "float32" }, { name: "confidence", type: "float32" }, { name: "entropy", type: "float32" }, { name: "lse", type: "float32" },
  ...[1, 2, 3, 4, 5].map((k) => ({ name: `top${k}_id`, type: "int32" as const })),
  ...[1, 2, 3, 4, 5].map((k) => ({ name: `top${k}_p`, type: "float32" as const })),
];

export const QUESTIONS_COLUMNS: ColumnSpec[] = [
  { name: "run_id", type: "utf8" }, { name: "epoch", type: "int32" }, { name: "split", type: "utf8" }, { name: "task", type: "utf8" },
  { name: "id", type: "utf8" }, { name: "doc", type: "int32" }, { name: "n_options", type: "int32" }, { name: "gold", type: "int32" },
  { name: "pred", type: "int32" }, { name: "correct", type: "bool" }, { name: "confidence", type: "float32" }, { name: "entropy", type: "float32" },
  { name: "logits", type: "list<float32>" }, { name: "probs", type: "list<float32>" }, { name: "vocab_probs", type: "list<float32>" },
  { name: "probs_norm", type: "list<float32>" }, { name: "confidence_norm", type: "float32" }, { name: "correct_norm", type: "bool" },
  { name: "scoring", type: "utf8" }, { name: "exposures", type: "int32" },
];

export const TRAIN_LOG_COLUMNS: ColumnSpec[] = [
  { name: "run_id", type: "utf8" }, { name: "phase", type: "utf8" }, { name: "step", type: "int32" }, { name: "epoch", type: "float32" },
  { name: "split", type: "utf8" }, { name: "loss", type: "float32" }, { name: "lr", type: "float32" }, { name: "grad_norm", type: "float32" },
  { name: "tokens_per_s", type: "float32" }, { name: "entropy", type: "float32" }, { name: "time_s", type: "float64" },
];

/** An all-null column of `length` rows. */
function nulls(type: ColType, length: number): Vector {
  return vectorFromArray(new Array<null>(length).fill(null), arrowType(type));
}

/**
 * Brings `table` to exactly the columns of `spec` (in order, with these types): a column of the
 * same type is kept as is, another numeric / boolean / list type is converted value by value, a
 * missing column becomes nulls. `runId` fills run_id when the file lacks it.
 */
export function conform(table: Table, spec: readonly ColumnSpec[], runId?: string): Record<string, Vector> {
  const out: Record<string, Vector> = {};
  const n = table.numRows;
  for (const c of spec) {
    const want = arrowType(c.type);
    const col = table.getChild(c.name);
    if (col && String(col.type) === String(want)) out[c.name] = col;
    else if (col) {
      const values = col.toArray() as ArrayLike<unknown>;
      out[c.name] = vectorFromArray(Array.from({ length: n }, (_, i) => convert(values[i], c.type)), want);
    } else if (c.name === "run_id" && runId !== undefined) {
      out[c.name] = vectorFromArray(new Array<string>(n).fill(runId), new Utf8());
    } else out[c.name] = nulls(c.type, n);
  }
  return out;
}

function convert(v: unknown, t: ColType): unknown {
  if (v === null || v === undefined) return null;
  if (t === "utf8") return String(v);
  if (t === "bool") return Boolean(v);
  if (t.startsWith("list")) return v && typeof (v as { length?: number }).length === "number" ? Array.from(v as ArrayLike<number>) : null;
  return Number(v);
}

/** The schema of `spec` as an Arrow table with zero rows (one empty record batch, so DuckDB creates the table). */
export function emptyTable(spec: readonly ColumnSpec[]): Table {
  const fields = spec.map((c) => new Field(c.name, arrowType(c.type), true));
  const schema = new Schema(fields);
  const children = spec.map((c) => makeEmptyData(arrowType(c.type)));
  const data = makeData({ type: new Struct(fields), length: 0, nullCount: 0, children });
  return new Table(schema, [new RecordBatch(schema, data)]);
}

function makeEmptyData(type: DataType) {
  return vectorFromArray([], type).data[0]!;
}

/** Concatenates conformed column sets into one table with the columns of `spec`. */
export function concatTables(parts: readonly Record<string, Vector>[], spec: readonly ColumnSpec[]): Table {
  const nonEmpty = parts.filter((p) => (p[spec[0]!.name]?.length ?? 0) > 0);
  if (nonEmpty.length === 0) return emptyTable(spec);
  const columns: Record<string, Vector> = {};
  for (const c of spec) {
    let v = nonEmpty[0]![c.name]!;
    for (let i = 1; i < nonEmpty.length; i++) v = v.concat(nonEmpty[i]![c.name]!);
    columns[c.name] = v;
  }
  return new Table(columns);
}

/** Builds a table from row objects with the columns of `spec` (missing fields become null). */
export function tableFromRows(rows: readonly object[], spec: readonly ColumnSpec[]): Table {
  if (rows.length === 0) return emptyTable(spec);
  const columns: Record<string, Vector> = {};
  for (const c of spec) columns[c.name] = vectorFromArray(rows.map((r) => convert((r as Record<string, unknown>)[c.name], c.type)), arrowType(c.type));
  return new Table(columns);
}

/** Writes an Arrow IPC stream to stdout (the loader's output). */
export function writeStream(table: Table): void {
  process.stdout.write(tableToIPC(table, "stream"));
}

/** Concatenates one record file of every run (records.md schema `spec`). */
export function concatRecord(name: string, spec: readonly ColumnSpec[], runs = listRuns()): Table {
  const parts: Record<string, Vector>[] = [];
  for (const run of runs) {
    const t = readRecord(run, name);
    if (t && t.numRows > 0) parts.push(conform(t, spec, run.id));
  }
  return concatTables(parts, spec);
}

// ---------------------------------------------------------------------------------------------
// Run descriptions

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function readJson(file: string): Record<string, unknown> | null {
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A run's model: from its config (pretrain), its own checkpoint, or its init checkpoint / parent run. */
function modelOf(run: RunInfo, byDir: Map<string, RunInfo>): { tokenizer: string | null; model: Record<string, unknown>; parent: string | null } {
  const config = obj(run.json.config);
  const init = str(config.init);
  let parent: string | null = null;
  let parentRun: RunInfo | undefined;
  if (init && init.startsWith("run:")) {
    parent = init.slice(4);
    parentRun = [...byDir.values()].find((r) => r.id === parent);
  } else if (init) {
    const initDir = isAbsolute(init) ? init : resolve(REPO_ROOT, init);
    parentRun = byDir.get(dirname(initDir)) ?? byDir.get(initDir);
    // The init path may point into another checkout's data/runs: match on the run directory name.
    parentRun ??= [...byDir.values()].find((r) => basename(r.dir) === basename(dirname(initDir)));
    parent = parentRun ? parentRun.id : basename(dirname(initDir));
  }
  if (config.model && str(config.tokenizer)) return { tokenizer: str(config.tokenizer), model: obj(config.model), parent };
  const candidates = [join(run.dir, "checkpoint", "config.json")];
  if (parentRun) candidates.push(join(parentRun.dir, "checkpoint", "config.json"));
  if (init && !init.startsWith("run:")) candidates.push(join(isAbsolute(init) ? init : resolve(REPO_ROOT, init), "config.json"));
  for (const c of candidates) {
    const j = readJson(c);
    if (j && j.model) return { tokenizer: str(j.tokenizer), model: obj(j.model), parent };
  }
  if (parentRun) {
    const pc = obj(parentRun.json.config);
    if (pc.model) return { tokenizer: str(pc.tokenizer), model: obj(pc.model), parent };
  }
  return { tokenizer: str(config.tokenizer), model: obj(config.model), parent };
}

export const RUNS_COLUMNS: ColumnSpec[] = [
  { name: "run_id", type: "utf8" }, { name: "name", type: "utf8" }, { name: "kind", type: "utf8" }, { name: "status", type: "utf8" },
  { name: "created_at", type: "utf8" }, { name: "started_at", type: "utf8" }, { name: "finished_at", type: "utf8" },
  { name: "seconds", type: "float64" }, { name: "parent", type: "utf8" }, { name: "family", type: "utf8" }, { name: "n_params", type: "float64" },
  { name: "tokenizer", type: "utf8" }, { name: "vocab_size", type: "int32" },
  { name: "d_model", type: "int32" }, { name: "n_layer", type: "int32" }, { name: "n_head", type: "int32" }, { name: "context", type: "int32" },
  { name: "label_smoothing", type: "float64" }, { name: "temperature", type: "float64" }, { name: "softcap", type: "float64" },
  { name: "seed", type: "int32" }, { name: "steps", type: "int32" }, { name: "epochs", type: "int32" }, { name: "tasks", type: "utf8" },
  { name: "eval_split", type: "utf8" }, { name: "eval_temperature", type: "float64" }, { name: "eval_softcap", type: "float64" },
  { name: "n_tokens", type: "int32" }, { name: "n_questions", type: "int32" }, { name: "n_train_log", type: "int32" },
  { name: "has_calibration", type: "bool" }, { name: "artifacts", type: "utf8" }, { name: "error", type: "utf8" },
  { name: "config_json", type: "utf8" }, { name: "metrics_json", type: "utf8" }, { name: "source", type: "utf8" }, { name: "device", type: "utf8" },
];

/** Rows of the records in one file without reading it all (the stream's batches are read anyway). */
function rowCount(run: RunInfo, name: string): number {
  const t = readRecord(run, name);
  return t ? t.numRows : 0;
}

export interface RunRow {
  run_id: string; name: string; kind: string | null; status: string | null;
  created_at: string | null; started_at: string | null; finished_at: string | null; seconds: number | null;
  parent: string | null; family: string | null; n_params: number | null; tokenizer: string | null; vocab_size: number | null;
  d_model: number | null; n_layer: number | null; n_head: number | null; context: number | null;
  label_smoothing: number | null; temperature: number | null; softcap: number | null;
  seed: number | null; steps: number | null; epochs: number | null; tasks: string;
  eval_split: string | null; eval_temperature: number | null; eval_softcap: number | null;
  n_tokens: number; n_questions: number; n_train_log: number; has_calibration: boolean;
  artifacts: string; error: string | null; config_json: string; metrics_json: string; source: string; device: string | null;
}

/**
 * The model family (gpt2, or a Hugging Face model_type: llama, qwen2, mistral, gemma2) and its parameters: run.json's
 * `model` where the run wrote one, else those of a GPT-2 configuration (V·C + T·C + L·(12C² + 13C) + 2C, + V·C untied).
 */
function familyOf(j: Record<string, unknown>, model: Record<string, unknown>, vocab: number | null): { family: string | null; n_params: number | null } {
  const m = obj(j.model);
  if (str(m.family)) return { family: str(m.family), n_params: num(m.params) };
  if (model.arch === "llama") return { family: "llama", n_params: null };
  const C = num(model.dModel), L = num(model.nLayer), T = num(model.context);
  if (C === null || L === null || T === null || vocab === null) return { family: C === null ? null : "gpt2", n_params: null };
  return { family: "gpt2", n_params: vocab * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + (model.tied === false ? vocab * C : 0) };
}

/** One row per run: identity, status, model and loss settings (flattened from the config), record sizes. */
export function runRows(runs = listRuns()): RunRow[] {
  const byDir = new Map(runs.map((r) => [r.dir, r]));
  const byId = new Map(runs.map((r) => [r.id, r]));
  // V recorded by the study worker (metrics.vocab_size): a knowledge world's word vocabulary has no fixed size
  // (or the run's checkpoint, where it is still there)
  const recordedVocab = (id: string | null | undefined) => {
    const r = id ? byId.get(id) : undefined;
    return r ? num(obj(r.json.metrics).vocab_size) ?? num(obj(readJson(join(r.dir, "checkpoint", "config.json"))?.model).vocab) : null;
  };
  return runs.map((run) => {
    const j = run.json;
    const config = obj(j.config);
    const loss = obj(config.loss);
    const evalc = obj(config.eval);
    const { tokenizer, model, parent } = modelOf(run, byDir);
    const started = Date.parse(String(j.started_at ?? ""));
    const finished = Date.parse(String(j.finished_at ?? ""));
    const metrics = obj(j.metrics);
    const tasks = Array.isArray(config.tasks) ? config.tasks : Array.isArray(evalc.tasks) ? evalc.tasks : [];
    const vocab = num(model.vocab) ?? recordedVocab(run.id) ?? recordedVocab(parent) ?? (tokenizer ? VOCAB_SIZES[tokenizer] ?? null : null);
    return {
      run_id: run.id, name: str(j.name) ?? run.id, kind: str(j.kind), status: str(j.status),
      created_at: str(j.created_at), started_at: str(j.started_at), finished_at: str(j.finished_at),
      seconds: num(metrics.seconds) ?? (Number.isFinite(started) && Number.isFinite(finished) ? (finished - started) / 1000 : null),
      parent, ...familyOf(j, model, vocab), tokenizer, vocab_size: vocab,
      d_model: num(model.dModel), n_layer: num(model.nLayer), n_head: num(model.nHead), context: num(model.context),
      label_smoothing: num(loss.labelSmoothing), temperature: num(loss.temperature), softcap: num(loss.softcap),
      seed: num(config.seed), steps: num(metrics.steps) ?? num(config.steps), epochs: num(config.epochs), tasks: tasks.join(","),
      eval_split: str(evalc.split), eval_temperature: num(evalc.temperature), eval_softcap: num(evalc.softcap),
      n_tokens: rowCount(run, "tokens.arrow"), n_questions: rowCount(run, "questions.arrow"), n_train_log: rowCount(run, "train_log.arrow"),
      has_calibration: existsSync(join(run.dir, "calibration.arrow")),
      artifacts: Array.isArray(j.artifacts) ? j.artifacts.join(",") : "", error: str(j.error),
      config_json: JSON.stringify(config), metrics_json: JSON.stringify(metrics),
      source: run.source ?? "records", device: run.device ?? (str(config.device) ?? null),
    };
  });
}
