// tokens.arrow: one row per evaluated token (docs/records.md). Chunks (one per evaluated
// checkpoint and split) are concatenated into one file.
import type { Table } from "apache-arrow";
import { bool, float32, int32, makeTable, utf8, writeArrowStream } from "./arrow.js";

export const TOP_K = 5;

/** Per-token evaluation of one checkpoint on one split; top ids / probs are n × 5, row-major. */
export interface TokenRecords {
  /** SFT epoch of the checkpoint (0 = the pretrained model) */
  epoch: number;
  split: string;
  doc: Int32Array;
  /** position of the token inside its window */
  position: Int32Array;
  target: Int32Array;
  argmax: Int32Array;
  pTarget: Float32Array;
  /** p(argmax) */
  confidence: Float32Array;
  entropy: Float32Array;
  lse: Float32Array;
  topIds: Int32Array;
  topP: Float32Array;
}

function check(c: TokenRecords): number {
  const n = c.target.length;
  for (const k of ["doc", "position", "argmax", "pTarget", "confidence", "entropy", "lse"] as const) {
    if (c[k].length !== n) throw new TypeError(`tokens: ${k} has ${c[k].length} entries, target has ${n}`);
  }
  if (c.topIds.length !== n * TOP_K || c.topP.length !== n * TOP_K) throw new TypeError(`tokens: topIds/topP must hold ${TOP_K} entries per token`);
  return n;
}

export function tokensTable(runId: string, chunks: readonly TokenRecords[]): Table {
  const n = chunks.reduce((a, c) => a + check(c), 0);
  const cat = <A extends Int32Array | Float32Array>(make: (n: number) => A, get: (c: TokenRecords) => A): A => {
    const out = make(chunks.reduce((a, c) => a + get(c).length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(get(c), o);
      o += get(c).length;
    }
    return out;
  };
  const i32 = (g: (c: TokenRecords) => Int32Array) => cat((k) => new Int32Array(k), g);
  const f32 = (g: (c: TokenRecords) => Float32Array) => cat((k) => new Float32Array(k), g);
  const strings = (g: (c: TokenRecords) => string | number) => chunks.flatMap((c) => new Array<string | number>(c.target.length).fill(g(c)));
  const target = i32((c) => c.target), argmax = i32((c) => c.argmax);
  const correct: boolean[] = new Array(n);
  for (let i = 0; i < n; i++) correct[i] = target[i] === argmax[i];
  const cols: Record<string, ReturnType<typeof int32>> = {
    run_id: utf8(new Array(n).fill(runId)),
    epoch: int32(Int32Array.from(strings((c) => c.epoch) as number[])),
    split: utf8(strings((c) => c.split) as string[]),
    doc: int32(i32((c) => c.doc)),
    position: int32(i32((c) => c.position)),
    target: int32(target),
    argmax: int32(argmax),
    correct: bool(correct),
    p_target: float32(f32((c) => c.pTarget)),
    confidence: float32(f32((c) => c.confidence)),
    entropy: float32(f32((c) => c.entropy)),
    lse: float32(f32((c) => c.lse)),
  };
  const ids = i32((c) => c.topIds), ps = f32((c) => c.topP);
  for (let k = 0; k < TOP_K; k++) {
    const id = new Int32Array(n), p = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      id[i] = ids[i * TOP_K + k]!;
      p[i] = ps[i * TOP_K + k]!;
    }
    cols[`top${k + 1}_id`] = int32(id);
    cols[`top${k + 1}_p`] = float32(p);
  }
  const order = ["run_id", "epoch", "split", "doc", "position", "target", "argmax", "correct", "p_target", "confidence", "entropy", "lse",
    ...Array.from({ length: TOP_K }, (_, k) => `top${k + 1}_id`), ...Array.from({ length: TOP_K }, (_, k) => `top${k + 1}_p`)];
  return makeTable(Object.fromEntries(order.map((k) => [k, cols[k]!])));
}

export function writeTokens(path: string, runId: string, chunks: readonly TokenRecords[]): void {
  writeArrowStream(path, tokensTable(runId, chunks));
}
