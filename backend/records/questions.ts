// questions.arrow: one row per multiple-choice question and scoring (docs/records.md). Letter
// scoring of the Brown tasks fills logits (option-letter logits), probs (softmax over them) and
// vocab_probs (full-vocabulary probability of each letter); option scoring (backend/train/
// scoring.ts) fills logits with each option's summed log-likelihood, probs, vocab_probs = exp of
// it and probs_norm (acc_norm); lm-eval imports fill probs_norm instead of vocab_probs. `scoring`
// says which (a file without the column is letter scoring); `exposures` is null outside worlds.
import type { Table } from "apache-arrow";
import { bool, float32, float32Lists, float32Nullable, int32, int32Nullable, makeTable, utf8, writeArrowStream } from "./arrow.js";

/** letter: the answer letter after the lettered options; option: each option's text as the continuation */
export type Scoring = "letter" | "option";
export const SCORINGS: readonly Scoring[] = Object.freeze(["letter", "option"] as const);

export interface QuestionRow {
  epoch: number;
  split: string;
  task: string;
  id: string;
  /** Brown document index (−1 for imports) */
  doc: number;
  gold: number;
  /** option logits (ours) or summed log-likelihoods (lm-eval) */
  logits: ArrayLike<number>;
  /** softmax over the options */
  probs: ArrayLike<number>;
  /** full-vocabulary probability of each option letter, or null (imports) */
  vocabProbs: ArrayLike<number> | null;
  /** length-normalized option probabilities (lm-eval acc_norm), or null */
  probsNorm?: ArrayLike<number> | null;
  /** how the options were scored (default "letter") */
  scoring?: Scoring;
  /** knowledge worlds: biographies of the person per pretraining epoch; null elsewhere */
  exposures?: number | null;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
}

function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) h -= p[i]! * Math.log(p[i]!);
  return h;
}

export function questionsTable(runId: string, rows: readonly QuestionRow[]): Table {
  const n = rows.length;
  rows.forEach((r, i) => {
    const k = r.probs.length;
    if (k < 2 || r.logits.length !== k || (r.vocabProbs && r.vocabProbs.length !== k) || (r.probsNorm && r.probsNorm.length !== k)) {
      throw new TypeError(`questions[${i}] (${r.id}): logits, probs, vocab_probs and probs_norm must have one entry per option`);
    }
    if (!Number.isInteger(r.gold) || r.gold < 0 || r.gold >= k) throw new RangeError(`questions[${i}] (${r.id}): gold ${r.gold} is not an option index`);
    if (r.scoring !== undefined && !SCORINGS.includes(r.scoring)) throw new TypeError(`questions[${i}] (${r.id}): scoring must be one of ${SCORINGS.join(", ")}`);
  });
  const pred = rows.map((r) => argmax(r.probs));
  const predNorm = rows.map((r) => (r.probsNorm ? argmax(r.probsNorm) : null));
  return makeTable({
    run_id: utf8(new Array(n).fill(runId)),
    epoch: int32(Int32Array.from(rows, (r) => r.epoch)),
    split: utf8(rows.map((r) => r.split)),
    task: utf8(rows.map((r) => r.task)),
    id: utf8(rows.map((r) => r.id)),
    doc: int32(Int32Array.from(rows, (r) => r.doc)),
    n_options: int32(Int32Array.from(rows, (r) => r.probs.length)),
    gold: int32(Int32Array.from(rows, (r) => r.gold)),
    pred: int32(Int32Array.from(pred)),
    correct: bool(rows.map((r, i) => pred[i] === r.gold)),
    confidence: float32(Float32Array.from(rows, (r, i) => r.probs[pred[i]!]!)),
    entropy: float32(Float32Array.from(rows, (r) => entropy(r.probs))),
    logits: float32Lists(rows.map((r) => r.logits)),
    probs: float32Lists(rows.map((r) => r.probs)),
    vocab_probs: float32Lists(rows.map((r) => r.vocabProbs)),
    probs_norm: float32Lists(rows.map((r) => r.probsNorm ?? null)),
    confidence_norm: float32Nullable(rows.map((r, i) => (r.probsNorm ? r.probsNorm[predNorm[i]!]! : null))),
    correct_norm: bool(rows.map((r, i) => (r.probsNorm ? predNorm[i] === r.gold : null))),
    scoring: utf8(rows.map((r) => r.scoring ?? "letter")),
    exposures: int32Nullable(rows.map((r) => r.exposures ?? null)),
  });
}

export function writeQuestions(path: string, runId: string, rows: readonly QuestionRow[]): void {
  writeArrowStream(path, questionsTable(runId, rows));
}

/** The scoring of each row of a questions table: its `scoring` column, or "letter" for files written before it existed. */
export function questionScorings(table: Table): Scoring[] {
  const c = table.getChild("scoring");
  const out: Scoring[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) out[i] = c ? (c.get(i) as Scoring) : "letter";
  return out;
}
