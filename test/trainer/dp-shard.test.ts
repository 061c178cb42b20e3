// Data parallelism without GPUs, in one process: the ZeRO-1 shard arithmetic (backend/train/dp/shard.ts)
// against hand-counted layouts and a brute-force ownership check, the collectives (memory group:
// sums in rank order, equal to a float32 left fold written here), and the sharded AdamW step
// (dp/zero.ts) of N simulated ranks against the engine's own AdamW on the summed gradients.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GptModel } from "../../backend/engine/index.js";
import { combine, memoryGroup, soloCollective, CollectiveError } from "../../backend/train/dp/collective.js";
import { ownedCount, ownedInBucket, ownedRanges, planShards, rowSlice } from "../../backend/train/dp/shard.js";
import { ShardedAdamW } from "../../backend/train/dp/zero.js";
import { normal, rng } from "./helpers.js";

/** Every value of [0, numel) owned by exactly one rank, padding by none. */
function checkPartition(numel: number, n: number, bucketElems: number, align = 1): void {
  const plan = planShards(numel, n, { bucketElems, align });
  const owner = new Int32Array(numel).fill(-1);
  for (let r = 0; r < n; r++) {
    for (const { begin, end } of ownedRanges(plan, r)) {
      assert.ok(begin < end && begin >= 0 && end <= numel, `rank ${r}: [${begin}, ${end})`);
      for (let i = begin; i < end; i++) {
        assert.equal(owner[i], -1, `value ${i} owned twice`);
        owner[i] = r;
      }
    }
  }
  assert.ok(owner.every((o) => o >= 0), `numel ${numel}, N ${n}, bucket ${bucketElems}: every value owned`);
  for (const b of plan.buckets) {
    assert.equal(b.slice % align, 0);
    assert.ok(n * b.slice >= b.length && n * b.slice - b.length < n * align, "padding less than one slice unit per rank");
  }
  assert.equal(plan.buckets.reduce((a, b) => a + b.length, 0), numel);
}

test("shard plan: hand-counted layouts", () => {
  // 10 values over 3 ranks, one bucket: slices of ⌈10/3⌉ = 4 → [0,4) [4,8) [8,10), 2 values of padding
  const p = planShards(10, 3);
  assert.deepEqual(p.buckets, [{ offset: 0, length: 10, slice: 4 }]);
  assert.deepEqual([0, 1, 2].map((r) => ownedRanges(p, r)), [[{ begin: 0, end: 4 }], [{ begin: 4, end: 8 }], [{ begin: 8, end: 10 }]]);
  // 2 values over 4 ranks (N > elements): ranks 2 and 3 own nothing, the bucket travels as 4 values
  const q = planShards(2, 4);
  assert.deepEqual(q.buckets, [{ offset: 0, length: 2, slice: 1 }]);
  assert.deepEqual([0, 1, 2, 3].map((r) => ownedCount(q, r)), [1, 1, 0, 0]);
  assert.deepEqual(ownedInBucket(q.buckets[0]!, 3), { begin: 2, end: 2 });
  // buckets of 5 over 2 ranks round up to 6: [0,6) [6,12) [12,13); rank 1 owns [3,6) [9,12) and nothing of the last
  const b = planShards(13, 2, { bucketElems: 5 });
  assert.deepEqual(b.buckets, [{ offset: 0, length: 6, slice: 3 }, { offset: 6, length: 6, slice: 3 }, { offset: 12, length: 1, slice: 1 }]);
  assert.deepEqual(ownedRanges(b, 0), [{ begin: 0, end: 3 }, { begin: 6, end: 9 }, { begin: 12, end: 13 }]);
  assert.deepEqual(ownedRanges(b, 1), [{ begin: 3, end: 6 }, { begin: 9, end: 12 }]);
  // one rank: adjacent buckets merge into one range
  assert.deepEqual(ownedRanges(planShards(100, 1, { bucketElems: 7 }), 0), [{ begin: 0, end: 100 }]);
  // alignment: slices of 4 values
  assert.deepEqual(planShards(9, 2, { align: 4 }).buckets, [{ offset: 0, length: 9, slice: 8 }]);
});

test("shard plan: every value owned once for awkward sizes (not divisible by N, N > bucket, tiny buckets, alignment)", () => {
  for (const numel of [1, 2, 7, 64, 97, 1000]) {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      for (const bucket of [1, 3, 16, 50, 1 << 20]) checkPartition(numel, n, bucket);
      checkPartition(numel, n, 40, 4);
    }
  }
  assert.throws(() => planShards(0, 2), RangeError);
  assert.throws(() => planShards(10, 0), RangeError);
  assert.throws(() => planShards(10, 2, { bucketElems: 1.5 }), TypeError);
  assert.throws(() => ownedRanges(planShards(10, 2), 2), /rank must be an integer in \[0, 1\]/);
});

test("row slices: balanced, contiguous, covering the batch in order (empty for ranks past the rows)", () => {
  for (const rows of [0, 1, 5, 6, 7, 16]) {
    for (const n of [1, 2, 3, 4, 8]) {
      const s = Array.from({ length: n }, (_, r) => rowSlice(rows, n, r));
      assert.equal(s[0]!.begin, 0);
      assert.equal(s[n - 1]!.end, rows);
      for (let r = 1; r < n; r++) assert.equal(s[r]!.begin, s[r - 1]!.end);
      const sizes = s.map((x) => x.end - x.begin);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${rows} rows over ${n}: ${sizes}`);
    }
  }
  assert.deepEqual([0, 1, 2].map((r) => rowSlice(7, 3, r)), [{ begin: 0, end: 3 }, { begin: 3, end: 5 }, { begin: 5, end: 7 }]);
});

test("collectives: sums in rank order (a float32 left fold), gathers in rank order, mismatches are errors", async () => {
  const rand = rng(5);
  const n = 3, len = 6;
  const inputs = Array.from({ length: n }, () => Float32Array.from({ length: len }, () => normal(rand) * 10 ** Math.floor(rand() * 8)));
  const fold = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    let acc = inputs[0]![i]!;
    for (let r = 1; r < n; r++) acc = Math.fround(acc + inputs[r]![i]!);
    fold[i] = acc;
  }
  const g = memoryGroup(n);
  const all = await Promise.all(g.ranks.map((c) => c.allReduce(inputs[c.rank]!)));
  for (const a of all) assert.deepEqual(a, fold);
  const scattered = await Promise.all(g.ranks.map((c) => c.reduceScatter(inputs[c.rank]!)));
  assert.deepEqual(scattered, [fold.slice(0, 2), fold.slice(2, 4), fold.slice(4, 6)]);
  const gathered = await Promise.all(g.ranks.map((c) => c.allGather(Float64Array.of(c.rank, c.rank + 0.5))));
  for (const a of gathered) assert.deepEqual(a, Float64Array.of(0, 0.5, 1, 1.5, 2, 2.5));
  await Promise.all(g.ranks.map((c) => c.barrier()));
  // rank 2 calls something else: every rank's call fails, naming both
  const mixed = await Promise.allSettled([g.ranks[0]!.allReduce(new Float32Array(4)), g.ranks[1]!.allReduce(new Float32Array(4)), g.ranks[2]!.allGather(new Float32Array(4))]);
  for (const m of mixed) assert.match(String((m as PromiseRejectedResult).reason), /rank 0 called allReduce\(4 float32\), rank 2 called allGather\(4 float32\)/);
  assert.throws(() => combine([{ op: "reduceScatter", values: new Float32Array(5) }, { op: "reduceScatter", values: new Float32Array(5) }]), CollectiveError);
  // a failed rank: the others' pending and later calls fail with the reason
  const h = memoryGroup(2);
  const pending = h.ranks[0]!.barrier();
  h.abort("rank 1 failed");
  await assert.rejects(pending, /rank 1 failed/);
  await assert.rejects(h.ranks[1]!.allReduce(new Float32Array(1)), /rank 1 failed/);
});

const TINY = { nLayer: 1, nHead: 2, dModel: 8, context: 8, vocab: 11, tied: false };

function modelWith(params: Float32Array): GptModel {
  const m = GptModel.create(TINY, { maxBatch: 1, device: "cpu", threads: 1 });
  m.write("params", params);
  return m;
}

test("sharded AdamW: one rank equals the engine's gradNorm + AdamW bit for bit; N ranks equal AdamW on the summed gradients", async () => {
  const rand = rng(9);
  const probe = GptModel.create(TINY, { maxBatch: 1, device: "cpu", threads: 1 });
  const P = probe.numParams;
  probe.free();
  const params = Float32Array.from({ length: P }, () => normal(rand) * 0.1);
  const grads = [0, 1, 2].map(() => Float32Array.from({ length: P }, () => normal(rand) * 0.01));
  const opts = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };

  // N = 1 through the sharded path, small buckets (the norm merges adjacent ranges): identical to the engine
  const ref = modelWith(params), one = modelWith(params);
  ref.write("grads", grads[0]!);
  one.write("grads", grads[0]!);
  const solo = new ShardedAdamW(one, soloCollective(), { bucketElems: 100 });
  const a = ref.gradNorm(), b = await solo.reduceGradients();
  assert.equal(b.norm, a.norm);
  assert.deepEqual(b.tensorNorms, a.tensorNorms);
  ref.adamw({ ...opts, gradScale: 0.5 });
  await solo.update({ ...opts, gradScale: 0.5 });
  assert.deepEqual(one.read("params"), ref.read("params"));
  assert.deepEqual(one.read("v"), ref.read("v"));

  // N = 3 (buckets of 250 values: several buckets, slices not dividing the tensors): sum of the ranks' gradients
  const n = 3;
  const sum = new Float32Array(P);
  for (let i = 0; i < P; i++) sum[i] = Math.fround(Math.fround(grads[0]![i]! + grads[1]![i]!) + grads[2]![i]!);
  let sq = 0;
  for (const x of sum) sq += x * x;
  const whole = modelWith(params);
  whole.write("grads", sum);
  whole.adamw({ ...opts, gradScale: 1 });
  const g = memoryGroup(n);
  const models = grads.map((gr) => {
    const m = modelWith(params);
    m.write("grads", gr);
    return m;
  });
  const shards = models.map((m, r) => new ShardedAdamW(m, g.ranks[r]!, { bucketElems: 250 }));
  const norms = await Promise.all(shards.map((s) => s.reduceGradients()));
  for (const x of norms) assert.ok(Math.abs(x.norm - Math.sqrt(sq)) <= 1e-12 * Math.sqrt(sq), `${x.norm} vs ${Math.sqrt(sq)}`);
  await Promise.all(shards.map((s) => s.update({ ...opts, gradScale: 1 })));
  await Promise.all(shards.map((s) => s.gatherState()));
  // the reduced gradients are the same float32 fold, and AdamW is elementwise: bit for bit
  for (const m of models) {
    assert.deepEqual(m.read("params"), whole.read("params"));
    assert.deepEqual(m.read("m"), whole.read("m"));
    assert.deepEqual(m.read("v"), whole.read("v"));
  }
  for (const m of [ref, one, whole, ...models]) m.free();
});

test("GptModel range access: adamwRange, readRange and writeRange check their ranges", () => {
  const m = GptModel.create(TINY, { maxBatch: 1, device: "cpu", threads: 1 });
  try {
    assert.throws(() => m.adamwRange({ lr: 0.1, step: 1, begin: 0, end: m.numParams + 1 }), /outside the \d+ parameters/);
    assert.throws(() => m.readRange("m", -1, 2), RangeError);
    assert.throws(() => m.writeRange("m", new Float32Array(3), m.numParams - 2), RangeError);
    m.writeRange("m", Float32Array.of(1.5, 2.5), 4);
    assert.deepEqual(m.readRange("m", 3, 4), Float32Array.of(0, 1.5, 2.5, 0));
  } finally {
    m.free();
  }
});
