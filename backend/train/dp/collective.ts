// The collectives data parallelism needs, behind one interface that the trainer uses and that
// each transport implements:
//   solo      worldSize 1 (no communication; the sharded path on one rank)
//   memory    N ranks in one process (tests of the collectives and of the sharded optimizer)
//   socket    N processes over a localhost socket through the launcher (socket.ts; the CPU
//             transport of `calib train --gpus N --transport cpu-test`, used by the tests)
//   NCCL      one process per GPU (native/src/dist/nccl.cc, engine ncclStatus(): found and reported, not implemented yet)
// Reductions add the ranks' buffers in rank order (((b0 + b1) + b2) + …) in the buffer's own
// precision, so every transport here gives the same bits for the same inputs (NCCL's ring or tree
// order is its own: results agree within rounding, not bit for bit).
// Every rank calls the same collectives in the same order with buffers of the same length and
// type; a mismatch is an error naming both calls, never a silent hang.

export type Floats = Float32Array | Float64Array;
export type CollectiveOp = "allReduce" | "reduceScatter" | "allGather" | "barrier";

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  /** the elementwise sum over ranks (a new array; the input is unchanged) */
  allReduce<T extends Floats>(values: T): Promise<T>;
  /** values: worldSize·n entries; returns this rank's n entries (rank r: [r·n, (r+1)·n)) of the sum */
  reduceScatter<T extends Floats>(values: T): Promise<T>;
  /** values: n entries; returns worldSize·n, rank r's at [r·n, (r+1)·n) */
  allGather<T extends Floats>(values: T): Promise<T>;
  barrier(): Promise<void>;
  /** leaves the group after the last collective (a clean end, not a failure) */
  close(): Promise<void>;
}

/** A collective that cannot complete: a rank left, called another collective, or the group was closed. */
export class CollectiveError extends Error {
  override name = "CollectiveError";
}

/** One rank's call: the op and its buffer (null for barrier). */
export interface Contribution {
  op: CollectiveOp;
  values: Floats | null;
}

const kind = (v: Floats | null) => (v === null ? "none" : v instanceof Float64Array ? "float64" : "float32");

function describe(c: Contribution): string {
  return c.values === null ? c.op : `${c.op}(${c.values.length} ${kind(c.values)})`;
}

/**
 * The results of one collective given every rank's contribution (index = rank): sums in rank
 * order. Throws CollectiveError when the ranks disagree on the op, the type or the length.
 */
export function combine(calls: readonly Contribution[]): Array<Floats | null> {
  const n = calls.length;
  const first = calls[0]!;
  for (let r = 1; r < n; r++) {
    const c = calls[r]!;
    if (c.op !== first.op || kind(c.values) !== kind(first.values) || (c.values?.length ?? 0) !== (first.values?.length ?? 0)) {
      throw new CollectiveError(`collective mismatch: rank 0 called ${describe(first)}, rank ${r} called ${describe(c)}`);
    }
  }
  if (first.op === "barrier") return calls.map(() => null);
  const len = first.values!.length;
  if (first.op === "allGather") {
    const out = first.values instanceof Float64Array ? new Float64Array(n * len) : new Float32Array(n * len);
    calls.forEach((c, r) => out.set(c.values!, r * len));
    return calls.map(() => out.slice());
  }
  if (first.op === "reduceScatter" && len % n !== 0) {
    throw new CollectiveError(`reduceScatter needs a multiple of worldSize (${n}) values (got ${len})`);
  }
  const sum = first.values!.slice();
  for (let r = 1; r < n; r++) {
    const v = calls[r]!.values!;
    for (let i = 0; i < len; i++) sum[i]! += v[i]!;
  }
  if (first.op === "allReduce") return calls.map(() => sum.slice());
  const k = len / n;
  return calls.map((_, r) => sum.slice(r * k, (r + 1) * k));
}

/** The collective of a single rank: every op returns what the one rank holds. */
export function soloCollective(): Collective {
  const one = async <T extends Floats>(op: CollectiveOp, values: T) => combine([{ op, values }])[0] as T;
  return {
    rank: 0, worldSize: 1,
    allReduce: (v) => one("allReduce", v),
    reduceScatter: (v) => one("reduceScatter", v),
    allGather: (v) => one("allGather", v),
    barrier: async () => undefined,
    close: async () => undefined,
  };
}

/**
 * N ranks in one process: each returned collective is one rank's; an op completes when every
 * rank has called it. abort(reason) fails every pending and later call (a rank that failed).
 */
export function memoryGroup(worldSize: number): { ranks: Collective[]; abort(reason: string): void } {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`worldSize must be an integer ≥ 1 (got ${String(worldSize)})`);
  let pending: Array<{ call: Contribution; resolve(v: Floats | null): void; reject(e: Error): void } | undefined> = [];
  let failed: string | null = null;
  const call = (rank: number, c: Contribution) =>
    new Promise<Floats | null>((resolve, reject) => {
      if (failed !== null) return reject(new CollectiveError(failed));
      if (pending[rank]) return reject(new CollectiveError(`rank ${rank} called ${c.op} while its previous collective is pending`));
      pending[rank] = { call: c, resolve, reject };
      if (pending.filter(Boolean).length < worldSize) return;
      const waiting = pending as Array<NonNullable<(typeof pending)[number]>>;
      pending = [];
      try {
        const out = combine(waiting.map((w) => w.call));
        waiting.forEach((w, r) => w.resolve(out[r]!));
      } catch (err) {
        waiting.forEach((w) => w.reject(err as Error));
      }
    });
  const ranks = Array.from({ length: worldSize }, (_, rank): Collective => ({
    rank, worldSize,
    allReduce: async (v) => (await call(rank, { op: "allReduce", values: v })) as typeof v,
    reduceScatter: async (v) => (await call(rank, { op: "reduceScatter", values: v })) as typeof v,
    allGather: async (v) => (await call(rank, { op: "allGather", values: v })) as typeof v,
    barrier: async () => void (await call(rank, { op: "barrier", values: null })),
    close: async () => undefined,
  }));
  return {
    ranks,
    abort(reason: string) {
      failed = reason;
      const waiting = pending;
      pending = [];
      for (const w of waiting) w?.reject(new CollectiveError(reason));
    },
  };
}
