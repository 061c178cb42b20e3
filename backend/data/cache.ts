// Binary token cache: one split of one tokenizer is a raw little-endian int32 file
// `<split>.tokens` plus a JSON header `<split>.json`:
//
//   { format, tokenizer, encoding, vocabSize, split, splitSeed, splitChecksum, dtype: "int32-le",
//     count, checksum (SHA-256 of the .tokens bytes), sourceHash, corpusFingerprint,
//     documents: [{ index, id, genre, start, end, words, sentences }], createdAt, encodeSeconds }
//
// The tokens file is written first and the header last, both atomically (temp + rename), so a
// header always describes a complete tokens file of its own making; readTokenCache() then
// re-checks everything it can (tokenizer, V, source hash, size, checksum, id range, document
// spans) and throws TokenCacheError with a reason rather than return tokens it cannot vouch for.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { endianness } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { sha256Hex } from "./rng.js";
import type { SplitName } from "./split.js";
import type { TokenizerName } from "./tokenizers.js";

export const CACHE_FORMAT = "calib-brown-tokens/1";

/** One document's place in a split's token stream: tokens [start, end). */
export interface DocSpan {
  /** corpus document index (0 … 499) */
  index: number;
  /** file name, e.g. 'ca01' */
  id: string;
  /** NLTK genre code, e.g. 'news' */
  genre: string;
  start: number;
  end: number;
  /** words (tokens with a letter or digit) in the tagged document */
  words: number;
  sentences: number;
}

export interface TokenCacheHeader {
  format: string;
  tokenizer: TokenizerName;
  encoding: string;
  vocabSize: number;
  split: SplitName;
  splitSeed: number;
  splitChecksum: string;
  dtype: "int32-le";
  count: number;
  checksum: string;
  sourceHash: string;
  corpusFingerprint: string;
  documents: DocSpan[];
  createdAt: string;
  encodeSeconds: number;
}

/** An encoded split: the token stream of its documents, in corpus order, with no separators. */
export interface SplitTokens {
  split: SplitName;
  tokenizer: TokenizerName;
  vocabSize: number;
  /** all tokens of the split; document k is tokens[docs[k].start … docs[k].end) */
  tokens: Int32Array;
  docs: DocSpan[];
  /** corpus document index of every token (same length as tokens) */
  tokenDoc: Int32Array;
  /** SHA-256 of the tokens as little-endian int32 */
  checksum: string;
  header: TokenCacheHeader;
  /** the .tokens file it was read from or written to */
  path: string;
}

export type TokenCacheProblem = "missing" | "header" | "tokenizer" | "source" | "size" | "checksum" | "range";

/** A cache file that cannot be used; `reason` says why (prepareSplits rebuilds on any of them). */
export class TokenCacheError extends Error {
  override name = "TokenCacheError";
  constructor(
    readonly reason: TokenCacheProblem,
    message: string,
  ) {
    super(message);
  }
}

export function cachePaths(dir: string, split: SplitName): { tokens: string; header: string } {
  return { tokens: join(dir, `${split}.tokens`), header: join(dir, `${split}.json`) };
}

const LITTLE_ENDIAN = endianness() === "LE";

/** The bytes of an int32 array, little-endian (a view when the machine is little-endian). */
export function leBytes(tokens: Int32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
  const out = new Uint8Array(tokens.length * 4);
  const view = new DataView(out.buffer);
  tokens.forEach((t, i) => view.setInt32(i * 4, t, true));
  return out;
}

/** An int32 array from little-endian bytes (a copy). */
export function fromLeBytes(bytes: Buffer): Int32Array {
  const out = new Int32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt32(i * 4, true);
  }
  return out;
}

export function tokensChecksum(tokens: Int32Array): string {
  return sha256Hex(leBytes(tokens));
}

export function tokenDocIndex(docs: readonly DocSpan[], count: number): Int32Array {
  const out = new Int32Array(count);
  for (const d of docs) out.fill(d.index, d.start, d.end);
  return out;
}

/** Writes tokens then header (both atomic). Returns the SplitTokens it describes. */
export function writeTokenCache(
  dir: string,
  header: Omit<TokenCacheHeader, "format" | "dtype" | "count" | "checksum">,
  tokens: Int32Array,
): SplitTokens {
  const paths = cachePaths(dir, header.split);
  mkdirSync(dirname(paths.tokens), { recursive: true });
  const checksum = tokensChecksum(tokens);
  const full: TokenCacheHeader = {
    format: CACHE_FORMAT,
    tokenizer: header.tokenizer,
    encoding: header.encoding,
    vocabSize: header.vocabSize,
    split: header.split,
    splitSeed: header.splitSeed,
    splitChecksum: header.splitChecksum,
    dtype: "int32-le",
    count: tokens.length,
    checksum,
    sourceHash: header.sourceHash,
    corpusFingerprint: header.corpusFingerprint,
    documents: header.documents,
    createdAt: header.createdAt,
    encodeSeconds: header.encodeSeconds,
  };
  writeFileAtomic(paths.tokens, leBytes(tokens));
  writeFileAtomic(paths.header, JSON.stringify(full, null, 1) + "\n");
  return {
    split: full.split,
    tokenizer: full.tokenizer,
    vocabSize: full.vocabSize,
    tokens,
    docs: full.documents,
    tokenDoc: tokenDocIndex(full.documents, tokens.length),
    checksum,
    header: full,
    path: paths.tokens,
  };
}

export interface CacheExpectation {
  tokenizer: TokenizerName;
  vocabSize: number;
  /** when given, the header's sourceHash must equal it (inputs unchanged) */
  sourceHash?: string;
}

/**
 * Reads and verifies one cached split. Throws TokenCacheError when the files are missing, the
 * header is unreadable, the cache belongs to another tokenizer or V, the inputs changed
 * (sourceHash), the tokens file has the wrong size (truncated), its checksum differs, an id is
 * out of range, or the document spans do not tile the stream.
 */
export function readTokenCache(dir: string, split: SplitName, expect: CacheExpectation): SplitTokens {
  const paths = cachePaths(dir, split);
  if (!existsSync(paths.header) || !existsSync(paths.tokens)) {
    throw new TokenCacheError("missing", `no cached ${split} split in ${dir}`);
  }
  let h: TokenCacheHeader;
  try {
    h = JSON.parse(readFileSync(paths.header, "utf8")) as TokenCacheHeader;
  } catch (err) {
    throw new TokenCacheError("header", `${paths.header}: unreadable header (${(err as Error).message})`);
  }
  if (!h || h.format !== CACHE_FORMAT || h.dtype !== "int32-le" || !Number.isSafeInteger(h.count) || !Array.isArray(h.documents)) {
    throw new TokenCacheError("header", `${paths.header}: not a ${CACHE_FORMAT} header`);
  }
  if (h.split !== split) throw new TokenCacheError("header", `${paths.header}: header is for split '${h.split}', not '${split}'`);
  if (h.tokenizer !== expect.tokenizer || h.vocabSize !== expect.vocabSize) {
    throw new TokenCacheError(
      "tokenizer",
      `${paths.tokens}: cache was made with tokenizer ${h.tokenizer} (V=${h.vocabSize}), not ${expect.tokenizer} (V=${expect.vocabSize})`,
    );
  }
  if (expect.sourceHash !== undefined && h.sourceHash !== expect.sourceHash) {
    throw new TokenCacheError("source", `${paths.tokens}: inputs changed since the cache was made (source hash differs)`);
  }
  const bytes = readFileSync(paths.tokens);
  if (bytes.length !== h.count * 4) {
    throw new TokenCacheError(
      "size",
      `${paths.tokens}: ${bytes.length} bytes, header says ${h.count} int32 tokens (${h.count * 4} bytes): truncated or overwritten`,
    );
  }
  const tokens = fromLeBytes(bytes);
  const checksum = tokensChecksum(tokens);
  if (checksum !== h.checksum) throw new TokenCacheError("checksum", `${paths.tokens}: checksum mismatch (file corrupted or replaced)`);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t < 0 || t >= h.vocabSize) throw new TokenCacheError("range", `${paths.tokens}: token ${i} = ${t} outside [0, ${h.vocabSize})`);
  }
  let pos = 0;
  for (const d of h.documents) {
    if (d.start !== pos || !(d.end >= d.start)) throw new TokenCacheError("header", `${paths.header}: document spans do not tile the stream at ${d.id}`);
    pos = d.end;
  }
  if (pos !== h.count) throw new TokenCacheError("header", `${paths.header}: document spans cover ${pos} of ${h.count} tokens`);
  return {
    split,
    tokenizer: h.tokenizer,
    vocabSize: h.vocabSize,
    tokens,
    docs: h.documents,
    tokenDoc: tokenDocIndex(h.documents, tokens.length),
    checksum,
    header: h,
    path: paths.tokens,
  };
}

/** The document span containing stream position `pos` (binary search); RangeError outside. */
export function docAt(split: Pick<SplitTokens, "docs" | "tokens">, pos: number): DocSpan {
  if (!Number.isInteger(pos) || pos < 0 || pos >= split.tokens.length) {
    throw new RangeError(`pos must be an integer in [0, ${split.tokens.length}) (got ${pos})`);
  }
  let lo = 0;
  let hi = split.docs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (split.docs[mid]!.start <= pos) lo = mid;
    else hi = mid - 1;
  }
  return split.docs[lo]!;
}
