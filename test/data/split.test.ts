// The document split: golden checksum, an independent re-implementation of the documented rule,
// disjointness and stratification.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GENRES, SPLITS, loadCorpus, splitDocuments } from "../../backend/data/index.js";

const corpus = loadCorpus();

// sha256 of "<id>\t<split>\n" over the 500 documents in file-name order, seed 0. Committed so that
// any change of the split on any machine (or of the corpus files) fails here.
const GOLDEN_SEED0 = "29a1ec83fadd598919cfaeb4783445b8bda7f0a15a82797a9dbafb722467a491";

test("the seed-0 split matches the committed golden checksum", () => {
  const s = splitDocuments(corpus, { seed: 0 });
  assert.equal(s.checksum, GOLDEN_SEED0);
  const lines = corpus.documents.map((d) => `${d.id}\t${s.splitOf[d.index]}\n`).join("");
  assert.equal(createHash("sha256").update(lines).digest("hex"), GOLDEN_SEED0);
  assert.deepEqual(splitDocuments(corpus).splitOf, s.splitOf, "default seed is 0 and the split is repeatable");
});

test("the split follows the documented rule (re-implemented here) for several seeds", () => {
  for (const seed of [0, 1, 7, 12345]) {
    const expected = new Map<string, string>();
    for (const g of GENRES) {
      const ids = corpus.documents.filter((d) => d.id[1] === g.letter).map((d) => d.id);
      const key = (id: string) => createHash("sha256").update(`${seed}:${id}`).digest("hex");
      ids.sort((a, b) => (key(a) < key(b) ? -1 : 1));
      const n = ids.length;
      const nTest = Math.max(1, Math.round(n / 10));
      const nVal = Math.max(1, Math.round(n / 10));
      ids.forEach((id, i) => expected.set(id, i < nTest ? "test" : i < nTest + nVal ? "validation" : "train"));
    }
    const s = splitDocuments(corpus, { seed });
    for (const d of corpus.documents) assert.equal(s.splitOf[d.index], expected.get(d.id), `seed ${seed} ${d.id}`);
  }
  assert.notEqual(splitDocuments(corpus, { seed: 1 }).checksum, GOLDEN_SEED0);
});

test("no document is in two splits, every document is in one, every genre in every split", () => {
  const s = splitDocuments(corpus, { seed: 0 });
  const seen = new Map<number, string>();
  for (const split of SPLITS) {
    for (const i of s.documents[split]) {
      assert.ok(!seen.has(i), `document ${i} in ${seen.get(i)} and ${split}`);
      seen.set(i, split);
      assert.equal(s.splitOf[i], split);
    }
    const sorted = [...s.documents[split]].sort((a, b) => a - b);
    assert.deepEqual(s.documents[split], sorted);
    for (const g of GENRES) {
      assert.ok(s.documents[split].some((i) => corpus.documents[i]!.genre.letter === g.letter), `${g.code} in ${split}`);
    }
  }
  assert.equal(seen.size, 500);
  assert.deepEqual(
    SPLITS.map((x) => s.documents[x].length),
    [396, 52, 52],
  );
});

test("bad seeds are rejected naming the field", () => {
  assert.throws(() => splitDocuments(corpus, { seed: -1 }), { name: "TypeError", message: /seed must be a non-negative integer/ });
  assert.throws(() => splitDocuments(corpus, { seed: 1.5 }), TypeError);
});
