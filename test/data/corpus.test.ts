// The Brown reader against the corpus's own documentation (CONTENTS, cats.txt), parsed here
// independently, and the plain-text rendering against hand-written expectations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { GENRES, defaultCorpusDir, documentText, loadCorpus, parseDocument, renderTokens, sentenceText } from "../../backend/data/index.js";

const dir = defaultCorpusDir();
const corpus = loadCorpus();

/** CONTENTS: entries "A01. …" with, for most, a line "2,015 words …" (or just "2,044 …"). */
function contentsList(): { id: string; words: number | null }[] {
  const text = readFileSync(join(dir, "CONTENTS"), "utf8");
  const heads = [...text.matchAll(/^([A-R]\d\d)\./gm)];
  return heads.map((m, k) => {
    const seg = text.slice(m.index!, k + 1 < heads.length ? heads[k + 1]!.index : text.length);
    const w = /^\s*(\d[,.]\d{3})(?:\s+words?)?\s/m.exec(seg);
    return { id: `c${m[1]!.toLowerCase()}`, words: w ? Number(w[1]!.replace(/[,.]/, "")) : null };
  });
}

test("the documents are exactly the corpus's own document list (CONTENTS and cats.txt)", () => {
  const listed = contentsList();
  assert.equal(listed.length, 500);
  assert.deepEqual(
    corpus.documents.map((d) => d.id),
    listed.map((e) => e.id),
  );
  corpus.documents.forEach((d, i) => assert.equal(d.index, i));
  const cats = new Map(
    readFileSync(join(dir, "cats.txt"), "utf8")
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/) as [string, string]),
  );
  assert.equal(cats.size, 500);
  for (const d of corpus.documents) {
    assert.equal(d.genre.code, cats.get(d.id), d.id);
    assert.equal(d.genre.letter, d.id[1]);
  }
  // Genre sizes as listed in the manual.
  const perLetter = new Map<string, number>();
  for (const e of listed) perLetter.set(e.id[1]!, (perLetter.get(e.id[1]!) ?? 0) + 1);
  const expected = { a: 44, b: 27, c: 17, d: 17, e: 36, f: 48, g: 75, h: 30, j: 80, k: 29, l: 24, m: 6, n: 29, p: 29, r: 9 };
  assert.deepEqual(Object.fromEntries(perLetter), expected);
  assert.deepEqual(
    GENRES.map((g) => g.letter),
    Object.keys(expected),
  );
  // Genre names as in the manual's header ("A. PRESS: REPORTAGE" …, "K: FICTION: GENERAL").
  const contents = readFileSync(join(dir, "CONTENTS"), "utf8");
  for (const g of GENRES) {
    const m = new RegExp(`^${g.letter.toUpperCase()}[.:] (.+)$`, "m").exec(contents);
    assert.ok(m, g.letter);
    assert.equal(g.label, m[1]!.trim().toLowerCase());
  }
});

test("token, sentence and paragraph counts match an independent count of the files", () => {
  let tokens = 0;
  let sentences = 0;
  let paragraphs = 0;
  for (const f of readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n))) {
    const text = readFileSync(join(dir, f), "utf8");
    tokens += text.split(/\s+/).filter(Boolean).length;
    const blocks = text.split(/\n\s*\n/).filter((b) => b.trim() !== "");
    paragraphs += blocks.length;
    for (const b of blocks) sentences += b.split("\n").filter((l) => l.trim() !== "").length;
  }
  const sum = (f: (d: (typeof corpus.documents)[number]) => number) => corpus.documents.reduce((a, d) => a + f(d), 0);
  assert.equal(sum((d) => d.tokenCount), tokens);
  assert.equal(sum((d) => d.sentences.length), sentences);
  assert.equal(sum((d) => d.paragraphs.length), paragraphs);
  // The figures NLTK reports for its copy of the corpus.
  assert.equal(tokens, 1161192);
  assert.equal(sentences, 57340);
  assert.equal(paragraphs, 15667);
});

test("word counts agree with the manual's per-document counts (within 3.5%, total within 0.5%)", () => {
  const listed = contentsList().filter((e) => e.words !== null);
  assert.ok(listed.length >= 497);
  let ours = 0;
  let theirs = 0;
  for (const e of listed) {
    const d = corpus.documents.find((x) => x.id === e.id)!;
    const rel = Math.abs(d.wordCount - e.words!) / e.words!;
    assert.ok(rel < 0.035, `${e.id}: ${d.wordCount} words vs ${e.words} in CONTENTS`);
    ours += d.wordCount;
    theirs += e.words!;
  }
  assert.ok(Math.abs(ours - theirs) / theirs < 0.005, `${ours} vs ${theirs}`);
});

test("sentences keep every (word, tag) pair of the file, tags lower-case", () => {
  const d = corpus.documents[0]!;
  const s = d.sentences[0]!;
  assert.deepEqual(s.words.slice(0, 5), ["The", "Fulton", "County", "Grand", "Jury"]);
  assert.deepEqual(s.tags.slice(0, 5), ["at", "np-tl", "nn-tl", "jj-tl", "nn-tl"]);
  assert.equal(s.words.length, s.tags.length);
});

test("plain text rejoins punctuation the way a reader expects", () => {
  const r = (line: string) => sentenceText(parseDocument("ca99", line, 0).sentences[0]!);
  assert.equal(r("``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./."), '"Only a handful", the jury said.');
  assert.equal(r("He/pps said/vbd (/( quietly/rb )/) :/: no/at ;/. ;/."), "He said (quietly): no;");
  assert.equal(r("Why/wrb ?/. ?/."), "Why?");
  assert.equal(r("won/vbn by/in Ivan/np Allen/np Jr./np ./."), "won by Ivan Allen Jr.");
  assert.equal(r("the/at word/nn '/' lion/nn '/' is/bez short/jj ./."), "the word 'lion' is short.");
  assert.equal(r("it/pps costs/vbz $5/nns --/-- or/cc 10/cd %/nn ./."), "it costs $5 -- or 10%.");
  // Token spans point at the words in the text.
  const words = ["``", "Yes", "''", ",", "she", "said", "."];
  const rt = renderTokens(words);
  assert.equal(rt.text, '"Yes", she said.');
  for (let i = 0; i < words.length; i++) {
    const surface = words[i] === "``" || words[i] === "''" ? '"' : words[i];
    assert.equal(rt.text.slice(rt.starts[i], rt.ends[i]), surface);
  }
  // A replaced token keeps the spacing of the original.
  assert.equal(renderTokens(["the", "dog", "barked", "."], new Map([[1, "____"]])).text, "the ____ barked.");
});

test("document text: sentences joined by spaces, paragraphs by a blank line, one final newline", () => {
  const doc = parseDocument("cb07", "\n\n\tA/at b/nn ./.\nC/np d/vbd ./.\n\n\n\tE/np f/vbd ./.\n", 3);
  assert.equal(doc.genre.code, "editorial");
  assert.equal(doc.index, 3);
  assert.equal(documentText(doc), "A b. C d.\n\nE f.\n");
  assert.equal(doc.wordCount, 6);
  assert.equal(doc.tokenCount, 9);
  const real = documentText(corpus.documents[0]!);
  assert.ok(real.startsWith("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place.\n\n"));
  assert.ok(!/ [,.;:?!]/.test(real.replace(/ -- /g, "")), "no space before punctuation");
});

test("malformed input is rejected with the file and line", () => {
  assert.throws(() => parseDocument("ca01", "The/at dog\n", 0), /ca01:1: token 'dog' is not word\/tag/);
  assert.throws(() => parseDocument("xx01", "a/at\n", 0), RangeError);
  assert.throws(() => parseDocument("ca01", "\n\n", 0), /no sentences/);
  assert.throws(() => loadCorpus({ dir: "/nonexistent/brown" }), /cannot read the Brown corpus directory/);
});
