// ZeRO-1 shard arithmetic: which rank owns which part of the flat parameter buffer, how the
// buffer is cut into buckets for the gradient reduce-scatter and the parameter all-gather, and
// which rows of a micro-batch each rank computes. Pure functions (no engine, no I/O).
//
// Bucket layout: the flat buffer of `numel` values is cut into buckets of `bucketElems` values
// (rounded up to a multiple of worldSize·align, so a full bucket splits evenly); the last bucket
// holds the rest. A bucket of length L is reduce-scattered as a padded buffer of worldSize·slice
// values, slice = ⌈L / (worldSize·align)⌉·align (the padding is zeros and is never owned): rank r
// owns [offset + r·slice, offset + min((r+1)·slice, L)) of every bucket, which is empty for ranks
// past the end (worldSize > L). This is NCCL's ncclReduceScatter / ncclAllGather contract: every
// rank sends worldSize·slice values and receives slice (or the reverse).
//
// Rows: a micro-batch of `rows` sequences is split into worldSize contiguous, balanced slices
// (the first rows % worldSize ranks take one more), so the ranks together compute exactly the
// one-GPU batch, in its order.

export interface Range {
  begin: number;
  end: number;
}

export interface Bucket {
  /** first value of the flat buffer in this bucket */
  offset: number;
  /** values of the flat buffer in it */
  length: number;
  /** values per rank: the bucket travels as worldSize·slice values (zeros after length) */
  slice: number;
}

export interface ShardPlan {
  numel: number;
  worldSize: number;
  align: number;
  buckets: Bucket[];
}

export interface ShardOptions {
  /** values per bucket before rounding (default 2^24: 64 MiB of float32) */
  bucketElems?: number;
  /** every slice a multiple of this many values (default 1; a GPU path may ask 16 for 64-byte rows) */
  align?: number;
}

export const DEFAULT_BUCKET_ELEMS = 1 << 24;

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new TypeError(`${name} must be an integer (got ${String(v)})`);
  if (v < 1) throw new RangeError(`${name} must be ≥ 1 (got ${v})`);
  return v;
}

function checkRank(rank: number, worldSize: number): void {
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RangeError(`rank must be an integer in [0, ${worldSize - 1}] (got ${String(rank)})`);
}

/** The bucket layout of a flat buffer of numel values over worldSize ranks. */
export function planShards(numel: number, worldSize: number, options: ShardOptions = {}): ShardPlan {
  positiveInt(numel, "numel");
  positiveInt(worldSize, "worldSize");
  const align = positiveInt(options.align ?? 1, "align");
  const unit = worldSize * align;
  const full = Math.ceil(positiveInt(options.bucketElems ?? DEFAULT_BUCKET_ELEMS, "bucketElems") / unit) * unit;
  const buckets: Bucket[] = [];
  for (let offset = 0; offset < numel; offset += full) {
    const length = Math.min(full, numel - offset);
    buckets.push({ offset, length, slice: Math.ceil(length / unit) * align });
  }
  return { numel, worldSize, align, buckets };
}

/** Rank r's part of one bucket, in flat-buffer coordinates (begin = end when it owns none of it). */
export function ownedInBucket(bucket: Bucket, rank: number): Range {
  const begin = bucket.offset + Math.min(bucket.length, rank * bucket.slice);
  const end = bucket.offset + Math.min(bucket.length, (rank + 1) * bucket.slice);
  return { begin, end };
}

/** The non-empty ranges of the flat buffer rank r owns (updates and keeps AdamW state for), merged where adjacent. */
export function ownedRanges(plan: ShardPlan, rank: number): Range[] {
  checkRank(rank, plan.worldSize);
  const out: Range[] = [];
  for (const b of plan.buckets) {
    const r = ownedInBucket(b, rank);
    if (r.begin === r.end) continue;
    const last = out[out.length - 1];
    if (last && last.end === r.begin) last.end = r.end;
    else out.push(r);
  }
  return out;
}

/** Values rank r owns. */
export function ownedCount(plan: ShardPlan, rank: number): number {
  return ownedRanges(plan, rank).reduce((a, r) => a + r.end - r.begin, 0);
}

/** The rows [begin, end) of a micro-batch of `rows` sequences that rank r computes (may be empty). */
export function rowSlice(rows: number, worldSize: number, rank: number): Range {
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`rows must be an integer ≥ 0 (got ${String(rows)})`);
  positiveInt(worldSize, "worldSize");
  checkRank(rank, worldSize);
  const base = Math.floor(rows / worldSize), extra = rows % worldSize;
  const begin = rank * base + Math.min(rank, extra);
  return { begin, end: begin + base + (rank < extra ? 1 : 0) };
}

/** The pieces of [begin, end) that fall in the sorted, disjoint ranges, in order. */
export function intersect(begin: number, end: number, ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const b = Math.max(begin, r.begin), e = Math.min(end, r.end);
    if (b < e) out.push({ begin: b, end: e });
  }
  return out;
}
