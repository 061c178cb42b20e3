// What runs of Llama-family models need beyond the GPT paths (docs/hf.md, "Fine-tuning and
// evaluation"): the model — a Hugging Face folder or a calib-llama/1 checkpoint of ours — with
// its tokenizer, chat template and the files its checkpoints keep (hf/); chat SFT data from a
// JSONL file; multiple-choice JSONL files as scored items. The trainer (SFT), `calib eval
// --model` and `calib export` share it.
//
// Numerics: the model is the engine's arch 'llama' in float32 on the CPU. Gemma 2's final
// soft-cap applies to every logit, in training and evaluation alike: a run's softcap must be
// null (the model's is used) or equal to it (checkSoftcap).
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { countParams, type GptModel, type ModelConfig } from "../engine/index.js";
import {
  CALIB_CHAT, chatSftBatches, encodeConversation, isTokenizerName, readChatJsonl, readMcqJsonl, tokenizer, type ChatExample, type ChatTemplate,
  type McqQuestion, type TextTokenizer,
} from "../data/index.js";
import { COPIED_FILES, DEFAULT_CONTEXT, HfFolderError, loadHfWeights, openHfFolder, type HfFolder } from "../hf/index.js";
import {
  CheckpointError, HF_SUBDIR, isLlamaCheckpoint, loadCheckpoint, readCheckpointConfig, type HfCheckpointInfo, type LoadedCheckpoint,
} from "./checkpoint.js";
import type { QuestionsConfig } from "./config.js";
import { mcqItems, withPrefix, type ScoredItem } from "./scoring.js";
import { trimSftBatch } from "./sft-batches.js";

/** The model of a run as run.json and the Runs page describe it. */
export interface ModelInfo {
  /** gpt2, or the Hugging Face model_type (llama, qwen2, mistral, gemma2) */
  family: string;
  /** parameters */
  params: number;
  /** the folder or checkpoint it was loaded from */
  source: string;
}

/** A Llama-family model to train, evaluate or export: a Hugging Face folder or one of our checkpoints. */
export interface LlamaSource {
  /** the folder or checkpoint directory (absolute) */
  path: string;
  kind: "hf" | "checkpoint";
  /** config, tokenizer and chat template (of the checkpoint's hf/ folder for checkpoints) */
  folder: HfFolder;
  config: ModelConfig & { arch: "llama" };
  /** Gemma 2's final soft-cap (null: none) */
  finalSoftcap: number | null;
  /** what a checkpoint of this model keeps of its origin (saveCheckpoint's hf option) */
  hf: { info: HfCheckpointInfo; files: Map<string, Uint8Array> };
  /** the loaded checkpoint (checkpoints only) */
  checkpoint: LoadedCheckpoint | null;
  info: ModelInfo;
  /** the weights, float32 in the engine's tensor order (read now: large for real models) */
  params(progress?: boolean): Float32Array;
}

/** "config.json of `dir` says it is one of our checkpoints" (else: a Hugging Face folder). */
export function isCheckpointDir(dir: string): boolean {
  try {
    const raw = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { format?: unknown };
    return typeof raw?.format === "string" && raw.format.startsWith("calib-");
  } catch {
    return false;
  }
}

function checkFolder(path: string, what: string): string {
  const dir = resolve(path);
  if (!existsSync(dir)) throw new HfFolderError(dir, `no such folder (${what})`);
  if (!statSync(dir).isDirectory()) throw new HfFolderError(dir, `is not a folder (${what})`);
  return dir;
}

/** config.json and the tokenizer / chat template / generation files of a folder (what hf/ keeps). */
function originFiles(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const f of ["config.json", ...COPIED_FILES]) if (existsSync(join(dir, f))) files.set(f, readFileSync(join(dir, f)));
  return files;
}

/**
 * Opens a Llama-family model: a Hugging Face folder (`context`: the sequence length to allocate
 * for, default min(max_position_embeddings, 4096)) or a calib-llama/1 checkpoint (its context, or
 * `context` instead). The weights are read by params().
 */
export function openLlamaSource(path: string, o: { context?: number; optimizer?: boolean } = {}): LlamaSource {
  const dir = checkFolder(path, "a Hugging Face model folder or a calib-llama/1 checkpoint");
  if (isCheckpointDir(dir)) {
    const cfg = readCheckpointConfig(dir);
    if (!isLlamaCheckpoint(cfg)) throw new CheckpointError(`checkpoint ${dir} holds a GPT (${cfg.format}), not a Llama-family model`);
    const ck = loadCheckpoint(dir, { optimizer: o.optimizer ?? false });
    const hfDir = join(dir, HF_SUBDIR);
    // another context is only another allocation (checked against max_position_embeddings)
    const folder = openHfFolder(hfDir, { context: o.context ?? ck.config.model.context });
    if (JSON.stringify({ ...folder.spec.model, context: ck.config.model.context }) !== JSON.stringify(ck.config.model) || folder.spec.family !== cfg.hf.family) {
      throw new CheckpointError(`checkpoint ${dir}: ${HF_SUBDIR}/config.json does not describe the checkpoint's model (config.json)`);
    }
    const config = folder.spec.model;
    return {
      path: dir, kind: "checkpoint", folder, config, finalSoftcap: cfg.hf.finalSoftcap, checkpoint: ck,
      hf: { info: cfg.hf, files: originFiles(hfDir) },
      info: { family: cfg.hf.family, params: countParams(config), source: dir },
      params: () => ck.params,
    };
  }
  const folder = openHfFolder(dir, o.context !== undefined ? { context: o.context } : {});
  const spec = folder.spec;
  return {
    path: dir, kind: "hf", folder, config: spec.model, finalSoftcap: spec.finalSoftcap, checkpoint: null,
    hf: { info: { family: spec.family, finalSoftcap: spec.finalSoftcap, source: dir }, files: originFiles(dir) },
    info: { family: spec.family, params: countParams(spec.model), source: dir },
    params: (progress = false) => loadHfWeights(spec, { progress }).params,
  };
}

/**
 * The model configuration to allocate: with `asked` (a context given by the user) as opened;
 * otherwise `longest` tokens (the longest sequence the run will feed, at least 1), at most
 * min(max_position_embeddings, 4096) — the engine allocates activations (and attention scores)
 * for maxBatch × context positions, so a short run should not allocate for 4096. Positions
 * below the context compute the same either way (a checkpoint's context is an allocation too).
 */
export function fitContext(source: LlamaSource, asked: number | undefined, longest: number): LlamaSource["config"] {
  if (asked !== undefined) return source.config;
  const limit = Math.max(source.config.context, Math.min(source.folder.spec.maxContext, DEFAULT_CONTEXT));
  return { ...source.config, context: Math.max(1, Math.min(limit, longest)) };
}

/** Tokens the engine reads for the longest option sequence of scored items (context + continuation − 1). */
export function longestItem(items: readonly ScoredItem[][]): number {
  let n = 0;
  for (const list of items) for (const it of list) for (const c of it.continuations) n = Math.max(n, it.context.length + c.length - 1);
  return n;
}

/**
 * The softcap of a Llama-family run: Gemma 2's final soft-cap applies always, so the run's own
 * (`field`) must be null or equal to it; other families take the run's.
 */
export function checkSoftcap(source: Pick<LlamaSource, "finalSoftcap" | "info">, softcap: number | null, field: string): number | null {
  const own = source.finalSoftcap;
  if (own === null) return softcap;
  if (softcap !== null && Math.fround(softcap) !== Math.fround(own)) {
    throw new TypeError(`${field}: ${source.info.family} applies its final soft-cap ${own} to every logit; ${field} must be null or ${own} (got ${softcap})`);
  }
  return own;
}

/** The chat template of a model; a folder without one (a base model) cannot take chat data. */
export function requireTemplate(source: LlamaSource, field: string): ChatTemplate {
  const t = source.folder.chatTemplate;
  if (!t) {
    throw new HfFolderError(source.path, `has no chat template (tokenizer_config.json chat_template, chat_template.jinja or chat_template.json), which ${field} needs: use an instruct model's folder or add its template`);
  }
  return t;
}

/** The conversations of a chat JSONL file encoded with assistant-only targets (ids `<file>:<line>`). */
export function chatExamples(path: string, template: ChatTemplate, tok: TextTokenizer, maxExamples = 0): ChatExample[] {
  const records = readChatJsonl(path);
  const name = basename(path);
  return (maxExamples > 0 ? records.slice(0, maxExamples) : records).map((r) => encodeConversation(r.messages, template, tok, `${name}:${r.line}`));
}

/** Mean NLL and entropy of the assistant tokens of held-out conversations (one per row, in order). */
export function conversationLoss(
  model: GptModel, examples: readonly ChatExample[], o: { batchSize: number; padId: number; temperature: number; softcap: number | null },
): { nll: number; entropy: number; tokens: number } {
  const epoch = chatSftBatches(examples, { contextLength: model.config.context, batchSize: Math.min(o.batchSize, model.maxBatch), padId: o.padId, mode: "pad", shuffle: false });
  let nll = 0, ent = 0, n = 0;
  for (const b of epoch) {
    const batch = trimSftBatch(b);
    const rows: number[] = [];
    for (let i = 0; i < batch.targets.length; i++) if (batch.targets[i] !== -100) rows.push(i);
    if (rows.length === 0) continue;
    const r = model.evaluate(batch, { rows: Int32Array.from(rows), topK: 0, temperature: o.temperature, softcap: o.softcap });
    for (let k = 0; k < rows.length; k++) {
      nll += r.nll![k]!;
      ent += r.entropy[k]!;
    }
    n += rows.length;
  }
  return { nll: n ? nll / n : NaN, entropy: n ? ent / n : NaN, tokens: n };
}

/** The task name of a questions file: its name without .jsonl. */
export function questionsTask(path: string): string {
  return basename(path).replace(/\.jsonl$/i, "").replace(/[^\w.-]+/g, "_") || "questions";
}

/** A model's view for multiple-choice scoring: its tokenizer, the chat template to render with (null: plain prompts) and what plain prompts start with. */
export interface ScoringView {
  tok: TextTokenizer;
  template: ChatTemplate | null;
  /** ids before a plain prompt: the BOS transformers adds by default (Llama 3, Gemma), else none */
  prefix: readonly number[];
}

/** Loaded multiple-choice questions, ready to be scored by a model. */
export interface QuestionSource {
  task: string;
  questions: McqQuestion[];
  /** one list per scoring (the first the headline) */
  items(view: ScoringView): ScoredItem[][];
}

/** Reads a questions config's files (errors name file:line and field) and checks the few-shot pool. */
export function openQuestions(q: QuestionsConfig): QuestionSource {
  const all = readMcqJsonl(q.jsonl);
  const questions = q.maxQuestions > 0 ? all.slice(0, q.maxQuestions) : all;
  const pool = q.fewshot ? readMcqJsonl(q.fewshot) : all;
  const samePool = q.fewshot === undefined;
  if (q.shots > pool.length - (samePool ? 1 : 0)) {
    throw new RangeError(`shots: ${q.shots} few-shot examples need ${q.shots + (samePool ? 1 : 0)} questions in ${q.fewshot ?? q.jsonl}, which has ${pool.length}`);
  }
  const task = questionsTask(q.jsonl);
  return {
    task, questions,
    items: (view) => q.scoring.map((scoring) =>
      mcqItems(questions, { task, scoring, tok: view.template ? view.tok : withPrefix(view.tok, view.prefix), template: view.template, shots: q.shots, pool, samePool })),
  };
}

/** The scoring view of a Llama-family model (chat template required when `chat`). */
export function llamaView(source: LlamaSource, chat: boolean): ScoringView {
  return { tok: source.folder.tokenizer, template: chat ? requireTemplate(source, "--chat / questions.chat") : null, prefix: source.folder.tokenizer.specialPrefix };
}

/** The scoring view of one of our GPT checkpoints: its tokenizer, the built-in template calib-chat/1. */
export function gptView(ck: LoadedCheckpoint, chat: boolean): ScoringView {
  const name = ck.config.tokenizer;
  if (!name || !isTokenizerName(name)) throw new CheckpointError(`checkpoint ${ck.dir}: its tokenizer '${String(name)}' cannot encode a questions file (byte, r50k, cl100k, o200k)`);
  const tok = tokenizer(name);
  if (tok.vocabSize !== ck.config.model.vocab) throw new CheckpointError(`checkpoint ${ck.dir}: vocab ${ck.config.model.vocab} does not match tokenizer ${tok.name}`);
  return { tok, template: chat ? CALIB_CHAT : null, prefix: [] };
}
