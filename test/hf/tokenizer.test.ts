// Hugging Face tokenizers behind our interface: a Llama 3 style byte-level BPE and a Gemma style
// SentencePiece BPE with byte fallback (built in fixtures.ts), hand-checked ids, round trips, the
// BOS rule of transformers (post-processor vs add_bos_token), special ids, and clear errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HfFolderError, loadHfTokenizer, openHfFolder, type HfTokenizer } from "../../backend/hf/index.js";
import {
  byteLevelTokenizerJson, gemmaTokenizerConfig, gemmaTokenizerFiles, gemmaTokenizerJson, llama3TokenizerConfig, llama3TokenizerFiles,
  tempDir, withTemp, tinyConfig, writeTinyModel,
} from "./fixtures.js";

function folder(files: Record<string, unknown>): { dir: string; cleanup: () => void; tok: () => HfTokenizer } {
  const t = tempDir("tok");
  const dir = join(t.dir, "my-model");
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  return { dir, cleanup: t.cleanup, tok: () => loadHfTokenizer(dir) };
}

const ids = (x: Int32Array) => Array.from(x);

test("Llama 3 style byte-level BPE: hand-checked ids, special tokens in the text, the post-processor's BOS", () => {
  const f = folder({ ...llama3TokenizerFiles(), "config.json": tinyConfig("llama") });
  try {
    const tok = f.tok();
    // "hello" = h e l l o → he, ll → hell → hello (256…259); " world" = Ġ w o r l d → Ġw, or, Ġwor, Ġworl, Ġworld (264)
    assert.deepEqual(ids(tok.encode("hello world")), [259, 264]);
    // "Hello" has no "H e" merge: H e ll o; "!" is its own piece
    assert.deepEqual(ids(tok.encode("Hello!")), [72, 101, 257, 111, 33]);
    // é = C3 A9, two byte tokens
    assert.deepEqual(ids(tok.encode("héllo")), [104, 0xc3, 0xa9, 257, 111]);
    // digits in groups of at most 3, newlines together
    assert.deepEqual(ids(tok.encode("2024")), [50, 48, 50, 52]);
    assert.deepEqual(ids(tok.encode("a\n\nb")), [97, 10, 10, 98]);
    // special tokens written in the text are their ids (as transformers' default split_special_tokens=False)
    assert.deepEqual(ids(tok.encode("<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>")), [267, 117, 115, 101, 114, 268, 10, 10, 259, 269]);
    // tokenizer.json's TemplateProcessing puts <|begin_of_text|> first; no add_bos_token in tokenizer_config.json
    assert.deepEqual(ids(tok.encode("hello world", { addSpecialTokens: true })), [265, 259, 264]);
    assert.deepEqual([tok.specialPrefix, tok.specialSuffix], [[265], []]);
    assert.deepEqual(ids(tok.encode("")), []);
    assert.equal(tok.vocabSize, 270);
    assert.equal(tok.encoding, "BPE");
    assert.equal(tok.name, "hf:my-model");
    assert.match(tok.fingerprint, /^@huggingface\/tokenizers@\d+\.\d+\.\d+\/sha256:[0-9a-f]{16}$/);
    // ids: bos from tokenizer_config.json; eos its eos_token first, then config.json and generation_config.json
    assert.equal(tok.bosId, 265);
    assert.deepEqual(tok.eosIds, [269, 266]);
    assert.equal(tok.eotId, 269);
    assert.equal(tok.padId, 269, "no pad token anywhere: the first eos");
    assert.deepEqual(tok.specialTokens, { bos: "<|begin_of_text|>", eos: "<|eot_id|>", pad: null, unk: null });
    assert.equal(tok.tokenToId("<|eot_id|>"), 269);
    assert.equal(tok.idToToken(264), "Ġworld");
    assert.equal(tok.tokenToId("nope"), null);
  } finally {
    f.cleanup();
  }
});

test("round trips: decode(encode(x)) = x for both tokenizers, special tokens kept unless skipped", () => {
  const texts = ["hello world", "Hello, wörld!\n\n  spaced   out\t", "日本語 and emoji 🙂🚀", "<|eot_id|> in text", "", " leading space"];
  const a = folder(llama3TokenizerFiles());
  const g = folder(gemmaTokenizerFiles());
  try {
    for (const tok of [a.tok(), g.tok()]) {
      for (const t of texts) assert.equal(tok.decode(tok.encode(t)), t, `${tok.name}: ${JSON.stringify(t)}`);
    }
    const tok = a.tok();
    assert.equal(tok.decode([265, 259, 264, 269]), "<|begin_of_text|>hello world<|eot_id|>");
    assert.equal(tok.decode([265, 259, 264, 269], { skipSpecialTokens: true }), "hello world");
    assert.equal(tok.decode(new Int32Array([259])), "hello");
    assert.equal(tok.decode([]), "");
    assert.throws(() => tok.decode([270]), (e: unknown) => e instanceof RangeError && /ids\[0\] = 270 is not a token id of hf:my-model \(0 ≤ id < 270\)/.test((e as Error).message));
    assert.throws(() => tok.decode([1, -1]), RangeError);
    assert.throws(() => tok.decode([1.5]), RangeError);
    assert.throws(() => tok.encode(3 as unknown as string), TypeError);
  } finally {
    a.cleanup();
    g.cleanup();
  }
});

test("Gemma style: ▁ for spaces, byte fallback, add_bos_token puts <bos> first", () => {
  const f = folder(gemmaTokenizerFiles());
  try {
    const tok = f.tok();
    // "hello▁world": the merges in rank order give hello (271) and ▁world (276)
    assert.deepEqual(ids(tok.encode("hello world")), [271, 276]);
    // ö is not a piece: its bytes C3 B6 fall back to <0xC3> <0xB6> (4 + byte)
    assert.deepEqual(ids(tok.encode("wörld")), [265, 4 + 0xc3, 4 + 0xb6, 266, 263, 267]);
    assert.deepEqual(ids(tok.encode(" hello")), [260, 271]);
    assert.deepEqual(ids(tok.encode("<start_of_turn>user\nhi")), [277, 4 + 0x75, 4 + 0x73, 262, 266, 4 + 0x0a, 261, 4 + 0x69]);
    assert.deepEqual(ids(tok.encode("hello world", { addSpecialTokens: true })), [2, 271, 276]);
    assert.deepEqual([tok.bosId, tok.eosIds, tok.padId, tok.eotId], [2, [1, 278], 0, 1]);
  } finally {
    f.cleanup();
  }
});

test("the BOS rule of transformers 5: explicit add_bos_token / add_eos_token or a Llama/Gemma class rebuild the post-processor", () => {
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>, number[], number[]]> = [
    // SmolLM2: GPT2Tokenizer, a ByteLevel post-processor only: nothing is added
    ["SmolLM2", byteLevelTokenizerJson({ bos: false }), { ...llama3TokenizerConfig(), tokenizer_class: "GPT2Tokenizer", bos_token: "<|end_of_text|>", eos_token: "<|end_of_text|>" }, [], []],
    // an explicit add_bos_token: false wins over the post-processor's BOS
    ["explicit false", byteLevelTokenizerJson(), { ...llama3TokenizerConfig(), add_bos_token: false }, [], []],
    // add_eos_token alone: no BOS (default false for other classes), EOS after
    ["add_eos only", byteLevelTokenizerJson(), { ...llama3TokenizerConfig(), add_eos_token: true }, [], [269]],
    // a LlamaTokenizerFast without the flags: add_bos_token defaults to true, even with no post-processor
    ["Llama class", { ...byteLevelTokenizerJson(), post_processor: null }, { ...llama3TokenizerConfig(), tokenizer_class: "LlamaTokenizerFast" }, [265], []],
    // Gemma with add_eos_token
    ["Gemma eos", gemmaTokenizerJson(), { ...gemmaTokenizerConfig(), add_eos_token: true }, [2], [1]],
  ];
  for (const [what, tj, cfg, prefix, suffix] of cases) {
    const f = folder({ "tokenizer.json": tj, "tokenizer_config.json": cfg });
    try {
      const tok = f.tok();
      assert.deepEqual([tok.specialPrefix, tok.specialSuffix], [prefix, suffix], what);
      const bare = ids(tok.encode("hello"));
      assert.deepEqual(ids(tok.encode("hello", { addSpecialTokens: true })), [...prefix, ...bare, ...suffix], what);
    } finally {
      f.cleanup();
    }
  }
});

test("a Hub cache snapshot is named after its repository", () => {
  withTemp("snap", (tmp) => {
    const dir = join(tmp, "models--meta-llama--Llama-3.2-1B", "snapshots", "4e20de362430cd3b72f300e6b0f18e50e7166e08");
    mkdirSync(dir, { recursive: true });
    for (const [n, c] of Object.entries(llama3TokenizerFiles())) writeFileSync(join(dir, n), c);
    assert.equal(loadHfTokenizer(dir).name, "hf:meta-llama/Llama-3.2-1B");
  });
});

test("tokenizer errors name the file and the field", () => {
  withTemp("tokerr", (dir) => {
    assert.throws(() => loadHfTokenizer(dir), (e: unknown) => e instanceof HfFolderError && e.message === `${join(dir, "tokenizer.json")}: is missing`);
    writeFileSync(join(dir, "tokenizer.model"), "x");
    assert.throws(() => loadHfTokenizer(dir), /tokenizer\.json: is missing \(only tokenizer\.model: save a fast tokenizer/);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(byteLevelTokenizerJson()));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...llama3TokenizerConfig(), eos_token: "<|nope|>" }));
    assert.throws(() => loadHfTokenizer(dir), (e: unknown) => e instanceof HfFolderError && e.message === `${join(dir, "tokenizer_config.json")}: eos_token '<|nope|>' is not a token of tokenizer.json`);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(llama3TokenizerConfig()));
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...byteLevelTokenizerJson(), decoder: { type: "Nope" } }));
    assert.throws(() => loadHfTokenizer(dir), (e: unknown) => e instanceof HfFolderError && /tokenizer\.json: cannot be used by @huggingface\/tokenizers@.*Nope/.test((e as Error).message));
    writeFileSync(join(dir, "tokenizer.json"), "[]");
    assert.throws(() => loadHfTokenizer(dir), /tokenizer\.json: has no model object/);
  });
});

test("openHfFolder checks the tokenizer against config.json's vocab_size", () => {
  withTemp("vocab", (dir) => {
    writeTinyModel(dir, "llama", { files: llama3TokenizerFiles(), config: { ...tinyConfig("llama"), vocab_size: 260 } });
    assert.throws(() => openHfFolder(dir), (e: unknown) => e instanceof HfFolderError && e.message === `${join(dir, "tokenizer.json")}: has ids up to 269, beyond config.json's vocab_size 260`);
    writeTinyModel(dir, "llama", { files: llama3TokenizerFiles() });
    const f = openHfFolder(dir);
    assert.equal(f.tokenizer.vocabSize, 270);
    assert.equal(f.spec.model.vocab, 272);
  });
});
