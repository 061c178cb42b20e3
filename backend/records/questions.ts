// questions.arrow: one row per multiple-choice question (docs/records.md). Our evaluator fills
// logits (option-letter logits), probs (softmax over them) and vocab_probs (full-vocabulary
// probability of each letter); lm-eval imports fill probs_norm instead of vocab_probs.
import type { Table } from "apache-arrow";
import { bool, float32, float32Lists, float32Nullable, int32, makeTable, utf8, writeArrowStream } from "./arrow.js";

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
  });
}

export function writeQuestions(path: string, runId: string, rows: readonly QuestionRow[]): void {
  writeArrowStream(path, questionsTable(runId, rows));
}
