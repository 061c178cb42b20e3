// The four tokenizers: vocabulary sizes against the tiktoken rank files shipped in the package,
// lossless round trips over the whole corpus (through prepareSplits and its cache), and errors.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import net from "node:net";
import { TOKENIZER_NAMES, documentText, loadCorpus, prepareSplits, tokenizer } from "../../backend/data/index.js";

// Nothing may be fetched at run time: any network use in this process fails the test.
const networkUse: string[] = [];
globalThis.fetch = (async (url: unknown) => {
  networkUse.push(`fetch ${String(url)}`);
  throw new Error("network disabled in tests");
}) as typeof fetch;
for (const k of ["connect", "createConnection"] as const) {
  (net as unknown as Record<string, unknown>)[k] = (...args: unknown[]) => {
    networkUse.push(`net.${k} ${JSON.stringify(args[0])}`);
    throw new Error("network disabled in tests");
  };
}

const cacheDir = mkdtempSync(join(tmpdir(), "calib-data-tok-"));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

const require = createRequire(import.meta.url);
const dataDir = join(dirname(require.resolve("gpt-tokenizer/package.json")), "data");
/** Largest rank in a tiktoken file ("<base64> <rank>" per line). */
function maxRank(file: string): number {
  let m = -1;
  for (const line of readFileSync(join(dataDir, file), "utf8").split("\n")) {
    if (line.trim() === "") continue;
    m = Math.max(m, Number(line.split(" ")[1]));
  }
  return m;
}
// <|endoftext|> ids as published by tiktoken (openai_public.py).
const EOT = { r50k: 50256, cl100k: 100257, o200k: 199999 } as const;

test("vocabulary sizes: byte 256; BPE = max(max rank, <|endoftext|>) + 1 from the rank files", () => {
  assert.equal(tokenizer("byte").vocabSize, 256);
  assert.equal(tokenizer("byte").eotId, null);
  for (const [name, file] of [["r50k", "r50k_base.tiktoken"], ["cl100k", "cl100k_base.tiktoken"], ["o200k", "o200k_base.tiktoken"]] as const) {
    const t = tokenizer(name);
    const expected = Math.max(maxRank(file), EOT[name]) + 1;
    assert.equal(t.vocabSize, expected, name);
    assert.equal(t.eotId, EOT[name]);
    assert.equal(t.padId, EOT[name]);
    assert.equal(t.decode([EOT[name]]), "<|endoftext|>");
    assert.throws(() => t.decode([t.vocabSize]), RangeError);
  }
  assert.equal(tokenizer("r50k").vocabSize, 50257);
});

test("decode(encode(x)) == x on every document of the corpus, for every tokenizer (via the token cache)", (t) => {
  const corpus = loadCorpus();
  const texts = corpus.documents.map(documentText);
  for (const name of TOKENIZER_NAMES) {
    const tok = tokenizer(name);
    const t0 = performance.now();
    const p = prepareSplits({ tokenizer: name, cacheDir, progress: false });
    const tEncode = performance.now() - t0;
    assert.equal(p.built, true);
    let docs = 0;
    let max = 0;
    const t1 = performance.now();
    for (const split of Object.values(p.splits)) {
      for (const d of split.docs) {
        const ids = split.tokens.subarray(d.start, d.end);
        assert.equal(tok.decode(ids), texts[d.index], `${name} ${d.id}`);
        for (const id of ids) if (id > max) max = id;
        docs++;
      }
    }
    const tDecode = performance.now() - t1;
    assert.equal(docs, 500);
    assert.ok(max < tok.vocabSize, `${name}: max id ${max} < V ${tok.vocabSize}`);
    if (name === "byte") assert.equal(p.splits.train.tokens.length + p.splits.validation.tokens.length + p.splits.test.tokens.length, Buffer.byteLength(texts.join("")));
    // Reading the cache back gives the same tokens.
    const again = prepareSplits({ tokenizer: name, cacheDir, progress: false });
    assert.equal(again.built, false);
    assert.deepEqual(again.splits.test.tokens, p.splits.test.tokens);
    t.diagnostic(`${name}: encode+write ${(tEncode / 1000).toFixed(2)} s, decode check ${(tDecode / 1000).toFixed(2)} s, ${p.splits.train.tokens.length} train tokens`);
  }
});

test("round trips of awkward text; special-token text is encoded as plain text", () => {
  const samples = ["", " ", "\n\n", "  two  spaces\t", "naïve café — “quotes” 東京 🙂", "<|endoftext|>", "a<|fim_prefix|>b", "Answer: A"];
  for (const name of TOKENIZER_NAMES) {
    const tok = tokenizer(name);
    for (const s of samples) {
      const ids = tok.encode(s);
      assert.ok(ids instanceof Int32Array);
      assert.equal(tok.decode(ids), s, `${name} ${JSON.stringify(s)}`);
      if (tok.eotId !== null) assert.ok(!ids.includes(tok.eotId), `${name}: encode never emits <|endoftext|>`);
    }
  }
  // Byte-level is UTF-8.
  assert.deepEqual([...tokenizer("byte").encode("é")], [0xc3, 0xa9]);
});

test("bad input: unknown tokenizer names and invalid ids", () => {
  assert.throws(() => tokenizer("gpt5"), { name: "TypeError", message: /tokenizer must be one of byte, r50k, cl100k, o200k \(got 'gpt5'\)/ });
  assert.throws(() => prepareSplits({ tokenizer: "p50k" as never, cacheDir, progress: false }), { name: "TypeError", message: /tokenizer must be one of/ });
  assert.throws(() => tokenizer("byte").decode([256]), { name: "RangeError", message: /ids\[0\] = 256/ });
  assert.throws(() => tokenizer("r50k").decode([1, -1]), { name: "RangeError", message: /ids\[1\] = -1/ });
  assert.throws(() => tokenizer("cl100k").decode([100256]), RangeError, "a hole in cl100k's ids");
  assert.throws(() => tokenizer("byte").encode(42 as never), TypeError);
});

test("no network was used", () => {
  for (const name of TOKENIZER_NAMES) tokenizer(name).encode("loaded");
  assert.deepEqual(networkUse, []);
});
