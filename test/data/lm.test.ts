// LM windows: coverage (every target once per epoch), shifts, metadata, determinism.
import { test } from "node:test";
import assert from "node:assert/strict";
import { lmBatches, lmWindowCount, type DocSpan } from "../../backend/data/index.js";

// A stream whose token at position p is 1000 + p, so every id tells where it came from.
function stream(spans: [number, number][]) {
  const docs: DocSpan[] = [];
  let pos = 0;
  for (const [index, len] of spans) {
    docs.push({ index, id: `d${index}`, genre: "news", start: pos, end: pos + len, words: len, sentences: 1 });
    pos += len;
  }
  const tokens = new Int32Array(pos).map((_, p) => 1000 + p);
  const tokenDoc = new Int32Array(pos);
  for (const d of docs) tokenDoc.fill(d.index, d.start, d.end);
  return { tokens, docs, tokenDoc };
}

const s = stream([[10, 40], [11, 1], [12, 62], [7, 30]]); // 133 tokens

test("each epoch uses every target position at most once and all but < T of them", () => {
  for (const T of [1, 5, 16, 132]) {
    for (const epoch of [0, 1, 2]) {
      const e = lmBatches(s, { contextLength: T, batchSize: 3, seed: 9, epoch });
      assert.equal(e.numWindows, Math.floor((133 - 1) / T));
      assert.equal(lmWindowCount(133, T), e.numWindows);
      assert.ok(e.offset >= 0 && e.offset <= (133 - 1) % T);
      const used = new Uint8Array(133);
      let rows = 0;
      for (const b of e) {
        assert.equal(b.inputs.length, b.rows * T);
        for (let r = 0; r < b.rows; r++) {
          for (let t = 0; t < T; t++) {
            const x = b.inputs[r * T + t]! - 1000;
            const y = b.targets[r * T + t]! - 1000;
            assert.equal(x, b.starts[r]! + t, "inputs are the stream from the window start");
            assert.equal(y, x + 1, "targets are the inputs shifted by one");
            assert.equal(used[y], 0, `target position ${y} used twice`);
            used[y] = 1;
          }
        }
        rows += b.rows;
      }
      assert.equal(rows, e.numWindows);
      const count = used.reduce((a, b) => a + b, 0);
      assert.equal(count, e.targetsPerEpoch);
      assert.ok(132 - count < T, `only ${132 - count} < ${T} targets unused`);
    }
  }
});

test("doc and position of every target match a linear scan of the spans", () => {
  const e = lmBatches(s, { contextLength: 7, batchSize: 4, seed: 1 });
  for (const b of e) {
    for (let k = 0; k < b.targets.length; k++) {
      const p = b.targets[k]! - 1000;
      const span = s.docs.find((d) => p >= d.start && p < d.end)!;
      assert.equal(b.docs[k], span.index);
      assert.equal(b.positions[k], p - span.start);
    }
  }
});

test("seeded: the same (seed, epoch) gives the same batches; other epochs another order", () => {
  const a = lmBatches(s, { contextLength: 4, batchSize: 5, seed: 3, epoch: 1 });
  const b = lmBatches(s, { contextLength: 4, batchSize: 5, seed: 3, epoch: 1 });
  assert.deepEqual([...a].map((x) => [...x.starts]), [...b].map((x) => [...x.starts]));
  const orders = new Set([0, 1, 2, 3, 4].map((epoch) => [...lmBatches(s, { contextLength: 4, batchSize: 5, seed: 3, epoch }).order].join(",")));
  assert.ok(orders.size > 1);
  const plain = lmBatches(s, { contextLength: 4, batchSize: 5, shuffle: false });
  assert.equal(plain.offset, 0);
  assert.deepEqual([...plain.order], [...Array(plain.numWindows).keys()]);
  assert.deepEqual([...plain.batch(0).starts], [0, 4, 8, 12, 16]);
});

test("last batch: kept smaller by default, dropped with dropLast", () => {
  const e = lmBatches(s, { contextLength: 10, batchSize: 5 }); // 13 windows
  assert.equal(e.numWindows, 13);
  assert.equal(e.numBatches, 3);
  assert.equal(e.batch(2).rows, 3);
  assert.equal(lmBatches(s, { contextLength: 10, batchSize: 5, dropLast: true }).numBatches, 2);
});

test("bad options name the field", () => {
  assert.throws(() => lmBatches(s, { contextLength: 0, batchSize: 1 }), { name: "TypeError", message: /contextLength/ });
  assert.throws(() => lmBatches(s, { contextLength: 4, batchSize: 2.5 }), { name: "TypeError", message: /batchSize/ });
  assert.throws(() => lmBatches(s, { contextLength: 4, batchSize: 2, seed: -1 }), { name: "TypeError", message: /seed/ });
  assert.throws(() => lmBatches(s, { contextLength: 133, batchSize: 1 }), { name: "RangeError", message: /at least 134 tokens/ });
  assert.throws(() => lmBatches(s, { contextLength: 4, batchSize: 1 }).batch(999), RangeError);
});
