// Binning of confidences: the one place that decides which bin an example falls in.
//
// Equal-width (M bins): bin(c) = min(M − 1, floor(c · M)) computed in float64. So bin b is
//   [b/M, (b+1)/M) with the last bin closed: c = 0 → bin 0, c = 1 → bin M − 1.
// Equal-mass (M bins), by rank with ties kept together: let r(c) = #{j : c_j < c} (the 0-based
//   rank of the first example with that confidence, i.e. SQL `rank() OVER (ORDER BY c) − 1`). Then
//   bin(c) = floor((M · (r + 1) − 1) / n), which puts rank r in the bin b with
//   floor(b·n/M) ≤ r < floor((b+1)·n/M). Without ties, bin b holds exactly the ranks
//   [floor(b·n/M), floor((b+1)·n/M)). A group of tied confidences goes whole into the bin of its
//   first rank, so bins can be larger than n/M and some can be empty. The result depends only on
//   the multiset of (confidence, correct) pairs, never on example order.
// Reported intervals: equal-width bins report [b/M, (b+1)/M). Equal-mass bins report the data
//   partition they induce: lo = the smallest confidence in the bin (0 for the first non-empty
//   bin), hi = lo of the next non-empty bin (1 for the last). Every confidence in the bin lies in
//   [lo, hi) (the last one in [lo, 1]).
// Empty bins are kept in BinStats (count 0) and skipped by every metric and by the reliability data.

import {
  checkBins, checkScheme, correctArray, probabilityArray,
  type CorrectInput, type FloatArray, type FloatInput, type Scheme,
} from "./validate.js";

export interface BinOptions {
  /** Number of bins M (default 15). */
  bins?: number;
  /** `equal-width` (default) or `equal-mass`. */
  scheme?: Scheme;
}

/** Per-bin sums over the examples (bins in order; empty bins have count 0 and NaN edges). */
export interface BinStats {
  scheme: Scheme;
  bins: number;
  /** Number of examples (sum of counts). */
  n: number;
  count: Float64Array;
  sumConfidence: Float64Array;
  sumCorrect: Float64Array;
  /** Σ (c − a)² per bin (the top-label Brier numerator). */
  sumSquaredError: Float64Array;
  lo: Float64Array;
  hi: Float64Array;
}

export const DEFAULT_BINS = 15;
export const DEFAULT_SCHEME: Scheme = "equal-width";

export function resolveBinOptions(opts: BinOptions = {}): { bins: number; scheme: Scheme } {
  return {
    bins: checkBins(opts.bins ?? DEFAULT_BINS, "bins"),
    scheme: checkScheme(opts.scheme ?? DEFAULT_SCHEME, "scheme"),
  };
}

/** Validates confidence/correct once: shared by every top-label metric. */
export function topLabelInput(confidence: FloatInput, correct: CorrectInput): { confidence: FloatArray; correct: Uint8Array; n: number } {
  const c = probabilityArray(confidence, "confidence");
  const a = correctArray(correct, "correct", c.length, "confidence");
  return { confidence: c, correct: a, n: c.length };
}

function emptyStats(scheme: Scheme, bins: number, n: number): BinStats {
  return {
    scheme, bins, n,
    count: new Float64Array(bins), sumConfidence: new Float64Array(bins), sumCorrect: new Float64Array(bins),
    sumSquaredError: new Float64Array(bins), lo: new Float64Array(bins).fill(NaN), hi: new Float64Array(bins).fill(NaN),
  };
}

/** The equal-width bin of one confidence (exported for tests and for the SQL documentation). */
export function equalWidthBin(c: number, bins: number): number {
  const b = Math.floor(c * bins);
  return b >= bins ? bins - 1 : b;
}

/** The equal-mass bin of the rank r = #{j : c_j < c} among n examples. */
export function equalMassBin(rank: number, n: number, bins: number): number {
  return Math.floor((bins * (rank + 1) - 1) / n);
}

/** Per-bin sums over validated arrays (no validation here: see binStats). */
export function binStatsUnchecked(confidence: FloatArray, correct: Uint8Array, bins: number, scheme: Scheme): BinStats {
  return scheme === "equal-width"
    ? equalWidthStats(confidence, correct, bins)
    : equalMassStats(confidence, correct, bins);
}

/** Bins the examples and returns the per-bin sums every binned metric is computed from. */
export function binStats(confidence: FloatInput, correct: CorrectInput, opts: BinOptions = {}): BinStats {
  const { bins, scheme } = resolveBinOptions(opts);
  const x = topLabelInput(confidence, correct);
  return binStatsUnchecked(x.confidence, x.correct, bins, scheme);
}

function equalWidthStats(conf: FloatArray, correct: Uint8Array, M: number): BinStats {
  const n = conf.length;
  const s = emptyStats("equal-width", M, n);
  // Accumulate per slot 2·bin + correct: three read-modify-writes per example and no multiply by
  // the correctness, which keeps the loop short (the bench runs 10M examples). floor(c·M) = M
  // (c = 1) gets its own slots, folded into the last bin afterwards, so the loop has no branch.
  const cnt = new Float64Array(2 * M + 2);
  const sc = new Float64Array(2 * M + 2);
  const ss = new Float64Array(2 * M + 2);
  for (let i = 0; i < n; i++) {
    const c = conf[i]!;
    const a = correct[i]!;
    // c·M ≤ M ≤ 1e6 < 2^31, so |0 is floor for c ≥ 0; only c = 1 reaches slot 2M or 2M + 1.
    const slot = 2 * ((c * M) | 0) + a;
    cnt[slot]++;
    sc[slot] += c;
    const d = c - a;
    ss[slot] += d * d;
  }
  for (let j = 2 * M; j < 2 * M + 2; j++) {
    cnt[j - 2] += cnt[j]!;
    sc[j - 2] += sc[j]!;
    ss[j - 2] += ss[j]!;
  }
  foldSlots(s, cnt, sc, ss);
  for (let b = 0; b < M; b++) {
    if (s.count[b]! > 0) {
      s.lo[b] = b / M;
      s.hi[b] = (b + 1) / M;
    }
  }
  return s;
}

/** Slot 2b holds the wrong examples of bin b, slot 2b + 1 the correct ones. */
export function foldSlots(s: BinStats, cnt: Float64Array, sc: Float64Array, ss: Float64Array): void {
  for (let b = 0; b < s.bins; b++) {
    s.count[b] = cnt[2 * b]! + cnt[2 * b + 1]!;
    s.sumCorrect[b] = cnt[2 * b + 1]!;
    s.sumConfidence[b] = sc[2 * b]! + sc[2 * b + 1]!;
    s.sumSquaredError[b] = ss[2 * b]! + ss[2 * b + 1]!;
  }
}

/** Sorted copy of the confidences and of the confidences of the correct examples. */
function sortedSplit(conf: FloatArray, correct: Uint8Array): { all: FloatArray; right: FloatArray } {
  const n = conf.length;
  let nc = 0;
  for (let i = 0; i < n; i++) nc += correct[i]!;
  const all = conf.slice();
  const right = conf instanceof Float32Array ? new Float32Array(nc) : new Float64Array(nc);
  for (let i = 0, j = 0; i < n; i++) if (correct[i]) right[j++] = conf[i]!;
  all.sort();
  right.sort();
  return { all, right };
}

function equalMassStats(conf: FloatArray, correct: Uint8Array, M: number): BinStats {
  return conf instanceof Float32Array ? equalMassStatsF32(conf, correct, M) : equalMassStatsSorted(conf, correct, M);
}

/** Adds one group of g tied confidences v (gc of them correct) whose first rank is r. */
function addGroup(s: BinStats, M: number, r: number, v: number, g: number, gc: number): void {
  const b = equalMassBin(r, s.n, M);
  if (s.count[b] === 0) s.lo[b] = v;
  s.count[b] += g;
  s.sumConfidence[b] += g * v;
  s.sumCorrect[b] += gc;
  s.sumSquaredError[b] += gc * (v - 1) * (v - 1) + (g - gc) * v * v;
}

/** Any float array: sort the confidences and, separately, those of the correct examples. */
function equalMassStatsSorted(conf: FloatArray, correct: Uint8Array, M: number): BinStats {
  const n = conf.length;
  const s = emptyStats("equal-mass", M, n);
  const { all, right } = sortedSplit(conf, correct);
  const nr = right.length;
  let i = 0;
  let j = 0;
  while (i < n) {
    // One group of tied confidences: sorted positions [i, k); j walks the correct ones.
    const v = all[i]!;
    let k = i + 1;
    while (k < n && all[k] === v) k++;
    let jj = j;
    while (jj < nr && right[jj] === v) jj++;
    addGroup(s, M, i, v, k - i, jj - j);
    i = k;
    j = jj;
  }
  finishEqualMassEdges(s);
  return s;
}

/**
 * Float32 confidences: one LSD radix sort of 31-bit keys (float bits << 1 | correct). The bits of
 * a non-negative float32 order like its value (−0 is mapped to +0), so sorted keys give the
 * confidences in order with the correct examples after the wrong ones inside each tie.
 */
function equalMassStatsF32(conf: Float32Array, correct: Uint8Array, M: number): BinStats {
  const n = conf.length;
  const s = emptyStats("equal-mass", M, n);
  const bits = new Uint32Array(conf.buffer, conf.byteOffset, n);
  const keys = new Uint32Array(n);
  for (let i = 0; i < n; i++) keys[i] = (((bits[i]! & 0x7fffffff) << 1) | correct[i]!) >>> 0;
  const sorted = radixSortU32(keys);
  const u32 = new Uint32Array(1);
  const f32 = new Float32Array(u32.buffer);
  let i = 0;
  while (i < n) {
    const key = sorted[i]! >>> 1;
    let k = i + 1;
    let gc = sorted[i]! & 1;
    while (k < n && sorted[k]! >>> 1 === key) {
      gc += sorted[k]! & 1;
      k++;
    }
    u32[0] = key;
    addGroup(s, M, i, f32[0]!, k - i, gc);
    i = k;
  }
  finishEqualMassEdges(s);
  return s;
}

/**
 * Ascending LSD radix sort of 32-bit keys (11-bit digits; passes with a single digit are skipped).
 * `keys` is used as scratch space: the result may be `keys` itself.
 */
export function radixSortU32(keys: Uint32Array): Uint32Array {
  const n = keys.length;
  const R = 2048;
  const hist = new Uint32Array(3 * R);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    hist[k & 2047]!++;
    hist[R + ((k >>> 11) & 2047)]!++;
    hist[2 * R + (k >>> 22)]!++;
  }
  let src: Uint32Array = keys;
  let dst: Uint32Array = new Uint32Array(n);
  for (let pass = 0; pass < 3; pass++) {
    const h = hist.subarray(pass * R, (pass + 1) * R);
    let single = false;
    for (let d = 0; d < R; d++) if (h[d] === n) single = true;
    if (single) continue;
    let sum = 0;
    for (let d = 0; d < R; d++) {
      const c = h[d]!;
      h[d] = sum;
      sum += c;
    }
    const shift = 11 * pass;
    for (let i = 0; i < n; i++) {
      const k = src[i]!;
      dst[h[(k >>> shift) & 2047]!++] = k;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

/** lo of the first non-empty bin → 0; hi = lo of the next non-empty bin, 1 for the last. */
export function finishEqualMassEdges(s: BinStats): void {
  let prev = -1;
  for (let b = 0; b < s.bins; b++) {
    if (s.count[b]! > 0) {
      if (prev < 0) s.lo[b] = 0;
      else s.hi[prev] = s.lo[b]!;
      prev = b;
    }
  }
  if (prev >= 0) s.hi[prev] = 1;
}

/**
 * The bin of every example, in input order (Int32Array). Useful to brush from a bin to its
 * examples, and used by the bootstrap.
 */
export function assignBins(confidence: FloatInput, opts: BinOptions = {}): Int32Array {
  const { bins, scheme } = resolveBinOptions(opts);
  const c = probabilityArray(confidence, "confidence");
  return assignBinsUnchecked(c, bins, scheme);
}

export function assignBinsUnchecked(c: FloatArray, M: number, scheme: Scheme): Int32Array {
  const n = c.length;
  const out = new Int32Array(n);
  if (scheme === "equal-width") {
    for (let i = 0; i < n; i++) {
      let b = (c[i]! * M) | 0;
      if (b >= M) b = M - 1;
      out[i] = b;
    }
    return out;
  }
  // r = #{j : c_j < c_i} by binary search in the sorted confidences (exactly the definition).
  let sorted: FloatArray;
  if (c instanceof Float32Array) {
    const bits = new Uint32Array(c.buffer, c.byteOffset, n);
    const keys = new Uint32Array(n);
    for (let i = 0; i < n; i++) keys[i] = bits[i]! & 0x7fffffff;
    const s = radixSortU32(keys);
    sorted = new Float32Array(s.buffer, s.byteOffset, n);
  } else sorted = c.slice().sort();
  for (let i = 0; i < n; i++) {
    const v = c[i]!;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    out[i] = equalMassBin(lo, n, M);
  }
  return out;
}

/** Indices that sort the confidences ascending (stable). */
export function sortOrder(c: FloatArray): Uint32Array {
  const n = c.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((x, y) => c[x]! - c[y]! || x - y);
  return order;
}
