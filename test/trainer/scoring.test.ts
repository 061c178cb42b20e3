// Option scoring against a float64 reference: a tiny GPT is saved, its forward is recomputed in
// float64 by gpt-reference.ts (never calling the engine), and each option's summed continuation
// log-likelihood, the renormalized probabilities and lm-eval's acc_norm probabilities must match
// what scoreItems computes through the engine (gptScorer). Letter scoring must equal the Brown
// evaluator's softmax over the letter logits. Plus the continuation-splitting rule and the
// questions.arrow scoring column.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { GptModel, type ModelConfig } from "../../backend/engine/index.js";
import {
  CALIB_CHAT, answerFormat, buildWorld, formatPrompt, tokenizer, worldQuestions, worldWordTokenizer, type EncodedQuestion,
} from "../../backend/data/index.js";
import { evaluateQuestions, gptScorer, saveCheckpoint, scoreItems, splitContinuation, worldItems, type ScoredItem } from "../../backend/train/index.js";
import { makeTable, questionScorings, questionsTable, utf8 } from "../../backend/records/index.js";
import { normal, rng, tempDir } from "./helpers.js";
import { readWeights, referenceLogits, type Weights } from "./gpt-reference.js";

function logSoftmaxAt(z: number[], T: number, cap: number, y: number): number {
  const s = z.map((v) => (cap > 0 ? cap * Math.tanh(v / T / cap) : v / T));
  const m = Math.max(...s);
  return s[y]! - (m + Math.log(s.reduce((a, v) => a + Math.exp(v - m), 0)));
}

/** Σ_k log p(cont[k] | context, cont[<k]) in float64 from the reference forward. */
function referenceLl(w: Weights, cfg: ModelConfig, it: ScoredItem, option: number, T = 1, cap = 0): number {
  const cont = it.continuations[option]!;
  const seq = Int32Array.from([...it.context, ...cont]);
  const logits = referenceLogits(w, cfg, seq.subarray(0, seq.length - 1));
  let ll = 0;
  for (let k = 0; k < cont.length; k++) ll += logSoftmaxAt(logits[it.context.length - 1 + k]!, T, cap, cont[k]!);
  return ll;
}

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

const world = buildWorld({ seed: 5, people: 24, attributes: { birth_city: 8, employer: 8, birth_year: 10 } });
const word = worldWordTokenizer(world);

function tinyModel(cfg: ModelConfig, maxBatch: number): GptModel {
  const model = GptModel.create(cfg, { maxBatch });
  model.init(3, 0.3); // logits of order 1, not near-uniform
  const rand = rng(4);
  const params = model.getParams() as Float32Array;
  for (const t of model.tensors()) if (t.name.startsWith("ln")) for (let i = 0; i < t.numel; i++) params[t.offset + i] = (t.name.endsWith("w") ? 1 : 0) + 0.3 * normal(rand);
  model.setParams(params);
  return model;
}

test("option and letter scoring (base and chat formats) = float64 reference log-likelihoods; probs, acc_norm, vocab probs", (t) => {
  const cfg: ModelConfig = { nLayer: 2, nHead: 2, dModel: 16, context: 64, vocab: word.vocabSize, tied: true };
  const { dir, cleanup } = tempDir("score");
  const model = tinyModel(cfg, 3); // 3 rows per call: an item's options span calls, rows of different lengths share one
  try {
    saveCheckpoint(dir, model, { tokenizer: "word" });
    const w = readWeights(join(dir, "model.safetensors"));
    const qs = worldQuestions(world, { limit: 5 });
    for (const [T, cap] of [[1, 0], [0.7, 2.5]] as const) {
      let worst = 0;
      for (const scoring of ["option", "letter"] as const) {
        for (const template of [null, CALIB_CHAT]) {
          const items = worldItems(qs, scoring, word, template);
          const r = scoreItems(gptScorer(model, { temperature: T, softcap: cap }), items, { epoch: 2, split: "held-out", padId: word.padId });
          assert.equal(r.rows.length, items.length);
          assert.deepEqual(r.skipped, []);
          let correct = 0;
          items.forEach((it, i) => {
            const row = r.rows[i]!;
            const ll = it.continuations.map((_, j) => referenceLl(w, cfg, it, j, T, cap));
            for (let j = 0; j < 4; j++) worst = Math.max(worst, Math.abs(row.logits[j]! - ll[j]!));
            const p = softmax(ll);
            for (let j = 0; j < 4; j++) {
              assert.ok(Math.abs(row.probs[j]! - p[j]!) < 1e-5, `probs ${scoring} ${j}`);
              assert.ok(Math.abs(row.vocabProbs![j]! - Math.exp(ll[j]!)) < 1e-5 * Math.max(1, Math.exp(ll[j]!)) + 1e-7, "vocab probs = exp(ll)");
            }
            if (scoring === "option") {
              const pn = softmax(ll.map((v, j) => v / qs[i]!.options[j]!.length));
              for (let j = 0; j < 4; j++) assert.ok(Math.abs(row.probsNorm![j]! - pn[j]!) < 1e-5, "acc_norm probs");
            } else {
              assert.equal(row.probsNorm, null);
              for (const c of it.continuations) assert.equal(c.length, 1, "a letter is one token");
            }
            assert.equal(row.scoring, scoring);
            assert.equal(row.exposures, qs[i]!.exposures);
            assert.equal(row.doc, qs[i]!.person);
            if (p.indexOf(Math.max(...p)) === qs[i]!.answer) correct++;
          });
          assert.equal(r.accuracy, correct / items.length);
          const nll = -items.reduce((a, it, i) => a + referenceLl(w, cfg, it, qs[i]!.answer, T, cap), 0) / items.length;
          assert.ok(Math.abs(r.nll - nll) < 1e-4, `mean −ll(gold) ${r.nll} vs ${nll}`);
        }
      }
      assert.ok(worst < 2e-5, `T=${T} cap=${cap}: largest |ll − reference| ${worst}`);
      t.diagnostic(`T=${T} softcap=${cap}: largest |ll − float64 reference| ${worst.toExponential(2)}`);
    }
    // the base format has no template, the chat format the generation prompt; options follow
    const base = worldItems(qs, "option", word, null)[0]!, chat = worldItems(qs, "option", word, CALIB_CHAT)[0]!;
    assert.equal(word.decode([...base.context, ...base.continuations[1]!]), `Question: ${qs[0]!.question}\nAnswer: ${qs[0]!.options[1]}`);
    assert.equal(word.decode([...chat.context, ...chat.continuations[1]!]), `<|user|>\n${qs[0]!.question}\n<|assistant|>\n${qs[0]!.options[1]}`);
  } finally {
    model.free();
    cleanup();
  }
});

test("letter scoring through scoreItems = the Brown evaluator's softmax over the letter logits", () => {
  const tok = tokenizer("byte");
  const model = tinyModel({ nLayer: 1, nHead: 2, dModel: 16, context: 96, vocab: 256, tied: true }, 4);
  try {
    const qs = [
      { question: "Is it red?", options: ["yes", "no", "maybe", "never"], answer: 2 },
      { question: "Which one?", options: ["this", "that", "these", "those"], answer: 0 },
    ];
    const f = answerFormat(tok);
    const enc: EncodedQuestion[] = qs.map((q, i) => ({
      id: `q${i}`, task: "pos", split: "validation", doc: i, answer: q.answer, promptIds: tok.encode(formatPrompt(q) + f.promptSuffix), letterIds: f.letterIds, answerId: f.letterIds[q.answer]!,
    }));
    const brown = evaluateQuestions(model, enc, { split: "validation", epoch: 0, batchSize: 4, align: "left" });
    const items: ScoredItem[] = enc.map((e) => ({
      id: e.id, task: "pos", doc: e.doc, gold: e.answer, exposures: null, scoring: "letter", context: e.promptIds, continuations: Array.from(e.letterIds, (x) => Int32Array.of(x)), lengths: [1, 1, 1, 1],
    }));
    const r = scoreItems(gptScorer(model), items, { epoch: 0, split: "validation", padId: 0 });
    r.rows.forEach((row, i) => {
      for (let j = 0; j < 4; j++) {
        assert.ok(Math.abs(row.probs[j]! - brown.rows[i]!.probs[j]!) < 1e-5);
        assert.ok(Math.abs(row.vocabProbs![j]! - brown.rows[i]!.vocabProbs![j]!) < 1e-6);
      }
    });
    // an item longer than the context is skipped, not truncated
    const long = { ...items[0]!, id: "long", context: new Int32Array(97).fill(65) };
    assert.deepEqual(scoreItems(gptScorer(model), [long, items[1]!], { epoch: 0, split: "validation", padId: 0 }).skipped, ["long"]);
  } finally {
    model.free();
  }
});

test("continuation tokens follow lm-eval: whole-text tokens after the context's, else the continuation encoded alone", () => {
  const r50k = tokenizer("r50k");
  const a = splitContinuation(r50k, "Question: Where?\nAnswer:", " Port Tesk");
  assert.deepEqual(Array.from(a.continuation), Array.from(r50k.encode(" Port Tesk")));
  assert.deepEqual(Array.from(a.context), Array.from(r50k.encode("Question: Where?\nAnswer:")));
  // "Answer: " + "x": BPE merges the space into " x", so the context's tokens are not a prefix of the whole
  const b = splitContinuation(r50k, "Answer: ", "x");
  assert.notDeepEqual(Array.from(r50k.encode("Answer: x")).slice(0, b.context.length), Array.from(b.context));
  assert.deepEqual(Array.from(b.continuation), Array.from(r50k.encode("x")));
  assert.throws(() => splitContinuation(r50k, "a", ""), RangeError);
});

test("questions.arrow: the scoring column; a file without it reads as letter scoring", () => {
  const t = questionsTable("r", [
    { epoch: 0, split: "held-out", task: "world", id: "a", doc: 3, gold: 0, logits: [-1, -2], probs: [0.73, 0.27], vocabProbs: [0.37, 0.14], probsNorm: [0.6, 0.4], scoring: "option", exposures: 7 },
    { epoch: 0, split: "held-out", task: "world", id: "a", doc: 3, gold: 0, logits: [-1, -2], probs: [0.73, 0.27], vocabProbs: [0.37, 0.14], scoring: "letter", exposures: 7 },
  ]);
  assert.deepEqual(questionScorings(t), ["option", "letter"]);
  assert.deepEqual(t.getChild("exposures")!.toArray(), Int32Array.of(7, 7));
  assert.deepEqual(questionScorings(makeTable({ id: utf8(["x", "y"]) })), ["letter", "letter"]);
  assert.throws(() => questionsTable("r", [{ epoch: 0, split: "s", task: "t", id: "b", doc: 0, gold: 0, logits: [0, 0], probs: [0.5, 0.5], vocabProbs: null, scoring: "vibes" as never }]), /scoring must be one of letter, option/);
});
