// The configuration of a knowledge world (docs/data.md, "Knowledge world"): how many people,
// which attributes with how many invented values each, how often each person is seen per
// epoch, the share of held-out people, and the mix of the pretraining documents and SFT
// conversations. Every field has a default; unknown fields are errors; a bad value throws a
// TypeError naming the field (`world.exposures.max: …`).
import { readFileSync } from "node:fs";
import { z } from "zod";
import { sha256Hex } from "../rng.js";

/** The attributes a person can have, in the order sentences and questions list them. */
export const ATTRIBUTES = ["birth_city", "university", "major", "employer", "birth_year"] as const;
export type Attribute = (typeof ATTRIBUTES)[number];

/** Invented values per attribute when the config does not say (birth_year: consecutive years). */
export const DEFAULT_POOLS: Readonly<Record<Attribute, number>> = Object.freeze({
  birth_city: 120, university: 60, major: 40, employer: 100, birth_year: 60,
});
/** birth_year values are FIRST_YEAR … FIRST_YEAR + pool − 1 */
export const FIRST_YEAR = 1920;
const MAX_POOL: Readonly<Record<Attribute, number>> = Object.freeze({
  birth_city: 5000, university: 5000, major: 5000, employer: 5000, birth_year: 100,
});

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

const ExposureSchema = z.strictObject({
  /** fewest biographies of a person per epoch (≥ 1) */
  min: int(1, 100000).default(1),
  /** most biographies of a person per epoch */
  max: int(1, 100000).default(100),
  /** log-uniform (most people rare, a few very frequent) or uniform */
  distribution: z.enum(["log-uniform", "uniform"]).default("log-uniform"),
}).refine((e) => e.min <= e.max, { message: "min must not exceed max", path: ["min"] });

const PretrainMixSchema = z.strictObject({
  /** open-QA documents ("Question: …\nAnswer: …" for every attribute) per training person per epoch */
  qaDocs: int(0, 1000).default(1),
  /** multiple-choice documents (one question, options A–D, the answer letter) per training person per epoch */
  mcqDocs: int(0, 1000).default(1),
});

const SftMixSchema = z.strictObject({
  /** conversations about each training person */
  conversationsPerPerson: int(0, 1000).default(1),
  /** questions (user turns) per conversation: 1 … maxTurns, each about another attribute */
  maxTurns: int(1, 5).default(3),
  /** share of the questions about people asked as multiple choice (answered with a letter) */
  mcqFraction: z.number().min(0).max(1).default(0.25),
  /** share of all conversations that are unrelated instruction tasks (arithmetic, lists, letters) */
  instructionFraction: z.number().min(0).max(0.95).default(0.5),
});

export const WorldConfigSchema = z.strictObject({
  seed: int(0, 2 ** 32 - 1).default(0),
  people: int(8, 1_000_000).default(3000),
  /** share of the people held out: they appear only in biographies; their questions are the evaluation set */
  heldOutFraction: z.number().gt(0).lt(1).default(1 / 3),
  /** attribute → number of invented values (each ≥ 4: a question has 3 distractors from the same pool) */
  attributes: z.partialRecord(z.enum(ATTRIBUTES), int(4)).default({ ...DEFAULT_POOLS })
    .refine((a) => Object.keys(a).length > 0, { message: "at least one attribute is needed" }),
  exposures: ExposureSchema.prefault({}),
  pretraining: PretrainMixSchema.prefault({}),
  sft: SftMixSchema.prefault({}),
}).superRefine((c, ctx) => {
  for (const [a, n] of Object.entries(c.attributes) as [Attribute, number][]) {
    if (n > MAX_POOL[a]) ctx.addIssue({ code: "custom", path: ["attributes", a], message: `at most ${MAX_POOL[a]} values` });
  }
  const held = Math.round(c.people * c.heldOutFraction);
  if (held < 1 || held > c.people - 1) ctx.addIssue({ code: "custom", path: ["heldOutFraction"], message: `leaves no held-out or no training people with ${c.people} people` });
});

export type WorldConfig = z.infer<typeof WorldConfigSchema>;
export type WorldConfigInput = z.input<typeof WorldConfigSchema>;

/** The attributes of a config in canonical order. */
export function worldAttributes(c: WorldConfig): Attribute[] {
  return ATTRIBUTES.filter((a) => c.attributes[a] !== undefined);
}

/**
 * Validates a world config (TypeError naming the field: `world.people: …`) and fills the
 * defaults; "default" (or undefined) is the default world.
 */
export function parseWorldConfig(input: unknown, field = "world"): WorldConfig {
  if (input === undefined || input === "default") input = {};
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError(`${field || "the world config"} must be an object or "default"`);
  const r = WorldConfigSchema.safeParse(input);
  if (!r.success) {
    throw new TypeError(r.error.issues.map((i) => `${[field, ...i.path].filter((x) => x !== "").join(".") || "config"}: ${i.message}`).join("; "));
  }
  // canonical key order of attributes (hashes and rendering must not depend on the JSON's order)
  const attributes: Partial<Record<Attribute, number>> = {};
  for (const a of ATTRIBUTES) if (r.data.attributes[a] !== undefined) attributes[a] = r.data.attributes[a];
  return { ...r.data, attributes };
}

/** Reads `default` or a JSON file; errors name the file. */
export function loadWorldConfig(spec: string): WorldConfig {
  if (spec === "default") return parseWorldConfig({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(spec, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TypeError(`${spec}: ${e.code === "ENOENT" ? "no such file" : e.code ? e.code : `not valid JSON (${e.message})`}`);
  }
  try {
    return parseWorldConfig(raw, "");
  } catch (err) {
    throw new TypeError(`${spec}: ${(err as Error).message}`);
  }
}

function canonical(v: unknown): unknown {
  return v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
    : v;
}

/** Renderer version: part of every hash, bumped when the text a config renders changes. */
export const WORLD_FORMAT = "calib-world/1";

/** 16 hex digits identifying a (filled-in) config and the renderer version. */
export function worldConfigHash(c: WorldConfig): string {
  return sha256Hex(JSON.stringify({ format: WORLD_FORMAT, config: canonical(c) })).slice(0, 16);
}
