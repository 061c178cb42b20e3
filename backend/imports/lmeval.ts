// lm-evaluation-harness import: `samples_<task>_<timestamp>.jsonl` files written by
// `lm_eval --log_samples` for multiple-choice (loglikelihood) tasks → questions.arrow rows.
//
// One line per document (and filter). Fields used (lm_eval/result_schema.py, SampleResult):
//   doc_id          int
//   target          the gold answer: its choice index (as a number or a string), or the text of
//                   the correct continuation (matched against the choices)
//   filtered_resps  one [loglikelihood, is_greedy] pair per choice; the harness writes them as
//                   strings ("-0.26", "False"), older versions as numbers
//   arguments       {"gen_args_<i>": {"arg_0": context, "arg_1": " " + choice_i}} (choice texts,
//                   for length normalization)
//   filter          only the first filter seen for a doc_id is kept ("none" in practice)
//   metrics, acc, acc_norm   which scores the harness computed, and its per-doc values
// Per question: logits = the summed log-likelihoods, probs = softmax(logits) (renormalized over
// the options), and where the harness reports acc_norm, probs_norm = softmax(ll_i / len_i) with
// len_i the character length of choice i (the continuation without its leading target
// delimiter " "), as lm-eval's acc_norm does. The harness's own acc / acc_norm per doc are
// compared with our argmax and the disagreements counted (ties aside they must be 0).
import { createReadStream } from "node:fs";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import { FieldError } from "../errors.js";
import type { QuestionRow } from "../records/questions.js";

export interface SamplesFile {
  /** file name as uploaded (the task is read from samples_<task>_<timestamp>.jsonl) */
  filename: string;
  text: string;
  /** task name when the file name does not carry it */
  task?: string;
}

export interface ParsedSamples {
  filename: string;
  task: string;
  rows: QuestionRow[];
  /** lines skipped because their doc_id was already seen under another filter */
  duplicateFilters: number;
  /** documents where the harness's acc (acc_norm) disagrees with our argmax */
  accMismatches: number;
  accNormMismatches: number;
}

/** Most options a question may have. */
export const MAX_OPTIONS = 64;

const TASK_RE = /^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}$/;
const FILE_RE = /^samples_(.+?)_(\d{4}-\d{2}-\d{2}T[0-9.:\-]+)\.jsonl$/;

/** The task named by a harness file name, or null. */
export function taskFromFilename(filename: string): string | null {
  const m = FILE_RE.exec(basename(filename));
  if (m) return m[1]!;
  const plain = /^samples_(.+)\.jsonl$/.exec(basename(filename));
  return plain ? plain[1]! : null;
}

function num(value: unknown): number | null {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "") {
    const x = Number(value);
    if (!Number.isNaN(x) || value.trim() === "NaN") return x;
  }
  return null;
}

function softmax(z: readonly number[]): number[] {
  let m = -Infinity;
  for (const v of z) if (v > m) m = v;
  let s = 0;
  const e = z.map((v) => {
    const x = Math.exp(v - m);
    s += x;
    return x;
  });
  return e.map((x) => x / s);
}

function argmax(p: readonly number[]): number {
  let b = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[b]!) b = i;
  return b;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function taskOf(filename: string, explicit?: string): string {
  const task = explicit ?? taskFromFilename(filename);
  if (task === null) {
    throw new FieldError("task", `cannot tell the task from the file name '${filename}' (expected samples_<task>_<timestamp>.jsonl); give the task explicitly`);
  }
  if (!TASK_RE.test(task)) throw new FieldError("task", `'${task}' is not a task name (letters, digits, _ . : -, at most 200 characters)`);
  return task;
}

/** A line-by-line parser of one samples file (for streaming uploads); parseSamples() wraps it. */
export class SamplesParser {
  readonly filename: string;
  readonly task: string;
  private readonly rows: QuestionRow[] = [];
  private readonly seen = new Set<string>();
  private duplicateFilters = 0;
  private accMismatches = 0;
  private accNormMismatches = 0;
  private content = 0;
  private pendingError: { line: number; message: string } | null = null;

  constructor(filename: string, task?: string) {
    this.filename = basename(filename || "upload.jsonl");
    this.task = taskOf(this.filename, task);
  }

  /** Adds line `lineNo` (1-based). A JSON error is held until the next non-empty line (a truncated last line is reported as such). */
  push(line: string, lineNo: number): void {
    const raw = line.trim();
    if (raw === "") return;
    if (this.pendingError) throw new FieldError(`${this.filename} line ${this.pendingError.line}`, `invalid JSON: ${this.pendingError.message}`);
    this.content++;
    let s: unknown;
    try {
      s = JSON.parse(raw);
    } catch (err) {
      this.pendingError = { line: lineNo, message: (err as Error).message };
      return;
    }
    this.sample(s, lineNo);
  }

  finish(): ParsedSamples {
    if (this.pendingError) {
      throw new FieldError(`${this.filename} line ${this.pendingError.line}`, `invalid JSON (the file looks truncated: its last line is incomplete): ${this.pendingError.message}`);
    }
    if (this.content === 0) throw new FieldError(this.filename, "the file is empty (no samples)");
    return {
      filename: this.filename, task: this.task, rows: this.rows, duplicateFilters: this.duplicateFilters,
      accMismatches: this.accMismatches, accNormMismatches: this.accNormMismatches,
    };
  }

  private sample(s: unknown, lineNo: number): void {
    const task = this.task;
    const where = `${this.filename} line ${lineNo}`;
    const bad = (msg: string): never => {
      throw new FieldError(where, msg);
    };
    if (!isObj(s)) bad("not an lm-eval-harness sample (a JSON object per line expected)");
    const sample = s as Obj;
    const missing = ["doc_id", "target"].filter((k) => !(k in sample));
    if (!("filtered_resps" in sample) && !("resps" in sample)) missing.push("filtered_resps");
    if (missing.length > 0) bad(`not an lm-eval-harness sample (--log_samples): missing ${missing.join(", ")}`);
    const docId = sample.doc_id;
    if (typeof docId !== "number" && typeof docId !== "string") bad("doc_id must be a number or a string");
    const key = String(docId);
    if (this.seen.has(key)) {
      // the same document under another filter: keep the first
      this.duplicateFilters++;
      return;
    }
    this.seen.add(key);
    // per-choice log-likelihoods: filtered_resps [[ll, greedy], …] or resps [[[ll, greedy]], …]
    let resps = sample.filtered_resps;
    if (resps === undefined) resps = Array.isArray(sample.resps) ? (sample.resps as unknown[]).map((r) => (Array.isArray(r) && r.length === 1 ? r[0] : r)) : undefined;
    if (!Array.isArray(resps) || resps.length < 2) {
      bad("filtered_resps must hold one [loglikelihood, is_greedy] pair per choice (at least 2): only multiple-choice (loglikelihood) tasks can be imported");
    }
    const respList = resps as unknown[];
    if (respList.length > MAX_OPTIONS) bad(`${respList.length} choices (at most ${MAX_OPTIONS})`);
    const lls = respList.map((r, k) => {
      const pair = Array.isArray(r) ? r : null;
      const ll = pair ? num(pair[0]) : null;
      if (ll === null) bad(`filtered_resps[${k}] is not a [loglikelihood, is_greedy] pair (got ${JSON.stringify(r)?.slice(0, 60)}): only multiple-choice tasks can be imported`);
      if (!Number.isFinite(ll!)) bad(`filtered_resps[${k}]: log-likelihood ${ll} is not finite`);
      if (ll! > 1e-6) bad(`filtered_resps[${k}]: log-likelihood ${ll} is positive`);
      return ll!;
    });
    // choice texts from arguments.gen_args_<i>.arg_1
    let choices: string[] | null = null;
    if (isObj(sample.arguments)) {
      const args = sample.arguments;
      const texts = lls.map((_, k) => {
        const a = args[`gen_args_${k}`];
        return isObj(a) && typeof a.arg_1 === "string" ? a.arg_1 : null;
      });
      if (texts.every((t) => t !== null)) choices = texts as string[];
    } else if (Array.isArray(sample.arguments)) {
      // older harness versions: [[context, continuation], …]
      const texts = (sample.arguments as unknown[]).map((a) => (Array.isArray(a) && typeof a[1] === "string" ? a[1] : null));
      if (texts.length === lls.length && texts.every((t) => t !== null)) choices = texts as string[];
    }
    // gold
    let gold: number | null = null;
    const target = sample.target;
    const asIndex = typeof target === "number" ? target : typeof target === "string" && /^\s*\d+\s*$/.test(target) ? Number(target) : null;
    if (asIndex !== null && Number.isInteger(asIndex)) gold = asIndex;
    else if (typeof target === "string" && choices) {
      const k = choices.findIndex((c) => c === target || c.replace(/^ /, "") === target.replace(/^ /, ""));
      if (k >= 0) gold = k;
    } else if (Array.isArray(target) && target.length === 1 && typeof target[0] === "number") gold = target[0];
    if (gold === null) bad(`target ${JSON.stringify(target)?.slice(0, 80)} is neither a choice index nor the text of a choice`);
    if (gold! < 0 || gold! >= lls.length) bad(`target ${gold} is not a choice index (the sample has ${lls.length} choices)`);
    const probs = softmax(lls);
    const metrics = Array.isArray(sample.metrics) ? (sample.metrics as unknown[]) : [];
    const hasNorm = metrics.includes("acc_norm") || "acc_norm" in sample;
    let probsNorm: number[] | null = null;
    if (hasNorm) {
      if (!choices) bad("acc_norm is reported but arguments.gen_args_<i>.arg_1 (the choice texts) are missing, so lengths are unknown");
      const lens = choices!.map((c) => (c.startsWith(" ") ? c.length - 1 : c.length));
      probsNorm = softmax(lls.map((ll, k) => ll / Math.max(1, lens[k]!)));
      const accNorm = num(sample.acc_norm);
      if (accNorm !== null && (accNorm === 1) !== (argmax(probsNorm) === gold)) this.accNormMismatches++;
    }
    const acc = num(sample.acc);
    if (acc !== null && (acc === 1) !== (argmax(probs) === gold)) this.accMismatches++;
    this.rows.push({
      epoch: 0, split: "test", task, id: `${task}:${key}`, doc: -1, gold: gold!,
      logits: Float32Array.from(lls), probs, vocabProbs: null, probsNorm,
      // the harness scores each choice's continuation: answer letters (MMLU) or option texts (ARC, HellaSwag)
      scoring: choices && choices.every((c) => /^ ?[A-Z]$/.test(c)) ? "letter" : "option",
    });
  }
}

/** Parses one samples file held in memory. Every problem is a FieldError naming the file and the line. */
export function parseSamples(file: SamplesFile): ParsedSamples {
  const p = new SamplesParser(file.filename, file.task);
  const lines = file.text.split("\n");
  for (let i = 0; i < lines.length; i++) p.push(lines[i]!, i + 1);
  return p.finish();
}

/** Parses a samples file on disk line by line (yielding to the event loop between chunks). */
export async function parseSamplesPath(path: string, filename: string, task?: string): Promise<ParsedSamples> {
  const p = new SamplesParser(filename, task);
  const rl = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) p.push(line, ++n);
  return p.finish();
}

/** Two files of the same task are an error (the harness run twice?). */
export function checkDistinctTasks(parsed: readonly ParsedSamples[]): void {
  const tasks = new Map<string, string>();
  for (const p of parsed) {
    const prev = tasks.get(p.task);
    if (prev) throw new FieldError("files", `${prev} and ${p.filename} hold the same task '${p.task}'`);
    tasks.set(p.task, p.filename);
  }
}

/** Parses several files held in memory; two files of the same task are an error. */
export function parseSamplesFiles(files: readonly SamplesFile[]): ParsedSamples[] {
  if (files.length === 0) throw new FieldError("files", "no samples file given");
  const parsed = files.map((f) => parseSamples(f));
  checkDistinctTasks(parsed);
  return parsed;
}
