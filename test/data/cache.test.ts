// The token cache: reuse when valid; rebuild when the inputs change; a clear error from the
// strict reader (and a rebuild from prepareSplits) for caches of another tokenizer, truncated
// or corrupted files. Uses a small hand-written corpus in a temporary directory.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { TokenCacheError, docAt, prepareSplits, readTokenCache, tokenizer } from "../../backend/data/index.js";

const root = mkdtempSync(join(tmpdir(), "calib-data-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));

function makeCorpus(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const docs: Record<string, string> = {
    ca01: "\n\n\tThe/at jury/nn said/vbd ./.\nIt/pps was/bedz late/jj ./.\n\n\n\tNo/at one/pn came/vbd ./.\n",
    ca02: "\n\n\tVoters/nns went/vbd home/nr ./.\n",
    ca03: "\n\n\t``/`` Yes/uh ''/'' ,/, she/pps said/vbd ./.\n",
    cb01: "\n\n\tTaxes/nns rose/vbd again/rb ./.\n",
    cb02: "\n\n\tThe/at mayor/nn resigned/vbd ;/. ;/.\n",
    cc01: "\n\n\tA/at fine/jj play/nn ./.\n",
  };
  for (const [id, text] of Object.entries(docs)) writeFileSync(join(dir, id), text);
  writeFileSync(join(dir, "README"), "not a document\n");
}

const corpusDir = join(root, "corpus");
makeCorpus(corpusDir);
const quiet = { corpusDir, progress: false } as const;

test("prepareSplits builds, then reuses a valid cache; documents tile each split", () => {
  const cacheDir = join(root, "c1");
  const a = prepareSplits({ tokenizer: "byte", cacheDir, ...quiet });
  assert.equal(a.built, true);
  assert.deepEqual(a.rebuildReasons, ["train: missing", "validation: missing", "test: missing"]);
  // Split rule for genres of 3, 2, 1 documents: a → 1 test, 1 validation, 1 train; b → 1 validation, 1 train; c → train.
  assert.equal(a.splits.train.docs.length, 3);
  assert.equal(a.splits.validation.docs.length, 2);
  assert.equal(a.splits.test.docs.length, 1);
  const all = [...a.splits.train.docs, ...a.splits.validation.docs, ...a.splits.test.docs].map((d) => d.id).sort();
  assert.deepEqual(all, ["ca01", "ca02", "ca03", "cb01", "cb02", "cc01"]);
  // Byte tokens are the UTF-8 of the document text (written out by hand here).
  const expected: Record<string, string> = {
    ca01: "The jury said. It was late.\n\nNo one came.\n",
    ca02: "Voters went home.\n",
    ca03: '"Yes", she said.\n',
    cb01: "Taxes rose again.\n",
    cb02: "The mayor resigned;\n",
    cc01: "A fine play.\n",
  };
  for (const split of Object.values(a.splits)) {
    for (const d of split.docs) assert.equal(Buffer.from(Uint8Array.from(split.tokens.subarray(d.start, d.end))).toString("utf8"), expected[d.id], d.id);
  }
  const train = a.splits.train;
  let pos = 0;
  for (const d of train.docs) {
    assert.equal(d.start, pos);
    pos = d.end;
    for (let i = d.start; i < d.end; i++) assert.equal(train.tokenDoc[i], d.index);
    assert.equal(docAt(train, d.start).id, d.id);
    assert.equal(docAt(train, d.end - 1).id, d.id);
  }
  assert.equal(pos, train.tokens.length);
  const b = prepareSplits({ tokenizer: "byte", cacheDir, ...quiet });
  assert.equal(b.built, false);
  assert.deepEqual(b.splits.validation.tokens, a.splits.validation.tokens);
  assert.equal(b.splits.validation.checksum, a.splits.validation.checksum);
  assert.equal(prepareSplits({ tokenizer: "byte", cacheDir, force: true, ...quiet }).built, true);
});

test("a change of the corpus text, the split seed or the tokenizer gives a rebuild or a separate cache", () => {
  const cacheDir = join(root, "c2");
  const dir = join(root, "corpus2");
  makeCorpus(dir);
  const first = prepareSplits({ tokenizer: "r50k", cacheDir, corpusDir: dir, progress: false });
  appendFileSync(join(dir, "cc01"), "\tAn/at extra/jj sentence/nn ./.\n");
  const second = prepareSplits({ tokenizer: "r50k", cacheDir, corpusDir: dir, progress: false });
  assert.equal(second.built, true);
  assert.deepEqual(second.rebuildReasons, ["train: source", "validation: source", "test: source"]);
  assert.notEqual(second.sourceHash, first.sourceHash);
  const cc01 = second.splits.train.docs.find((d) => d.id === "cc01")!;
  assert.equal(tokenizer("r50k").decode(second.splits.train.tokens.subarray(cc01.start, cc01.end)), "A fine play. An extra sentence.\n");
  const seeded = prepareSplits({ tokenizer: "r50k", cacheDir, corpusDir: dir, progress: false, splitSeed: 3 });
  assert.notEqual(seeded.dir, second.dir);
  assert.equal(seeded.built, true);
});

test("a cache file from another tokenizer: clear error from the reader, rebuild from prepareSplits", () => {
  const cacheDir = join(root, "c3");
  const r50k = prepareSplits({ tokenizer: "r50k", cacheDir, ...quiet });
  const byte = prepareSplits({ tokenizer: "byte", cacheDir, ...quiet });
  // Copy r50k's validation files over byte's.
  copyFileSync(join(r50k.dir, "validation.tokens"), join(byte.dir, "validation.tokens"));
  copyFileSync(join(r50k.dir, "validation.json"), join(byte.dir, "validation.json"));
  assert.throws(
    () => readTokenCache(byte.dir, "validation", { tokenizer: "byte", vocabSize: 256 }),
    (e: unknown) => e instanceof TokenCacheError && e.reason === "tokenizer" && /made with tokenizer r50k \(V=50257\), not byte \(V=256\)/.test(e.message),
  );
  const again = prepareSplits({ tokenizer: "byte", cacheDir, ...quiet });
  assert.equal(again.built, true);
  assert.deepEqual(again.rebuildReasons, ["validation: tokenizer"]);
  assert.deepEqual(again.splits.validation.tokens, byte.splits.validation.tokens);
  // Only the tokens file swapped (header kept): the size or checksum no longer matches.
  copyFileSync(join(r50k.dir, "train.tokens"), join(byte.dir, "train.tokens"));
  assert.throws(
    () => readTokenCache(byte.dir, "train", { tokenizer: "byte", vocabSize: 256 }),
    (e: unknown) => e instanceof TokenCacheError && (e.reason === "size" || e.reason === "checksum"),
  );
  assert.equal(prepareSplits({ tokenizer: "byte", cacheDir, ...quiet }).built, true);
});

test("truncated, corrupted or out-of-range token files are never returned", () => {
  const cacheDir = join(root, "c4");
  const p = prepareSplits({ tokenizer: "cl100k", cacheDir, ...quiet });
  const expect = { tokenizer: "cl100k" as const, vocabSize: tokenizer("cl100k").vocabSize, sourceHash: p.sourceHash };
  const file = join(p.dir, "train.tokens");
  const good = readFileSync(file);

  truncateSync(file, good.length - 4);
  assert.throws(() => readTokenCache(p.dir, "train", expect), (e: unknown) => e instanceof TokenCacheError && e.reason === "size" && /truncated/.test(e.message));
  const rebuilt = prepareSplits({ tokenizer: "cl100k", cacheDir, ...quiet });
  assert.equal(rebuilt.built, true);
  assert.deepEqual(rebuilt.rebuildReasons, ["train: size"]);
  assert.deepEqual(Buffer.from(rebuilt.splits.train.tokens.buffer), good);

  const flipped = Buffer.from(good);
  flipped[0] = flipped[0]! ^ 1; // same size, different first token
  writeFileSync(file, flipped);
  assert.throws(() => readTokenCache(p.dir, "train", expect), (e: unknown) => e instanceof TokenCacheError && e.reason === "checksum");

  // A header whose checksum vouches for an out-of-range id (as a buggy writer might make).
  const header = JSON.parse(readFileSync(join(p.dir, "train.json"), "utf8"));
  const bad = new Int32Array(good.length / 4);
  new Uint8Array(bad.buffer).set(good);
  bad[0] = 999999;
  writeFileSync(file, Buffer.from(bad.buffer));
  header.checksum = createHash("sha256").update(Buffer.from(bad.buffer)).digest("hex");
  writeFileSync(join(p.dir, "train.json"), JSON.stringify(header));
  assert.throws(() => readTokenCache(p.dir, "train", expect), (e: unknown) => e instanceof TokenCacheError && e.reason === "range" && /999999/.test(e.message));

  writeFileSync(join(p.dir, "train.json"), "{ not json");
  assert.throws(() => readTokenCache(p.dir, "train", expect), (e: unknown) => e instanceof TokenCacheError && e.reason === "header");
  rmSync(join(p.dir, "train.json"));
  assert.throws(() => readTokenCache(p.dir, "train", expect), (e: unknown) => e instanceof TokenCacheError && e.reason === "missing");

  const final = prepareSplits({ tokenizer: "cl100k", cacheDir, ...quiet });
  assert.equal(final.built, true);
  assert.deepEqual(Buffer.from(final.splits.train.tokens.buffer), good);
});

test("bad options name the field", () => {
  assert.throws(() => prepareSplits({ tokenizer: "byte", splitSeed: -2, ...quiet, cacheDir: join(root, "c5") }), { name: "TypeError", message: /splitSeed/ });
  assert.throws(() => prepareSplits({ tokenizer: "bytes" as never, ...quiet, cacheDir: join(root, "c5") }), { name: "TypeError", message: /tokenizer must be one of/ });
  assert.throws(() => prepareSplits(undefined as never), TypeError);
  assert.throws(() => docAt(prepareSplits({ tokenizer: "byte", ...quiet, cacheDir: join(root, "c5") }).splits.test, -1), RangeError);
});
