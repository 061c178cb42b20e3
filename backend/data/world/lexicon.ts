// Invented words for a knowledge world: people's names and the values of each attribute, built
// from syllables by a seeded generator so that no fact can be known from outside the world.
// Every invented word is distinct from every other (and from the fixed English words of the
// templates), and every value is distinct within its pool, so an option or a name always
// refers to one thing.
import { Rng } from "../rng.js";
import { FIRST_YEAR, worldAttributes, type Attribute, type WorldConfig } from "./config.js";

const ONSETS = ["b", "br", "c", "cl", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pr", "r", "s", "st", "t", "tr", "v", "w", "z", "th", "sh"];
const VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y"];
const CODAS = ["", "", "", "n", "r", "l", "s", "th", "m", "nd", "rt", "ck", "x", "sk"];

/** English words the world's own text uses (templates, instructions); invented words avoid them. */
export const LIST_WORDS: readonly string[] = Object.freeze([
  "apple", "river", "stone", "cloud", "lamp", "garden", "window", "forest", "candle", "bridge", "mirror", "ladder",
  "pepper", "violin", "harbor", "meadow", "rocket", "basket", "pencil", "tunnel", "island", "feather", "blanket", "compass",
  "kettle", "lantern", "orchard", "puzzle", "saddle", "tiger", "velvet", "wagon", "anchor", "button", "castle", "dragon",
  "engine", "falcon", "glacier", "hammer", "jacket", "kitten", "lemon", "marble", "needle", "ocean", "parrot", "quartz",
  "rabbit", "silver", "thunder", "umbrella", "valley", "walnut", "yogurt", "zebra", "copper", "desert", "emerald", "fountain",
]);

export interface Lexicon {
  firstNames: string[];
  lastNames: string[];
  /** attribute → its values (birth_year: years as text) */
  pools: Partial<Record<Attribute, string[]>>;
}

class WordMaker {
  private readonly used = new Set<string>(LIST_WORDS);
  constructor(private readonly rng: Rng) {}

  /** A new capitalized word of `min`…`max` syllables, never made before. */
  word(min: number, max: number): string {
    for (;;) {
      const n = min + this.rng.int(max - min + 1);
      let w = "";
      for (let i = 0; i < n; i++) w += this.rng.pick(ONSETS) + this.rng.pick(VOWELS) + (i === n - 1 || this.rng.int(3) === 0 ? this.rng.pick(CODAS) : "");
      if (w.length < 4 || w.length > 12 || this.used.has(w)) continue;
      this.used.add(w);
      return w[0]!.toUpperCase() + w.slice(1);
    }
  }
}

const FORMS: Record<Exclude<Attribute, "birth_year">, readonly ((w: WordMaker) => string)[]> = {
  birth_city: [(m) => m.word(2, 3), (m) => m.word(2, 3), (m) => m.word(2, 3), (m) => `Port ${m.word(2, 2)}`, (m) => `${m.word(2, 2)} Falls`, (m) => `New ${m.word(2, 2)}`],
  university: [(m) => `${m.word(2, 3)} University`, (m) => `University of ${m.word(2, 3)}`, (m) => `${m.word(2, 2)} Institute of Technology`, (m) => `${m.word(2, 3)} College`],
  major: [(m) => `${m.word(2, 3)} Studies`, (m) => `${m.word(2, 2)} Engineering`, (m) => `Applied ${m.word(2, 3)}`, (m) => `${m.word(2, 3)} Theory`, (m) => m.word(3, 4)],
  employer: [(m) => `${m.word(2, 3)} Systems`, (m) => `${m.word(2, 2)} Labs`, (m) => `${m.word(2, 2)} and ${m.word(2, 2)}`, (m) => `${m.word(2, 3)} Holdings`, (m) => `${m.word(2, 2)} Motors`, (m) => `${m.word(2, 3)} Foods`],
};

/** Pool sizes for names: enough distinct full names for `people`, with repeated first and last names. */
export function namePoolSizes(people: number): { first: number; last: number } {
  const first = Math.min(4000, Math.max(40, Math.ceil(Math.sqrt(people))));
  const last = Math.min(40000, Math.max(60, Math.ceil((3 * people) / first)));
  return { first, last };
}

/** The invented words of a world (deterministic from its seed and sizes). */
export function buildLexicon(c: WorldConfig): Lexicon {
  const maker = new WordMaker(new Rng(`world:${c.seed}:lexicon`));
  const sizes = namePoolSizes(c.people);
  const firstNames = Array.from({ length: sizes.first }, () => maker.word(2, 2));
  const lastNames = Array.from({ length: sizes.last }, () => maker.word(2, 3));
  const pools: Partial<Record<Attribute, string[]>> = {};
  const formRng = new Rng(`world:${c.seed}:forms`);
  for (const a of worldAttributes(c)) {
    const n = c.attributes[a]!;
    if (a === "birth_year") {
      pools[a] = Array.from({ length: n }, (_, i) => String(FIRST_YEAR + i));
      continue;
    }
    const values = new Set<string>();
    while (values.size < n) values.add(formRng.pick(FORMS[a])(maker));
    pools[a] = [...values];
  }
  return { firstNames, lastNames, pools };
}
