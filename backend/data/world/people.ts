// The people of a knowledge world: a unique full name, a pronoun, one value per attribute (each
// drawn uniformly from its pool), how many biographies of them each epoch holds (exposures,
// log-uniform or uniform in [min, max]) and whether their questions may be trained on
// ("train") or are held out ("held-out": seen only in biographies; their questions are the
// evaluation set). Everything follows from the config; `checksum` hashes the table.
import { Rng, sha256Hex } from "../rng.js";
import { parseWorldConfig, worldAttributes, worldConfigHash, type Attribute, type WorldConfig, type WorldConfigInput } from "./config.js";
import { buildLexicon, type Lexicon } from "./lexicon.js";

export type PersonSplit = "train" | "held-out";

export interface Person {
  /** 0 … people − 1 */
  index: number;
  first: string;
  last: string;
  /** "First Last" */
  name: string;
  gender: "f" | "m";
  split: PersonSplit;
  /** biographies of this person in every pretraining epoch */
  exposures: number;
  /** attribute → index into the attribute's pool */
  values: Partial<Record<Attribute, number>>;
}

export interface World {
  config: WorldConfig;
  /** worldConfigHash(config) */
  hash: string;
  attributes: Attribute[];
  lexicon: Lexicon;
  people: Person[];
  /** indices of the training people and of the held-out people, ascending */
  train: number[];
  heldOut: number[];
  /** SHA-256 of the people table (docs/data.md) */
  checksum: string;
}

/** Exposures of one person: log-uniform ⌊exp(U(ln min, ln(max+1)))⌋, or uniform, in [min, max]. */
function drawExposures(rng: Rng, e: WorldConfig["exposures"]): number {
  if (e.distribution === "uniform") return e.min + rng.int(e.max - e.min + 1);
  const lo = Math.log(e.min), hi = Math.log(e.max + 1);
  const k = Math.floor(Math.exp(lo + rng.float() * (hi - lo)));
  return Math.min(e.max, Math.max(e.min, k));
}

/** The value of attribute `a` of a person, as text. */
export function attributeValue(world: World, p: Person, a: Attribute): string {
  const i = p.values[a];
  if (i === undefined) throw new RangeError(`person ${p.index} has no ${a}`);
  return world.lexicon.pools[a]![i]!;
}

/** The line of a person in the checksummed table: index, name, gender, split, exposures, values. */
export function personLine(world: World, p: Person): string {
  return [p.index, p.name, p.gender, p.split, p.exposures, ...world.attributes.map((a) => attributeValue(world, p, a))].join("\t") + "\n";
}

const worlds = new Map<string, World>();

/** The world of a config (validated; "default" or a partial config is filled in). Cached per
 * config unless `cache: false` (which builds it afresh). */
export function buildWorld(input: WorldConfig | WorldConfigInput | "default", o: { cache?: boolean } = {}): World {
  const config = parseWorldConfig(input);
  const hash = worldConfigHash(config);
  const useCache = o.cache ?? true;
  const hit = useCache ? worlds.get(hash) : undefined;
  if (hit) return hit;
  const lexicon = buildLexicon(config);
  const attributes = worldAttributes(config);
  const rng = new Rng(`world:${config.seed}:people`);
  const taken = new Set<string>();
  const people: Person[] = [];
  const { firstNames, lastNames } = lexicon;
  for (let index = 0; index < config.people; index++) {
    let first: string, last: string, name: string;
    do {
      first = rng.pick(firstNames);
      last = rng.pick(lastNames);
      name = `${first} ${last}`;
    } while (taken.has(name));
    taken.add(name);
    const values: Partial<Record<Attribute, number>> = {};
    for (const a of attributes) values[a] = rng.int(config.attributes[a]!);
    people.push({ index, first, last, name, gender: rng.int(2) === 0 ? "f" : "m", split: "train", exposures: drawExposures(rng, config.exposures), values });
  }
  const order = new Rng(`world:${config.seed}:split`).shuffle(people.map((p) => p.index));
  const nHeld = Math.round(config.people * config.heldOutFraction);
  for (const i of order.slice(0, nHeld)) people[i]!.split = "held-out";
  const world: World = {
    config, hash, attributes, lexicon, people,
    train: people.filter((p) => p.split === "train").map((p) => p.index),
    heldOut: people.filter((p) => p.split === "held-out").map((p) => p.index),
    checksum: "",
  };
  world.checksum = sha256Hex(people.map((p) => personLine(world, p)).join(""));
  if (useCache) {
    if (worlds.size > 8) worlds.clear();
    worlds.set(hash, world);
  }
  return world;
}

/** The exposure bucket of a count: powers of two, "1", "2-3", "4-7", "8-15", … (for per-bucket analysis). */
export function exposureBucket(k: number): string {
  if (!Number.isSafeInteger(k) || k < 1) throw new RangeError(`exposures must be a positive integer (got ${String(k)})`);
  let lo = 1;
  while (lo * 2 <= k) lo *= 2;
  return lo === 1 ? "1" : `${lo}-${2 * lo - 1}`;
}
