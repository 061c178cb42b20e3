// Prompt template, answer-letter tokens under every tokenizer, and SFT batches where only the
// answer letter is supervised.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  IGNORE_INDEX,
  LETTERS,
  PROMPT_TEMPLATE,
  TASK_NAMES,
  TOKENIZER_NAMES,
  answerFormat,
  encodeQuestions,
  formatExample,
  formatPrompt,
  generateQuestions,
  sftBatches,
  tokenizer,
  type EncodedQuestion,
} from "../../backend/data/index.js";

const sample = TASK_NAMES.flatMap((task) => generateQuestions({ task, split: "validation", limit: 250 }));

test("the prompt follows the documented template", () => {
  const q = { question: "Is it?", options: ["yes", "no", "maybe", "never"], answer: 2 };
  const filled = PROMPT_TEMPLATE.replace("{question}", "Is it?")
    .replace("{A}", "yes")
    .replace("{B}", "no")
    .replace("{C}", "maybe")
    .replace("{D}", "never")
    .replace("{letter}", "C");
  assert.equal(formatExample(q), filled);
  assert.equal(formatExample(q), "Question: Is it?\nA. yes\nB. no\nC. maybe\nD. never\nAnswer: C");
  assert.ok(formatPrompt(q).endsWith("\nAnswer:"));
  assert.throws(() => formatPrompt({ question: "x", options: ["a", "b"] }), TypeError);
});

test("each option letter is exactly one token in every tokenizer", () => {
  for (const name of TOKENIZER_NAMES) {
    const tok = tokenizer(name);
    const f = answerFormat(tok);
    assert.equal(f.letterIds.length, 4);
    assert.equal(new Set(f.letterIds).size, 4);
    LETTERS.forEach((l, i) => {
      assert.equal(f.letterTexts[i]!.trim(), l);
      assert.deepEqual([...tok.encode(f.letterTexts[i]!)], [f.letterIds[i]], `${name} ${l}`);
      assert.equal(tok.decode([f.letterIds[i]!]), f.letterTexts[i]);
    });
    // BPE tokenizers have " A" as one token; bytes need the space in the prompt.
    assert.equal(f.promptSuffix, name === "byte" ? " " : "");
    if (name === "byte") assert.deepEqual([...f.letterIds], [65, 66, 67, 68]);
  }
});

test("prompt tokens + answer token are exactly the tokens of the full text, for every question sampled and tokenizer", () => {
  for (const name of TOKENIZER_NAMES) {
    const tok = tokenizer(name);
    const enc = encodeQuestions(sample, tok);
    enc.forEach((e, i) => {
      const q = sample[i]!;
      assert.equal(e.id, q.id);
      assert.equal(e.answerId, e.letterIds[q.answer]);
      const full = tok.encode(formatExample(q));
      assert.deepEqual([...full], [...e.promptIds, e.answerId], `${name} ${q.id}`);
      assert.equal(tok.decode(e.promptIds) + tok.decode([e.answerId]), formatExample(q));
    });
  }
});

// Synthetic examples with distinct, recognisable ids (prompt token j of example k = 100k + j + 1).
function examples(lengths: number[]): EncodedQuestion[] {
  return lengths.map((L, k) => ({
    id: `q${k}`,
    task: "pos",
    split: "train",
    doc: k,
    answer: k % 4,
    promptIds: Int32Array.from({ length: L }, (_, j) => 100 * k + j + 1),
    letterIds: Int32Array.from([65, 66, 67, 68]),
    answerId: 65 + (k % 4),
  }));
}

function checkRows(b: ReturnType<ReturnType<typeof sftBatches>["batch"]>, ex: EncodedQuestion[], T: number, pad: number) {
  let supervised = 0;
  for (let r = 0; r < b.rows; r++) {
    for (let c = 0; c < T; c++) {
      const k = r * T + c;
      const seg = b.segments[k]!;
      if (seg < 0) {
        assert.equal(b.inputs[k], pad);
        assert.equal(b.targets[k], IGNORE_INDEX);
        assert.equal(b.positions[k], -1);
        continue;
      }
      const e = ex[seg]!;
      const j = b.positions[k]!;
      assert.equal(b.inputs[k], e.promptIds[j]);
      if (j === e.promptIds.length - 1) {
        assert.equal(b.targets[k], e.answerId, "the answer letter follows the last prompt token");
        supervised++;
      } else {
        assert.equal(b.targets[k], IGNORE_INDEX);
      }
    }
  }
  assert.equal(supervised, b.supervised);
  assert.equal(supervised, b.examples.length);
  return supervised;
}

test("pad mode: one example per row, right-padded, only the answer supervised; too-long examples skipped", () => {
  const ex = examples([5, 8, 3, 9, 8, 1, 2]);
  const e = sftBatches(ex, { contextLength: 8, batchSize: 2, padId: 7, mode: "pad", seed: 4 });
  assert.deepEqual(e.skipped, ["q3"]);
  assert.equal(e.numExamples, 6);
  assert.equal(e.numRows, 6);
  const seen: number[] = [];
  for (const b of e) {
    checkRows(b, ex, 8, 7);
    seen.push(...b.examples);
    assert.equal(b.rows, b.examples.length);
  }
  assert.deepEqual(seen.sort(), [0, 1, 2, 4, 5, 6]);
  const again = [...sftBatches(ex, { contextLength: 8, batchSize: 2, padId: 7, seed: 4 })].flatMap((b) => [...b.examples]);
  assert.deepEqual(again, [...e].flatMap((b) => [...b.examples]), "same (seed, epoch), same order");
  const orders = new Set([1, 2, 3, 4].map((epoch) => [...sftBatches(ex, { contextLength: 8, batchSize: 2, padId: 7, seed: 4, epoch })].flatMap((b) => [...b.examples]).join(",")));
  assert.ok(orders.size > 1, "epochs reshuffle");
  const fixed = [...sftBatches(ex, { contextLength: 8, batchSize: 2, padId: 7, shuffle: false })].flatMap((b) => [...b.examples]);
  assert.deepEqual(fixed, [0, 1, 2, 4, 5, 6]);
});

test("align 'right': each example ends at the last column after left padding; only its answer is supervised", () => {
  const ex = examples([5, 8, 3, 9, 1]);
  const T = 8;
  const e = sftBatches(ex, { contextLength: T, batchSize: 2, padId: 7, mode: "pad", align: "right", shuffle: false });
  assert.deepEqual(e.skipped, ["q3"]);
  const rows: number[] = [];
  for (const b of e) {
    for (let r = 0; r < b.rows; r++) {
      const x = ex[b.examples[r]!]!;
      const L = x.promptIds.length, start = r * T + T - L;
      for (let k = r * T; k < start; k++) {
        assert.equal(b.inputs[k], 7, "left padding uses padId");
        assert.equal(b.targets[k], IGNORE_INDEX);
        assert.equal(b.segments[k], -1);
      }
      assert.deepEqual([...b.inputs.subarray(start, (r + 1) * T)], [...x.promptIds]);
      for (let k = start; k < (r + 1) * T - 1; k++) assert.equal(b.targets[k], IGNORE_INDEX);
      assert.equal(b.targets[(r + 1) * T - 1], x.answerId, "the answer is always predicted at the last position");
      assert.equal(b.positions[(r + 1) * T - 1], L - 1);
      rows.push(b.examples[r]!);
    }
  }
  assert.deepEqual(rows, [0, 1, 2, 4]);
  assert.throws(() => sftBatches(ex, { contextLength: T, batchSize: 2, padId: 7, mode: "pack", align: "right" }), { name: "TypeError", message: /align 'right' needs mode 'pad'/ });
  assert.throws(() => sftBatches(ex, { contextLength: T, batchSize: 2, padId: 7, align: "middle" as never }), { name: "TypeError", message: /align/ });
});

test("pack mode: examples packed into rows without crossing rows; each epoch places each example once", () => {
  const lengths = [5, 8, 3, 9, 8, 1, 2, 4, 4, 6];
  const ex = examples(lengths);
  const T = 10;
  const e = sftBatches(ex, { contextLength: T, batchSize: 3, padId: 0, mode: "pack", seed: 1 });
  const placed: number[] = [];
  let rows = 0;
  for (const b of e) {
    checkRows(b, ex, T, 0);
    placed.push(...b.examples);
    rows += b.rows;
    for (let r = 0; r < b.rows; r++) {
      const used = b.segments.subarray(r * T, (r + 1) * T).filter((s) => s >= 0).length;
      assert.ok(used <= T);
    }
  }
  assert.equal(rows, e.numRows);
  assert.deepEqual(placed.slice().sort((a, b) => a - b), [...lengths.keys()]);
  assert.ok(e.numRows < lengths.length, "packing uses fewer rows than examples");
  assert.ok(e.numRows >= Math.ceil(lengths.reduce((a, b) => a + b, 0) / T));
});

test("real questions: pos validation under r50k, pad and pack", () => {
  const tok = tokenizer("r50k");
  const ex = encodeQuestions(generateQuestions({ task: "pos", split: "validation", limit: 300 }), tok);
  for (const mode of ["pad", "pack"] as const) {
    const e = sftBatches(ex, { contextLength: 256, batchSize: 8, padId: tok.padId, mode });
    assert.deepEqual(e.skipped, []);
    let n = 0;
    for (const b of e) n += checkRows(b, ex, 256, tok.padId);
    assert.equal(n, 300);
  }
});

test("bad options name the field", () => {
  const ex = examples([3]);
  assert.throws(() => sftBatches(ex, { contextLength: 0, batchSize: 1, padId: 0 }), { name: "TypeError", message: /contextLength/ });
  assert.throws(() => sftBatches(ex, { contextLength: 4, batchSize: 1, padId: -1 }), { name: "TypeError", message: /padId/ });
  assert.throws(() => sftBatches(ex, { contextLength: 4, batchSize: 1, padId: 0, mode: "ragged" as never }), { name: "TypeError", message: /mode/ });
  assert.throws(() => answerFormat("gpt2" as never), { name: "TypeError", message: /tokenizer must be one of/ });
});
