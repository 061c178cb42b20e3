// The training loop of `calib train` and the API: pretraining on Brown text and supervised
// fine-tuning on the multiple-choice tasks, with evaluation records, checkpoints and resume.
// With a `world` block: pretraining on a knowledge world's documents (epoch e reads the stream
// rendered for epoch e), SFT on its chat conversations (assistant-only loss), evaluation by
// scoring its held-out questions (world-run.ts).
// SFT of a Llama-family model (`init: {hf: FOLDER}` or a calib-llama/1 checkpoint) reads chat
// conversations from `data.jsonl` (assistant-only loss) and scores `questions` (a multiple-choice
// JSONL file) before SFT and after every epoch (hf-run.ts); its checkpoints are calib-llama/1.
//
// One optimizer step = gradAccum micro-batches. Every micro-batch adds the gradient of
// (Σ per-token loss)/(supervised tokens of the whole step), so the step's gradient is that of
// the mean loss over all its supervised tokens (micro-batches of SFT differ in size). Then:
// global gradient norm (NaN/Inf stops the run naming the step and the tensors), clipping by
// that norm (PyTorch's clip_grad_norm_: scale min(1, max/(norm + 1e-6))),
// the warm-up + cosine learning rate, AdamW.
//
// The data position is a pure function of the micro-batches consumed (backend/data derives
// each epoch's order from (seed, epoch)), so a checkpoint of params, AdamW moments, step and
// that count resumes to the same numbers as an uninterrupted run (same thread count: the
// fused loss merges per-thread partial sums).
//
// Output directory:
//   run.json, train_log.arrow, tokens.arrow, questions.arrow   (docs/records.md)
//   checkpoint/                                                  (checkpoint.ts)
//   evals/epoch-<e>.{tokens,questions}.arrow                     per evaluated checkpoint
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { countParams, GptModel, type Batch, type ModelConfig } from "../engine/index.js";
import {
  chatSftBatches, encodeConversation, encodeQuestions, generateQuestions, lmBatches, lmWindowCount, prepareSplits, sftBatches, sftConversations,
  tokenizer, worldStream, worldStreamLength, type EncodedQuestion, type LmEpoch, type SftEpoch, type TaskName, type TextTokenizer,
  type TokenStream, type Tokenizer, type TokenizerName,
} from "../data/index.js";
import {
  markRunFailed, readArrowStream, readTrainLog, writeArrowStream, writeQuestions, writeRunJson, writeTokens, writeTrainLog, type RunJson,
  type TrainLogRow,
} from "../records/index.js";
import { configHash, engineOptions, parseTrainConfig, type EvalConfig, type PretrainConfig, type SftConfig, type TrainConfig } from "./config.js";
import {
  CheckpointError, isLlamaCheckpoint, loadCheckpoint, loadIntoModel, readCheckpointConfig, saveCheckpoint, type LoadedCheckpoint, type SaveOptions, type TrainerState, TRAINER_STATE_FORMAT,
} from "./checkpoint.js";
import {
  chatExamples, checkSoftcap, conversationLoss, fitContext, llamaView, longestItem, openLlamaSource, openQuestions, requireTemplate, type ModelInfo,
} from "./hf-run.js";
import { evaluateItems, type ScoredItem } from "./scoring.js";
import { learningRate } from "./schedule.js";
import { trimSftBatch } from "./sft-batches.js";
import { evaluateQuestions, evaluateTokens, validationLoss, type QuestionEval } from "./evaluate.js";
import { progressBar, type Progress } from "../term/progress.js";
import { evaluateWorldQuestions, openWorldRun, type WorldRun } from "./world-run.js";
import type { Collective } from "./dp/collective.js";
import { rowSlice, type ShardOptions } from "./dp/shard.js";
import { ShardedAdamW } from "./dp/zero.js";
import { launchRanks, type Transport } from "./dp/launch.js";

export { trimSftBatch } from "./sft-batches.js";

export interface TrainOptions {
  /** output directory (created) */
  outDir: string;
  /** run id for the records (default: the directory's name) */
  runId?: string;
  /** continue from outDir/checkpoint (its trainer_state.json) */
  resume?: boolean;
  /** progress bar on stderr (default true) */
  progress?: boolean;
  /** stop after this many optimizer steps in total, with a checkpoint (for interruption tests) */
  stopAfterSteps?: number;
  signal?: AbortSignal;
  /** every train_log row as it is written */
  onRow?: (row: TrainLogRow) => void;
  /** config.gpus > 1: how the ranks communicate; 'cpu-test' runs CPU ranks over a localhost socket
   * (tests of the launcher, the sharded optimizer and the checkpoints); default NCCL (device cuda) */
  transport?: Transport;
  /** config.gpus > 1: called with each rank's process id once the ranks are started */
  onRanks?: (pids: number[]) => void;
  /** a collective that some ranks reach and others not within this time ends the run (default 30 min) */
  collectiveTimeoutMs?: number;
  /** set by the launcher in a rank's process (backend/train/dp/rank.ts), never by callers */
  rank?: RankContext;
}

/** One rank of a data-parallel run: its collective and the ZeRO-1 bucket layout. */
export interface RankContext {
  collective: Collective;
  transport: Transport;
  shard?: ShardOptions;
}

export interface TrainResult {
  runId: string;
  outDir: string;
  checkpoint: string;
  kind: "pretrain" | "sft";
  /** optimizer steps done */
  steps: number;
  totalSteps: number;
  /** false when stopped early (stopAfterSteps or the signal) */
  completed: boolean;
  metrics: Record<string, number>;
  artifacts: string[];
  log: TrainLogRow[];
}

/** Tokens whose predictive entropy is averaged for a train row of train_log. */
const ENTROPY_ROWS = 256;

/** Supervised targets of a batch. */
function supervised(targets: Int32Array, ignore = -100): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] !== ignore) n++;
  return n;
}

/** Rank r's rows of a micro-batch (null when it has none: a short last batch over many ranks). */
function rankRows(b: Batch, worldSize: number, rank: number): Batch | null {
  const { begin, end } = rowSlice(b.b, worldSize, rank);
  if (begin === end) return null;
  return { inputs: b.inputs.subarray(begin * b.t, end * b.t), targets: b.targets.subarray(begin * b.t, end * b.t), b: end - begin, t: b.t };
}

// ------------------------------------------------------------------------------------------

/** The progress bar's status after the step count: "loss 2.3456 5120 tok/s [epoch 1/3]". */
function stepStatus(loss: number, tokensPerSecond: number, note?: string): string {
  const l = Number.isFinite(loss) ? loss.toFixed(4) : "-";
  const tps = Number.isFinite(tokensPerSecond) ? `${Math.round(tokensPerSecond)} tok/s` : "- tok/s";
  return `loss ${l} ${tps}${note ? ` ${note}` : ""}`;
}

class Run {
  readonly runId: string;
  readonly out: string;
  readonly ckptDir: string;
  readonly evalDir: string;
  readonly log: TrainLogRow[] = [];
  readonly progress: Progress;
  readonly hash: string;
  state: TrainerState;
  segmentStart = performance.now();
  /** input id that left-pads right-aligned question prompts (the tokenizer's padId) */
  padId = 0;
  /** the loss's soft-cap (Gemma 2: its final soft-cap); default the config's */
  softcap: number | null;
  /** Llama-family models: their origin and tokenizer files, kept in every checkpoint */
  hf: SaveOptions["hf"];
  /** run.json's description of the model */
  modelInfo: ModelInfo | null = null;
  /** data parallelism: this rank's collective and sharded optimizer (null on one device) */
  readonly dp: { c: Collective; opt: ShardedAdamW; transport: Transport } | null;
  /** rank 0, or the only process: evaluates and writes the records, run.json and checkpoints */
  readonly root: boolean;
  private created: string;
  private lastRowTime = performance.now();
  private tokensSinceRow = 0;

  constructor(readonly config: TrainConfig, readonly model: GptModel, readonly options: TrainOptions, readonly totalSteps: number, label: string) {
    this.out = options.outDir;
    this.runId = options.runId ?? basename(options.outDir);
    this.ckptDir = join(this.out, "checkpoint");
    this.evalDir = join(this.out, "evals");
    mkdirSync(this.evalDir, { recursive: true });
    this.hash = configHash(config);
    this.softcap = config.loss.softcap;
    this.created = new Date().toISOString();
    const r = options.rank;
    this.dp = r ? { c: r.collective, opt: new ShardedAdamW(model, r.collective, r.shard), transport: r.transport } : null;
    this.root = !r || r.collective.rank === 0;
    this.state = {
      format: TRAINER_STATE_FORMAT, phase: config.kind, step: 0, microBatches: 0, epoch: 0, batchInEpoch: 0,
      seed: config.seed, configHash: this.hash, tokens: 0, elapsedSeconds: 0, logRows: 0,
      pendingLossSum: 0, pendingTokens: 0,
    };
    // off a terminal (CI, job.log) a line at every 10% of the steps
    this.progress = progressBar(label, totalSteps, { enabled: this.root && (options.progress ?? true), count: (s, t) => `step ${s}/${t}`, logEvery: 0.1 });
  }

  /** Loads outDir/checkpoint when resuming; returns whether it did. A fresh run clears old evals. */
  resume(): boolean {
    if (!this.options.resume) {
      if (this.root) for (const f of readdirSync(this.evalDir)) if (f.endsWith(".arrow")) rmSync(join(this.evalDir, f), { force: true });
      return false;
    }
    if (!existsSync(join(this.ckptDir, "trainer_state.json"))) {
      throw new CheckpointError(`cannot resume: ${this.ckptDir} has no trainer_state.json (start without --resume)`);
    }
    const ck = loadCheckpoint(this.ckptDir, { optimizer: true });
    const st = ck.state!;
    if (st.configHash !== this.hash) {
      throw new CheckpointError(`cannot resume ${this.ckptDir}: it was written by a different config (hash ${st.configHash}, this config ${this.hash})`);
    }
    loadIntoModel(this.model, ck);
    this.state = st;
    const logPath = join(this.out, "train_log.arrow");
    if (st.logRows > 0) {
      if (!existsSync(logPath)) throw new CheckpointError(`cannot resume: ${logPath} is missing`);
      this.log.push(...readTrainLog(logPath).slice(0, st.logRows));
    }
    try {
      const prev = JSON.parse(readFileSync(join(this.out, "run.json"), "utf8")) as RunJson;
      if (typeof prev.created_at === "string") this.created = prev.created_at;
    } catch {
      // no run.json: keep now
    }
    this.progress.message(`resuming ${this.runId} at step ${st.step} (epoch ${st.epoch}, batch ${st.batchInEpoch})`);
    return true;
  }

  elapsed(): number {
    return this.state.elapsedSeconds + (performance.now() - this.segmentStart) / 1000;
  }

  writeRun(status: RunJson["status"], metrics: RunJson["metrics"], error?: string): void {
    if (!this.root) return;
    const artifacts = ["train_log.arrow", "tokens.arrow", "questions.arrow", "checkpoint"].filter((a) => existsSync(join(this.out, a)));
    const run: RunJson = {
      id: this.runId, name: this.config.name ?? this.runId, kind: this.config.kind, status, created_at: this.created,
      started_at: this.created, finished_at: status === "running" ? null : new Date().toISOString(), config: this.config, metrics, artifacts,
      ...(this.modelInfo ? { model: this.modelInfo } : {}),
      ...(this.dp ? { parallel: { world_size: this.dp.c.worldSize, transport: this.dp.transport } } : {}),
    };
    if (error) run.error = error;
    writeRunJson(join(this.out, "run.json"), run);
  }

  /**
   * One optimizer step over the given micro-batches; returns the mean loss and the pre-clip norm.
   * Data-parallel: this rank computes its rows of every micro-batch (rowSlice), the loss sums and
   * gradients are summed over the ranks, and AdamW updates this rank's shard (dp/zero.ts).
   */
  async step(micro: Batch[], epochFrac: number, wantRow: boolean, epochAfter?: () => number): Promise<{ loss: number; norm: number; lr: number }> {
    const c = this.config;
    const step = this.state.step + 1;
    const loss = { labelSmoothing: c.loss.labelSmoothing, temperature: c.loss.temperature, softcap: this.softcap ?? 0 };
    const total = micro.reduce((a, b) => a + supervised(b.targets), 0);
    const model = this.model;
    const dp = this.dp;
    model.zeroGrad();
    let lossSum = 0, tokens = 0;
    for (const b of micro) {
      const mine = dp ? rankRows(b, dp.c.worldSize, dp.c.rank) : b;
      if (mine) lossSum += model.forwardBackward(mine, loss, total > 0 ? 1 / total : 0).lossSum;
      tokens += b.b * b.t;
    }
    if (dp) lossSum = (await dp.c.allReduce(Float64Array.of(lossSum)))[0]!;
    if (!Number.isFinite(lossSum)) {
      throw new Error(`step ${step}: the training loss is ${lossSum} (non-finite); training stopped (try a lower lr, gradClip, or check the config)`);
    }
    let entropy = NaN;
    if (wantRow && this.root) {
      // Entropy of the trained distribution softcap(z/T) on (up to 256 evenly spaced) supervised
      // tokens of the last micro-batch, before the update.
      const b = micro[micro.length - 1]!;
      const all: number[] = [];
      for (let i = 0; i < b.targets.length; i++) if (b.targets[i] !== -100) all.push(i);
      const stride = Math.max(1, Math.ceil(all.length / ENTROPY_ROWS));
      const rows = all.filter((_, k) => k % stride === 0);
      if (rows.length > 0) {
        const r = model.evaluate(b, { rows: Int32Array.from(rows), topK: 0, temperature: loss.temperature, softcap: loss.softcap });
        entropy = r.entropy.reduce((a, x) => a + x, 0) / rows.length;
      }
    }
    const { norm, tensorNorms } = dp ? await dp.opt.reduceGradients() : model.gradNorm();
    if (!Number.isFinite(norm)) {
      const bad = model.tensors().filter((_, i) => !Number.isFinite(tensorNorms[i]!)).map((t) => t.name);
      throw new Error(`step ${step}: the gradient norm is ${norm} (non-finite in ${bad.join(", ") || "?"}); training stopped`);
    }
    const o = c.optim;
    const clip = o.gradClip > 0 ? Math.min(1, o.gradClip / (norm + 1e-6)) : 1;
    const lr = learningRate({ lr: o.lr, minLrRatio: o.minLrRatio, warmupSteps: o.warmupSteps, totalSteps: this.totalSteps }, step);
    const adamw = { lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, gradScale: clip, step };
    if (dp) await dp.opt.update(adamw);
    else model.adamw(adamw);
    this.state.step = step;
    this.state.tokens += tokens;
    this.tokensSinceRow += tokens;
    this.state.pendingLossSum += lossSum;
    this.state.pendingTokens += total;
    const mean = total > 0 ? lossSum / total : NaN;
    if (wantRow) {
      this.row({ split: "train", step, epoch: epochAfter ? epochAfter() : epochFrac, loss: this.state.pendingLossSum / Math.max(1, this.state.pendingTokens), lr, grad_norm: norm, entropy });
      this.state.pendingLossSum = 0;
      this.state.pendingTokens = 0;
    }
    return { loss: mean, norm, lr };
  }

  row(r: Pick<TrainLogRow, "split" | "step" | "epoch" | "loss" | "lr" | "grad_norm" | "entropy">): TrainLogRow {
    const now = performance.now();
    const secs = (now - this.lastRowTime) / 1000;
    const row: TrainLogRow = {
      run_id: this.runId, phase: this.config.kind, ...r,
      tokens_per_s: secs > 0 && this.tokensSinceRow > 0 ? this.tokensSinceRow / secs : NaN,
      time_s: this.elapsed(),
    };
    this.lastRowTime = now;
    this.tokensSinceRow = 0;
    this.log.push(row);
    if (this.root) this.options.onRow?.(row);
    return row;
  }

  writeLog(): void {
    if (this.root) writeTrainLog(join(this.out, "train_log.arrow"), this.log);
  }

  /** Writes outDir/checkpoint (data-parallel: every rank contributes its AdamW shard, rank 0 writes it once). */
  async checkpoint(tokenizerName: string, extra: Record<string, unknown> = {}): Promise<void> {
    this.state.elapsedSeconds = this.elapsed();
    this.segmentStart = performance.now();
    this.state.logRows = this.log.length;
    if (this.dp) await this.dp.opt.gatherState();
    if (!this.root) return;
    this.writeLog();
    saveCheckpoint(this.ckptDir, this.model, {
      tokenizer: tokenizerName, optimizer: true, state: { ...this.state }, ...(this.hf ? { hf: this.hf } : {}),
      training: { kind: this.config.kind, run_id: this.runId, step: this.state.step, loss: this.config.loss, seed: this.config.seed, ...extra },
    });
  }

  /** Whether to stop now (stopAfterSteps, the signal); data-parallel ranks decide together. */
  async stopRequested(): Promise<boolean> {
    const here = (this.options.stopAfterSteps !== undefined && this.state.step >= this.options.stopAfterSteps) || Boolean(this.options.signal?.aborted);
    if (!this.dp) return here;
    return (await this.dp.c.allReduce(Float64Array.of(here ? 1 : 0)))[0]! > 0;
  }

  /** Concatenates evals/epoch-*.{tokens,questions}.arrow into tokens.arrow and questions.arrow. */
  mergeRecords(): string[] {
    const made: string[] = [];
    if (!this.root) return made;
    for (const kind of ["tokens", "questions"] as const) {
      const files = readdirSync(this.evalDir)
        .map((f) => /^epoch-(\d+)\.(tokens|questions)\.arrow$/.exec(f))
        .filter((m): m is RegExpExecArray => m !== null && m[2] === kind)
        .sort((a, b) => Number(a[1]) - Number(b[1]))
        .map((m) => join(this.evalDir, m[0]));
      if (files.length === 0) continue;
      let table = readArrowStream(files[0]!);
      for (const f of files.slice(1)) table = table.concat(readArrowStream(f));
      writeArrowStream(join(this.out, `${kind}.arrow`), table);
      made.push(`${kind}.arrow`);
    }
    return made;
  }
}

/** The questions a checkpoint is evaluated on: Brown letter questions, or a world's scored items per scoring. */
type QuestionSet =
  | { kind: "brown"; questions: EncodedQuestion[] }
  | { kind: "world"; run: WorldRun; chat: boolean }
  | { kind: "items"; items: ScoredItem[][]; split: string };

interface CheckpointEval {
  metrics: Record<string, number>;
  /** Brown questions' evaluation (null otherwise) */
  questions: QuestionEval | null;
  /** world: the headline scoring's mean −ll(gold) and option entropy (the SFT validation row) */
  worldValidation: { nll: number; entropy: number } | null;
}

/** Evaluation of the current model written to evals/epoch-<e>.*.arrow; returns its metrics. */
function evaluateCheckpoint(
  run: Run, ev: EvalConfig, epoch: number, tokens: { stream: TokenStream; split: string } | null, qs: QuestionSet, label: string,
): CheckpointEval {
  const metrics: Record<string, number> = {};
  let qe: QuestionEval | null = null;
  let worldValidation: CheckpointEval["worldValidation"] = null;
  if (!run.root) return { metrics, questions: qe, worldValidation };
  const transform = { temperature: ev.temperature, softcap: ev.softcap };
  if (tokens && ev.maxTokens > 0) {
    const t = evaluateTokens(run.model, tokens.stream, { splitName: tokens.split, maxTokens: ev.maxTokens, batchSize: ev.batchSize, epoch, ...transform });
    writeTokens(join(run.evalDir, `epoch-${epoch}.tokens.arrow`), run.runId, [t.records]);
    Object.assign(metrics, { token_nll: t.nll, token_accuracy: t.accuracy, token_entropy: t.entropy, tokens_evaluated: t.count });
  }
  if (qs.kind === "world" && qs.run.questions.length > 0) {
    const w = evaluateWorldQuestions(run.model, qs.run.items(qs.chat), { epoch, padId: run.padId, ...transform });
    writeQuestions(join(run.evalDir, `epoch-${epoch}.questions.arrow`), run.runId, w.rows);
    Object.assign(metrics, w.metrics);
    worldValidation = w.validation;
    if (w.skipped > 0) run.progress.message(`${label}: ${w.skipped} questions are longer than the context (${run.model.config.context}) and were not evaluated`);
  }
  if (qs.kind === "items" && qs.items.some((l) => l.length > 0)) {
    const w = evaluateItems(run.model, qs.items, { epoch, split: qs.split, padId: run.padId, ...transform });
    writeQuestions(join(run.evalDir, `epoch-${epoch}.questions.arrow`), run.runId, w.rows);
    Object.assign(metrics, w.metrics);
    if (w.skipped > 0) run.progress.message(`${label}: ${w.skipped} questions are longer than the context (${run.model.config.context}) and were not evaluated`);
  }
  if (qs.kind === "brown" && qs.questions.length > 0) {
    const questions = qs.questions;
    const q = evaluateQuestions(run.model, questions, { split: ev.split, epoch, batchSize: ev.batchSize, align: ev.promptAlign, padId: run.padId, ...transform });
    qe = q;
    writeQuestions(join(run.evalDir, `epoch-${epoch}.questions.arrow`), run.runId, q.rows);
    metrics.question_accuracy = q.accuracy;
    metrics.question_nll = q.nll;
    metrics.question_entropy = q.entropy;
    metrics.questions_skipped = q.skipped.length;
    for (const task of new Set(q.rows.map((r) => r.task))) {
      const rows = q.rows.filter((r) => r.task === task);
      const correct = rows.filter((r) => {
        let best = 0;
        for (let j = 1; j < r.probs.length; j++) if (r.probs[j]! > r.probs[best]!) best = j;
        return best === r.gold;
      }).length;
      metrics[`accuracy_${task}`] = correct / rows.length;
    }
    if (q.skipped.length > 0) run.progress.message(`${label}: ${q.skipped.length} questions are longer than the context (${run.model.config.context}) and were not evaluated`);
  }
  const parts = Object.entries(metrics).filter(([k]) => k.startsWith("accuracy_") || k === "token_nll").map(([k, v]) => `${k} ${v.toFixed(4)}`);
  if (parts.length > 0) run.progress.message(`${label}: ${parts.join(", ")}`);
  return { metrics, questions: qe, worldValidation };
}

function evalQuestions(ev: EvalConfig, tok: Tokenizer, splitSeed: number, tasks: readonly string[]): EncodedQuestion[] {
  if (ev.maxQuestions === 0) return [];
  return tasks.flatMap((task) =>
    encodeQuestions(generateQuestions({ task: task as TaskName, split: ev.split, seed: ev.questionSeed, splitSeed, limit: ev.maxQuestions }), tok));
}

// ------------------------------------------------------------------------------------------

/** Sequences per micro-batch during the sequence-length warm-up: the same tokens per step. */
function warmBatch(config: PretrainConfig): number {
  return Math.max(1, Math.floor((config.batchSize * config.model.context) / config.contextWarmup!.length));
}

/**
 * The pretraining batch schedule: the g-th micro-batch of the run (phase by phase, epochs within
 * a phase). Sequence-length warm-up: the first `warm.steps` steps use windows of `warm.length`
 * tokens and proportionally more of them (the same tokens per step), then full windows. Brown's
 * epochs all have the same batches; a knowledge world's epochs (rendered anew) differ slightly.
 * Checks up front that a full-length batch fits the training split.
 */
function pretrainBatches(config: PretrainConfig, src: Pick<PretrainSource, "train" | "trainLength">): (g: number) => { batch: Batch; epoch: number; index: number } {
  const T = config.model.context;
  const warm = config.contextWarmup;
  const phases = [
    ...(warm && warm.steps > 0 ? [{ steps: warm.steps, t: warm.length, b: warmBatch(config) }] : []),
    { steps: Infinity, t: T, b: config.batchSize },
  ];
  const cache = new Map<string, LmEpoch>();
  const epochOf = (phase: number, e: number): LmEpoch => {
    const key = `${phase}:${e}`;
    let ep = cache.get(key);
    if (!ep) {
      cache.clear();
      const ph = phases[phase]!;
      ep = lmBatches(src.train(e), { contextLength: ph.t, batchSize: ph.b, seed: config.seed, epoch: e, dropLast: true });
      cache.set(key, ep);
    }
    return ep;
  };
  const counts = new Map<string, number>();
  const batchesIn = (phase: number, e: number): number => {
    const key = `${phase}:${e}`;
    let n = counts.get(key);
    if (n === undefined) {
      const ph = phases[phase]!;
      n = Math.floor(lmWindowCount(src.trainLength(e), ph.t) / ph.b);
      if (n < 1) throw new RangeError(`batchSize ${ph.b} × context ${ph.t} is larger than the training split`);
      counts.set(key, n);
    }
    return n;
  };
  batchesIn(phases.length - 1, 0);
  return (g) => {
    let phase = 0, start = 0;
    while (g >= start + phases[phase]!.steps * config.gradAccum) {
      start += phases[phase]!.steps * config.gradAccum;
      phase++;
    }
    let i = g - start, e = 0;
    while (i >= batchesIn(phase, e)) i -= batchesIn(phase, e++);
    const b = epochOf(phase, e).batch(i);
    return { batch: { inputs: b.inputs, targets: b.targets, b: b.rows, t: phases[phase]!.t }, epoch: e, index: i };
  };
}

/** What pretraining reads: Brown's splits, or a knowledge world's streams (one per epoch). */
interface PretrainSource {
  tok: TextTokenizer;
  /** the training stream of epoch e */
  train(e: number): TokenStream;
  /** its tokens (from the cache header when possible) */
  trainLength(e: number): number;
  validation: TokenStream;
  /** the stream and split name of tokens.arrow */
  evalTokens: { stream: TokenStream; split: string };
  questions(): QuestionSet;
  /** recorded in the checkpoint's training info */
  checkpointInfo: Record<string, unknown>;
}

function brownSource(config: PretrainConfig, progress: boolean): PretrainSource {
  const tok = tokenizer(config.tokenizer as TokenizerName);
  const data = prepareSplits({ tokenizer: tok, splitSeed: config.splitSeed, progress });
  return {
    tok, train: () => data.splits.train, trainLength: () => data.splits.train.tokens.length, validation: data.splits.validation,
    evalTokens: { stream: data.splits[config.eval.split], split: config.eval.split },
    questions: () => ({ kind: "brown", questions: evalQuestions(config.eval, tok, config.splitSeed, config.eval.tasks) }),
    checkpointInfo: {},
  };
}

function worldSource(config: PretrainConfig, progress: boolean): PretrainSource {
  const wr = openWorldRun(config.world!, config.tokenizer, config.eval);
  const o = { world: wr.world, tokenizer: wr.tokenizer, progress };
  const validation = worldStream({ ...o, stream: "validation" });
  let current: { e: number; stream: TokenStream } | null = null;
  return {
    tok: wr.tokenizer,
    train(e: number) {
      if (current?.e !== e) current = { e, stream: worldStream({ ...o, stream: e }) };
      return current.stream;
    },
    trainLength: (e: number) => (current?.e === e ? current.stream.tokens.length : worldStreamLength({ ...o, stream: e })),
    validation, evalTokens: { stream: validation, split: "validation" },
    questions: () => ({ kind: "world", run: wr, chat: false }),
    checkpointInfo: wr.checkpointInfo(),
  };
}

async function pretrain(config: PretrainConfig, options: TrainOptions): Promise<TrainResult> {
  const progress = options.progress ?? true;
  const src = config.world ? worldSource(config, progress) : brownSource(config, progress);
  const tok = src.tok;
  const model = GptModel.create({ ...config.model, vocab: tok.vocabSize }, {
    maxBatch: Math.max(config.batchSize, config.eval.batchSize), device: config.device, threads: config.threads, ...engineOptions(config),
  });
  if (config.contextWarmup && config.contextWarmup.length > config.model.context) {
    throw new RangeError(`contextWarmup.length ${config.contextWarmup.length} exceeds the context ${config.model.context}`);
  }
  try {
    const run = new Run(config, model, options, config.steps, `pretrain ${tok.name}`);
    run.padId = tok.padId;
    if (!run.resume()) model.init(config.seed);
    const microBatch = pretrainBatches(config, src);
    const trainTokens = src.trainLength(0);
    run.writeRun("running", {});
    let last = { loss: NaN, norm: NaN, lr: NaN };
    let validation = NaN;
    while (run.state.step < config.steps && !(await run.stopRequested())) {
      const micro: Batch[] = [];
      for (let a = 0; a < config.gradAccum; a++) {
        const m = microBatch(run.state.microBatches);
        micro.push(m.batch);
        run.state.microBatches += 1;
        run.state.epoch = m.epoch;
        run.state.batchInEpoch = m.index + 1;
      }
      const step = run.state.step + 1;
      const isLast = step === config.steps;
      const epochFrac = () => run.state.tokens / trainTokens;
      last = await run.step(micro, 0, step % config.logEvery === 0 || isLast, epochFrac);
      if (run.root && ((config.evalEvery > 0 && step % config.evalEvery === 0) || isLast)) {
        const v = validationLoss(model, src.validation, config.evalWindows, config.eval.batchSize);
        validation = v.nll;
        run.row({ split: "validation", step, epoch: epochFrac(), loss: v.nll, lr: last.lr, grad_norm: NaN, entropy: v.entropy });
        run.progress.message(`step ${step}: validation loss ${v.nll.toFixed(4)} (entropy ${v.entropy.toFixed(4)})`);
      }
      if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0 && !isLast) await run.checkpoint(tok.name, { tokenizer: tok.name, ...src.checkpointInfo });
      run.progress.update(step, stepStatus(last.loss, run.state.tokens / Math.max(1e-9, run.elapsed())));
      await new Promise((r) => setImmediate(r));
    }
    await run.checkpoint(tok.name, { tokenizer: tok.name, ...src.checkpointInfo });
    const completed = run.state.step >= config.steps;
    let metrics: Record<string, number> = { steps: run.state.step, train_loss: last.loss, validation_loss: validation, seconds: run.elapsed() };
    if (completed) Object.assign(metrics, evaluateCheckpoint(run, config.eval, 0, src.evalTokens, src.questions(), "pretrained model").metrics);
    const artifacts = completed ? run.mergeRecords() : [];
    run.progress.done(completed ? "done" : "stopped");
    run.writeRun(completed ? "succeeded" : "cancelled", metrics);
    metrics = Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
    return {
      runId: run.runId, outDir: run.out, checkpoint: run.ckptDir, kind: "pretrain", steps: run.state.step, totalSteps: config.steps, completed,
      metrics, artifacts: ["train_log.arrow", ...artifacts, "checkpoint"], log: run.log,
    };
  } finally {
    model.free();
  }
}

// ------------------------------------------------------------------------------------------

/** What SFT reads: Brown's questions (answer letter supervised), or a world's conversations (assistant-only). */
interface SftSource {
  tok: TextTokenizer;
  label: string;
  /** training examples (before skipping the ones longer than the context) */
  count: number;
  epochOf(e: number): SftEpoch;
  evalTokens: { stream: TokenStream; split: string } | null;
  /** the questions of the evaluation after SFT epoch e (0: the pretrained model) */
  questions(e: number): QuestionSet;
  /** the validation row of train_log after an epoch's evaluation */
  validationRow(ev: CheckpointEval, model: GptModel): { nll: number; entropy: number } | null;
  checkpointInfo: Record<string, unknown>;
  /** the model to create, and what fills it at the start of a fresh run */
  model: ModelConfig;
  initialize(model: GptModel): void;
  info: ModelInfo;
  /** Llama-family models: the origin their checkpoints keep, the loss and evaluation soft-caps */
  hf?: SaveOptions["hf"];
  softcap?: { loss: number | null; eval: number | null };
}

/** What every source of a GPT checkpoint shares: the model, its weights, its description. */
function gptInit(init: LoadedCheckpoint): Pick<SftSource, "model" | "initialize" | "info"> {
  return {
    model: init.config.model, initialize: (m) => loadIntoModel(m, init),
    info: { family: "gpt2", params: countParams(init.config.model), source: init.dir },
  };
}

function checkVocab(tok: TextTokenizer, init: LoadedCheckpoint, dir: string): void {
  if (tok.vocabSize !== init.config.model.vocab) {
    throw new CheckpointError(`checkpoint ${dir}: vocab ${init.config.model.vocab} does not match tokenizer ${tok.name} (${tok.vocabSize})`);
  }
}

function brownSftSource(config: SftConfig, init: LoadedCheckpoint, tokName: string, progress: boolean): SftSource {
  const tok = tokenizer(tokName as TokenizerName);
  checkVocab(tok, init, init.dir);
  const context = init.config.model.context;
  const train = config.tasks.flatMap((task) =>
    encodeQuestions(generateQuestions({ task: task as TaskName, split: "train", seed: config.questionSeed, splitSeed: config.splitSeed, limit: config.maxExamples || undefined }), tok));
  const evalQs = evalQuestions(config.eval, tok, config.splitSeed, config.eval.tasks);
  const data = config.eval.maxTokens > 0 ? prepareSplits({ tokenizer: tok, splitSeed: config.splitSeed, progress }) : null;
  const sftTasks = new Set<string>(config.tasks);
  return {
    tok, label: `sft ${config.tasks.join("+")}`, count: train.length,
    epochOf: (e: number) =>
      sftBatches(train, { contextLength: context, batchSize: config.batchSize, padId: tok.padId, mode: "pad", align: config.eval.promptAlign, seed: config.seed, epoch: e }),
    evalTokens: data ? { stream: data.splits[config.eval.split], split: config.eval.split } : null,
    questions: () => ({ kind: "brown", questions: evalQs }),
    // full-vocabulary NLL of the gold answer letter on the SFT tasks' questions
    validationRow({ questions: qe }) {
      const own = (qe?.rows ?? []).map((r, i) => ({ r, h: qe!.entropies[i]! })).filter(({ r }) => sftTasks.has(r.task));
      if (own.length === 0) return null;
      return { nll: own.reduce((a, { r }) => a - Math.log(r.vocabProbs![r.gold]!), 0) / own.length, entropy: own.reduce((a, { h }) => a + h, 0) / own.length };
    },
    checkpointInfo: {},
    ...gptInit(init),
  };
}

function worldSftSource(config: SftConfig, init: LoadedCheckpoint, tokName: string, progress: boolean): SftSource {
  const wr = openWorldRun(config.world!, tokName, config.eval, init, init.dir);
  const tok = wr.tokenizer;
  checkVocab(tok, init, init.dir);
  const convs = sftConversations(wr.world);
  const train = (config.maxExamples > 0 ? convs.slice(0, config.maxExamples) : convs).map((c) => encodeConversation(c.messages, wr.template, tok, c.id));
  const mode = config.world!.pack ? "pack" : "pad";
  const validation = config.eval.maxTokens > 0 ? worldStream({ world: wr.world, tokenizer: tok, stream: "validation", progress }) : null;
  return {
    tok, label: `sft world (${tok.name})`, count: train.length,
    epochOf: (e: number) => chatSftBatches(train, { contextLength: init.config.model.context, batchSize: config.batchSize, padId: tok.padId, mode, seed: config.seed, epoch: e }),
    evalTokens: validation ? { stream: validation, split: "validation" } : null,
    questions: (e: number) => ({ kind: "world", run: wr, chat: e > 0 }),
    validationRow: (ev) => ev.worldValidation,
    checkpointInfo: wr.checkpointInfo(),
    ...gptInit(init),
  };
}

/**
 * Chat SFT of a Llama-family model: a Hugging Face folder (init.hf) or a calib-llama/1 checkpoint,
 * on the conversations of data.jsonl rendered with the model's chat template; questions scored
 * with lm-eval's prompts before SFT and after every epoch; float32 on the CPU.
 */
function llamaSftSource(config: SftConfig, progress: boolean): SftSource {
  const data = config.data;
  const initPath = typeof config.init === "string" ? config.init : config.init.hf;
  if (typeof config.init === "string") {
    if (!isLlamaCheckpoint(readCheckpointConfig(config.init))) {
      if (data) throw new TypeError(`data: chat SFT from a JSONL file needs a Llama-family model (init.hf, or a calib-llama/1 checkpoint); ${config.init} is a GPT checkpoint`);
      throw new Error("unreachable: a GPT checkpoint without data takes the GPT path");
    }
    if (!data) throw new TypeError(`data is required to fine-tune the Llama-family checkpoint ${config.init}: {"jsonl": "conversations.jsonl"}`);
  }
  if (!data) throw new TypeError('data is required to fine-tune a Hugging Face model (init.hf): {"jsonl": "conversations.jsonl"}');
  if (config.device === "cuda" && config.precision === "float32") throw new TypeError('precision: the Llama family trains on CUDA in bfloat16 mixed precision (its float32 reference runs on the CPU); use "precision": "bfloat16" or "auto"');
  if (config.device === "cpu" && config.precision === "bfloat16") throw new TypeError('precision: bfloat16 mixed precision needs "device": "cuda" (the CPU trains in float32); use "precision": "float32" or "auto"');
  const source = openLlamaSource(initPath, typeof config.init === "object" && config.init.context !== undefined ? { context: config.init.context } : {});
  const tok = source.folder.tokenizer;
  const lossSoftcap = checkSoftcap(source, config.loss.softcap, "loss.softcap");
  const evalSoftcap = checkSoftcap(source, config.eval.softcap, "eval.softcap");
  const template = requireTemplate(source, "data (chat SFT)");
  const train = chatExamples(data.jsonl, template, tok, config.maxExamples);
  const validation = data.validation ? chatExamples(data.validation, template, tok) : null;
  const items: ScoredItem[][] = config.questions ? openQuestions(config.questions).items(llamaView(source, config.questions.chat)) : [];
  const asked = typeof config.init === "object" ? config.init.context : undefined;
  // packed rows fill the whole context: only one conversation per row may shrink it
  const longest = [...train, ...(validation ?? [])].reduce((a, e) => Math.max(a, e.inputs.length), longestItem(items));
  const modelConfig = data.pack ? source.config : fitContext(source, asked, longest);
  const context = modelConfig.context;
  return {
    tok, label: `sft ${basename(source.path)} (${source.info.family})`, count: train.length,
    epochOf: (e: number) => chatSftBatches(train, { contextLength: context, batchSize: config.batchSize, padId: tok.padId, mode: data.pack ? "pack" : "pad", seed: config.seed, epoch: e }),
    evalTokens: null,
    questions: () => ({ kind: "items", items, split: "test" }),
    validationRow: (_ev, model) => {
      if (!validation) return null;
      const v = conversationLoss(model, validation, { batchSize: config.eval.batchSize, padId: tok.padId, temperature: 1, softcap: source.finalSoftcap });
      return { nll: v.nll, entropy: v.entropy };
    },
    checkpointInfo: { template: template.name, data: data.jsonl },
    model: modelConfig,
    initialize: (m) => m.write("params", source.params(progress)),
    info: source.info,
    hf: source.hf,
    softcap: { loss: lossSoftcap, eval: evalSoftcap },
  };
}

/** The source of an SFT run: a GPT checkpoint (Brown questions or a knowledge world) or a Llama-family model (chat JSONL). */
function sftSource(config: SftConfig, progress: boolean): SftSource {
  if (typeof config.init === "object" || config.data !== undefined || isLlamaCheckpoint(readCheckpointConfig(config.init))) return llamaSftSource(config, progress);
  const init = loadCheckpoint(config.init);
  const tokName = init.config.tokenizer;
  if (!tokName) throw new CheckpointError(`checkpoint ${config.init}: config.json names no tokenizer, so questions cannot be encoded`);
  return config.world ? worldSftSource(config, init, tokName, progress) : brownSftSource(config, init, tokName, progress);
}

/** Where the next optimizer step's micro-batches lie after `done` micro-batches: an epoch, its first
 * batch and how many (at most gradAccum; a step never crosses the end of an epoch). */
function stepSpan(done: number, perEpoch: number, gradAccum: number): { epoch: number; first: number; count: number } {
  const first = done % perEpoch;
  return { epoch: Math.floor(done / perEpoch), first, count: Math.min(gradAccum, perEpoch - first) };
}

/** The micro-batches of one step, as the engine takes them (rows cut to the batch's longest example). */
function stepMicroBatches(ep: SftEpoch, span: { first: number; count: number }): Batch[] {
  const micro: Batch[] = [];
  for (let i = span.first; i < span.first + span.count; i++) micro.push(trimSftBatch(ep.batch(i)));
  return micro;
}

/**
 * The micro-batches of every optimizer step of an SFT run, in order, exactly as `train` feeds them
 * to the engine (same data, shuffles and trimming): for checking the trainer against another
 * implementation (scripts/gpu/hf-parity.ts replays them in PyTorch). Reads the data and the
 * tokenizer, not the weights.
 */
export function* sftStepBatches(input: TrainConfig | Record<string, unknown>): Generator<Batch[]> {
  const config = parseTrainConfig(input);
  if (config.kind !== "sft") throw new TypeError(`kind: sftStepBatches takes an sft config (got ${config.kind})`);
  const src = sftSource(config, false);
  let ep = src.epochOf(0);
  const perEpoch = ep.numBatches;
  if (perEpoch < 1) throw new RangeError(`no SFT example fits the context of ${src.model.context} tokens`);
  const totalSteps = config.epochs * Math.ceil(perEpoch / config.gradAccum);
  let epIndex = 0, done = 0;
  for (let step = 0; step < totalSteps; step++) {
    const span = stepSpan(done, perEpoch, config.gradAccum);
    if (span.epoch !== epIndex) {
      ep = src.epochOf(span.epoch);
      epIndex = span.epoch;
    }
    yield stepMicroBatches(ep, span);
    done += span.count;
  }
}

async function sft(config: SftConfig, options: TrainOptions): Promise<TrainResult> {
  const progress = options.progress ?? true;
  const src = sftSource(config, progress);
  const tok = src.tok;
  const context = src.model.context;
  const first = src.epochOf(0);
  if (first.numBatches < 1) throw new RangeError(`no SFT example fits the context of ${context} tokens`);
  const perEpoch = first.numBatches;
  const stepsPerEpoch = Math.ceil(perEpoch / config.gradAccum);
  const totalSteps = config.epochs * stepsPerEpoch;
  const model = GptModel.create(src.model, {
    maxBatch: Math.max(config.batchSize, config.eval.batchSize), device: config.device, threads: config.threads, ...engineOptions(config),
  });
  try {
    const run = new Run(config, model, options, totalSteps, src.label);
    run.padId = tok.padId;
    run.modelInfo = src.info;
    if (src.hf) run.hf = src.hf;
    if (src.softcap) run.softcap = src.softcap.loss;
    const evalConfig: EvalConfig = src.softcap ? { ...config.eval, softcap: src.softcap.eval } : config.eval;
    if (!run.resume()) src.initialize(model);
    if (first.skipped.length > 0) run.progress.message(`sft: ${first.skipped.length} of ${src.count} training examples are longer than the context (${context}) and are left out`);
    run.writeRun("running", {});
    let metrics: Record<string, number> = {};
    if (!existsSync(join(run.evalDir, "epoch-0.questions.arrow")) && !existsSync(join(run.evalDir, "epoch-0.tokens.arrow"))) {
      metrics = evaluateCheckpoint(run, evalConfig, 0, src.evalTokens, src.questions(0), "epoch 0 (pretrained)").metrics;
    }
    const info = { tokenizer: tok.name, init: config.init, ...src.checkpointInfo };
    let ep: SftEpoch = first;
    let epIndex = 0;
    let last = { loss: NaN, norm: NaN, lr: NaN };
    while (run.state.step < totalSteps && !(await run.stopRequested())) {
      const span = stepSpan(run.state.microBatches, perEpoch, config.gradAccum);
      if (span.epoch !== epIndex) {
        ep = src.epochOf(span.epoch);
        epIndex = span.epoch;
      }
      const micro = stepMicroBatches(ep, span);
      run.state.microBatches += span.count;
      run.state.epoch = Math.floor(run.state.microBatches / perEpoch);
      run.state.batchInEpoch = run.state.microBatches % perEpoch;
      const step = run.state.step + 1;
      const epochEnd = run.state.batchInEpoch === 0;
      last = await run.step(micro, run.state.microBatches / perEpoch, step % config.logEvery === 0 || epochEnd);
      if (epochEnd) {
        const ce = evaluateCheckpoint(run, evalConfig, run.state.epoch, src.evalTokens, src.questions(run.state.epoch), `epoch ${run.state.epoch}`);
        metrics = { ...metrics, ...ce.metrics };
        const v = run.root ? src.validationRow(ce, model) : null;
        if (v) run.row({ split: "validation", step, epoch: run.state.epoch, loss: v.nll, lr: last.lr, grad_norm: NaN, entropy: v.entropy });
        if (config.checkpointEvery === 0 || step === totalSteps) await run.checkpoint(tok.name, { ...info, sft_epoch: run.state.epoch });
      }
      if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) await run.checkpoint(tok.name, { ...info, sft_epoch: run.state.epoch });
      run.progress.update(step, stepStatus(last.loss, run.state.tokens / Math.max(1e-9, run.elapsed()), `epoch ${run.state.epoch}/${config.epochs}`));
      await new Promise((r) => setImmediate(r));
    }
    await run.checkpoint(tok.name, { ...info, sft_epoch: run.state.epoch });
    const completed = run.state.step >= totalSteps;
    const artifacts = completed ? run.mergeRecords() : [];
    metrics = { ...metrics, steps: run.state.step, train_loss: last.loss, seconds: run.elapsed() };
    run.progress.done(completed ? "done" : "stopped");
    run.writeRun(completed ? "succeeded" : "cancelled", metrics);
    metrics = Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
    return {
      runId: run.runId, outDir: run.out, checkpoint: run.ckptDir, kind: "sft", steps: run.state.step, totalSteps, completed,
      metrics, artifacts: ["train_log.arrow", ...artifacts, "checkpoint"], log: run.log,
    };
  } finally {
    model.free();
  }
}

/** Trains per the config (validated here) into options.outDir. */
export async function train(input: TrainConfig | Record<string, unknown>, options: TrainOptions): Promise<TrainResult> {
  const config = parseTrainConfig(input);
  if (!options || typeof options.outDir !== "string" || options.outDir === "") throw new TypeError("outDir is required");
  if (options.stopAfterSteps !== undefined && (!Number.isInteger(options.stopAfterSteps) || options.stopAfterSteps < 1)) {
    throw new RangeError(`stopAfterSteps must be a positive integer (got ${String(options.stopAfterSteps)})`);
  }
  mkdirSync(options.outDir, { recursive: true });
  if (config.gpus > 1 && !options.rank) return launchRanks(config, options);
  try {
    return config.kind === "pretrain" ? await pretrain(config, options) : await sft(config, options);
  } catch (err) {
    // a rank's failure is recorded by the launcher, naming the rank
    if (!options.rank) markRunFailed(join(options.outDir, "run.json"), (err as Error).message ?? String(err));
    throw err;
  }
}
