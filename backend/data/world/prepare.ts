// Token streams of a knowledge world, cached per tokenizer:
//
//   <cacheDir>/world/<world hash>/<tokenizer>/<stream>.tokens   int32-le token ids
//   <cacheDir>/world/<world hash>/<tokenizer>/<stream>.docs     int32-le pairs per document:
//                                                               (end offset, person · 4 + kind code)
//   <cacheDir>/world/<world hash>/<tokenizer>/<stream>.json     header (written last)
//
// where <stream> is `epoch-<e>` (the pretraining documents of epoch e) or `validation`. Each
// document is its text followed by DOC_SEPARATOR ("\n\n"), encoded on its own; the stream is the
// documents in order. The header carries the world's hash and checksum, the tokenizer's
// fingerprint and V, counts and SHA-256 of both files and a source hash of all of these; reading
// re-checks them (and every id against V) and rebuilds on any mismatch, like the Brown cache.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../io/atomic.js";
import { fromLeBytes, leBytes, tokensChecksum } from "../cache.js";
import { defaultCacheDir } from "../prepare.js";
import { progressBar } from "../../term/progress.js";
import { sha256Hex } from "../rng.js";
import { isTokenizerName, tokenizer, TOKENIZER_NAMES, type TextTokenizer, type TokenizerName } from "../tokenizers.js";
import { CHAT_MARKERS } from "../chat.js";
import { wordTokenizer, type WordTokenizer } from "../word-tokenizer.js";
import type { WorldConfigInput } from "./config.js";
import { buildWorld, type World } from "./people.js";
import { DOC_KINDS, DOC_SEPARATOR, epochDocuments, epochPlan, fixedTexts, validationDocuments, type DocKind, type WorldDocument } from "./render.js";

export const WORLD_CACHE_FORMAT = "calib-world-tokens/1";
/** Tokenizers a world can be encoded with: the four of tokenizers.ts and its word-level vocabulary. */
export const WORLD_TOKENIZERS: readonly (TokenizerName | "word")[] = Object.freeze([...TOKENIZER_NAMES, "word" as const]);
export type WorldTokenizerName = TokenizerName | "word";

export function isWorldTokenizerName(x: unknown): x is WorldTokenizerName {
  return x === "word" || isTokenizerName(x);
}

const words = new WeakMap<World, WordTokenizer>();

/** The word-level tokenizer of a world: its invented words, the templates' words, digits, letters, punctuation, chat markers. */
export function worldWordTokenizer(world: World): WordTokenizer {
  let t = words.get(world);
  if (!t) {
    const values = Object.values(world.lexicon.pools).flat();
    t = wordTokenizer([...fixedTexts(), ...world.lexicon.firstNames, ...world.lexicon.lastNames, ...values, ...Object.values(CHAT_MARKERS)]);
    words.set(world, t);
  }
  return t;
}

/** A tokenizer by name for a world ("word" needs the world). */
export function worldTokenizer(world: World, name: string): TextTokenizer {
  if (name === "word") return worldWordTokenizer(world);
  if (!isTokenizerName(name)) throw new TypeError(`tokenizer must be one of ${WORLD_TOKENIZERS.join(", ")} (got '${name}')`);
  return tokenizer(name);
}

export type StreamName = "validation" | `epoch-${number}`;

export interface WorldStreamHeader {
  format: string;
  world: string;
  worldChecksum: string;
  stream: StreamName;
  tokenizer: string;
  fingerprint: string;
  vocabSize: number;
  dtype: "int32-le";
  count: number;
  documents: number;
  checksum: string;
  docsChecksum: string;
  /** tokens per document kind */
  kindTokens: Record<DocKind, number>;
  sourceHash: string;
  createdAt: string;
  encodeSeconds: number;
}

/** An encoded stream; document i is tokens[docStarts[i] … docStarts[i+1]) (the last ends at the stream's end). */
export interface WorldStream {
  stream: StreamName;
  tokenizer: string;
  vocabSize: number;
  tokens: Int32Array;
  /** document index (position in the stream's document order) of every token */
  tokenDoc: Int32Array;
  docStarts: Int32Array;
  /** person of each document */
  docPerson: Int32Array;
  /** kind of each document: index into DOC_KINDS */
  docKind: Uint8Array;
  checksum: string;
  header: WorldStreamHeader;
  path: string;
  /** true when encoded now, false when read from the cache */
  built: boolean;
  /** why it was rebuilt ("" when read from the cache) */
  rebuildReason: string;
}

export class WorldCacheError extends Error {
  override name = "WorldCacheError";
}

function streamName(stream: "validation" | number): StreamName {
  if (stream === "validation") return "validation";
  if (!Number.isSafeInteger(stream) || stream < 0) throw new TypeError(`epoch must be a non-negative integer (got ${String(stream)})`);
  return `epoch-${stream}`;
}

function sourceHash(world: World, tok: TextTokenizer, stream: StreamName): string {
  return sha256Hex(JSON.stringify({ world: world.hash, checksum: world.checksum, tokenizer: tok.fingerprint, vocabSize: tok.vocabSize, stream, separator: DOC_SEPARATOR }));
}

function paths(dir: string, stream: StreamName) {
  return { tokens: join(dir, `${stream}.tokens`), docs: join(dir, `${stream}.docs`), header: join(dir, `${stream}.json`) };
}

function expand(tokens: Int32Array, pairs: Int32Array, h: Pick<WorldStreamHeader, "documents" | "count">, where: string) {
  const n = h.documents;
  const docStarts = new Int32Array(n), docPerson = new Int32Array(n), docKind = new Uint8Array(n);
  const tokenDoc = new Int32Array(tokens.length);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const end = pairs[2 * i]!, code = pairs[2 * i + 1]!;
    if (end < pos || end > h.count || (code & 3) >= DOC_KINDS.length) throw new WorldCacheError(`${where}: document ${i} has a bad span or kind`);
    docStarts[i] = pos;
    docPerson[i] = code >> 2;
    docKind[i] = code & 3;
    tokenDoc.fill(i, pos, end);
    pos = end;
  }
  if (pos !== h.count) throw new WorldCacheError(`${where}: documents cover ${pos} of ${h.count} tokens`);
  return { docStarts, docPerson, docKind, tokenDoc };
}

function readStream(dir: string, stream: StreamName, tok: TextTokenizer, expectHash: string): WorldStream {
  const p = paths(dir, stream);
  if (!existsSync(p.header) || !existsSync(p.tokens) || !existsSync(p.docs)) throw new WorldCacheError("missing");
  let h: WorldStreamHeader;
  try {
    h = JSON.parse(readFileSync(p.header, "utf8")) as WorldStreamHeader;
  } catch {
    throw new WorldCacheError(`${p.header}: unreadable header`);
  }
  if (!h || h.format !== WORLD_CACHE_FORMAT || h.stream !== stream || !Number.isSafeInteger(h.count) || !Number.isSafeInteger(h.documents)) {
    throw new WorldCacheError(`${p.header}: not a ${WORLD_CACHE_FORMAT} header for ${stream}`);
  }
  if (h.sourceHash !== expectHash || h.tokenizer !== tok.name || h.vocabSize !== tok.vocabSize) throw new WorldCacheError(`${p.tokens}: the world or tokenizer changed since it was written`);
  const bytes = readFileSync(p.tokens), docBytes = readFileSync(p.docs);
  if (bytes.length !== h.count * 4 || docBytes.length !== h.documents * 8) throw new WorldCacheError(`${p.tokens}: file sizes do not match the header (truncated?)`);
  const tokens = fromLeBytes(bytes), pairs = fromLeBytes(docBytes);
  const checksum = tokensChecksum(tokens);
  if (checksum !== h.checksum || tokensChecksum(pairs) !== h.docsChecksum) throw new WorldCacheError(`${p.tokens}: checksum mismatch (file corrupted or replaced)`);
  for (let i = 0; i < tokens.length; i++) if (tokens[i]! < 0 || tokens[i]! >= h.vocabSize) throw new WorldCacheError(`${p.tokens}: token ${i} = ${tokens[i]} outside [0, ${h.vocabSize})`);
  return { stream, tokenizer: h.tokenizer, vocabSize: h.vocabSize, tokens, ...expand(tokens, pairs, h, p.header), checksum, header: h, path: p.tokens, built: false, rebuildReason: "" };
}

/** Encodes documents (each + DOC_SEPARATOR) into one stream. */
export function encodeDocuments(docs: Iterable<WorldDocument>, tok: TextTokenizer, total: number, o: { progress?: boolean; label?: string } = {}) {
  const bar = progressBar(o.label ?? `encoding with ${tok.name}`, total, { enabled: o.progress ?? false, unit: "docs" });
  const chunks: Int32Array[] = [];
  let buf = new Int32Array(1 << 20), used = 0, count = 0;
  const pairs: number[] = [];
  const kindTokens: Record<DocKind, number> = { bio: 0, qa: 0, mcq: 0 };
  const code = (k: DocKind) => DOC_KINDS.indexOf(k);
  for (const d of docs) {
    const ids = tok.encode(d.text + DOC_SEPARATOR);
    if (used + ids.length > buf.length) {
      chunks.push(buf.subarray(0, used));
      buf = new Int32Array(Math.max(1 << 20, ids.length));
      used = 0;
    }
    buf.set(ids, used);
    used += ids.length;
    count += ids.length;
    kindTokens[d.kind] += ids.length;
    pairs.push(count, d.person * 4 + code(d.kind));
    bar.tick();
  }
  chunks.push(buf.subarray(0, used));
  const tokens = new Int32Array(count);
  let off = 0;
  for (const c of chunks) {
    tokens.set(c, off);
    off += c.length;
  }
  bar.done(`${count} tokens`);
  return { tokens, pairs: Int32Array.from(pairs), kindTokens };
}

export interface WorldStreamOptions {
  world: World | WorldConfigInput | "default";
  /** a tokenizer, or its name (byte | r50k | cl100k | o200k | word) */
  tokenizer: TextTokenizer | string;
  /** root of the cache (default data/cache/); files go to <cacheDir>/world/<hash>/<tokenizer>/ */
  cacheDir?: string;
  /** progress bar on stderr (default true) */
  progress?: boolean;
  /** re-encode even when the cache is valid */
  force?: boolean;
}

function resolve(o: WorldStreamOptions): { world: World; tok: TextTokenizer; dir: string } {
  if (!o || typeof o !== "object") throw new TypeError("options must be an object with a world and a tokenizer");
  const world = isWorld(o.world) ? o.world : buildWorld(o.world);
  const tok = typeof o.tokenizer === "string" ? worldTokenizer(world, o.tokenizer) : o.tokenizer;
  if (!tok || typeof tok.encode !== "function") throw new TypeError("tokenizer must be a tokenizer or one of " + WORLD_TOKENIZERS.join(", "));
  return { world, tok, dir: join(o.cacheDir ?? defaultCacheDir(), "world", world.hash, tok.name) };
}

export function isWorld(x: unknown): x is World {
  return typeof x === "object" && x !== null && Array.isArray((x as World).people) && typeof (x as World).checksum === "string";
}

/**
 * One encoded stream of a world — `validation`, or epoch e's pretraining documents — from the
 * cache when valid, else rendered, encoded (progress bar on stderr) and written back.
 */
export function worldStream(o: WorldStreamOptions & { stream: "validation" | number }): WorldStream {
  const { world, tok, dir } = resolve(o);
  const stream = streamName(o.stream);
  const hash = sourceHash(world, tok, stream);
  let reason = "forced";
  if (!o.force) {
    try {
      return readStream(dir, stream, tok, hash);
    } catch (err) {
      if (!(err instanceof WorldCacheError)) throw err;
      reason = err.message;
      if ((o.progress ?? true) && reason !== "missing") process.stderr.write(`data: ${reason}; rebuilding\n`);
    }
  }
  const started = performance.now();
  const docs = stream === "validation" ? validationDocuments(world) : epochDocuments(world, Number(stream.slice(6)));
  const total = stream === "validation" ? world.people.length : epochPlan(world, Number(stream.slice(6))).length;
  const { tokens, pairs, kindTokens } = encodeDocuments(docs, tok, total, { progress: o.progress ?? true, label: `world ${world.hash.slice(0, 8)} ${stream} → ${tok.name}` });
  const p = paths(dir, stream);
  mkdirSync(dir, { recursive: true });
  const header: WorldStreamHeader = {
    format: WORLD_CACHE_FORMAT, world: world.hash, worldChecksum: world.checksum, stream, tokenizer: tok.name, fingerprint: tok.fingerprint,
    vocabSize: tok.vocabSize, dtype: "int32-le", count: tokens.length, documents: pairs.length / 2, checksum: tokensChecksum(tokens),
    docsChecksum: tokensChecksum(pairs), kindTokens, sourceHash: hash, createdAt: new Date().toISOString(), encodeSeconds: (performance.now() - started) / 1000,
  };
  writeFileAtomic(p.tokens, leBytes(tokens));
  writeFileAtomic(p.docs, leBytes(pairs));
  writeFileAtomic(p.header, JSON.stringify(header, null, 1) + "\n");
  return { stream, tokenizer: tok.name, vocabSize: tok.vocabSize, tokens, ...expand(tokens, pairs, header, p.header), checksum: header.checksum, header, path: p.tokens, built: true, rebuildReason: reason };
}

/** Tokens of a stream: from its cached header when that belongs to this world and tokenizer, else by building the stream. */
export function worldStreamLength(o: WorldStreamOptions & { stream: "validation" | number }): number {
  const { world, tok, dir } = resolve(o);
  const stream = streamName(o.stream);
  const p = paths(dir, stream);
  try {
    const h = JSON.parse(readFileSync(p.header, "utf8")) as WorldStreamHeader;
    if (h.sourceHash === sourceHash(world, tok, stream) && Number.isSafeInteger(h.count)) return h.count;
  } catch {
    // not cached: build it
  }
  return worldStream(o).tokens.length;
}

export interface PreparedWorld {
  world: World;
  tokenizer: TextTokenizer;
  /** validation, epoch-0 … epoch-(epochs−1) */
  streams: WorldStream[];
  dir: string;
  seconds: number;
}

/** Encodes (or verifies the cache of) the validation stream and the first `epochs` epochs. */
export function prepareWorld(o: WorldStreamOptions & { epochs?: number }): PreparedWorld {
  const started = performance.now();
  const epochs = o.epochs ?? 1;
  if (!Number.isSafeInteger(epochs) || epochs < 1) throw new TypeError(`epochs must be a positive integer (got ${String(epochs)})`);
  const { world, tok, dir } = resolve(o);
  const streams = [worldStream({ ...o, world, tokenizer: tok, stream: "validation" })];
  for (let e = 0; e < epochs; e++) streams.push(worldStream({ ...o, world, tokenizer: tok, stream: e }));
  return { world, tokenizer: tok, streams, dir, seconds: (performance.now() - started) / 1000 };
}
