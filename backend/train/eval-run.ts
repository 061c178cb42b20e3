// Evaluation of a saved checkpoint into a run directory (what `calib eval` does): per-token
// records on Brown text and per-question records on the multiple-choice tasks, plus run.json.
// A checkpoint trained on a knowledge world (its config.json names the world) is evaluated on
// that world instead: tokens on its validation stream, its held-out questions scored by option
// (and/or letter), with the chat template after SFT and without it for a pretrained model.
// `calib eval --model PATH --questions FILE` (evaluateModelQuestions) scores a multiple-choice JSONL
// file with lm-eval's two scorings; PATH is a Hugging Face folder or one of our checkpoints.
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { countParams, GptModel, type ModelConfig } from "../engine/index.js";
import { encodeQuestions, generateQuestions, prepareSplits, tokenizer, type TaskName, type TokenizerName } from "../data/index.js";
import { writeQuestions, writeRunJson, writeTokens, type RunJson } from "../records/index.js";
import { progressBar } from "../term/progress.js";
import { CheckpointError, isLlamaCheckpoint, loadCheckpoint, loadIntoModel, readCheckpointConfig, type LoadedCheckpoint } from "./checkpoint.js";
import { EvalSchema, QuestionsSchema, WorldRunSchema, type EvalConfig, type QuestionsConfig } from "./config.js";
import {
  checkSoftcap, fitContext, gptView, isCheckpointDir, llamaView, longestItem, openLlamaSource, openQuestions, type ModelInfo, type ScoringView,
} from "./hf-run.js";
import { evaluateItems, type ScoredItem } from "./scoring.js";
import { evaluateQuestions, evaluateTokens } from "./evaluate.js";
import { evaluateWorldQuestions, openWorldRun } from "./world-run.js";
import { worldStream, type TokenStream } from "../data/index.js";
import type { Scoring } from "../records/index.js";

export interface EvalRunOptions {
  checkpoint: string;
  outDir: string;
  runId?: string;
  /** split, tasks, limits and the logit transform (defaults of the run config's `eval`) */
  eval?: Partial<EvalConfig>;
  /** SFT epoch of the checkpoint, for the records (default: from its config.json, else 0) */
  epoch?: number;
  splitSeed?: number;
  /** world checkpoints: how the questions are scored (default ["option"]) */
  scoring?: Scoring[];
  threads?: number;
  device?: "cpu" | "cuda" | "auto";
  progress?: boolean;
}

export interface EvalRunResult {
  runId: string;
  outDir: string;
  metrics: Record<string, number>;
  artifacts: string[];
}

/** The model an evaluation creates and what fills its parameters. */
interface EvalTarget {
  config: ModelConfig;
  fill(model: GptModel): void;
  info: ModelInfo;
}

const checkpointTarget = (ck: LoadedCheckpoint): EvalTarget => ({
  config: ck.config.model, fill: (m) => loadIntoModel(m, ck),
  info: { family: isLlamaCheckpoint(ck.config) ? ck.config.hf.family : "gpt2", params: countParams(ck.config.model), source: ck.dir },
});

/** run.json (running → succeeded / failed), the model, and the body that fills metrics and artifacts. */
function evalRun(
  o: Pick<EvalRunOptions, "outDir" | "runId" | "threads" | "device">, target: EvalTarget, batchSize: number, config: Record<string, unknown>,
  body: (model: GptModel, runId: string, metrics: Record<string, number>, artifacts: string[]) => void,
): EvalRunResult {
  const runId = o.runId ?? basename(o.outDir);
  mkdirSync(o.outDir, { recursive: true });
  const created = new Date().toISOString();
  const run: RunJson = {
    id: runId, name: runId, kind: "eval", status: "running", created_at: created, started_at: created, finished_at: null, config, metrics: {}, artifacts: [],
    model: target.info,
  };
  writeRunJson(join(o.outDir, "run.json"), run);
  const model = GptModel.create(target.config, { maxBatch: batchSize, threads: o.threads ?? 0, device: o.device ?? "cpu" });
  const metrics: Record<string, number> = {};
  const artifacts: string[] = [];
  try {
    target.fill(model);
    body(model, runId, metrics, artifacts);
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) delete metrics[k];
    writeRunJson(join(o.outDir, "run.json"), { ...run, status: "succeeded", finished_at: new Date().toISOString(), metrics, artifacts });
    return { runId, outDir: o.outDir, metrics, artifacts };
  } catch (err) {
    writeRunJson(join(o.outDir, "run.json"), { ...run, status: "failed", finished_at: new Date().toISOString(), error: (err as Error).message });
    throw err;
  } finally {
    model.free();
  }
}

/** tokens.arrow of a stream: per-token records with a progress bar. */
function tokenRecords(model: GptModel, stream: TokenStream, split: string, ev: EvalConfig, epoch: number, o: EvalRunOptions, runId: string, metrics: Record<string, number>, artifacts: string[]): void {
  const T = model.config.context;
  const windows = Math.min(Math.floor((stream.tokens.length - 1) / T), Math.ceil(ev.maxTokens / T));
  const bar = progressBar(`eval tokens (${split})`, windows, { enabled: o.progress ?? true, unit: "windows" });
  let seen = 0;
  const t = evaluateTokens(model, stream, {
    splitName: split, maxTokens: ev.maxTokens, batchSize: ev.batchSize, epoch, temperature: ev.temperature, softcap: ev.softcap,
    onBatch: (done) => {
      bar.tick(done - seen);
      seen = done;
    },
  });
  bar.done(`nll ${t.nll.toFixed(4)} accuracy ${t.accuracy.toFixed(4)}`);
  writeTokens(join(o.outDir, "tokens.arrow"), runId, [t.records]);
  artifacts.push("tokens.arrow");
  Object.assign(metrics, { token_nll: t.nll, token_accuracy: t.accuracy, token_entropy: t.entropy, tokens_evaluated: t.count });
}

const sftEpochOf = (ck: LoadedCheckpoint) => (typeof ck.config.training.sft_epoch === "number" ? ck.config.training.sft_epoch : 0);

export function evaluateCheckpointDir(o: EvalRunOptions): EvalRunResult {
  const parsed = EvalSchema.safeParse(o.eval ?? {});
  if (!parsed.success) throw new TypeError(`invalid eval options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const ev = parsed.data;
  const progress = o.progress ?? true;
  const ck = loadCheckpoint(o.checkpoint);
  if (!ck.config.tokenizer) throw new CheckpointError(`checkpoint ${o.checkpoint}: config.json names no tokenizer`);
  if (isLlamaCheckpoint(ck.config)) {
    throw new CheckpointError(`checkpoint ${o.checkpoint} is a Llama-family model (${ck.config.hf.family}): evaluate it on a questions file with --model ${o.checkpoint} --questions FILE.jsonl`);
  }
  if (ck.config.training.world !== undefined) return evaluateWorldCheckpoint(o, ev, ck);
  const tok = tokenizer(ck.config.tokenizer as TokenizerName);
  if (tok.vocabSize !== ck.config.model.vocab) throw new CheckpointError(`checkpoint ${o.checkpoint}: vocab ${ck.config.model.vocab} does not match tokenizer ${tok.name}`);
  const epoch = o.epoch ?? sftEpochOf(ck);
  const splitSeed = o.splitSeed ?? 0;
  return evalRun(o, checkpointTarget(ck), ev.batchSize, { checkpoint: o.checkpoint, eval: ev, epoch, splitSeed }, (model, runId, metrics, artifacts) => {
    const transform = { temperature: ev.temperature, softcap: ev.softcap };
    if (ev.maxTokens > 0) {
      const data = prepareSplits({ tokenizer: tok, splitSeed, progress });
      tokenRecords(model, data.splits[ev.split], ev.split, ev, epoch, o, runId, metrics, artifacts);
    }
    if (ev.maxQuestions > 0 && ev.tasks.length > 0) {
      const qs = ev.tasks.flatMap((task) =>
        encodeQuestions(generateQuestions({ task: task as TaskName, split: ev.split, seed: ev.questionSeed, splitSeed, limit: ev.maxQuestions }), tok));
      const bar = progressBar(`eval questions (${ev.split})`, qs.length, { enabled: progress, unit: "questions" });
      let seen = 0;
      const q = evaluateQuestions(model, qs, {
        split: ev.split, epoch, batchSize: ev.batchSize, align: ev.promptAlign, padId: tok.padId, ...transform,
        onBatch: (done) => {
          bar.tick(done - seen);
          seen = done;
        },
      });
      bar.done(`accuracy ${q.accuracy.toFixed(4)}${q.skipped.length ? `, ${q.skipped.length} longer than the context skipped` : ""}`);
      writeQuestions(join(o.outDir, "questions.arrow"), runId, q.rows);
      artifacts.push("questions.arrow");
      Object.assign(metrics, { question_accuracy: q.accuracy, question_nll: q.nll, question_entropy: q.entropy, questions_skipped: q.skipped.length });
      for (const task of ev.tasks) {
        const rows = q.rows.filter((r) => r.task === task);
        if (rows.length === 0) continue;
        const correct = rows.filter((r) => {
          const p = Array.from(r.probs);
          return p.indexOf(Math.max(...p)) === r.gold;
        }).length;
        metrics[`accuracy_${task}`] = correct / rows.length;
      }
    }
  });
}

/** `calib eval` of a checkpoint trained on a knowledge world (see the header). */
function evaluateWorldCheckpoint(o: EvalRunOptions, ev: EvalConfig, ck: LoadedCheckpoint): EvalRunResult {
  const progress = o.progress ?? true;
  const wcfg = WorldRunSchema.safeParse({ scoring: o.scoring ?? ["option"] });
  if (!wcfg.success) throw new TypeError(`invalid scoring: ${wcfg.error.issues.map((i) => i.message).join("; ")}`);
  const wr = openWorldRun(wcfg.data, ck.config.tokenizer!, ev, ck, o.checkpoint);
  if (wr.tokenizer.vocabSize !== ck.config.model.vocab) throw new CheckpointError(`checkpoint ${o.checkpoint}: vocab ${ck.config.model.vocab} does not match tokenizer ${wr.tokenizer.name}`);
  const chat = ck.config.training.kind === "sft";
  const epoch = o.epoch ?? sftEpochOf(ck);
  const config = { checkpoint: o.checkpoint, eval: ev, epoch, world: wr.world.hash, scoring: wr.scorings, chat_template: chat ? wr.template.name : null };
  return evalRun(o, checkpointTarget(ck), ev.batchSize, config, (model, runId, metrics, artifacts) => {
    if (ev.maxTokens > 0) tokenRecords(model, worldStream({ world: wr.world, tokenizer: wr.tokenizer, stream: "validation", progress }), "validation", ev, epoch, o, runId, metrics, artifacts);
    if (wr.questions.length === 0) return;
    const w = evaluateWorldQuestions(model, wr.items(chat), { epoch, padId: wr.tokenizer.padId, temperature: ev.temperature, softcap: ev.softcap });
    if (progress) process.stderr.write(`eval world questions (${chat ? wr.template.name : "no chat template"}): accuracy ${w.metrics.question_accuracy?.toFixed(4)}${w.skipped ? `, ${w.skipped} longer than the context skipped` : ""}\n`);
    writeQuestions(join(o.outDir, "questions.arrow"), runId, w.rows);
    artifacts.push("questions.arrow");
    Object.assign(metrics, w.metrics);
  });
}

export interface ModelEvalOptions {
  /** a Hugging Face model folder or one of our checkpoints (GPT or Llama family) */
  model: string;
  /** the questions file and how it is scored (QuestionsSchema's input: defaults filled here) */
  questions: Partial<QuestionsConfig> & Pick<QuestionsConfig, "jsonl">;
  outDir: string;
  runId?: string;
  /** Llama family: the sequence length to allocate for (default: the folder's, or the checkpoint's) */
  context?: number;
  /** the evaluated distribution softmax(softcap(z/T)) and the rows per engine call */
  eval?: Partial<Pick<EvalConfig, "temperature" | "softcap" | "batchSize">>;
  /** epoch written into the records (default: the checkpoint's SFT epoch, else 0) */
  epoch?: number;
  threads?: number;
  device?: "cpu" | "cuda" | "auto";
  progress?: boolean;
}

/**
 * `calib eval --model PATH --questions FILE`: the questions scored by the model (letter and / or
 * option scoring, zero- or k-shot, plain or with the chat template) into questions.arrow and
 * run.json (kind eval, metrics accuracy_<task>[_letter|_option], accuracy_norm_<task>, question_*).
 */
export function evaluateModelQuestions(o: ModelEvalOptions): EvalRunResult {
  const q = QuestionsSchema.safeParse(o.questions);
  if (!q.success) throw new TypeError(`invalid questions options: ${q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const ev = EvalSchema.safeParse(o.eval ?? {});
  if (!ev.success) throw new TypeError(`invalid eval options: ${ev.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const qc = q.data, transform = { temperature: ev.data.temperature, softcap: ev.data.softcap };
  const questions = openQuestions(qc);
  let target: EvalTarget, view: ScoringView, epoch = o.epoch ?? 0, items: ScoredItem[][] | undefined;
  const ckConfig = isCheckpointDir(o.model) ? readCheckpointConfig(o.model) : null;
  if (ckConfig && !isLlamaCheckpoint(ckConfig)) {
    if (o.context !== undefined) throw new TypeError(`context: applies to Llama-family models; ${o.model} is a GPT checkpoint`);
    const ck = loadCheckpoint(o.model);
    target = checkpointTarget(ck);
    view = gptView(ck, qc.chat);
    epoch = o.epoch ?? sftEpochOf(ck);
  } else {
    const source = openLlamaSource(o.model, o.context !== undefined ? { context: o.context } : {});
    transform.softcap = checkSoftcap(source, transform.softcap, "softcap");
    view = llamaView(source, qc.chat);
    items = questions.items(view);
    target = { config: fitContext(source, o.context, longestItem(items)), fill: (m) => m.write("params", source.params(o.progress ?? true)), info: source.info };
    if (source.checkpoint) epoch = o.epoch ?? sftEpochOf(source.checkpoint);
  }
  items ??= questions.items(view);
  const config = {
    model: o.model, questions: qc, ...(o.context !== undefined ? { context: o.context } : {}), eval: { ...transform, batchSize: ev.data.batchSize },
    epoch, chat_template: view.template?.name ?? null,
  };
  const scored = items;
  return evalRun(o, target, ev.data.batchSize, config, (model, runId, metrics, artifacts) => {
    const items = scored;
    const total = items.reduce((a, l) => a + l.length, 0);
    const bar = progressBar(`eval ${questions.task} (${qc.scoring.join(" + ")}${qc.shots ? `, ${qc.shots}-shot` : ""}${view.template ? ", chat" : ""})`, total, { enabled: o.progress ?? true, unit: "questions" });
    let seen = 0;
    const w = evaluateItems(model, items, {
      epoch, split: "test", padId: view.tok.padId, ...transform,
      onBatch: (done) => {
        bar.tick(done - seen);
        seen = done;
      },
    });
    bar.done(`accuracy ${w.metrics.question_accuracy?.toFixed(4)}${w.skipped ? `, ${w.skipped} longer than the context skipped` : ""}`);
    if (w.rows.length === 0) throw new RangeError(`no question of ${qc.jsonl} fits the context (${model.config.context} tokens)`);
    writeQuestions(join(o.outDir, "questions.arrow"), runId, w.rows);
    artifacts.push("questions.arrow");
    Object.assign(metrics, w.metrics);
  });
}
