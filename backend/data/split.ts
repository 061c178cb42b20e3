// The document-level split: train / validation / test, stratified by genre, seeded.
//
// Rule (simple enough to re-implement anywhere): within each genre, order the documents by the
// hex SHA-256 of `${seed}:${id}` (e.g. "0:ca01"); the first nTest go to test, the next nVal to
// validation, the rest to train, where for a genre of n documents
//   nTest = n ≥ 3 ? max(1, round(n · 0.1)) : 0,   nVal = n ≥ 2 ? max(1, round(n · 0.1)) : 0
// (round = Math.round). Every genre is thus in every split. Documents keep corpus order
// inside a split.
import type { BrownDocument, Corpus } from "./corpus.js";
import { sha256Hex } from "./rng.js";

export type SplitName = "train" | "validation" | "test";
export const SPLITS: readonly SplitName[] = Object.freeze(["train", "validation", "test"] as const);

export const VALIDATION_FRACTION = 0.1;
export const TEST_FRACTION = 0.1;

export interface DocumentSplit {
  seed: number;
  /** split of each document, indexed by corpus document index */
  splitOf: SplitName[];
  /** corpus document indices of each split, ascending */
  documents: Record<SplitName, number[]>;
  /** SHA-256 of the lines "<id>\t<split>\n" in corpus order: equal checksums ⇔ equal splits */
  checksum: string;
}

export function checkSplitName(split: unknown, field = "split"): SplitName {
  if (typeof split !== "string" || !(SPLITS as readonly string[]).includes(split)) {
    throw new TypeError(`${field} must be one of ${SPLITS.join(", ")} (got '${String(split)}')`);
  }
  return split as SplitName;
}

export function checkSeed(seed: unknown, field = "seed"): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new TypeError(`${field} must be a non-negative integer (got ${String(seed)})`);
  }
  return seed;
}

/** Splits the corpus's documents (see the rule above). */
export function splitDocuments(corpus: Corpus | readonly BrownDocument[], opts: { seed?: number } = {}): DocumentSplit {
  const seed = checkSeed(opts.seed ?? 0);
  const docs = Array.isArray(corpus) ? (corpus as readonly BrownDocument[]) : (corpus as Corpus).documents;
  const byGenre = new Map<string, { doc: BrownDocument; key: string }[]>();
  for (const doc of docs) {
    const list = byGenre.get(doc.genre.letter) ?? [];
    list.push({ doc, key: sha256Hex(`${seed}:${doc.id}`) });
    byGenre.set(doc.genre.letter, list);
  }
  const splitOf: SplitName[] = new Array(docs.length);
  for (const list of byGenre.values()) {
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const n = list.length;
    const nTest = n >= 3 ? Math.max(1, Math.round(n * TEST_FRACTION)) : 0;
    const nVal = n >= 2 ? Math.max(1, Math.round(n * VALIDATION_FRACTION)) : 0;
    list.forEach(({ doc }, i) => {
      splitOf[doc.index] = i < nTest ? "test" : i < nTest + nVal ? "validation" : "train";
    });
  }
  const documents: Record<SplitName, number[]> = { train: [], validation: [], test: [] };
  let lines = "";
  docs.forEach((doc, i) => {
    if (doc.index !== i) throw new RangeError(`documents must be in corpus order (document ${doc.id} has index ${doc.index}, expected ${i})`);
    const s = splitOf[i]!;
    documents[s].push(i);
    lines += `${doc.id}\t${s}\n`;
  });
  return { seed, splitOf, documents, checksum: sha256Hex(lines) };
}
