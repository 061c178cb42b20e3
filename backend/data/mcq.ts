// Multiple-choice questions in the common JSONL shape (MMLU's as the Hugging Face datasets and
// lm-evaluation-harness hold it) and the prompts lm-evaluation-harness scores them with.
//
// One question per line (blank lines skipped; other keys ignored):
//   {"question": "…", "choices": ["…", "…", …], "answer": 2 | "C", "subject": "…"?, "id": "…"?}
// `choices`: 2 to 26 non-empty strings; `answer`: the 0-based index of the correct choice or its
// letter (A, B, …); `subject` (MMLU's) names the description line and picks few-shot examples of
// the same subject. Errors name the file, the line and the field:
//   "mmlu.jsonl:7: answer 4 is out of range (4 choices: 0–3 or A–D)".
//
// Prompts (the text before the scored continuation):
//   letter   "The following are multiple choice questions (with answers) about <subject>.\n\n"
//            then, per few-shot example, "<question>\nA. <choice>\n…\nAnswer: <letter>\n\n",
//            then "<question>\nA. <choice>\n…\nAnswer:"; continuations " A", " B", … (MMLU's
//            default prompt in lm-evaluation-harness)
//   option   per example "Question: <question>\nAnswer: <gold choice>\n\n", then
//            "Question: <question>\nAnswer:"; continuations " <choice>" (ARC's form)
// With a chat template every example is a user turn (the prompt without its answer) and an
// assistant turn (the answer), the question is the last user turn — the description heads the
// first user turn (Gemma's template has no system role) — and the continuation follows the
// generation prompt without the leading space (lm-eval's multi-turn few-shot form).
import type { ChatMessage } from "./chat-template.js";
import { forEachJsonlObject, readTextFile } from "./chat.js";

export interface McqQuestion {
  /** 1-based line of the file */
  line: number;
  /** the line's `id`, else its index among the file's questions (0-based, as a string) */
  id: string;
  /** index among the file's questions */
  index: number;
  question: string;
  choices: string[];
  /** index of the correct choice */
  answer: number;
  subject: string | null;
}

export const MAX_CHOICES = 26;
export const choiceLetter = (i: number): string => String.fromCharCode(65 + i);

function answerIndex(v: unknown, n: number, where: string): number {
  const range = `${n} choices: 0–${n - 1} or A–${choiceLetter(n - 1)}`;
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v >= n) throw new RangeError(`${where}: answer ${v} is out of range (${range})`);
    return v;
  }
  if (typeof v === "string") {
    const s = v.trim();
    if (/^[A-Z]$/.test(s)) {
      const i = s.charCodeAt(0) - 65;
      if (i >= n) throw new RangeError(`${where}: answer '${s}' is out of range (${range})`);
      return i;
    }
    if (/^\d+$/.test(s)) return answerIndex(Number(s), n, where);
  }
  throw new TypeError(`${where}: answer must be a choice index or letter (${range}); got ${JSON.stringify(v)}`);
}

/** Parses multiple-choice JSONL text (see the header); `source` names the file in errors. */
export function parseMcqJsonl(text: string, source = "<jsonl>"): McqQuestion[] {
  const out: McqQuestion[] = [];
  forEachJsonlObject(text, source, (o, where, line) => {
    if (typeof o.question !== "string" || o.question.trim() === "") throw new TypeError(`${where}: question must be a non-empty string`);
    const choices = o.choices;
    if (!Array.isArray(choices) || choices.length < 2 || choices.length > MAX_CHOICES) {
      throw new TypeError(`${where}: choices must be a list of 2 to ${MAX_CHOICES} strings`);
    }
    choices.forEach((c, k) => {
      if (typeof c !== "string" || c.trim() === "") throw new TypeError(`${where}: choices[${k}] must be a non-empty string`);
    });
    if (!("answer" in o)) throw new TypeError(`${where}: answer is missing (a choice index or letter)`);
    const answer = answerIndex(o.answer, choices.length, where);
    if (o.subject !== undefined && o.subject !== null && typeof o.subject !== "string") throw new TypeError(`${where}: subject must be a string`);
    if (o.id !== undefined && typeof o.id !== "string" && typeof o.id !== "number") throw new TypeError(`${where}: id must be a string or a number`);
    const index = out.length;
    out.push({
      line, id: o.id === undefined ? String(index) : String(o.id), index, question: o.question, choices: choices as string[], answer,
      subject: typeof o.subject === "string" && o.subject.trim() !== "" ? o.subject : null,
    });
  }, "{question, choices, answer}");
  if (out.length === 0) throw new TypeError(`${source}: no questions (the file is empty)`);
  const ids = new Set<string>();
  for (const q of out) {
    if (ids.has(q.id)) throw new TypeError(`${source}:${q.line}: id '${q.id}' is used twice`);
    ids.add(q.id);
  }
  return out;
}

/** Reads a multiple-choice JSONL file (see parseMcqJsonl). */
export function readMcqJsonl(path: string): McqQuestion[] {
  return parseMcqJsonl(readTextFile(path), path);
}

export type McqScoring = "letter" | "option";

/**
 * The few-shot examples of each question: the first k questions of `pool` other than the
 * question itself (same id when the pool is the evaluated file), preferring those of the same
 * subject (MMLU's per-subject dev sets) and filling up with the others in file order.
 */
export function fewShotExamples(q: McqQuestion, pool: readonly McqQuestion[], k: number, samePool: boolean): McqQuestion[] {
  if (k === 0) return [];
  const usable = pool.filter((p) => !(samePool && p.index === q.index));
  const same = q.subject === null ? [] : usable.filter((p) => p.subject === q.subject);
  const picked = same.slice(0, k);
  for (const p of usable) {
    if (picked.length >= k) break;
    if (!picked.includes(p)) picked.push(p);
  }
  if (picked.length < k) throw new RangeError(`${k} few-shot examples asked for, but the pool has only ${picked.length} other questions`);
  return picked;
}

function description(subject: string | null): string {
  return `The following are multiple choice questions (with answers)${subject ? ` about ${subject.replace(/_/g, " ").trim()}` : ""}.\n\n`;
}

/** The question's own prompt, without its answer (ending with "Answer:"). */
function block(q: McqQuestion, scoring: McqScoring): string {
  if (scoring === "option") return `Question: ${q.question.trim()}\nAnswer:`;
  return `${q.question.trim()}\n${q.choices.map((c, i) => `${choiceLetter(i)}. ${c.trim()}\n`).join("")}Answer:`;
}

/** The answer text of an example (after "Answer:" and its space). */
function answerText(q: McqQuestion, scoring: McqScoring): string {
  return scoring === "letter" ? choiceLetter(q.answer) : q.choices[q.answer]!.trim();
}

/** The continuations of a question's choices (for the plain prompt: with the leading space) and their lengths for acc_norm. */
export function mcqContinuations(q: McqQuestion, scoring: McqScoring, chat: boolean): { continuations: string[]; lengths: number[] } {
  const sep = chat ? "" : " ";
  if (scoring === "letter") return { continuations: q.choices.map((_, i) => sep + choiceLetter(i)), lengths: q.choices.map(() => 1) };
  return { continuations: q.choices.map((c) => sep + c.trim()), lengths: q.choices.map((c) => c.trim().length) };
}

/** The plain-text prompt of a question with its few-shot examples (see the header). */
export function mcqPrompt(q: McqQuestion, shots: readonly McqQuestion[], scoring: McqScoring): string {
  const head = scoring === "letter" ? description(q.subject) : "";
  return head + shots.map((s) => `${block(s, scoring)} ${answerText(s, scoring)}\n\n`).join("") + block(q, scoring);
}

/** The conversation of a question for a chat template: examples as earlier turns, the question last (see the header). */
export function mcqMessages(q: McqQuestion, shots: readonly McqQuestion[], scoring: McqScoring): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (const s of shots) messages.push({ role: "user", content: block(s, scoring) }, { role: "assistant", content: answerText(s, scoring) });
  messages.push({ role: "user", content: block(q, scoring) });
  if (scoring === "letter") messages[0] = { role: "user", content: description(q.subject) + messages[0]!.content };
  return messages;
}
