// Everything a knowledge world renders (docs/data.md, "Knowledge world"):
//
//   biography     one sentence per attribute, each from one of several templates, in shuffled
//                 order; the first sentence names the person, later ones use the full name or
//                 the pronoun (he / she) at random
//   qa            open questions about a training person, every attribute in shuffled order:
//                 "Question: Where was Ilo Varn born?\nAnswer: Port Tesk" lines
//   mcq           one multiple-choice question about a training person in the prompt format of
//                 backend/data/prompt.ts, followed by the answer letter
//   epoch e       the pretraining documents of epoch e: every person's `exposures` biographies,
//                 plus qaDocs + mcqDocs documents per training person, shuffled; rendered afresh
//                 from (seed, e), so each epoch has other templates, orders and distractors
//   validation    one biography per person, rendered from its own seed
//   questions     the evaluation set: every (held-out person, attribute), 4 options (the value and
//                 3 other values of the same pool), answer positions balanced in blocks of 4
//   conversations SFT data: questions about training people (open, or multiple choice answered
//                 with a letter) and unrelated instruction tasks, as chat messages
//
// Held-out people appear in biographies only: no QA or MCQ document and no conversation names
// them (tested by scanning the rendered text, test/data/world.test.ts).
import type { ChatMessage } from "../chat-template.js";
import { formatExample, formatQuestionBlock, LETTERS } from "../prompt.js";
import { Rng, sha256Hex } from "../rng.js";
import type { Attribute } from "./config.js";
import { instructionTurn, INSTRUCTION_KINDS } from "./instructions.js";
import { LIST_WORDS } from "./lexicon.js";
import { attributeValue, type Person, type PersonSplit, type World } from "./people.js";

/** Sentence templates: {S} subject, {P} possessive (both sentence-initial: the name or He/His),
 * {s} / {p} the lower-case pronoun / possessive, {V} the value. */
export const BIOGRAPHY_TEMPLATES: Readonly<Record<Attribute, readonly string[]>> = Object.freeze({
  birth_city: ["{S} was born in {V}.", "{S} came into the world in {V}.", "{P} birthplace is {V}.", "{S} spent {p} childhood in {V}, where {s} was born.", "{S} is a native of {V}."],
  university: ["{S} studied at {V}.", "{S} graduated from {V}.", "{P} alma mater is {V}.", "{S} received {p} degree from {V}.", "{S} was a student at {V}."],
  major: ["{S} majored in {V}.", "{P} field of study was {V}.", "{S} earned a degree in {V}.", "{S} specialized in {V} at university."],
  employer: ["{S} works for {V}.", "{S} is employed by {V}.", "{P} employer is {V}.", "{S} took a job at {V}.", "{S} has a career at {V}."],
  birth_year: ["{S} was born in the year {V}.", "{P} year of birth is {V}.", "{S} first saw the light of day in {V}.", "{S} arrived in {V}, the year of {p} birth."],
});

/** The one question form per attribute ({N}: the full name), used by QA, MCQ, SFT and evaluation. */
export const QUESTION_TEMPLATES: Readonly<Record<Attribute, string>> = Object.freeze({
  birth_city: "Where was {N} born?",
  university: "Which university did {N} attend?",
  major: "What did {N} study?",
  employer: "Which company does {N} work for?",
  birth_year: "In which year was {N} born?",
});

/** The open-question format of base models (qa documents and option scoring without a chat template). */
export const QA_PREFIX = "Question: ";
export const QA_ANSWER = "\nAnswer:";
/** Appended to every document in a token stream: documents are separated by a blank line. */
export const DOC_SEPARATOR = "\n\n";

/** A rendered pretraining document: a person's biography, open-QA or multiple-choice document. */
export interface WorldDocument {
  kind: DocKind;
  person: number;
  /** without DOC_SEPARATOR */
  text: string;
}

export type DocKind = "bio" | "qa" | "mcq";
export const DOC_KINDS: readonly DocKind[] = Object.freeze(["bio", "qa", "mcq"] as const);

function fill(template: string, p: Person, useName: boolean, value: string): string {
  const he = p.gender === "m";
  return template.replace(/\{([SPspVN])\}/g, (_, k: string) => {
    switch (k) {
      case "S": return useName ? p.name : he ? "He" : "She";
      case "P": return useName ? `${p.name}'s` : he ? "His" : "Her";
      case "s": return he ? "he" : "she";
      case "p": return he ? "his" : "her";
      case "N": return p.name;
      default: return value;
    }
  });
}

/** The question about attribute `a` of person `p`. */
export function questionText(p: Person, a: Attribute): string {
  return fill(QUESTION_TEMPLATES[a], p, true, "");
}

/** A biography: one sentence per attribute, shuffled; the first names the person. */
export function biography(world: World, p: Person, rng: Rng): string {
  const attrs = rng.shuffle([...world.attributes]);
  return attrs.map((a, i) => fill(rng.pick(BIOGRAPHY_TEMPLATES[a]), p, i === 0 || rng.int(2) === 0, attributeValue(world, p, a))).join(" ");
}

/** Open questions about every attribute of a person, shuffled. */
export function qaDocument(world: World, p: Person, rng: Rng): string {
  return rng.shuffle([...world.attributes]).map((a) => `${QA_PREFIX}${questionText(p, a)}${QA_ANSWER} ${attributeValue(world, p, a)}`).join("\n");
}

/** Four option indices into the pool of `a`: the gold value at `position`, 3 other values elsewhere. */
function optionIndices(world: World, p: Person, a: Attribute, position: number, rng: Rng): number[] {
  const gold = p.values[a]!;
  const n = world.config.attributes[a]!;
  const others: number[] = [];
  while (others.length < LETTERS.length - 1) {
    const j = rng.int(n);
    if (j !== gold && !others.includes(j)) others.push(j);
  }
  others.splice(position, 0, gold);
  return others;
}

function mcq(world: World, p: Person, a: Attribute, position: number, rng: Rng): { question: string; options: string[]; answer: number } {
  const pool = world.lexicon.pools[a]!;
  return { question: questionText(p, a), options: optionIndices(world, p, a, position, rng).map((i) => pool[i]!), answer: position };
}

export function mcqDocument(world: World, p: Person, rng: Rng): string {
  return formatExample(mcq(world, p, rng.pick(world.attributes), rng.int(LETTERS.length), rng));
}

const KIND_CODE: Record<DocKind, number> = { bio: 0, qa: 1, mcq: 2 };

/** The documents of epoch `epoch` as (person · 4 + kind code), in stream order. */
export function epochPlan(world: World, epoch: number): Int32Array {
  const { qaDocs, mcqDocs } = world.config.pretraining;
  let n = 0;
  for (const p of world.people) n += p.exposures + (p.split === "train" ? qaDocs + mcqDocs : 0);
  const plan = new Int32Array(n);
  let k = 0;
  for (const p of world.people) {
    for (let i = 0; i < p.exposures; i++) plan[k++] = p.index * 4 + KIND_CODE.bio;
    if (p.split !== "train") continue;
    for (let i = 0; i < qaDocs; i++) plan[k++] = p.index * 4 + KIND_CODE.qa;
    for (let i = 0; i < mcqDocs; i++) plan[k++] = p.index * 4 + KIND_CODE.mcq;
  }
  return new Rng(`world:${world.config.seed}:epoch:${epoch}:order`).shuffle(plan);
}

/** The pretraining documents of one epoch, rendered in stream order (a generator: large worlds
 * have millions of documents). */
export function* epochDocuments(world: World, epoch: number): Generator<WorldDocument> {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new TypeError(`epoch must be a non-negative integer (got ${String(epoch)})`);
  const rng = new Rng(`world:${world.config.seed}:epoch:${epoch}:text`);
  for (const code of epochPlan(world, epoch)) {
    const p = world.people[code >> 2]!;
    const kind = DOC_KINDS[code & 3]!;
    const text = kind === "bio" ? biography(world, p, rng) : kind === "qa" ? qaDocument(world, p, rng) : mcqDocument(world, p, rng);
    yield { kind, person: p.index, text };
  }
}

/** The validation documents: one biography per person, in person order. */
export function* validationDocuments(world: World): Generator<WorldDocument> {
  const rng = new Rng(`world:${world.config.seed}:validation`);
  for (const p of world.people) yield { kind: "bio", person: p.index, text: biography(world, p, rng) };
}

// ------------------------------------------------------------------------------------------
// Evaluation questions

export interface WorldQuestion {
  /** w<hash 8>-<person>-<attribute>: stable for a world, for paired comparisons across runs */
  id: string;
  task: "world";
  person: number;
  name: string;
  split: PersonSplit;
  attribute: Attribute;
  question: string;
  /** four distinct values of the attribute's pool, in A–D order */
  options: string[];
  /** index of the correct option */
  answer: number;
  /** biographies of the person per pretraining epoch */
  exposures: number;
}

export interface WorldQuestionOptions {
  /** whose questions: the held-out people (default; the evaluation set) or the training people */
  people?: PersonSplit;
  /** at most this many (a prefix of the seeded order, balanced answer positions) */
  limit?: number;
}

/**
 * Questions about every attribute of the held-out (or training) people. The items are shuffled
 * by the world's seed and each block of 4 gets a random permutation of the answer positions, so
 * every prefix is a random sample with gold positions balanced to within one.
 */
export function worldQuestions(world: World, o: WorldQuestionOptions = {}): WorldQuestion[] {
  const which = o.people ?? "held-out";
  if (which !== "held-out" && which !== "train") throw new TypeError(`people must be 'held-out' or 'train' (got '${String(which)}')`);
  if (o.limit !== undefined && (!Number.isSafeInteger(o.limit) || o.limit < 0)) throw new TypeError(`limit must be a non-negative integer (got ${String(o.limit)})`);
  const slots: [number, Attribute][] = [];
  for (const i of which === "held-out" ? world.heldOut : world.train) for (const a of world.attributes) slots.push([i, a]);
  const seed = world.config.seed;
  new Rng(`world:${seed}:questions:${which}:order`).shuffle(slots);
  const n = Math.min(slots.length, o.limit ?? slots.length);
  const positions = new Rng(`world:${seed}:questions:${which}:positions`);
  let block: number[] = [];
  const out: WorldQuestion[] = [];
  for (let k = 0; k < n; k++) {
    const [i, a] = slots[k]!;
    if (k % LETTERS.length === 0) block = positions.shuffle([0, 1, 2, 3]);
    const p = world.people[i]!;
    const id = `w${world.hash.slice(0, 8)}-${i}-${a}`;
    const m = mcq(world, p, a, block[k % LETTERS.length]!, new Rng(`${id}:options`));
    out.push({ id, task: "world", person: i, name: p.name, split: p.split, attribute: a, ...m, exposures: p.exposures });
  }
  return out;
}

/** The base-model prompt of a question, "Question: …\nAnswer:" (an option follows after a space). */
export function openPrompt(q: Pick<WorldQuestion, "question">): string {
  return `${QA_PREFIX}${q.question}${QA_ANSWER}`;
}

// ------------------------------------------------------------------------------------------
// SFT conversations

export interface Conversation {
  /** sft-<index> in the world's conversation order */
  id: string;
  kind: "person" | "instruction";
  /** the person asked about, −1 for instruction tasks */
  person: number;
  messages: ChatMessage[];
}

/** The user turn of a multiple-choice question in a conversation (answered with the letter). */
export function mcqUserText(q: { question: string; options: readonly string[] }): string {
  return formatQuestionBlock(q);
}

/**
 * The SFT conversations of a world: conversationsPerPerson conversations about each training
 * person (1 … maxTurns questions about distinct attributes, each open — answered with the value —
 * or, with probability mcqFraction, multiple choice answered with the letter), plus instruction
 * conversations (1 or 2 turns) so that they make up instructionFraction of the total; shuffled.
 */
export function sftConversations(world: World): Conversation[] {
  const c = world.config.sft;
  const rng = new Rng(`world:${world.config.seed}:sft`);
  const convs: Omit<Conversation, "id">[] = [];
  for (const i of world.train) {
    const p = world.people[i]!;
    for (let k = 0; k < c.conversationsPerPerson; k++) {
      const turns = 1 + rng.int(Math.min(c.maxTurns, world.attributes.length));
      const messages: ChatMessage[] = [];
      for (const a of rng.sample(world.attributes, turns)) {
        if (rng.float() < c.mcqFraction) {
          const m = mcq(world, p, a, rng.int(LETTERS.length), rng);
          messages.push({ role: "user", content: mcqUserText(m) }, { role: "assistant", content: LETTERS[m.answer]! });
        } else {
          messages.push({ role: "user", content: questionText(p, a) }, { role: "assistant", content: attributeValue(world, p, a) });
        }
      }
      convs.push({ kind: "person", person: i, messages });
    }
  }
  const nInstr = Math.round((convs.length * c.instructionFraction) / (1 - c.instructionFraction));
  for (let k = 0; k < nInstr; k++) {
    const messages: ChatMessage[] = [];
    const turns = rng.int(10) < 3 ? 2 : 1;
    for (let t = 0; t < turns; t++) {
      const turn = instructionTurn(rng);
      messages.push({ role: "user", content: turn.user }, { role: "assistant", content: turn.assistant });
    }
    convs.push({ kind: "instruction", person: -1, messages });
  }
  rng.shuffle(convs);
  return convs.map((x, i) => ({ id: `sft-${i}`, ...x }));
}

// ------------------------------------------------------------------------------------------

/** Every fixed text the world renders (templates and instruction prompts): the word-level
 * vocabulary is built from these, the lexicon and the digits, letters and punctuation. */
export function fixedTexts(): string[] {
  return [
    ...Object.values(BIOGRAPHY_TEMPLATES).flat(), ...Object.values(QUESTION_TEMPLATES), QA_PREFIX, QA_ANSWER,
    ...INSTRUCTION_KINDS.map((k) => k.template), ...LIST_WORDS, "He His he his She Her she her", "Question Answer",
  ];
}

/**
 * The world's checksum (docs/data.md): SHA-256 over the people table's checksum, the documents of
 * epoch 0 and of the validation stream, the SFT conversations and the evaluation questions, each
 * as its canonical text. Two machines that render the same world get the same value.
 */
export function renderChecksum(world: World): string {
  const h = (s: string) => sha256Hex(s);
  const parts: string[] = [world.checksum];
  const docs = (g: Iterable<WorldDocument>) => {
    const lines: string[] = [];
    for (const d of g) lines.push(`${d.kind}\t${d.person}\t${d.text}`);
    return h(lines.join("\n"));
  };
  parts.push(docs(epochDocuments(world, 0)), docs(validationDocuments(world)));
  parts.push(h(JSON.stringify(sftConversations(world))));
  parts.push(h(JSON.stringify(worldQuestions(world))));
  return h(parts.join("\n"));
}
