// Multiple-choice JSONL files (backend/data/mcq.ts): the reader's answers and errors, the few-shot
// choice, and lm-evaluation-harness's prompts written out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fewShotExamples, mcqContinuations, mcqMessages, mcqPrompt, parseMcqJsonl } from "../../backend/data/index.js";

const LINES = [
  { question: "2 + 2 = ?", choices: ["3", "4", "5", "22"], answer: 1, subject: "elementary_mathematics" },
  { question: "Capital of France?", choices: ["Paris", "Rome"], answer: "A", subject: "geography", id: "geo-1" },
  "",
  { question: "3 · 3 = ?", choices: ["6", "9", "33"], answer: "1", subject: "elementary_mathematics", extra: "ignored" },
  { question: "Odd one out?", choices: ["a", "b", "c", "1"], answer: 3 },
];
const TEXT = LINES.map((l) => (l === "" ? "   " : JSON.stringify(l))).join("\n");

test("reader: answers as index, letter or digit string; ids, subjects, lines; blank lines skipped", () => {
  const qs = parseMcqJsonl(TEXT, "m.jsonl");
  assert.deepEqual(qs.map((q) => [q.line, q.id, q.index, q.answer, q.subject]), [
    [1, "0", 0, 1, "elementary_mathematics"], [2, "geo-1", 1, 0, "geography"], [4, "2", 2, 1, "elementary_mathematics"], [5, "3", 3, 3, null],
  ]);
});

test("reader errors name the file, the line and the field", () => {
  const bad: Array<[string, RegExp]> = [
    ['{"question": "q", "choices": ["a", "b"], "answer": 2}', /m\.jsonl:1: answer 2 is out of range \(2 choices: 0–1 or A–B\)$/],
    ['{"question": "q", "choices": ["a", "b"], "answer": "C"}', /m\.jsonl:1: answer 'C' is out of range/],
    ['{"question": "q", "choices": ["a", "b"], "answer": "b"}', /m\.jsonl:1: answer must be a choice index or letter/],
    ['{"question": "q", "choices": ["a", "b"]}', /m\.jsonl:1: answer is missing/],
    ['{"question": "q", "choices": ["a"], "answer": 0}', /m\.jsonl:1: choices must be a list of 2 to 26 strings/],
    ['{"question": "q", "choices": ["a", ""], "answer": 0}', /m\.jsonl:1: choices\[1\] must be a non-empty string/],
    ['{"question": "", "choices": ["a", "b"], "answer": 0}', /m\.jsonl:1: question must be a non-empty string/],
    ['\n{"question": "q", "choices": ["a", "b"], "answer": 0, "subject": 3}', /m\.jsonl:2: subject must be a string/],
    ['{"question": "q"', /m\.jsonl:1: not valid JSON/],
    ["[1]", /m\.jsonl:1: each line must be a JSON object \{question, choices, answer\}/],
    ["\n\n", /m\.jsonl: no questions/],
    ['{"id": 1, "question": "q", "choices": ["a", "b"], "answer": 0}\n{"id": "1", "question": "r", "choices": ["a", "b"], "answer": 1}', /m\.jsonl:2: id '1' is used twice/],
  ];
  for (const [text, pattern] of bad) assert.throws(() => parseMcqJsonl(text, "m.jsonl"), pattern, text);
});

test("few-shot examples: the first k others, of the same subject first; never the question itself", () => {
  const qs = parseMcqJsonl(TEXT, "m.jsonl");
  assert.deepEqual(fewShotExamples(qs[0]!, qs, 1, true).map((q) => q.index), [2]);
  assert.deepEqual(fewShotExamples(qs[0]!, qs, 3, true).map((q) => q.index), [2, 1, 3]);
  assert.deepEqual(fewShotExamples(qs[3]!, qs, 2, true).map((q) => q.index), [0, 1]);
  assert.deepEqual(fewShotExamples(qs[3]!, qs, 2, false).map((q) => q.index), [0, 1], "another pool: its first k");
  assert.deepEqual(fewShotExamples(qs[0]!, qs, 2, false).map((q) => q.index), [0, 2], "another pool may hold the same index");
  assert.throws(() => fewShotExamples(qs[0]!, qs, 4, true), /4 few-shot examples asked for, but the pool has only 3/);
});

test("prompts: MMLU's letter prompt and ARC's option prompt, plain and as chat turns", () => {
  const [q0, q1, q2] = parseMcqJsonl(TEXT, "m.jsonl");
  assert.equal(mcqPrompt(q2!, [q0!], "letter"),
    "The following are multiple choice questions (with answers) about elementary mathematics.\n\n" +
    "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer: B\n\n" +
    "3 · 3 = ?\nA. 6\nB. 9\nC. 33\nAnswer:");
  assert.equal(mcqPrompt(q1!, [q0!], "option"), "Question: 2 + 2 = ?\nAnswer: 4\n\nQuestion: Capital of France?\nAnswer:");
  assert.deepEqual(mcqContinuations(q2!, "letter", false), { continuations: [" A", " B", " C"], lengths: [1, 1, 1] });
  assert.deepEqual(mcqContinuations(q1!, "option", false), { continuations: [" Paris", " Rome"], lengths: [5, 4] });
  assert.deepEqual(mcqContinuations(q1!, "option", true).continuations, ["Paris", "Rome"]);
  const noSubject = parseMcqJsonl(TEXT, "m.jsonl")[3]!;
  assert.ok(mcqPrompt(noSubject, [], "letter").startsWith("The following are multiple choice questions (with answers).\n\nOdd one out?\nA. a\n"));
  assert.deepEqual(mcqMessages(q1!, [q0!], "letter"), [
    { role: "user", content: "The following are multiple choice questions (with answers) about geography.\n\n2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:" },
    { role: "assistant", content: "B" },
    { role: "user", content: "Capital of France?\nA. Paris\nB. Rome\nAnswer:" },
  ]);
  assert.deepEqual(mcqMessages(q1!, [], "option"), [{ role: "user", content: "Question: Capital of France?\nAnswer:" }]);
});
