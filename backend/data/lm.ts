// Language-model batches: non-overlapping windows of contextLength + 1 tokens over a split's
// stream. Window w starts at s = offset + w·T and gives inputs tokens[s … s+T-1] and targets
// tokens[s+1 … s+T], so every target position of the epoch is distinct: each token is a target
// at most once per epoch, and all but the < T tokens before `offset` and after the last window
// are used. With shuffle (the default, for training) the offset is drawn in [0, (N-1) mod T]
// and the window order is permuted, both from (seed, epoch); without it (evaluation) the offset
// is 0 and windows come in stream order. Windows may span document boundaries (the stream has
// no separator tokens; docs/positions say where each target comes from).
import { Rng } from "./rng.js";
import type { DocSpan, SplitTokens } from "./cache.js";

export interface LmBatchOptions {
  /** T: tokens per row */
  contextLength: number;
  /** B: rows per batch (the last batch may have fewer unless dropLast) */
  batchSize: number;
  seed?: number;
  /** epoch number: a new offset and order per epoch (default 0) */
  epoch?: number;
  /** random offset and window order (default true) */
  shuffle?: boolean;
  /** drop a last batch with fewer than batchSize rows (default false) */
  dropLast?: boolean;
}

export interface LmBatch {
  /** batch number within the epoch */
  index: number;
  /** rows in this batch (= batchSize except perhaps the last) */
  rows: number;
  contextLength: number;
  /** rows × T input ids, row-major */
  inputs: Int32Array;
  /** rows × T next-token targets */
  targets: Int32Array;
  /** stream position of each row's first input token */
  starts: Int32Array;
  /** rows × T: document index of each target token (Brown: corpus document 0 … 499) */
  docs: Int32Array;
  /** rows × T: position of each target token inside its document (0 = first token) */
  positions: Int32Array;
}

export interface LmEpoch {
  contextLength: number;
  batchSize: number;
  /** windows in this epoch */
  numWindows: number;
  numBatches: number;
  /** stream position of the first window */
  offset: number;
  /** target tokens per epoch = numWindows · T (before dropLast) */
  targetsPerEpoch: number;
  /** window order: the w-th row of the epoch is window order[w] */
  order: Int32Array;
  batch(i: number): LmBatch;
  [Symbol.iterator](): Iterator<LmBatch>;
}

/** What lmBatches reads: the tokens, the document of each token, and where each document
 * starts — as spans (`docs`, Brown) or as an array indexed by document (`docStarts`, worlds). */
export type TokenStream = Pick<SplitTokens, "tokens" | "tokenDoc"> & ({ docs: readonly Pick<DocSpan, "index" | "start">[] } | { docStarts: Int32Array });

function positiveInt(x: unknown, field: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 1) throw new TypeError(`${field} must be a positive integer (got ${String(x)})`);
  return x;
}

/** Number of windows of length T over a stream of n tokens starting at offset 0. */
export function lmWindowCount(n: number, contextLength: number): number {
  return n < 1 ? 0 : Math.floor((n - 1) / contextLength);
}

export function lmBatches(split: TokenStream, opts: LmBatchOptions): LmEpoch {
  if (!split || !(split.tokens instanceof Int32Array)) throw new TypeError("split must have an Int32Array `tokens` (from prepareSplits)");
  const T = positiveInt(opts.contextLength, "contextLength");
  const B = positiveInt(opts.batchSize, "batchSize");
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError(`seed must be a non-negative integer (got ${String(seed)})`);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new TypeError(`epoch must be a non-negative integer (got ${String(epoch)})`);
  const shuffle = opts.shuffle ?? true;
  const { tokens, tokenDoc } = split;
  const n = tokens.length;
  if (tokenDoc.length !== n) throw new TypeError(`split.tokenDoc has ${tokenDoc.length} entries for ${n} tokens`);
  const full = lmWindowCount(n, T);
  if (full < 1) throw new RangeError(`contextLength ${T} needs at least ${T + 1} tokens; the split has ${n}`);

  const slack = n - 1 - full * T; // 0 ≤ slack < T
  const offset = shuffle ? new Rng(`lm-offset:${seed}:${epoch}`).int(slack + 1) : 0;
  const numWindows = full;
  const order = new Int32Array(numWindows);
  for (let i = 0; i < numWindows; i++) order[i] = i;
  if (shuffle) {
    const rng = new Rng(`lm-order:${seed}:${epoch}`);
    for (let i = numWindows - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
  }
  const numBatches = opts.dropLast ? Math.floor(numWindows / B) : Math.ceil(numWindows / B);

  let docStart: Int32Array;
  if ("docStarts" in split) {
    docStart = split.docStarts;
  } else {
    let maxDoc = 0;
    for (const d of split.docs) maxDoc = Math.max(maxDoc, d.index);
    docStart = new Int32Array(maxDoc + 1).fill(-1);
    for (const d of split.docs) docStart[d.index] = d.start;
  }

  const batch = (i: number): LmBatch => {
    if (!Number.isInteger(i) || i < 0 || i >= numBatches) throw new RangeError(`batch index must be in [0, ${numBatches}) (got ${i})`);
    const rows = Math.min(B, numWindows - i * B);
    const inputs = new Int32Array(rows * T);
    const targets = new Int32Array(rows * T);
    const docs = new Int32Array(rows * T);
    const positions = new Int32Array(rows * T);
    const starts = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const s = offset + order[i * B + r]! * T;
      starts[r] = s;
      inputs.set(tokens.subarray(s, s + T), r * T);
      targets.set(tokens.subarray(s + 1, s + T + 1), r * T);
      for (let t = 0; t < T; t++) {
        const p = s + 1 + t;
        const d = tokenDoc[p]!;
        docs[r * T + t] = d;
        positions[r * T + t] = p - docStart[d]!;
      }
    }
    return { index: i, rows, contextLength: T, inputs, targets, starts, docs, positions };
  };

  return {
    contextLength: T,
    batchSize: B,
    numWindows,
    numBatches,
    offset,
    targetsPerEpoch: numWindows * T,
    order,
    batch,
    *[Symbol.iterator]() {
      for (let i = 0; i < numBatches; i++) yield batch(i);
    },
  };
}
