// Instruction-style tasks unrelated to the world's people, mixed into its SFT conversations so
// that fine-tuning teaches a general "answer the user" behaviour and not only the evaluation
// task: arithmetic, list manipulation and letter questions over a fixed list of English words.
// Each kind is a prompt template ({a}, {b}, {list}, {word}) and a function computing the answer.
import type { Rng } from "../rng.js";
import { LIST_WORDS } from "./lexicon.js";

export interface InstructionTurn {
  kind: string;
  user: string;
  assistant: string;
}

interface Kind {
  name: string;
  template: string;
  make(rng: Rng): { fill: Record<string, string>; answer: string };
}

const words = (rng: Rng, lo: number, hi: number) => rng.sample(LIST_WORDS, lo + rng.int(hi - lo + 1));

export const INSTRUCTION_KINDS: readonly Kind[] = Object.freeze([
  { name: "add", template: "What is {a} plus {b}?", make: (r) => { const a = r.int(100), b = r.int(100); return { fill: { a: `${a}`, b: `${b}` }, answer: `${a + b}` }; } },
  { name: "subtract", template: "What is {a} minus {b}?", make: (r) => { const a = r.int(100), b = r.int(a + 1); return { fill: { a: `${a}`, b: `${b}` }, answer: `${a - b}` }; } },
  { name: "multiply", template: "What is {a} times {b}?", make: (r) => { const a = 2 + r.int(11), b = 2 + r.int(11); return { fill: { a: `${a}`, b: `${b}` }, answer: `${a * b}` }; } },
  { name: "larger", template: "Which number is larger, {a} or {b}?", make: (r) => { const a = r.int(1000); let b = r.int(1000); if (b === a) b = (a + 1) % 1000; return { fill: { a: `${a}`, b: `${b}` }, answer: `${Math.max(a, b)}` }; } },
  { name: "reverse", template: "Reverse the order of this list: {list}.", make: (r) => { const w = words(r, 3, 6); return { fill: { list: w.join(", ") }, answer: [...w].reverse().join(", ") }; } },
  { name: "sort", template: "Sort these words alphabetically: {list}.", make: (r) => { const w = words(r, 3, 6); return { fill: { list: w.join(", ") }, answer: [...w].sort().join(", ") }; } },
  { name: "count-items", template: "How many words are in this list: {list}?", make: (r) => { const w = words(r, 2, 8); return { fill: { list: w.join(", ") }, answer: `${w.length}` }; } },
  { name: "letters", template: "How many letters are in the word {word}?", make: (r) => { const w = r.pick(LIST_WORDS); return { fill: { word: w }, answer: `${w.length}` }; } },
  { name: "first-letter", template: "What is the first letter of the word {word}?", make: (r) => { const w = r.pick(LIST_WORDS); return { fill: { word: w }, answer: w[0]! }; } },
  { name: "last-letter", template: "What is the last letter of the word {word}?", make: (r) => { const w = r.pick(LIST_WORDS); return { fill: { word: w }, answer: w[w.length - 1]! }; } },
  { name: "spell", template: "Spell the word {word} with spaces between the letters.", make: (r) => { const w = r.pick(LIST_WORDS); return { fill: { word: w }, answer: w.split("").join(" ") }; } },
]);

/** One instruction turn of a uniformly drawn kind. */
export function instructionTurn(rng: Rng): InstructionTurn {
  const k = rng.pick(INSTRUCTION_KINDS);
  const { fill, answer } = k.make(rng);
  const user = k.template.replace(/\{(\w+)\}/g, (_, key: string) => fill[key]!);
  return { kind: k.name, user, assistant: answer };
}
