// Multiple-choice tasks: every question checked against the gold annotation with references
// written here (coarse classes, dominant tags, genre names), balance of answer letters,
// split by document, determinism and stable ids.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BLANK,
  GENRES,
  SPLITS,
  TASK_NAMES,
  documentText,
  generateQuestions,
  loadCorpus,
  sentenceText,
  splitDocuments,
  type Question,
  type TaskName,
} from "../../backend/data/index.js";

const corpus = loadCorpus();
const split0 = splitDocuments(corpus, { seed: 0 });
const all = Object.fromEntries(TASK_NAMES.map((t) => [t, generateQuestions({ task: t, split: "all", seed: 0 })])) as Record<TaskName, Question[]>;

// Reference: Brown base tags → the 10 coarse classes (written out independently of tags.ts).
const REF_COARSE: Record<string, string> = {};
for (const [cls, tags] of Object.entries({
  noun: ["nn", "nns", "np", "nps", "nr", "nrs", "nn$", "nns$", "np$", "nps$", "nr$"],
  verb: ["vb", "vbd", "vbg", "vbn", "vbz", "be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez", "do", "dod", "doz", "hv", "hvd", "hvg", "hvn", "hvz", "md"],
  adjective: ["jj", "jjr", "jjs", "jjt"],
  adverb: ["rb", "rbr", "rbt", "ql", "wrb"],
  pronoun: ["pps", "ppss", "ppo", "ppl", "ppls", "pn", "pp$$", "wps", "wpo"],
  determiner: ["at"],
  preposition: ["in"],
  conjunction: ["cc", "cs"],
  numeral: ["cd"],
  interjection: ["uh"],
})) {
  for (const t of tags) REF_COARSE[t] = cls;
}
const CLASSES = new Set(Object.values(REF_COARSE));
/** 'nn-tl-hl' → 'nn', 'do*' → 'do', foreign and compound tags → null. */
function refBase(tag: string): string | null {
  if (tag.startsWith("fw-") || tag.includes("+")) return null;
  const parts = tag.split("-");
  let base = parts[0]!;
  if (parts.length > 1 && parts.slice(1).some((p) => !["tl", "hl", "nc"].includes(p))) base = tag; // e.g. '--' itself
  return base.length > 1 && base.endsWith("*") ? base.slice(0, -1) : base;
}

test("every task has ≥ 2,000 questions, 4 distinct options, one answer index, unique ids", () => {
  for (const task of TASK_NAMES) {
    const qs = all[task];
    assert.ok(qs.length >= 2000, `${task}: ${qs.length}`);
    const ids = new Set<string>();
    for (const q of qs) {
      assert.equal(q.task, task);
      assert.equal(q.options.length, 4);
      assert.equal(new Set(q.options.map((o) => o.toLowerCase())).size, 4, `${q.id}: options not distinct`);
      assert.ok(Number.isInteger(q.answer) && q.answer >= 0 && q.answer < 4);
      assert.ok(!ids.has(q.id), `duplicate id ${q.id}`);
      ids.add(q.id);
      assert.ok(q.id.startsWith(`${task}-0-${q.docId}-`), q.id);
      assert.equal(corpus.documents[q.doc]!.id, q.docId);
    }
  }
});

test("answer letters are balanced: each within ±3% of 25% per task, per split with ≥ 2,000 questions, and in prefixes", () => {
  const check = (qs: readonly Question[], what: string) => {
    const c = [0, 0, 0, 0];
    for (const q of qs) c[q.answer]!++;
    for (let k = 0; k < 4; k++) assert.ok(Math.abs(c[k]! / qs.length - 0.25) <= 0.03, `${what}: letter ${"ABCD"[k]} ${c[k]}/${qs.length}`);
  };
  let checked = 0;
  for (const task of TASK_NAMES) {
    check(all[task], task);
    for (const split of SPLITS) {
      const qs = all[task].filter((q) => q.split === split);
      if (qs.length >= 2000) (check(qs, `${task}/${split}`), checked++);
    }
    check(generateQuestions({ task, split: "validation", limit: 2001 }), `${task} limit 2001`);
  }
  assert.ok(checked >= 4);
});

test("questions are split by document exactly like the text", () => {
  for (const task of TASK_NAMES) {
    for (const q of all[task]) assert.equal(q.split, split0.splitOf[q.doc], q.id);
    for (const split of SPLITS) {
      const docs = new Set(generateQuestions({ task, split }).map((q) => q.doc));
      for (const d of docs) assert.equal(split0.splitOf[d], split);
    }
  }
});

test("pos: the correct option is the coarse class of the gold tag; the word occurs once in the sentence", () => {
  const seen = new Set<string>();
  for (const q of all.pos) {
    const s = corpus.documents[q.doc]!.sentences[q.source.sentence]!;
    const word = s.words[q.source.word!]!;
    const tag = s.tags[q.source.word!]!;
    assert.equal(q.source.tag, tag);
    const gold = REF_COARSE[refBase(tag)!];
    assert.ok(gold, `${q.id}: tag ${tag} has no class`);
    assert.equal(q.options[q.answer], gold, q.id);
    for (const o of q.options) assert.ok(CLASSES.has(o), `${q.id}: option ${o}`);
    assert.equal(s.words.filter((w) => w.toLowerCase() === word.toLowerCase()).length, 1, q.id);
    assert.equal(q.question, `In the sentence "${sentenceText(s).replace(/"/g, "'")}", what part of speech is the word '${word}'?`);
    seen.add(gold);
  }
  assert.equal(seen.size, 10, "every class is a correct answer somewhere");
});

test("cloze: the correct option is the blanked word; the distractors share its tag as their most frequent tag", () => {
  // Reference: for every lower-case word, its tag counts over the corpus.
  const counts = new Map<string, Map<string, number>>();
  for (const d of corpus.documents)
    for (const s of d.sentences)
      s.words.forEach((w, i) => {
        const b = refBase(s.tags[i]!);
        if (b === null || !/^[a-z]{3,}$/.test(w.toLowerCase())) return;
        const m = counts.get(w.toLowerCase()) ?? new Map<string, number>();
        m.set(b, (m.get(b) ?? 0) + 1);
        counts.set(w.toLowerCase(), m);
      });
  const dominant = (w: string) => {
    const m = counts.get(w)!;
    let best = "";
    for (const [t, c] of [...m].sort()) if (best === "" || c > m.get(best)!) best = t;
    return { tag: best, total: [...m.values()].reduce((a, b) => a + b, 0) };
  };
  for (const q of all.cloze) {
    const s = corpus.documents[q.doc]!.sentences[q.source.sentence]!;
    const word = s.words[q.source.word!]!;
    const tag = refBase(s.tags[q.source.word!]!)!;
    assert.equal(q.options[q.answer], word, q.id);
    assert.ok(["nn", "nns", "vb", "vbd", "vbg", "vbn", "vbz", "jj", "rb"].includes(tag), q.id);
    assert.equal(q.question.split(BLANK).length, 2, "one blank");
    assert.equal(q.question.replace(BLANK, word), `Which word best fills the blank in the sentence "${sentenceText(s).replace(/"/g, "'")}"?`);
    q.options.forEach((o, k) => {
      if (k === q.answer) return;
      const d = dominant(o);
      assert.equal(d.tag, tag, `${q.id}: distractor ${o} is mostly ${d.tag}, not ${tag}`);
      assert.ok(d.total >= 5, `${q.id}: distractor ${o} seen ${d.total} times`);
      assert.equal(REF_COARSE[d.tag], REF_COARSE[tag], "same coarse part of speech");
    });
  }
});

test("genre: the correct option is the document's genre; the passage is text of that document", () => {
  const labels = new Set(GENRES.map((g) => g.label));
  const flat = new Map<number, string>();
  for (const q of all.genre) {
    const doc = corpus.documents[q.doc]!;
    assert.equal(q.options[q.answer], doc.genre.label, q.id);
    assert.equal(q.genre, doc.genre.code);
    for (const o of q.options) assert.ok(labels.has(o), o);
    const m = /^Which genre of the Brown corpus is this passage from\? "(.*)"$/.exec(q.question);
    assert.ok(m, q.id);
    if (!flat.has(q.doc)) flat.set(q.doc, documentText(doc).replace(/\n\n/g, " ").replace(/"/g, "'"));
    assert.ok(flat.get(q.doc)!.includes(m[1]!), `${q.id}: passage not in ${doc.id}`);
    assert.ok(m[1]!.split(" ").filter((w) => /[A-Za-z0-9]/.test(w)).length >= 35, `${q.id}: short passage`);
  }
});

// sha256 over "<id>\t<answer>\t<options joined by |>\n" of the validation questions of each task
// (seed 0, split seed 0), in generation order. Committed so that a change in question generation
// — which would break paired comparisons with earlier runs — is noticed.
const GOLDEN_VALIDATION: Record<TaskName, string> = {
  pos: "150dc9e0b1a3a6d77cf87e3dd3e420410569052ddfb86c587589249ca89ef779",
  cloze: "61abbbffcdb7c615e398dd2637075004e6d12d92940c74f39e1c6df9920fcfe1",
  genre: "ae6e356d679a6ef1747d7b39bb365fb5cbe926a0322eb5391462e31c17b8d629",
};

test("questions are deterministic: golden checksums of the validation questions; seeds change them", () => {
  for (const task of TASK_NAMES) {
    const qs = generateQuestions({ task, split: "validation", seed: 0 });
    const lines = qs.map((q) => `${q.id}\t${q.answer}\t${q.options.join("|")}\n`).join("");
    assert.equal(createHash("sha256").update(lines).digest("hex"), GOLDEN_VALIDATION[task], task);
    const other = generateQuestions({ task, split: "validation", seed: 1 });
    assert.ok(other.every((q) => q.id.startsWith(`${task}-1-`)));
    assert.notDeepEqual(
      other.slice(0, 50).map((q) => q.answer),
      qs.slice(0, 50).map((q) => q.answer),
    );
    assert.deepEqual(generateQuestions({ task, split: "validation", limit: 7 }), qs.slice(0, 7));
  }
});

test("bad input: unknown task or split names, bad limits", () => {
  assert.throws(() => generateQuestions({ task: "ner" as never }), { name: "TypeError", message: /task must be one of pos, cloze, genre \(got 'ner'\)/ });
  assert.throws(() => generateQuestions({ task: "pos", split: "dev" as never }), { name: "TypeError", message: /split must be one of/ });
  assert.throws(() => generateQuestions({ task: "pos", limit: -1 }), { name: "TypeError", message: /limit/ });
  assert.throws(() => generateQuestions({ task: "pos", seed: 0.5 }), { name: "TypeError", message: /seed/ });
});
