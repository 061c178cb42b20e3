// ZeRO stage 1 over a Collective: the gradients are reduce-scattered bucket by bucket, each rank
// updates the parameters it owns (shard.ts) with AdamW — fp32 master weights and moments of its
// shard only — and the updated parameters are all-gathered so every rank holds the whole model
// again for the next forward pass.
//
//   reduceGradients()  grads of this rank's rows → the sum over ranks of its shard (written into the
//                      engine's grads buffer there); the global L2 norm from per-tensor partial sums
//                      of squares (float64, all-reduced in rank order), for clipping and the log
//   update(o)          AdamW on the owned ranges (GptModel.adamwRange), then the all-gather
//   gatherState()      the whole AdamW moments on every rank (for the checkpoint rank 0 writes)
//
// The norm is summed as the engine sums it (native/src/model/adamw.cc): per tensor, chunks of
// 2^16 values in float64, chunk sums added in order, tensor sums added in order — so on one rank
// it is the engine's gradNorm() bit for bit; on several, chunks cut by shard boundaries are
// summed in pieces (rounding of float64 sums only).
//
// Memory: the moments outside a rank's shard are neither read nor updated, but the CPU engine
// still allocates them in full (a GPU build would allocate the shard only; not done yet).
import type { GptModel, TensorInfo, AdamWOptions } from "../../engine/index.js";
import type { Collective } from "./collective.js";
import { intersect, ownedInBucket, ownedRanges, planShards, type Range, type ShardOptions, type ShardPlan } from "./shard.js";

/** The engine's norm chunk (native/src/model/cpu_model.h kChunk). */
const NORM_CHUNK = 1 << 16;

export class ShardedAdamW {
  readonly plan: ShardPlan;
  readonly owned: Range[];
  private readonly tensors: TensorInfo[];

  constructor(readonly model: GptModel, readonly collective: Collective, options: ShardOptions = {}) {
    if (model.precision !== "float32") throw new TypeError("data parallelism trains float32 buffers (fp32 master weights)");
    this.plan = planShards(model.numParams, collective.worldSize, options);
    this.owned = ownedRanges(this.plan, collective.rank);
    this.tensors = model.tensors();
  }

  /** A bucket of a flat buffer as it travels: worldSize·slice values, zeros after its length. */
  private padded(flat: Float32Array, b: { offset: number; length: number; slice: number }): Float32Array {
    const n = this.collective.worldSize * b.slice;
    if (n === b.length) return flat.subarray(b.offset, b.offset + b.length);
    const out = new Float32Array(n);
    out.set(flat.subarray(b.offset, b.offset + b.length));
    return out;
  }

  /** Sums the ranks' gradients into this rank's shard; returns the global norm and per-tensor norms. */
  async reduceGradients(): Promise<{ norm: number; tensorNorms: Float64Array }> {
    const { model, collective: c } = this;
    const grads = model.read("grads") as Float32Array;
    for (const b of this.plan.buckets) {
      const mine = await c.reduceScatter(this.padded(grads, b));
      const r = ownedInBucket(b, c.rank);
      if (r.end > r.begin) {
        const values = mine.subarray(0, r.end - r.begin);
        grads.set(values, r.begin);
        model.writeRange("grads", values, r.begin);
      }
    }
    const partial = new Float64Array(this.tensors.length);
    this.tensors.forEach((t, i) => {
      for (let c0 = t.offset; c0 < t.offset + t.numel; c0 += NORM_CHUNK) {
        for (const p of intersect(c0, Math.min(c0 + NORM_CHUNK, t.offset + t.numel), this.owned)) {
          let s = 0;
          for (let k = p.begin; k < p.end; k++) s += grads[k]! * grads[k]!;
          partial[i]! += s;
        }
      }
    });
    const sums = await c.allReduce(partial);
    let total = 0;
    const tensorNorms = new Float64Array(sums.length);
    sums.forEach((s, i) => {
      total += s;
      tensorNorms[i] = Math.sqrt(s);
    });
    return { norm: Math.sqrt(total), tensorNorms };
  }

  /** AdamW on the owned ranges, then every rank gets the updated parameters. */
  async update(o: AdamWOptions): Promise<void> {
    for (const r of this.owned) this.model.adamwRange({ ...o, begin: r.begin, end: r.end });
    await this.gather("params");
  }

  /** The whole AdamW moments on every rank (each rank contributes the shard it keeps). */
  async gatherState(): Promise<void> {
    await this.gather("m");
    await this.gather("v");
  }

  private async gather(buffer: "params" | "m" | "v"): Promise<void> {
    const { model, collective: c } = this;
    for (const b of this.plan.buckets) {
      const r = ownedInBucket(b, c.rank);
      const send = new Float32Array(b.slice);
      if (r.end > r.begin) send.set(model.readRange(buffer, r.begin, r.end - r.begin) as Float32Array);
      const all = await c.allGather(send);
      model.writeRange(buffer, all.subarray(0, b.length), b.offset);
    }
  }
}
