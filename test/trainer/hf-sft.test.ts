// "Bring your own model" on the CPU, end to end through the CLI, on tiny Hugging Face folders the
// test writes (test/hf/fixtures.ts): `calib train` with init.hf on a 6-conversation chat JSONL
// (the loss of step 1 equals a float64 reference over the assistant tokens found by hand, the
// loss falls), a checkpoint + `--resume` equal to the uninterrupted run bit for bit, `calib
// export` (float32: the fine-tuned weights exactly; bfloat16: rounded to nearest even),
// `calib eval --model` on a 5-question MMLU-style file (both scorings, k-shot and chat) whose
// probabilities match a float64 computation from the reference, the registry / Runs page path,
// and bad input → exit 2 with one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { GptModel, tensorTable } from "../../backend/engine/index.js";
import { loadHfModel, loadHfTokenizer } from "../../backend/hf/index.js";
import { readArrowStream, readTrainLog } from "../../backend/records/index.js";
import { precheckRunConfig } from "../../backend/runs/submit.js";
import { chatExamples, loadCheckpoint, openLlamaSource, saveCheckpoint, train, type TrainConfigInput } from "../../backend/train/index.js";
import { llamaReference, type Tensors } from "../engine/llama-reference.js";
import { gemmaTokenizerFiles, llama3TokenizerFiles, tinyConfig, writeTinyModel } from "../hf/fixtures.js";
import { referenceConfig, referenceLogLik, referenceTensors } from "../hf/reference.js";
import { assertBadInput, tempDir } from "./helpers.js";

const ROOT = join(import.meta.dirname, "..", "..");
const CALIB = join(ROOT, "bin", "calib.js");

function calib(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CALIB, ...args], { encoding: "utf8", env: { ...process.env, CALIB_THREADS: "2", ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Conversations: the Llama 3 template renders each message as
// <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> after <|begin_of_text|>; the
// assistant's CONTENT<|eot_id|> is what is supervised.
const H = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
const CONVERSATIONS: Array<Array<[string, string]>> = [
  [["user", "hello 0"], ["assistant", "world hello"]],
  [["user", "hello 1"], ["assistant", "hello world"]],
  [["system", "be brief"], ["user", "hello 2"], ["assistant", "world"]],
  [["user", "hello 3"], ["assistant", "hello"], ["user", "and 4?"], ["assistant", "world 4"]],
  [["user", "hi 5"], ["assistant", "hello hello world"]],
  [["user", "hello 6"], ["assistant", "world world"]], // written as {"prompt", "completion"}
];

function chatJsonl(): string {
  return CONVERSATIONS.map((c, i) =>
    JSON.stringify(i === 5 ? { prompt: c[0]![1], completion: c[1]![1] } : { id: `c${i}`, messages: c.map(([role, content]) => ({ role, content })) })).join("\n") + "\n";
}

// Multiple-choice questions (MMLU's shape; answers as indices and letters).
const QUESTIONS = [
  { question: "Which word greets?", choices: ["hello", "world", "or", "he"], answer: 0, subject: "greetings" },
  { question: "Which one is the planet?", choices: ["hell", "world", "hello", "wor"], answer: "B", subject: "greetings" },
  { question: "Pick the longest.", choices: ["he", "hell", "hello world", "o"], answer: 2 },
  { question: "Which is a pronoun?", choices: ["he", "or", "ll", "d"], answer: "A", subject: "grammar" },
  { question: "Which ends a sentence?", choices: ["h", "e", "l", "."], answer: 3, subject: "grammar" },
];
const LETTERS = ["A", "B", "C", "D"];
const answerOf = (q: (typeof QUESTIONS)[number]) => (typeof q.answer === "number" ? q.answer : LETTERS.indexOf(q.answer));

/** The lm-eval prompts of a question, by hand (MMLU's letter prompt; ARC's option prompt). */
function letterBlock(q: (typeof QUESTIONS)[number]): string {
  return `${q.question}\n${q.choices.map((c, i) => `${LETTERS[i]}. ${c}\n`).join("")}Answer:`;
}
const description = (q: (typeof QUESTIONS)[number]) => `The following are multiple choice questions (with answers)${q.subject ? ` about ${q.subject}` : ""}.\n\n`;

function setup(dir: string) {
  const llama = writeTinyModel(join(dir, "llama"), "llama", { dtype: "F32", seed: 9, files: llama3TokenizerFiles() });
  const gemma = writeTinyModel(join(dir, "gemma2"), "gemma2", { dtype: "F32", seed: 4, files: gemmaTokenizerFiles(), config: { ...tinyConfig("gemma2"), final_logit_softcapping: 5.0 } });
  writeFileSync(join(dir, "chat.jsonl"), chatJsonl());
  writeFileSync(join(dir, "mcq.jsonl"), QUESTIONS.map((q) => JSON.stringify(q)).join("\n") + "\n");
  const config = {
    kind: "sft", init: { hf: llama.dir }, data: { jsonl: join(dir, "chat.jsonl") }, threads: 2, seed: 1,
    batchSize: 3, gradAccum: 2, epochs: 6, logEvery: 1, loss: { labelSmoothing: 0.1 },
    optim: { lr: 5e-2, warmupSteps: 1, weightDecay: 0.01 },
    questions: { jsonl: join(dir, "mcq.jsonl"), scoring: ["letter"], maxQuestions: 2 },
  };
  writeFileSync(join(dir, "sft.json"), JSON.stringify(config));
  return { llama, gemma, config };
}

/** bfloat16 of a float32 value, round to nearest even (PyTorch's .to(torch.bfloat16)), by hand on the bits. */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const r = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(new Uint32Array([r >>> 0]).buffer)[0]!;
}

const asTensors = (table: { name: string; shape: number[]; offset: number; numel: number }[], flat: Float32Array): Tensors =>
  new Map(table.map((t) => [t.name, { shape: t.shape, data: Float64Array.from(flat.subarray(t.offset, t.offset + t.numel)) }]));

interface QRow { id: string; scoring: string; gold: number; logits: number[]; probs: number[]; probs_norm: number[] | null; vocab_probs: number[] | null }
function questionRows(path: string): QRow[] {
  const t = readArrowStream(path);
  const list = (v: unknown) => (v == null ? null : Array.from((v as { toArray(): ArrayLike<number> }).toArray(), Number));
  return t.toArray().map((r) => {
    const o = r.toJSON() as Record<string, unknown>;
    return { id: String(o.id), scoring: String(o.scoring), gold: Number(o.gold), logits: list(o.logits)!, probs: list(o.probs)!, probs_norm: list(o.probs_norm), vocab_probs: list(o.vocab_probs) };
  });
}

const softmax = (x: number[]) => {
  const m = Math.max(...x), e = x.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** Checks every row of questions.arrow against reference log-likelihoods; returns the largest errors. */
function checkRows(rows: QRow[], expected: Map<string, number[]>, lengths: Map<string, number[]>): { ll: number; p: number } {
  let ll = 0, p = 0;
  assert.equal(rows.length, expected.size);
  for (const r of rows) {
    const key = `${r.id}/${r.scoring}`;
    const want = expected.get(key);
    assert.ok(want, `unexpected row ${key}`);
    want.forEach((w, i) => (ll = Math.max(ll, Math.abs(r.logits[i]! - w) / Math.max(1, Math.abs(w)))));
    const probs = softmax(want);
    probs.forEach((w, i) => (p = Math.max(p, Math.abs(r.probs[i]! - w))));
    // vocab_probs = exp(ll): its relative error is the absolute error of ll (bounded by the ll tolerance below)
    want.forEach((w, i) => assert.ok(Math.abs(r.vocab_probs![i]! - Math.exp(w)) <= 2e-6 * Math.max(1, Math.abs(w)) * Math.exp(w) + 1e-37, `${key}: vocab_probs[${i}] ${r.vocab_probs![i]} vs ${Math.exp(w)}`));
    if (r.scoring === "option") {
      const norm = softmax(want.map((w, i) => w / lengths.get(r.id)![i]!));
      norm.forEach((w, i) => (p = Math.max(p, Math.abs(r.probs_norm![i]! - w))));
    } else assert.equal(r.probs_norm, null, `${key}: letter scoring has no probs_norm`);
  }
  assert.ok(ll < 2e-6, `log-likelihoods: relative error ${ll}`);
  assert.ok(p < 2e-6, `probabilities: error ${p}`);
  return { ll, p };
}

test("chat SFT of a Hugging Face folder through calib train: assistant-only loss = the float64 reference, the loss falls, --resume is bit-identical, export and eval", async (t) => {
  const { dir, cleanup } = tempDir("hf-sft");
  try {
    const { llama, gemma, config } = setup(dir);
    const out = join(dir, "run");
    const r = calib(["train", "--config", join(dir, "sft.json"), "--out", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.steps, 6, "6 epochs of one step (2 micro-batches of 3 conversations)");
    assert.match(r.stderr, /sft llama \(llama\) .*step 6\/6 loss \d+\.\d+ .*tok\/s/, "the progress bar");
    for (const f of ["run.json", "train_log.arrow", "questions.arrow", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors", "checkpoint/hf/tokenizer.json"]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const runJson = JSON.parse(readFileSync(join(out, "run.json"), "utf8"));
    assert.equal(runJson.status, "succeeded");
    assert.equal(runJson.model.family, "llama");

    // ---- step 1's loss: the mean ε = 0.1 loss over the assistant tokens of all six conversations, by hand
    const tok = loadHfTokenizer(llama.dir);
    const ref = referenceConfig("llama", llama.config, 64);
    const w0 = referenceTensors(llama);
    let lossSum = 0, count = 0;
    const encoded = chatExamples(join(dir, "chat.jsonl"), openLlamaSource(llama.dir).folder.chatTemplate!, tok);
    for (const [c, conv] of CONVERSATIONS.entries()) {
      const segments: Array<[string, boolean]> = [["<|begin_of_text|>", false]];
      for (const [role, content] of conv) segments.push([H(role), false], [`${content}<|eot_id|>`, role === "assistant"]);
      const ids = tok.encode(segments.map(([s]) => s).join(""));
      const pieces = segments.map(([s, sup]) => ({ ids: tok.encode(s), sup }));
      assert.deepEqual(Array.from(ids), pieces.flatMap((p) => Array.from(p.ids)), "the segments tokenize on their own (the test's precondition)");
      const supervised = pieces.flatMap((p) => Array.from(p.ids, () => p.sup));
      const L = ids.length;
      const targets = Int32Array.from({ length: L - 1 }, (_, i) => (supervised[i + 1] ? ids[i + 1]! : -100));
      // the trainer's examples (chat.ts's prefix rule through the model's template) have exactly these targets
      assert.deepEqual(encoded[c]!.inputs, ids.subarray(0, L - 1), `conversation ${c}: inputs`);
      assert.deepEqual(encoded[c]!.targets, targets, `conversation ${c}: only the assistant replies and their <|eot_id|> are supervised`);
      const rr = llamaReference({ ...ref.cfg, context: L }, w0, ids.subarray(0, L - 1), targets, 1, L - 1, { labelSmoothing: Math.fround(0.1) });
      lossSum += rr.lossSum;
      count += rr.valid;
    }
    const log = readTrainLog(join(out, "train_log.arrow")).filter((row) => row.split === "train");
    assert.equal(log.length, 6);
    const rel = Math.abs(log[0]!.loss - lossSum / count) / (lossSum / count);
    t.diagnostic(`step 1: loss ${log[0]!.loss.toFixed(6)} vs reference ${(lossSum / count).toFixed(6)} over ${count} assistant tokens (relative ${rel.toExponential(2)}); step 6: ${log[5]!.loss.toFixed(4)}`);
    assert.ok(rel < 1e-5, `step 1 loss ${log[0]!.loss} vs the reference ${lossSum / count}`);
    assert.ok(log[5]!.loss < 0.8 * log[0]!.loss, `the loss falls: ${log.map((row) => row.loss.toFixed(3)).join(" → ")}`);

    // ---- stopped after 3 steps (the API), then `calib train --resume`: the same weights and moments, bit for bit
    const parts = join(dir, "parts");
    const first = await train(config as TrainConfigInput, { outDir: parts, stopAfterSteps: 3, progress: false });
    assert.equal(first.steps, 3);
    const rest = calib(["train", "--config", join(dir, "sft.json"), "--out", parts, "--resume", "--quiet"]);
    assert.equal(rest.code, 0, rest.stderr);
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      assert.ok(readFileSync(join(out, "checkpoint", f)).equals(readFileSync(join(parts, "checkpoint", f))), `${f} differs after --resume`);
    }
    assert.deepEqual(readTrainLog(join(parts, "train_log.arrow")).map((row) => row.loss), readTrainLog(join(out, "train_log.arrow")).map((row) => row.loss));

    // ---- calib export: float32 exactly, bfloat16 rounded; the folder loads through backend/hf
    const ck = loadCheckpoint(join(out, "checkpoint"));
    const e32 = calib(["export", "--checkpoint", join(out, "checkpoint"), "--hf", join(dir, "x32"), "--dtype", "float32"]);
    assert.equal(e32.code, 0, e32.stderr);
    const x32 = loadHfModel(join(dir, "x32"), { context: ck.config.model.context });
    assert.deepEqual(x32.weights.params, ck.params, "float32 export = the fine-tuned weights");
    assert.notDeepEqual(ck.params, loadHfModel(llama.dir, { context: ck.config.model.context }).weights.params, "fine-tuning changed the weights");
    assert.ok(readFileSync(join(dir, "x32", "tokenizer.json")).equals(readFileSync(join(llama.dir, "tokenizer.json"))));
    const e16 = calib(["export", "--checkpoint", join(out, "checkpoint"), "--hf", join(dir, "x16")]);
    assert.equal(e16.code, 0, e16.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, "x16", "config.json"), "utf8")).torch_dtype, "bfloat16");
    const x16 = loadHfModel(join(dir, "x16"), { context: ck.config.model.context }).weights.params;
    assert.deepEqual(x16, ck.params.map(bf16), "bfloat16 export = the weights rounded to nearest even");

    // ---- calib eval --model CHECKPOINT --chat: the Llama 3 template, the continuation after the generation prompt
    const ev = join(dir, "eval-ck");
    const e = calib(["eval", "--model", join(out, "checkpoint"), "--questions", join(dir, "mcq.jsonl"), "--chat", "--out", ev, "--json", "--quiet"]);
    assert.equal(e.code, 0, e.stderr);
    const wFt = asTensors(tensorTable(ck.config.model), ck.params);
    const expected = new Map<string, number[]>(), lengths = new Map<string, number[]>();
    for (const [i, q] of QUESTIONS.entries()) {
      const id = `mcq:${i}`;
      const render = (content: string) => `<|begin_of_text|>${H("user")}${content}<|eot_id|>${H("assistant")}`;
      const score = (prompt: string, conts: string[]) => {
        const ctx = Array.from(tok.encode(prompt));
        return conts.map((c) => {
          const whole = Array.from(tok.encode(prompt + c));
          assert.deepEqual(whole.slice(0, ctx.length), ctx, "the prompt's tokens are a prefix (the test's precondition)");
          return referenceLogLik(ref, wFt, ctx, whole.slice(ctx.length));
        });
      };
      expected.set(`${id}/letter`, score(render(description(q) + letterBlock(q)), LETTERS));
      expected.set(`${id}/option`, score(render(`Question: ${q.question}\nAnswer:`), q.choices));
      lengths.set(id, q.choices.map((c) => c.length));
    }
    const errs = checkRows(questionRows(join(ev, "questions.arrow")), expected, lengths);
    t.diagnostic(`eval --chat of the fine-tuned checkpoint: log-likelihoods ${errs.ll.toExponential(2)} relative, probabilities ${errs.p.toExponential(2)}`);
    const metrics = JSON.parse(e.stdout).metrics;
    const acc = QUESTIONS.filter((q, i) => {
      const l = expected.get(`mcq:${i}/letter`)!;
      return l.indexOf(Math.max(...l)) === answerOf(q);
    }).length / QUESTIONS.length;
    assert.equal(metrics.accuracy_mcq_letter, acc);
    assert.equal(metrics.question_accuracy, acc, "letter scoring is the headline (listed first)");

    // ---- calib eval --model GEMMA FOLDER, 1-shot, plain prompts with <bos>: the final soft-cap applies
    const ev2 = join(dir, "eval-gemma");
    const g = calib(["eval", "--model", gemma.dir, "--questions", join(dir, "mcq.jsonl"), "--shots", "1", "--scoring", "option,letter", "--out", ev2, "--quiet"]);
    assert.equal(g.code, 0, g.stderr);
    const gtok = loadHfTokenizer(gemma.dir);
    const gref = referenceConfig("gemma2", gemma.config, 64);
    assert.equal(gref.softcap, 5);
    const gw = referenceTensors(gemma);
    const gexp = new Map<string, number[]>();
    for (const [i, q] of QUESTIONS.entries()) {
      // the first other question of the same subject, else the first other one
      const shot = QUESTIONS.find((s, k) => k !== i && s.subject === q.subject && q.subject !== undefined) ?? QUESTIONS.find((_, k) => k !== i)!;
      const score = (prompt: string, conts: string[]) => {
        const ctx = [2, ...gtok.encode(prompt)]; // <bos>
        return conts.map((c) => {
          const whole = [2, ...gtok.encode(prompt + c)];
          assert.deepEqual(whole.slice(0, ctx.length), ctx, "the prompt's tokens are a prefix (the test's precondition)");
          return referenceLogLik(gref, gw, ctx, whole.slice(ctx.length));
        });
      };
      const letterPrompt = description(q) + `${letterBlock(shot)} ${LETTERS[answerOf(shot)]}\n\n` + letterBlock(q);
      gexp.set(`mcq:${i}/letter`, score(letterPrompt, LETTERS.map((l) => ` ${l}`)));
      gexp.set(`mcq:${i}/option`, score(`Question: ${shot.question}\nAnswer: ${shot.choices[answerOf(shot)]}\n\nQuestion: ${q.question}\nAnswer:`, q.choices.map((c) => ` ${c}`)));
    }
    const gerr = checkRows(questionRows(join(ev2, "questions.arrow")), gexp, lengths);
    t.diagnostic(`eval of the Gemma 2 folder, 1-shot: log-likelihoods ${gerr.ll.toExponential(2)} relative, probabilities ${gerr.p.toExponential(2)}`);
  } finally {
    cleanup();
  }
});

test("registered runs: SFT from init.hf and eval --model go through the registry, the Runs page's loader shows family and size; the API refuses local paths", () => {
  const { dir, cleanup } = tempDir("hf-reg");
  try {
    const { llama, config } = setup(dir);
    writeFileSync(join(dir, "small.json"), JSON.stringify({ ...config, epochs: 1, questions: undefined }));
    const data = join(dir, "data");
    mkdirSync(data);
    const env = { CALIB_DATA_DIR: data };
    const s = calib(["train", "--config", join(dir, "small.json"), "--quiet", "--json"], env);
    assert.equal(s.code, 0, s.stderr);
    const sft = JSON.parse(s.stdout);
    assert.equal(sft.status, "succeeded");
    const e = calib(["eval", "--model", `run:${sft.id}`, "--questions", join(dir, "mcq.jsonl"), "--quiet", "--json", "--bootstrap", "20"], env);
    assert.equal(e.code, 0, e.stderr);
    const ev = JSON.parse(e.stdout);
    assert.equal(ev.status, "succeeded");
    assert.ok(existsSync(join(data, "runs", ev.id, "calibration.arrow")));
    const evJson = JSON.parse(readFileSync(join(data, "runs", ev.id, "run.json"), "utf8"));
    assert.equal(evJson.model.family, "llama", "run.json keeps the job's model description after the registry rewrites it");

    const loader = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/data/runs.arrow.ts")], { cwd: ROOT, env: { ...process.env, ...env } });
    assert.equal(loader.status, 0, String(loader.stderr));
    const rows = tableFromIPC(loader.stdout).toArray().map((row) => row.toJSON() as Record<string, unknown>);
    // Llama 3 style tiny model: embed 272·8 + 2 layers × (q 16·8 + k, v 8·8 + o 8·16 + gate, up, down 3·12·8 + 2 norms of 8) + norm 8, tied
    const params = 272 * 8 + 2 * (16 * 8 + 2 * 8 * 8 + 8 * 16 + 3 * 12 * 8 + 2 * 8) + 8;
    for (const id of [sft.id, ev.id]) {
      const row = rows.find((x) => x.run_id === id)!;
      assert.equal(row.family, "llama", id);
      assert.equal(row.n_params, params, id);
    }

    // the API (no local paths) refuses Hugging Face folders and data files, naming the field; the CLI's precheck names bad folders
    const api = { kind: "sft", init: { hf: llama.dir }, data: { jsonl: join(dir, "chat.jsonl") } };
    assert.throws(() => precheckRunConfig(api), (err: Error) => /^init\.hf: Hugging Face model folders are accepted from the CLI only/.test(err.message));
    assert.throws(() => precheckRunConfig({ ...api, init: { hf: join(dir, "nope") } }, { allowPaths: true }), (err: Error) => /^init\.hf: .*no such folder/.test(err.message));
    assert.throws(() => precheckRunConfig({ kind: "eval", model: llama.dir }, { allowPaths: true }), (err: Error) => /^questions: is required with model/.test(err.message));
  } finally {
    cleanup();
  }
});

test("bad input: missing folder, unknown model_type, bad JSONL lines, an answer out of range, Gemma's soft-cap, a GPT checkpoint → exit 2 and one line", () => {
  const { dir, cleanup } = tempDir("hf-bad");
  try {
    const { llama, gemma, config } = setup(dir);
    const write = (name: string, body: unknown) => {
      writeFileSync(join(dir, name), typeof body === "string" ? body : JSON.stringify(body));
      return join(dir, name);
    };
    const phi = join(dir, "phi");
    writeTinyModel(phi, "llama", { files: llama3TokenizerFiles(), config: { ...tinyConfig("llama"), model_type: "phi3" } });
    const gpt = GptModel.create({ nLayer: 1, nHead: 1, dModel: 4, context: 4, vocab: 256, tied: true }, { maxBatch: 1 });
    gpt.init(1);
    saveCheckpoint(join(dir, "gpt"), gpt, { tokenizer: "byte" });
    gpt.free();
    const mcq = join(dir, "mcq.jsonl");
    // a base model: its tokenizer_config.json has no chat template
    const base = join(dir, "base");
    const { chat_template: _t, ...noTemplate } = JSON.parse(llama3TokenizerFiles()["tokenizer_config.json"]!);
    writeTinyModel(base, "llama", { files: { ...llama3TokenizerFiles(), "tokenizer_config.json": JSON.stringify(noTemplate) } });
    const cases: Array<[string[], RegExp]> = [
      [["train", "--config", write("a.json", { ...config, init: { hf: join(dir, "missing") } }), "--out", join(dir, "o1")], /missing: no such folder/],
      [["train", "--config", write("b.json", { ...config, init: { hf: phi } }), "--out", join(dir, "o2")], /config\.json: model_type 'phi3' is not supported/],
      [["train", "--config", write("c.json", { ...config, data: { jsonl: write("bad-chat.jsonl", '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{oops\n') } }), "--out", join(dir, "o3")], /bad-chat\.jsonl:2: not valid JSON/],
      [["train", "--config", write("d.json", { ...config, init: { hf: gemma.dir }, loss: { softcap: 20 } }), "--out", join(dir, "o4")], /loss\.softcap: gemma2 applies its final soft-cap 5 to every logit; loss\.softcap must be null or 5 \(got 20\)/],
      [["train", "--config", write("e.json", { ...config, data: undefined, questions: undefined }), "--out", join(dir, "o5")], /data: is required to fine-tune a Hugging Face model/],
      [["train", "--config", write("f.json", { ...config, init: join(dir, "gpt") }), "--out", join(dir, "o6")], /data: chat SFT from a JSONL file needs a Llama-family model/],
      [["eval", "--model", llama.dir, "--questions", write("q1.jsonl", `${readFileSync(mcq, "utf8")}{"question": "x?", "choices": ["a", "b", "c", "d"], "answer": 4}\n`), "--out", join(dir, "e1")], /q1\.jsonl:6: answer 4 is out of range \(4 choices: 0–3 or A–D\)/],
      [["eval", "--model", llama.dir, "--questions", write("q2.jsonl", '{"question": "x?", "choices": ["a", "b"], "answer": 0}\n[1, 2]\n'), "--out", join(dir, "e2")], /q2\.jsonl:2: each line must be a JSON object/],
      [["eval", "--model", join(dir, "missing"), "--questions", mcq, "--out", join(dir, "e3")], /missing: no such folder/],
      [["eval", "--model", llama.dir, "--out", join(dir, "e4")], /--model needs --questions/],
      [["eval", "--model", llama.dir, "--questions", mcq, "--shots", "5", "--out", join(dir, "e5")], /shots: 5 few-shot examples need 6 questions in .*mcq\.jsonl, which has 5/],
      [["eval", "--model", base, "--questions", mcq, "--chat", "--out", join(dir, "e6")], /base: has no chat template/],
      [["eval", "--model", llama.dir, "--questions", mcq, "--device", "gpu", "--out", join(dir, "e7")], /--device must be one of cpu, cuda, auto \(got 'gpu'\)/],
      [["train", "--config", write("g.json", { ...config, device: "cuda", precision: "float32" }), "--out", join(dir, "o7")], /precision: the Llama family trains on CUDA in bfloat16 mixed precision/],
      [["train", "--config", write("h.json", { ...config, precision: "bfloat16" }), "--out", join(dir, "o8")], /precision: bfloat16 mixed precision needs "device": "cuda"/],
      [["export", "--checkpoint", join(dir, "gpt"), "--hf", join(dir, "x")], /holds a GPT \(calib-gpt\/1, tokenizer byte\): calib export writes Hugging Face folders of Llama-family models only/],
      [["export", "--checkpoint", join(dir, "gpt")], /--hf OUT .* is required/],
    ];
    for (const [args, pattern] of cases) {
      assertBadInput(calib(args), args.join(" "), pattern);
      const out = args[args.indexOf("--out") + 1];
      if (args.includes("--out")) assert.ok(!existsSync(join(out!, "questions.arrow")), "no records from a failed run");
    }
  } finally {
    cleanup();
  }
});
