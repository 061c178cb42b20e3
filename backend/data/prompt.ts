// The one prompt template of the multiple-choice tasks, and how its answer letter is tokenized.
//
//   Question: <question>
//   A. <option A>
//   B. <option B>
//   C. <option C>
//   D. <option D>
//   Answer: <letter>
//
// The answer is the single letter after "Answer:". The full text always ends in "Answer: X";
// where it is cut into prompt and answer depends on the tokenizer, so that the answer is
// exactly one token and the prompt's tokens followed by it are exactly the tokens of the
// full text:
//   - r50k, cl100k, o200k: " A" … " D" are single tokens, so the prompt ends with "Answer:"
//     and the answer token is " X" (BPE's own split: the space belongs to the next word);
//   - byte: " A" is two bytes, so the prompt ends with "Answer: " and the answer is "X".
// answerFormat() makes this choice by encoding, and throws if neither form gives single
// tokens; tests check both properties for every tokenizer and every question.
import type { Question, TaskName } from "./tasks.js";
import type { SplitName } from "./split.js";
import { resolveTokenizer, type Tokenizer, type TokenizerName } from "./tokenizers.js";

export const LETTERS: readonly string[] = Object.freeze(["A", "B", "C", "D"]);
export const PROMPT_TEMPLATE = "Question: {question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer: {letter}";

/** "Question: <question>" and the lettered option lines, without the "Answer:" line. */
export function formatQuestionBlock(q: Pick<Question, "question" | "options">): string {
  if (!q || typeof q.question !== "string" || !Array.isArray(q.options) || q.options.length !== LETTERS.length) {
    throw new TypeError(`question must have a question string and ${LETTERS.length} options`);
  }
  return [`Question: ${q.question}`, ...q.options.map((o, i) => `${LETTERS[i]}. ${o}`)].join("\n");
}

/** The prompt text up to and including "Answer:" (no trailing space). */
export function formatPrompt(q: Pick<Question, "question" | "options">): string {
  return `${formatQuestionBlock(q)}\nAnswer:`;
}

/** The full text of a question with its correct answer, e.g. for display. */
export function formatExample(q: Pick<Question, "question" | "options" | "answer">): string {
  return `${formatPrompt(q)} ${LETTERS[q.answer]}`;
}

export interface AnswerFormat {
  tokenizer: TokenizerName;
  /** appended to formatPrompt() before encoding: "" (BPE) or " " (byte) */
  promptSuffix: string;
  /** the text of each letter token: " A" … (BPE) or "A" … (byte) */
  letterTexts: readonly string[];
  /** the token id of each option letter, A–D */
  letterIds: Int32Array;
}

const formats = new Map<TokenizerName, AnswerFormat>();

export function answerFormat(t: Tokenizer | TokenizerName): AnswerFormat {
  const tok = resolveTokenizer(t);
  const hit = formats.get(tok.name);
  if (hit) return hit;
  for (const space of [" ", ""]) {
    const ids = LETTERS.map((l) => tok.encode(space + l));
    if (ids.every((x) => x.length === 1)) {
      const f: AnswerFormat = Object.freeze({
        tokenizer: tok.name,
        promptSuffix: space === " " ? "" : " ",
        letterTexts: Object.freeze(LETTERS.map((l) => space + l)),
        letterIds: Int32Array.from(ids.map((x) => x[0]!)),
      });
      formats.set(tok.name, f);
      return f;
    }
  }
  throw new Error(`tokenizer ${tok.name}: neither " A" nor "A" is a single token, so answer letters cannot be scored`);
}

/** A question under one tokenizer: what evaluation and SFT need. */
export interface EncodedQuestion {
  id: string;
  task: TaskName;
  split: SplitName;
  doc: number;
  /** index (0–3) of the correct option */
  answer: number;
  /** tokens of formatPrompt(q) + promptSuffix: the model's next token after them is the answer */
  promptIds: Int32Array;
  /** token id of each option letter (A–D) under this tokenizer */
  letterIds: Int32Array;
  /** letterIds[answer] */
  answerId: number;
}

export function encodeQuestion(q: Question, t: Tokenizer | TokenizerName): EncodedQuestion {
  const tok = resolveTokenizer(t);
  const f = answerFormat(tok);
  if (!Number.isInteger(q.answer) || q.answer < 0 || q.answer >= LETTERS.length) throw new RangeError(`answer must be in [0, 3] (got ${q.answer})`);
  return {
    id: q.id,
    task: q.task,
    split: q.split,
    doc: q.doc,
    answer: q.answer,
    promptIds: tok.encode(formatPrompt(q) + f.promptSuffix),
    letterIds: f.letterIds,
    answerId: f.letterIds[q.answer]!,
  };
}

export function encodeQuestions(qs: readonly Question[], t: Tokenizer | TokenizerName): EncodedQuestion[] {
  const tok = resolveTokenizer(t);
  return qs.map((q) => encodeQuestion(q, tok));
}
