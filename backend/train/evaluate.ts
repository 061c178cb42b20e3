// Evaluation of a model on Brown text (per-token records) and on multiple-choice questions
// (per-question records), as typed arrays / rows ready for backend/records.
//   tokens     whole windows of `context` tokens from the start of a split (stream order, no
//              shuffling): every position of a window is one record; `position` is the index
//              inside the window
//   questions  the prompt ends where the answer letter comes next; the option-letter logits
//              are the transformed logits s = softcap(z/T) of the letters A–D at the last prompt
//              position; probs = softmax over the four; vocab_probs = exp(s − lse) over the
//              whole vocabulary
// The evaluated distribution is softmax(softcap(z/T)) with T and cap from the options
// (default the raw logits, as a Hugging Face model would be evaluated).
import type { GptModel } from "../engine/index.js";
import { lmBatches, type EncodedQuestion, type TokenStream } from "../data/index.js";
import { TOP_K, type QuestionRow, type TokenRecords } from "../records/index.js";

export interface TransformOptions {
  temperature?: number;
  softcap?: number | null;
}

export interface TokenEvalOptions extends TransformOptions {
  splitName: string;
  /** tokens to evaluate (rounded up to whole windows, at most the split) */
  maxTokens: number;
  batchSize: number;
  /** window length (default the model's context) */
  context?: number;
  /** SFT epoch of the checkpoint, for the records (default 0) */
  epoch?: number;
  onBatch?: (done: number, total: number) => void;
}

export interface TokenEval {
  records: TokenRecords;
  /** mean −log p(target) over the evaluated tokens (float64) */
  nll: number;
  entropy: number;
  accuracy: number;
  count: number;
}

/** Windows needed for `maxTokens` tokens (0 = none), capped by the split. */
function windowsFor(split: TokenStream, T: number, maxTokens: number): number {
  const avail = split.tokens.length < 1 ? 0 : Math.floor((split.tokens.length - 1) / T);
  return Math.min(avail, Math.ceil(maxTokens / T));
}

export function evaluateTokens(model: GptModel, split: TokenStream, o: TokenEvalOptions): TokenEval {
  const T = o.context ?? model.config.context;
  const B = Math.min(o.batchSize, model.maxBatch);
  const windows = windowsFor(split, T, o.maxTokens);
  const n = windows * T;
  const rec: TokenRecords = {
    epoch: o.epoch ?? 0,
    split: o.splitName,
    doc: new Int32Array(n), position: new Int32Array(n), target: new Int32Array(n), argmax: new Int32Array(n),
    pTarget: new Float32Array(n), confidence: new Float32Array(n), entropy: new Float32Array(n), lse: new Float32Array(n),
    topIds: new Int32Array(n * TOP_K), topP: new Float32Array(n * TOP_K),
  };
  let nll = 0, ent = 0, correct = 0;
  if (windows > 0) {
    const epoch = lmBatches(split, { contextLength: T, batchSize: B, shuffle: false });
    let row = 0;
    for (let bi = 0; row < windows; bi++) {
      const b = epoch.batch(bi);
      const rows = Math.min(b.rows, windows - row);
      const inputs = b.inputs.subarray(0, rows * T), targets = b.targets.subarray(0, rows * T);
      const r = model.evaluate({ inputs, targets, b: rows, t: T }, { topK: TOP_K, temperature: o.temperature ?? 1, softcap: o.softcap ?? 0 });
      const at = row * T;
      rec.doc.set(b.docs.subarray(0, rows * T), at);
      for (let i = 0; i < rows * T; i++) rec.position[at + i] = i % T;
      rec.target.set(targets, at);
      rec.argmax.set(r.argmax, at);
      rec.pTarget.set(r.pTarget!, at);
      rec.confidence.set(r.pMax, at);
      rec.entropy.set(r.entropy, at);
      rec.lse.set(r.lse, at);
      rec.topIds.set(r.topIds, at * TOP_K);
      rec.topP.set(r.topP, at * TOP_K);
      for (let i = 0; i < rows * T; i++) {
        nll += r.nll![i]!;
        ent += r.entropy[i]!;
        if (r.argmax[i] === targets[i]) correct++;
      }
      row += rows;
      o.onBatch?.(row, windows);
    }
  }
  return { records: rec, nll: n > 0 ? nll / n : NaN, entropy: n > 0 ? ent / n : NaN, accuracy: n > 0 ? correct / n : NaN, count: n };
}

/** Mean NLL and entropy of the first `windows` windows of a split (the validation rows of train_log). */
export function validationLoss(model: GptModel, split: TokenStream, windows: number, batchSize: number, context?: number): { nll: number; entropy: number; tokens: number } {
  const T = context ?? model.config.context;
  const B = Math.min(batchSize, model.maxBatch);
  const w = windowsFor(split, T, windows * T);
  const epoch = lmBatches(split, { contextLength: T, batchSize: B, shuffle: false });
  let nll = 0, ent = 0, row = 0;
  for (let bi = 0; row < w; bi++) {
    const b = epoch.batch(bi);
    const rows = Math.min(b.rows, w - row);
    const targets = b.targets.subarray(0, rows * T);
    const r = model.evaluate({ inputs: b.inputs.subarray(0, rows * T), targets, b: rows, t: T }, { topK: 0 });
    for (let i = 0; i < rows * T; i++) {
      nll += r.nll![i]!;
      ent += r.entropy[i]!;
    }
    row += rows;
  }
  const n = w * T;
  return { nll: nll / n, entropy: ent / n, tokens: n };
}

export interface QuestionEvalOptions extends TransformOptions {
  split: string;
  /** 'right': every prompt ends at the last position of a context-long row (left padding with
   * padId), as SFT trains with promptAlign 'right'; 'left' (default): prompts start at 0 */
  align?: "left" | "right";
  padId?: number;
  epoch: number;
  batchSize: number;
  onBatch?: (done: number, total: number) => void;
}

export interface QuestionEval {
  rows: QuestionRow[];
  /** ids of questions whose prompt is longer than the model's context (not evaluated) */
  skipped: string[];
  accuracy: number;
  /** mean −log of the full-vocabulary probability of the gold letter */
  nll: number;
  /** mean full-vocabulary entropy at the answer position */
  entropy: number;
  /** full-vocabulary entropy at the answer position of each row */
  entropies: Float64Array;
}

/** Scores each question by the option letters' logits at the position before the answer. */
export function evaluateQuestions(model: GptModel, questions: readonly EncodedQuestion[], o: QuestionEvalOptions): QuestionEval {
  const context = model.config.context;
  const B = Math.min(o.batchSize, model.maxBatch);
  const kept = questions.filter((q) => q.promptIds.length <= context);
  const skipped = questions.filter((q) => q.promptIds.length > context).map((q) => q.id);
  const rows: QuestionRow[] = [];
  const entropies = new Float64Array(kept.length);
  let nll = 0, ent = 0, correct = 0;
  for (let s = 0; s < kept.length; s += B) {
    const group = kept.slice(s, s + B);
    const letters = group[0]!.letterIds;
    const right = o.align === "right";
    const T = right ? context : Math.max(...group.map((q) => q.promptIds.length));
    const inputs = new Int32Array(group.length * T);
    const at = new Int32Array(group.length);
    group.forEach((q, i) => {
      if (q.letterIds.length !== letters.length || q.letterIds.some((id, k) => id !== letters[k])) {
        throw new TypeError(`question ${q.id}: option letters differ within one evaluation (mixed tokenizers?)`);
      }
      const L = q.promptIds.length;
      if (right) {
        inputs.fill(o.padId ?? 0, i * T, (i + 1) * T - L);
        inputs.set(q.promptIds, (i + 1) * T - L);
        at[i] = (i + 1) * T - 1;
      } else {
        inputs.set(q.promptIds, i * T);
        inputs.fill(q.promptIds[L - 1]!, i * T + L, (i + 1) * T);
        at[i] = i * T + L - 1;
      }
    });
    const r = model.evaluate({ inputs, b: group.length, t: T }, {
      rows: at, topK: 0, optionIds: Int32Array.from(letters), temperature: o.temperature ?? 1, softcap: o.softcap ?? 0,
    });
    const k = letters.length;
    group.forEach((q, i) => {
      const logits = r.optionLogits!.subarray(i * k, (i + 1) * k);
      const lse = r.lse[i]!;
      let m = -Infinity;
      for (const z of logits) m = Math.max(m, z);
      let sum = 0;
      for (const z of logits) sum += Math.exp(z - m);
      const probs = Array.from(logits, (z) => Math.exp(z - m) / sum);
      const vocabProbs = Array.from(logits, (z) => Math.exp(z - lse));
      rows.push({ epoch: o.epoch, split: o.split, task: q.task, id: q.id, doc: q.doc, gold: q.answer, logits: Float32Array.from(logits), probs, vocabProbs });
      let pred = 0;
      for (let j = 1; j < k; j++) if (probs[j]! > probs[pred]!) pred = j;
      if (pred === q.answer) correct++;
      nll += lse - logits[q.answer]!;
      ent += r.entropy[i]!;
      entropies[s + i] = r.entropy[i]!;
    });
    o.onBatch?.(Math.min(kept.length, s + B), kept.length);
  }
  const n = rows.length;
  return { rows, skipped, accuracy: n ? correct / n : NaN, nll: n ? nll / n : NaN, entropy: n ? ent / n : NaN, entropies };
}
