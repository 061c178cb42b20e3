// Multiple-choice scoring by continuation log-likelihood, written against a small scorer
// interface so that our GPTs and Hugging Face models share it (docs/records.md, "scoring"):
//
//   TokenScorer   token ids in → log p(target) at chosen positions (float64). The engine's models —
//                 our GPTs and the Llama family of Hugging Face folders alike — implement it through
//                 their eval (calib_model_eval: nll at chosen rows), see gptScorer(); Gemma 2's
//                 final soft-cap is the transform's softcap.
//   ScoredItem    a question as a context (token ids) and one continuation per option.
//   scoreItems    ll_i = Σ log p(continuation_i tokens | context, earlier tokens); probs =
//                 softmax(ll) (renormalized over the options); probs_norm = softmax(ll_i / len_i)
//                 with len_i the option's character length (lm-evaluation-harness acc_norm:
//                 argmax of ll_i / len_i); vocab_probs = exp(ll_i), the probability of generating
//                 exactly that continuation.
//
// Two scorings of the same question (`scoring` in questions.arrow):
//   option   the continuation is the option's text: base models "Question: …\nAnswer:" + " <option>"
//            (lm-eval's ARC / HellaSwag form); chat models the user turn is the question and
//            the continuation the reply's text after the template's generation prompt
//   letter   the prompt lists the options A–D and the continuation is the letter (one token);
//            softmax(ll) then equals today's softmax over the four letter logits
// Multiple-choice JSONL files (mcqItems) use lm-evaluation-harness's prompts instead
// (backend/data/mcq.ts: MMLU's letter prompt, ARC's option prompt, k-shot, chat turns).
// Base models are scored without a chat template; SFT models with the template they were
// trained with (the `template` argument).
//
// Tokenization follows lm-eval: the continuation's tokens are those of encode(context +
// continuation) after encode(context) when the latter is a prefix of the former, else
// encode(continuation) appended to encode(context).
import type { GptModel } from "../engine/index.js";
import {
  IGNORE_INDEX, LETTERS, fewShotExamples, formatPrompt, mcqContinuations, mcqMessages, mcqPrompt, mcqUserText, openPrompt,
  type ChatTemplate, type McqQuestion, type TextTokenizer, type WorldQuestion,
} from "../data/index.js";
import type { QuestionRow, Scoring } from "../records/index.js";

export interface ScorerBatch {
  /** b × t input ids, row-major */
  inputs: Int32Array;
  /** b × t targets: the token after each position, IGNORE_INDEX (−100) where no score is wanted */
  targets: Int32Array;
  b: number;
  t: number;
}

export interface TokenScorer {
  /** the longest row (tokens) it takes */
  readonly context: number;
  /** the most rows per call */
  readonly maxRows: number;
  /** log p(targets[k] | inputs of its row up to k) for every k with a target, NaN elsewhere (length b·t) */
  logProbs(batch: ScorerBatch): Float64Array;
}

/** Our GPT as a scorer: the evaluated distribution is softmax(softcap(z/T)) (default the raw logits). */
export function gptScorer(model: GptModel, transform: { temperature?: number; softcap?: number | null } = {}): TokenScorer {
  return {
    context: model.config.context,
    maxRows: model.maxBatch,
    logProbs(batch: ScorerBatch): Float64Array {
      const rows: number[] = [];
      for (let i = 0; i < batch.targets.length; i++) if (batch.targets[i] !== IGNORE_INDEX) rows.push(i);
      const out = new Float64Array(batch.b * batch.t).fill(NaN);
      if (rows.length === 0) return out;
      const r = model.evaluate(batch, { rows: Int32Array.from(rows), topK: 0, temperature: transform.temperature ?? 1, softcap: transform.softcap ?? 0 });
      rows.forEach((i, k) => (out[i] = -r.nll![k]!));
      return out;
    },
  };
}

export interface ScoredItem {
  id: string;
  task: string;
  /** document / person index for the records */
  doc: number;
  gold: number;
  /** biographies per epoch (knowledge worlds), or null */
  exposures: number | null;
  scoring: Scoring;
  context: Int32Array;
  /** the tokens of each option's continuation (non-empty) */
  continuations: Int32Array[];
  /** character length of each option (acc_norm), without the leading space */
  lengths: number[];
}

function startsWith(a: Int32Array, p: Int32Array): boolean {
  if (p.length > a.length) return false;
  for (let i = 0; i < p.length; i++) if (a[i] !== p[i]) return false;
  return true;
}

/** Context and continuation tokens per lm-eval's rule (see the header). */
export function splitContinuation(tok: TextTokenizer, context: string, continuation: string, contextIds?: Int32Array): { context: Int32Array; continuation: Int32Array } {
  const ctx = contextIds ?? tok.encode(context);
  const whole = tok.encode(context + continuation);
  const cont = startsWith(whole, ctx) ? whole.slice(ctx.length) : tok.encode(continuation);
  if (cont.length === 0) throw new RangeError(`continuation ${JSON.stringify(continuation)} has no tokens`);
  return { context: ctx, continuation: cont };
}

function item(
  q: { id: string; task: string; doc: number; gold: number; exposures: number | null }, scoring: Scoring, tok: TextTokenizer, prompt: string,
  continuations: readonly string[], lengths: number[],
): ScoredItem {
  const context = tok.encode(prompt);
  return { ...q, scoring, context, continuations: continuations.map((c) => splitContinuation(tok, prompt, c, context).continuation), lengths };
}

/** The letter continuations: after a chat generation prompt the bare letter; after "Answer:" the
 * form that makes each letter one token (" A" for BPE and word-level, "A" after "Answer: " for bytes). */
function letterContinuations(tok: TextTokenizer, chat: boolean): { suffix: string; letters: readonly string[] } {
  if (chat) return { suffix: "", letters: LETTERS };
  for (const space of [" ", ""]) {
    if (LETTERS.every((l) => tok.encode(space + l).length === 1)) return { suffix: space === " " ? "" : " ", letters: LETTERS.map((l) => space + l) };
  }
  throw new Error(`tokenizer ${tok.name}: neither " A" nor "A" is a single token, so answer letters cannot be scored`);
}

/**
 * Scored items for world questions. template null: the base format (no chat template);
 * otherwise the question is the user turn of a conversation rendered with `template`.
 */
export function worldItems(qs: readonly WorldQuestion[], scoring: Scoring, tok: TextTokenizer, template: ChatTemplate | null): ScoredItem[] {
  return qs.map((q) => {
    const meta = { id: q.id, task: q.task, doc: q.person, gold: q.answer, exposures: q.exposures };
    if (scoring === "option") {
      const prompt = template ? template.render([{ role: "user", content: q.question }], { addGenerationPrompt: true }) : openPrompt(q);
      const sep = template ? "" : " ";
      return item(meta, scoring, tok, prompt, q.options.map((o) => sep + o), q.options.map((o) => o.length));
    }
    const f = letterContinuations(tok, template !== null);
    const prompt = template ? template.render([{ role: "user", content: mcqUserText(q) }], { addGenerationPrompt: true }) : formatPrompt(q) + f.suffix;
    return item(meta, scoring, tok, prompt, f.letters, LETTERS.map(() => 1));
  });
}

/** `tok` with `prefix` (a BOS) put before every encoding: the plain prompts of a model whose tokenizer adds it (docs/hf.md). */
export function withPrefix(tok: TextTokenizer, prefix: readonly number[]): TextTokenizer {
  if (prefix.length === 0) return tok;
  return {
    name: tok.name, encoding: tok.encoding, vocabSize: tok.vocabSize, eotId: tok.eotId, padId: tok.padId, fingerprint: tok.fingerprint,
    decode: (ids) => tok.decode(ids),
    encode(text: string): Int32Array {
      const ids = tok.encode(text);
      const out = new Int32Array(prefix.length + ids.length);
      out.set(prefix);
      out.set(ids, prefix.length);
      return out;
    },
  };
}

export interface McqItemOptions {
  /** the records' task (the file's name) */
  task: string;
  scoring: "letter" | "option";
  /** the plain prompts' tokenizer (withPrefix for a model that reads a BOS first) */
  tok: TextTokenizer;
  /** render the prompts with this chat template (null: plain text) */
  template: ChatTemplate | null;
  shots: number;
  /** where the few-shot examples come from, and whether it is the evaluated file itself */
  pool: readonly McqQuestion[];
  samePool: boolean;
}

/** Scored items of multiple-choice questions with lm-eval's prompts (backend/data/mcq.ts); ids `<task>:<id>`, doc the question's index. */
export function mcqItems(qs: readonly McqQuestion[], o: McqItemOptions): ScoredItem[] {
  return qs.map((q) => {
    const meta = { id: `${o.task}:${q.id}`, task: o.task, doc: q.index, gold: q.answer, exposures: null };
    const shots = fewShotExamples(q, o.pool, o.shots, o.samePool);
    const prompt = o.template ? o.template.render(mcqMessages(q, shots, o.scoring), { addGenerationPrompt: true }) : mcqPrompt(q, shots, o.scoring);
    const { continuations, lengths } = mcqContinuations(q, o.scoring, o.template !== null);
    return item(meta, o.scoring, o.tok, prompt, continuations, lengths);
  });
}

export interface ScoreOptions {
  epoch: number;
  split: string;
  /** input id after a row's last token (any valid id: right padding never affects earlier positions) */
  padId: number;
  onBatch?: (done: number, total: number) => void;
}

export interface ScoreResult {
  rows: QuestionRow[];
  /** ids of items with a sequence longer than the scorer's context + 1 (not scored) */
  skipped: string[];
  /** argmax of probs == gold */
  accuracy: number;
  /** argmax of ll / length == gold (acc_norm); NaN for letter scoring */
  accuracyNorm: number;
  /** mean −ll(gold): −log of the full-vocabulary probability of the gold continuation */
  nll: number;
  /** mean entropy of probs */
  entropy: number;
}

function softmax(x: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!);
  const e = Array.from(x, (v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

const argmax = (p: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[b]!) b = i;
  return b;
};

/** Log-likelihood of every continuation of every item, then the records (see the header). */
export function scoreItems(scorer: TokenScorer, items: readonly ScoredItem[], o: ScoreOptions): ScoreResult {
  const fits = (it: ScoredItem) => it.continuations.every((c) => it.context.length + c.length - 1 <= scorer.context);
  const kept = items.filter(fits);
  const skipped = items.filter((it) => !fits(it)).map((it) => it.id);
  const seqs: { item: number; option: number }[] = [];
  kept.forEach((it, i) => it.continuations.forEach((_, j) => seqs.push({ item: i, option: j })));
  const ll = kept.map((it) => new Float64Array(it.continuations.length));
  const per = Math.max(1, scorer.maxRows);
  for (let s = 0; s < seqs.length; s += per) {
    const group = seqs.slice(s, s + per);
    const lens = group.map(({ item, option }) => kept[item]!.context.length + kept[item]!.continuations[option]!.length - 1);
    const t = Math.max(...lens);
    const inputs = new Int32Array(group.length * t).fill(o.padId);
    const targets = new Int32Array(group.length * t).fill(IGNORE_INDEX);
    group.forEach(({ item, option }, r) => {
      const it = kept[item]!, cont = it.continuations[option]!;
      const C = it.context.length;
      inputs.set(it.context, r * t);
      inputs.set(cont.subarray(0, cont.length - 1), r * t + C);
      // position C−1+k predicts cont[k]
      targets.set(cont, r * t + C - 1);
    });
    const lp = scorer.logProbs({ inputs, targets, b: group.length, t });
    group.forEach(({ item, option }, r) => {
      const it = kept[item]!, cont = it.continuations[option]!;
      let sum = 0;
      for (let k = 0; k < cont.length; k++) sum += lp[r * t + it.context.length - 1 + k]!;
      ll[item]![option] = sum;
    });
    o.onBatch?.(Math.min(kept.length, group[group.length - 1]!.item + 1), kept.length);
  }
  const rows: QuestionRow[] = [];
  let correct = 0, correctNorm = 0, nll = 0, ent = 0;
  kept.forEach((it, i) => {
    const l = ll[i]!;
    const probs = softmax(l);
    const probsNorm = it.scoring === "option" ? softmax(Array.from(l, (v, j) => v / Math.max(1, it.lengths[j]!))) : null;
    if (argmax(probs) === it.gold) correct++;
    if (probsNorm && argmax(probsNorm) === it.gold) correctNorm++;
    nll -= l[it.gold]!;
    ent -= probs.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);
    rows.push({
      epoch: o.epoch, split: o.split, task: it.task, id: it.id, doc: it.doc, gold: it.gold, logits: Float64Array.from(l), probs,
      vocabProbs: Array.from(l, Math.exp), probsNorm, scoring: it.scoring, exposures: it.exposures,
    });
  });
  const n = rows.length;
  const letter = kept.length > 0 && kept[0]!.scoring === "letter";
  return {
    rows, skipped, accuracy: n ? correct / n : NaN, accuracyNorm: n && !letter ? correctNorm / n : NaN, nll: n ? nll / n : NaN, entropy: n ? ent / n : NaN,
  };
}

export interface ItemsEval {
  rows: QuestionRow[];
  /** accuracy_<task>_<scoring>, accuracy_norm_<task> (option); the first list's also as accuracy_<task>, question_accuracy, question_nll, question_entropy, questions_skipped */
  metrics: Record<string, number>;
  /** the first list's mean −ll(gold) and mean entropy of its option distribution */
  validation: { nll: number; entropy: number } | null;
  /** items of the first list longer than the context */
  skipped: number;
}

/** Scores lists of items (one per scoring, the first the headline) with the model: records and metrics (onBatch counts the items of all lists). */
export function evaluateItems(
  model: GptModel, items: ScoredItem[][], o: { epoch: number; split: string; padId: number; temperature: number; softcap: number | null; onBatch?: ScoreOptions["onBatch"] },
): ItemsEval {
  const scorer = gptScorer(model, { temperature: o.temperature, softcap: o.softcap });
  const rows: QuestionRow[] = [];
  const metrics: Record<string, number> = {};
  let validation: ItemsEval["validation"] = null;
  let skipped = 0, before = 0;
  const total = items.reduce((a, l) => a + l.length, 0);
  items.forEach((list, k) => {
    if (list.length === 0) return;
    const onBatch = o.onBatch;
    const r = scoreItems(scorer, list, { epoch: o.epoch, split: o.split, padId: o.padId, ...(onBatch ? { onBatch: (done: number) => onBatch(before + done, total) } : {}) });
    before += list.length;
    rows.push(...r.rows);
    const scoring = list[0]!.scoring, task = list[0]!.task;
    metrics[`accuracy_${task}_${scoring}`] = r.accuracy;
    if (scoring === "option") metrics[`accuracy_norm_${task}`] = r.accuracyNorm;
    if (k === 0) {
      Object.assign(metrics, { [`accuracy_${task}`]: r.accuracy, question_accuracy: r.accuracy, question_nll: r.nll, question_entropy: r.entropy, questions_skipped: r.skipped.length });
      validation = { nll: r.nll, entropy: r.entropy };
      skipped = r.skipped.length;
    }
  });
  return { rows, metrics, validation, skipped };
}
