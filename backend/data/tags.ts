// Brown tags → coarse parts of speech, for the `pos` and `cloze` tasks.
//
// A Brown tag is a base tag plus optional suffixes: -tl (in a title), -hl (in a headline),
// -nc (cited word); fw- marks a foreign word; '+' joins the tags of a contraction
// ("I'll" = ppss+md); a trailing '*' marks a negated verb ("don't" = do*). baseTag() strips the
// suffixes and the '*', and returns null for foreign words and contractions.
//
// Only base tags whose coarse class a reader would not dispute are mapped. Left out on purpose
// (coarsePos → null): pp$ (my: determiner or pronoun?), dt/dts/dti/dtx (this/these/any: used as
// both determiner and pronoun in Brown), wdt (which: Brown uses it for relative pronouns too),
// ap/abn/abx/abl (many, all, both, quite), od (first), ex (existential there), rp and to
// (particles), rn, qlp, wp$, pn$, nil, '*' (not) and punctuation.
export type CoarsePos =
  | "noun"
  | "verb"
  | "adjective"
  | "adverb"
  | "pronoun"
  | "determiner"
  | "preposition"
  | "conjunction"
  | "numeral"
  | "interjection";

export const COARSE_POS: readonly CoarsePos[] = Object.freeze([
  "noun",
  "verb",
  "adjective",
  "adverb",
  "pronoun",
  "determiner",
  "preposition",
  "conjunction",
  "numeral",
  "interjection",
] as const);

const MAP: Record<string, CoarsePos> = {};
const add = (cls: CoarsePos, tags: string) => tags.split(" ").forEach((t) => (MAP[t] = cls));
add("noun", "nn nns np nps nr nrs nn$ nns$ np$ nps$ nr$");
add("verb", "vb vbd vbg vbn vbz be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz md");
add("adjective", "jj jjr jjs jjt");
add("adverb", "rb rbr rbt ql wrb");
add("pronoun", "pps ppss ppo ppl ppls pn pp$$ wps wpo");
add("determiner", "at");
add("preposition", "in");
add("conjunction", "cc cs");
add("numeral", "cd");
add("interjection", "uh");

/** The mapping itself (base tag → coarse class), for documentation and tests. */
export const COARSE_OF_TAG: Readonly<Record<string, CoarsePos>> = Object.freeze({ ...MAP });

/** 'nn-tl-hl' → 'nn', 'do*' → 'do'; null for foreign words (fw-…) and contractions (a+b). */
const baseMemo = new Map<string, string | null>();

export function baseTag(tag: string): string | null {
  const hit = baseMemo.get(tag);
  if (hit !== undefined) return hit;
  const b = computeBaseTag(tag);
  if (baseMemo.size < 10000) baseMemo.set(tag, b);
  return b;
}

function computeBaseTag(tag: string): string | null {
  let t = tag.toLowerCase();
  if (t.startsWith("fw-") || t.includes("+")) return null;
  for (;;) {
    const m = /^(.+)-(tl|hl|nc)$/.exec(t);
    if (!m) break;
    t = m[1]!;
  }
  if (t.length > 1 && t.endsWith("*")) t = t.slice(0, -1);
  return t;
}

/** The coarse part of speech of a Brown tag, or null when it has none we trust (see above). */
export function coarsePos(tag: string): CoarsePos | null {
  const b = baseTag(tag);
  return b === null ? null : (MAP[b] ?? null);
}
