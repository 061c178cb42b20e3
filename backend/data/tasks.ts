// Multiple-choice tasks built from the Brown annotation. Every question has four options
// (A–D), exactly one of which is correct by the gold tags; questions come from the documents
// of one split only, so they are split by document exactly like the text.
//
//   pos    one question per sentence of 5–40 words: a word that occurs once in the sentence
//          (case-insensitively) and whose tag has a coarse class (tags.ts) is asked about; the
//          class is drawn uniformly among the classes present, then the word, so nouns do not
//          dominate. Options: the gold class and 3 of the other 9 classes.
//   cloze  one question per sentence of 6–40 words: a lower-case content word (base tag nn,
//          nns, vb, vbd, vbg, vbn, vbz, jj or rb; ≥ 3 letters; once in the sentence) is
//          blanked. Options: the word and 3 distractors with the same base tag (hence the same
//          coarse part of speech), drawn uniformly from the corpus vocabulary: lower-case words
//          seen ≥ 5 times whose most frequent base tag is that tag.
//   genre  consecutive sentences of a document, cut into non-overlapping passages of at least
//          40 words. Options: the document's genre and 3 other genres (names from the corpus
//          manual, e.g. "press: reportage").
//
// Sentences and passages are quoted with double quotes; their own double quotes are written as
// single quotes there (quoteInner).
//
// Determinism: each candidate's choices come from a generator seeded by its id; the split's
// candidates are then shuffled by (task, seed, split), and in that order each block of four
// questions gets a random permutation of A–D as its answer positions. Any prefix (`limit`) is
// therefore a random sample whose answer letters are balanced to within one per letter.
// Ids look like pos-<seed>-ca01-<sentence>-<word>, cloze-<seed>-ca01-<sentence>-<word>,
// genre-<seed>-ca01-<first sentence>: stable across runs, for paired comparisons.
import { GENRES, loadCorpus, type BrownDocument, type Corpus } from "./corpus.js";
import { renderTokens, passageText, quoteInner } from "./text.js";
import { checkSeed, checkSplitName, splitDocuments, type SplitName } from "./split.js";
import { COARSE_POS, baseTag, coarsePos, type CoarsePos } from "./tags.js";
import { Rng } from "./rng.js";

export type TaskName = "pos" | "cloze" | "genre";
export const TASK_NAMES: readonly TaskName[] = Object.freeze(["pos", "cloze", "genre"] as const);

export interface Question {
  /** stable id, e.g. 'pos-0-ca01-12-3' */
  id: string;
  task: TaskName;
  split: SplitName;
  /** corpus document index (0 … 499) */
  doc: number;
  /** document file name, e.g. 'ca01' */
  docId: string;
  /** NLTK genre code of the document */
  genre: string;
  /** the question text, without the options */
  question: string;
  /** four distinct option texts, in A–D order */
  options: readonly string[];
  /** index (0–3) of the correct option */
  answer: number;
  /** where it comes from: sentence index in the document, token index in the sentence, gold tag */
  source: { sentence: number; word?: number; tag?: string; sentences?: number };
}

export interface QuestionOptions {
  task: TaskName;
  /** one split (default 'train'), or 'all' for train + validation + test */
  split?: SplitName | "all";
  /** question seed (default 0) */
  seed?: number;
  /** document split seed (default 0), as in prepareSplits */
  splitSeed?: number;
  /** at most this many questions (a seeded random sample; default all) */
  limit?: number;
  corpusDir?: string;
}

export const POS_MIN_WORDS = 5;
export const CLOZE_MIN_WORDS = 6;
export const MAX_SENTENCE_WORDS = 40;
export const GENRE_PASSAGE_WORDS = 40;
export const CLOZE_TAGS: readonly string[] = Object.freeze(["nn", "nns", "vb", "vbd", "vbg", "vbn", "vbz", "jj", "rb"]);
export const CLOZE_MIN_COUNT = 5;
export const BLANK = "____";

const ALPHA_WORD = /^[A-Za-z][A-Za-z'-]*$/;
const LOWER_WORD = /^[a-z]{3,}$/;
const WORDLIKE = /[A-Za-z0-9]/;

export function checkTaskName(task: unknown, field = "task"): TaskName {
  if (typeof task !== "string" || !(TASK_NAMES as readonly string[]).includes(task)) {
    throw new TypeError(`${field} must be one of ${TASK_NAMES.join(", ")} (got '${String(task)}')`);
  }
  return task as TaskName;
}

/** A candidate before its answer position is fixed: options[0] is the correct one. */
interface Candidate {
  id: string;
  task: TaskName;
  doc: BrownDocument;
  question: string;
  correct: string;
  distractors: string[];
  source: Question["source"];
}

function wordCount(words: readonly string[]): number {
  let n = 0;
  for (const w of words) if (WORDLIKE.test(w)) n++;
  return n;
}

/** Token indices whose word occurs exactly once in the sentence (case-insensitive). */
function uniqueIndices(words: readonly string[]): Set<number> {
  const count = new Map<string, number>();
  for (const w of words) count.set(w.toLowerCase(), (count.get(w.toLowerCase()) ?? 0) + 1);
  const out = new Set<number>();
  words.forEach((w, i) => {
    if (count.get(w.toLowerCase()) === 1) out.add(i);
  });
  return out;
}

function posCandidates(doc: BrownDocument, seed: number): Candidate[] {
  const out: Candidate[] = [];
  doc.sentences.forEach((s, si) => {
    const n = wordCount(s.words);
    if (n < POS_MIN_WORDS || n > MAX_SENTENCE_WORDS) return;
    const unique = uniqueIndices(s.words);
    const byClass = new Map<CoarsePos, number[]>();
    s.words.forEach((w, i) => {
      const c = coarsePos(s.tags[i]!);
      if (c && unique.has(i) && ALPHA_WORD.test(w)) {
        const list = byClass.get(c) ?? [];
        list.push(i);
        byClass.set(c, list);
      }
    });
    if (byClass.size === 0) return;
    const rng = new Rng(`pos:${seed}:${doc.id}:${si}`);
    const classes = COARSE_POS.filter((c) => byClass.has(c));
    const cls = rng.pick(classes);
    const wi = rng.pick(byClass.get(cls)!);
    const word = s.words[wi]!;
    const text = quoteInner(renderTokens(s.words).text);
    out.push({
      id: `pos-${seed}-${doc.id}-${si}-${wi}`,
      task: "pos",
      doc,
      question: `In the sentence "${text}", what part of speech is the word '${word}'?`,
      correct: cls,
      distractors: rng.sample(
        COARSE_POS.filter((c) => c !== cls),
        3,
      ),
      source: { sentence: si, word: wi, tag: s.tags[wi]! },
    });
  });
  return out;
}

/** Distractor pools of the cloze task: base tag → sorted lower-case words (see header). */
export function clozeVocabulary(corpus: Corpus): Map<string, string[]> {
  const counts = new Map<string, Map<string, number>>();
  for (const doc of corpus.documents) {
    for (const s of doc.sentences) {
      s.words.forEach((w, i) => {
        const lw = w.toLowerCase();
        if (!LOWER_WORD.test(lw)) return;
        const b = baseTag(s.tags[i]!);
        if (b === null) return;
        let m = counts.get(lw);
        if (!m) counts.set(lw, (m = new Map()));
        m.set(b, (m.get(b) ?? 0) + 1);
      });
    }
  }
  const pools = new Map<string, string[]>(CLOZE_TAGS.map((t) => [t, []]));
  for (const [word, m] of counts) {
    let total = 0;
    let best = "";
    let bestCount = -1;
    // Ties go to the alphabetically first tag, so the choice does not depend on Map order.
    for (const [tag, c] of [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      total += c;
      if (c > bestCount) {
        best = tag;
        bestCount = c;
      }
    }
    if (total >= CLOZE_MIN_COUNT) pools.get(best)?.push(word);
  }
  for (const list of pools.values()) list.sort();
  return pools;
}

/** k distinct words of a sorted pool other than `exclude`, by rejection (pools are large). */
function sampleExcluding(rng: Rng, pool: readonly string[], k: number, exclude: string): string[] {
  const out: string[] = [];
  while (out.length < k) {
    const w = pool[rng.int(pool.length)]!;
    if (w !== exclude && !out.includes(w)) out.push(w);
  }
  return out;
}

function clozeCandidates(doc: BrownDocument, seed: number, pools: Map<string, string[]>): Candidate[] {
  const out: Candidate[] = [];
  doc.sentences.forEach((s, si) => {
    const n = wordCount(s.words);
    if (n < CLOZE_MIN_WORDS || n > MAX_SENTENCE_WORDS) return;
    const unique = uniqueIndices(s.words);
    const eligible: number[] = [];
    s.words.forEach((w, i) => {
      const b = baseTag(s.tags[i]!);
      if (b !== null && CLOZE_TAGS.includes(b) && unique.has(i) && LOWER_WORD.test(w) && (pools.get(b)?.length ?? 0) >= 4) eligible.push(i);
    });
    if (eligible.length === 0) return;
    const rng = new Rng(`cloze:${seed}:${doc.id}:${si}`);
    const wi = rng.pick(eligible);
    const word = s.words[wi]!;
    const pool = pools.get(baseTag(s.tags[wi]!)!)!;
    const text = quoteInner(renderTokens(s.words, new Map([[wi, BLANK]])).text);
    out.push({
      id: `cloze-${seed}-${doc.id}-${si}-${wi}`,
      task: "cloze",
      doc,
      question: `Which word best fills the blank in the sentence "${text}"?`,
      correct: word,
      distractors: sampleExcluding(rng, pool, 3, word),
      source: { sentence: si, word: wi, tag: s.tags[wi]! },
    });
  });
  return out;
}

function genreCandidates(doc: BrownDocument, seed: number): Candidate[] {
  const out: Candidate[] = [];
  const labels = GENRES.map((g) => g.label);
  let start = 0;
  let words = 0;
  for (let si = 0; si < doc.sentences.length; si++) {
    words += wordCount(doc.sentences[si]!.words);
    if (words < GENRE_PASSAGE_WORDS) continue;
    const sentences = doc.sentences.slice(start, si + 1);
    const rng = new Rng(`genre:${seed}:${doc.id}:${start}`);
    out.push({
      id: `genre-${seed}-${doc.id}-${start}`,
      task: "genre",
      doc,
      question: `Which genre of the Brown corpus is this passage from? "${quoteInner(passageText(sentences))}"`,
      correct: doc.genre.label,
      distractors: rng.sample(
        labels.filter((l) => l !== doc.genre.label),
        3,
      ),
      source: { sentence: start, sentences: sentences.length },
    });
    start = si + 1;
    words = 0;
  }
  return out;
}

const memo = new Map<string, Question[]>();

function splitQuestions(corpus: Corpus, task: TaskName, split: SplitName, seed: number, splitSeed: number): Question[] {
  const key = `${corpus.dir}\0${corpus.fingerprint}\0${task}\0${split}\0${seed}\0${splitSeed}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const docSplit = splitDocuments(corpus, { seed: splitSeed });
  const pools = task === "cloze" ? clozeVocabulary(corpus) : null;
  const candidates: Candidate[] = [];
  for (const index of docSplit.documents[split]) {
    const doc = corpus.documents[index]!;
    if (task === "pos") candidates.push(...posCandidates(doc, seed));
    else if (task === "cloze") candidates.push(...clozeCandidates(doc, seed, pools!));
    else candidates.push(...genreCandidates(doc, seed));
  }
  new Rng(`${task}:${seed}:${split}:order`).shuffle(candidates);
  const letters = new Rng(`${task}:${seed}:${split}:letters`);
  let block: number[] = [];
  const questions = candidates.map((c, i) => {
    if (i % 4 === 0) block = letters.shuffle([0, 1, 2, 3]);
    const answer = block[i % 4]!;
    const options = c.distractors.slice();
    options.splice(answer, 0, c.correct);
    return Object.freeze({
      id: c.id,
      task: c.task,
      split,
      doc: c.doc.index,
      docId: c.doc.id,
      genre: c.doc.genre.code,
      question: c.question,
      options: Object.freeze(options),
      answer,
      source: Object.freeze(c.source),
    }) as Question;
  });
  memo.set(key, questions);
  return questions;
}

/**
 * The questions of one task over one split (or all), in their seeded random order; `limit`
 * keeps a prefix. Deterministic for (corpus, task, seed, splitSeed).
 */
export function generateQuestions(opts: QuestionOptions): Question[] {
  if (!opts || typeof opts !== "object") throw new TypeError("options must be an object with a task");
  const task = checkTaskName(opts.task);
  const seed = checkSeed(opts.seed ?? 0, "seed");
  const splitSeed = checkSeed(opts.splitSeed ?? 0, "splitSeed");
  const which = opts.split ?? "train";
  const splits: SplitName[] = which === "all" ? ["train", "validation", "test"] : [checkSplitName(which)];
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 0)) {
    throw new TypeError(`limit must be a non-negative integer (got ${String(opts.limit)})`);
  }
  const corpus = loadCorpus(opts.corpusDir === undefined ? {} : { dir: opts.corpusDir });
  const all = splits.flatMap((s) => splitQuestions(corpus, task, s, seed, splitSeed));
  return opts.limit === undefined ? all.slice() : all.slice(0, opts.limit);
}
