// Four tokenizers behind one interface, spanning V from 256 to 200k:
//
//   name     encoding        vocabSize  eotId    padId
//   byte     UTF-8 bytes           256  null         0
//   r50k     r50k_base (GPT-2)   50257  50256    50256
//   cl100k   cl100k_base        100258  100257  100257
//   o200k    o200k_base         200000  199999  199999
//
// vocabSize is the number of embedding / classifier rows a model needs: the largest id the
// tokenizer can produce or that we expose, plus one. The BPE ranks are 0 … 50255, 0 … 100255
// and 0 … 199997; the only special token we expose is <|endoftext|> (eotId), used as the
// padding input of SFT batches (its targets are always ignoreIndex). encode() never produces
// it: text that looks like "<|endoftext|>" is encoded as ordinary text. Ids that exist in
// neither set (cl100k: 100256; o200k: 199998) are never produced and decode() rejects them.
// Other tools report other sizes: tiktoken's n_vocab counts every special token (cl100k 100277,
// o200k 200019) and gpt-tokenizer's `vocabularySize` is a count (100264, 200006), not max id + 1.
//
// The BPE tables come from the npm package gpt-tokenizer, which embeds them in its JS files:
// nothing is downloaded at run time.
import { createRequire } from "node:module";

export type TokenizerName = "byte" | "r50k" | "cl100k" | "o200k";
export const TOKENIZER_NAMES: readonly TokenizerName[] = Object.freeze(["byte", "r50k", "cl100k", "o200k"] as const);

/**
 * What every tokenizer offers: the four of the Brown pipeline (Tokenizer), the word-level vocabulary of
 * a knowledge world (word-tokenizer.ts) and those of Hugging Face model folders (backend/hf: name
 * 'hf:<model>'). Code that takes any tokenizer takes this.
 */
export interface TextTokenizer {
  /** one of TOKENIZER_NAMES, "word", or 'hf:<model>' for a Hugging Face tokenizer */
  readonly name: string;
  /** the underlying encoding: 'utf-8' for byte, else the tiktoken encoding name (word: world-words/<hash>; HF: the model type) */
  readonly encoding: string;
  /** embedding rows a model needs (max token id + 1) */
  readonly vocabSize: number;
  /** <|endoftext|>, or null (byte); never produced by encode() (word: the marker text encodes to it; HF: the first eos id) */
  readonly eotId: number | null;
  /** the input id used to pad SFT batches (eotId, or byte 0 = NUL, which the corpus never contains) */
  readonly padId: number;
  /** identifies the implementation and its version; part of the token cache's source hash */
  readonly fingerprint: string;
  /** text → token ids (lossless: decode(encode(x)) === x for any well-formed string) */
  encode(text: string): Int32Array;
  /** token ids → text; RangeError on an id the tokenizer does not have */
  decode(ids: ArrayLike<number>): string;
}

/** One of the four tokenizers of the Brown pipeline. */
export interface Tokenizer extends TextTokenizer {
  readonly name: TokenizerName;
}

interface GptModule {
  encode(text: string, opts?: { disallowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
}

const require = createRequire(import.meta.url);
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

function checkIds(ids: ArrayLike<number>, vocabSize: number, name: string): void {
  if (ids == null || typeof ids.length !== "number") throw new TypeError(`ids must be an array of token ids (${name})`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`ids[${i}] = ${id} is not a token id of ${name} (0 ≤ id < ${vocabSize})`);
    }
  }
}

function checkText(text: unknown): string {
  if (typeof text !== "string") throw new TypeError(`text must be a string (got ${typeof text})`);
  return text;
}

function byteTokenizer(): Tokenizer {
  return Object.freeze({
    name: "byte" as const,
    encoding: "utf-8",
    vocabSize: 256,
    eotId: null,
    padId: 0,
    fingerprint: "byte/utf-8/1",
    encode(text: string): Int32Array {
      const bytes = Buffer.from(checkText(text), "utf8");
      const out = new Int32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]!;
      return out;
    },
    decode(ids: ArrayLike<number>): string {
      checkIds(ids, 256, "byte");
      return Buffer.from(Uint8Array.from(ids as ArrayLike<number>)).toString("utf8");
    },
  });
}

const BPE: Record<Exclude<TokenizerName, "byte">, { encoding: string; vocabSize: number; eotId: number }> = {
  r50k: { encoding: "r50k_base", vocabSize: 50257, eotId: 50256 },
  cl100k: { encoding: "cl100k_base", vocabSize: 100258, eotId: 100257 },
  o200k: { encoding: "o200k_base", vocabSize: 200000, eotId: 199999 },
};

function bpeTokenizer(name: Exclude<TokenizerName, "byte">): Tokenizer {
  const spec = BPE[name];
  const mod = require(`gpt-tokenizer/encoding/${spec.encoding}`) as GptModule;
  const version = (require("gpt-tokenizer/package.json") as { version: string }).version;
  return Object.freeze({
    name,
    encoding: spec.encoding,
    vocabSize: spec.vocabSize,
    eotId: spec.eotId,
    padId: spec.eotId,
    fingerprint: `gpt-tokenizer@${version}/${spec.encoding}`,
    encode(text: string): Int32Array {
      return Int32Array.from(mod.encode(checkText(text), NO_SPECIAL));
    },
    decode(ids: ArrayLike<number>): string {
      checkIds(ids, spec.vocabSize, name);
      try {
        return mod.decode(Array.from(ids));
      } catch (err) {
        throw new RangeError(`${name}: ${(err as Error).message}`);
      }
    },
  });
}

const cache = new Map<TokenizerName, Tokenizer>();

export function isTokenizerName(name: unknown): name is TokenizerName {
  return typeof name === "string" && (TOKENIZER_NAMES as readonly string[]).includes(name);
}

/**
 * The tokenizer called `name` (byte | r50k | cl100k | o200k); loaded on first use (the BPE
 * tables take 0.1–0.3 s) and shared afterwards. TypeError naming the field for anything else.
 */
export function tokenizer(name: TokenizerName | string): Tokenizer {
  if (!isTokenizerName(name)) {
    throw new TypeError(`tokenizer must be one of ${TOKENIZER_NAMES.join(", ")} (got '${String(name)}')`);
  }
  let t = cache.get(name);
  if (!t) {
    t = name === "byte" ? byteTokenizer() : bpeTokenizer(name);
    cache.set(name, t);
  }
  return t;
}

/** Accepts a tokenizer or its name (for options objects). */
export function resolveTokenizer(t: Tokenizer | TokenizerName | string, field = "tokenizer"): Tokenizer {
  if (typeof t === "string") {
    if (!isTokenizerName(t)) throw new TypeError(`${field} must be one of ${TOKENIZER_NAMES.join(", ")} (got '${t}')`);
    return tokenizer(t);
  }
  if (t && typeof t === "object" && isTokenizerName((t as Tokenizer).name) && typeof (t as Tokenizer).encode === "function") return t;
  throw new TypeError(`${field} must be a tokenizer or one of ${TOKENIZER_NAMES.join(", ")}`);
}
