// Supervised fine-tuning batches. An example is a next-token sequence: `inputs` and `targets`
// of the same length, targets = ignoreIndex where nothing is supervised (sequenceBatches).
// Two producers: encoded questions (sftBatches) — the prompt tokens followed by the answer
// letter, which fill promptIds.length positions: inputs = promptIds, targets = ignoreIndex
// everywhere except the last position, whose target is the answer letter's token, so only the
// answer letter is supervised — and chat conversations with assistant-only targets (chat.ts).
//
//   mode 'pad'  (default) one example per row, right-padded to contextLength;
//   mode 'pack' examples placed one after another in a row while they fit, then padded.
// Padding inputs are the tokenizer's padId (<|endoftext|>, or byte 0 for the byte tokenizer)
// and padding targets are ignoreIndex. With causal attention and right padding the padding
// never influences a supervised position. In packed rows a later example can attend to the
// earlier ones unless the trainer masks by `segments` (which example each position belongs
// to) — and `positions` restart at 0 for each example, for per-example position ids.
// Examples longer than contextLength are left out and listed in `skipped` (never truncated:
// cutting a question would change what is asked).
//
// align 'right' (pad mode only) puts each example at the *end* of its row, after left padding,
// so that the answer is always predicted at the last position and the options always sit at
// nearly the same absolute positions. Models with learned absolute position embeddings bind an
// option letter to its text much more easily that way (docs/trainer.md, "SFT at tiny scale").
import { Rng } from "./rng.js";
import type { EncodedQuestion } from "./prompt.js";

export const IGNORE_INDEX = -100;

export interface SftOptions {
  contextLength: number;
  batchSize: number;
  /** input id for padding (use tokenizer.padId) */
  padId: number;
  mode?: "pad" | "pack";
  /** 'left' (default): examples start at column 0; 'right': examples end at the last column (pad mode) */
  align?: "left" | "right";
  seed?: number;
  epoch?: number;
  /** shuffle example order per (seed, epoch) (default true) */
  shuffle?: boolean;
  /** drop a last batch with fewer than batchSize rows (default false) */
  dropLast?: boolean;
  ignoreIndex?: number;
}

export interface SftBatch {
  index: number;
  rows: number;
  contextLength: number;
  /** rows × T input ids */
  inputs: Int32Array;
  /** rows × T targets: the examples' targets (questions: ignoreIndex except each answer token), ignoreIndex on padding */
  targets: Int32Array;
  /** rows × T: index (into the examples passed in) of the example at each position, −1 for padding */
  segments: Int32Array;
  /** rows × T: position inside its example (0 …), −1 for padding */
  positions: Int32Array;
  /** the examples in this batch, in row order */
  examples: Int32Array;
  /** supervised targets in this batch (questions: = examples.length) */
  supervised: number;
}

export interface SftEpoch {
  contextLength: number;
  batchSize: number;
  mode: "pad" | "pack";
  /** examples placed (all but the skipped) */
  numExamples: number;
  /** ids of the examples longer than contextLength (never truncated) */
  skipped: string[];
  numRows: number;
  numBatches: number;
  batch(i: number): SftBatch;
  [Symbol.iterator](): Iterator<SftBatch>;
}

function positiveInt(x: unknown, field: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 1) throw new TypeError(`${field} must be a positive integer (got ${String(x)})`);
  return x;
}

/** A next-token example: targets[t] is the target after inputs[0 … t] (ignoreIndex: unsupervised). */
export interface SequenceExample {
  id: string;
  inputs: Int32Array;
  targets: Int32Array;
}

/** Batches of questions: each example's only supervised target is its answer letter. */
export function sftBatches(examples: readonly EncodedQuestion[], opts: SftOptions): SftEpoch {
  if (!Array.isArray(examples)) throw new TypeError("examples must be an array of encoded questions (encodeQuestions)");
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  const seqs = examples.map((e, i): SequenceExample => {
    if (!(e.promptIds instanceof Int32Array) || e.promptIds.length === 0) throw new TypeError(`examples[${i}].promptIds must be a non-empty Int32Array`);
    const targets = new Int32Array(e.promptIds.length).fill(ignore);
    targets[targets.length - 1] = e.answerId;
    return { id: e.id, inputs: e.promptIds, targets };
  });
  return sequenceBatches(seqs, opts);
}

/** Batches of next-token examples, padded (one per row) or packed, in a seeded order per epoch. */
export function sequenceBatches(examples: readonly SequenceExample[], opts: SftOptions): SftEpoch {
  if (!Array.isArray(examples)) throw new TypeError("examples must be an array of {id, inputs, targets}");
  const T = positiveInt(opts.contextLength, "contextLength");
  const B = positiveInt(opts.batchSize, "batchSize");
  if (!Number.isInteger(opts.padId) || opts.padId < 0) throw new TypeError(`padId must be a token id (got ${String(opts.padId)})`);
  const mode = opts.mode ?? "pad";
  if (mode !== "pad" && mode !== "pack") throw new TypeError(`mode must be pad or pack (got '${String(mode)}')`);
  const align = opts.align ?? "left";
  if (align !== "left" && align !== "right") throw new TypeError(`align must be left or right (got '${String(align)}')`);
  if (align === "right" && mode !== "pad") throw new TypeError("align 'right' needs mode 'pad'");
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;

  const skipped: string[] = [];
  const kept: number[] = [];
  examples.forEach((e, i) => {
    if (!(e.inputs instanceof Int32Array) || e.inputs.length === 0) throw new TypeError(`examples[${i}].inputs must be a non-empty Int32Array`);
    if (!(e.targets instanceof Int32Array) || e.targets.length !== e.inputs.length) throw new TypeError(`examples[${i}].targets must be an Int32Array as long as its inputs`);
    if (e.inputs.length > T) skipped.push(e.id);
    else kept.push(i);
  });
  if (opts.shuffle ?? true) new Rng(`sft:${seed}:${epoch}`).shuffle(kept);

  // Rows: lists of example indices.
  const rowsPlan: number[][] = [];
  if (mode === "pad") {
    for (const i of kept) rowsPlan.push([i]);
  } else {
    let row: number[] = [];
    let used = 0;
    for (const i of kept) {
      const len = examples[i]!.inputs.length;
      if (used + len > T) {
        rowsPlan.push(row);
        row = [];
        used = 0;
      }
      row.push(i);
      used += len;
    }
    if (row.length > 0) rowsPlan.push(row);
  }
  const numRows = rowsPlan.length;
  const numBatches = opts.dropLast ? Math.floor(numRows / B) : Math.ceil(numRows / B);

  const batch = (bi: number): SftBatch => {
    if (!Number.isInteger(bi) || bi < 0 || bi >= numBatches) throw new RangeError(`batch index must be in [0, ${numBatches}) (got ${bi})`);
    const rows = Math.min(B, numRows - bi * B);
    const inputs = new Int32Array(rows * T).fill(opts.padId);
    const targets = new Int32Array(rows * T).fill(ignore);
    const segments = new Int32Array(rows * T).fill(-1);
    const positions = new Int32Array(rows * T).fill(-1);
    const members: number[] = [];
    let supervised = 0;
    for (let r = 0; r < rows; r++) {
      const plan = rowsPlan[bi * B + r]!;
      let col = r * T;
      if (align === "right") col += T - examples[plan[0]!]!.inputs.length;
      for (const ei of plan) {
        const e = examples[ei]!;
        const L = e.inputs.length;
        inputs.set(e.inputs, col);
        targets.set(e.targets, col);
        for (let k = 0; k < L; k++) {
          segments[col + k] = ei;
          positions[col + k] = k;
          if (e.targets[k] !== ignore) supervised++;
        }
        col += L;
        members.push(ei);
      }
    }
    return { index: bi, rows, contextLength: T, inputs, targets, segments, positions, examples: Int32Array.from(members), supervised };
  };

  return {
    contextLength: T,
    batchSize: B,
    mode,
    numExamples: kept.length,
    skipped,
    numRows,
    numBatches,
    batch,
    *[Symbol.iterator]() {
      for (let i = 0; i < numBatches; i++) yield batch(i);
    },
  };
}
