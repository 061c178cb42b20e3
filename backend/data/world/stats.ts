// `calib data stats --world`: the numbers of a knowledge world — people and split, exposures per
// bucket, documents and words per epoch, SFT conversations, evaluation questions, and tokens per
// tokenizer for the streams already in the cache.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultCacheDir } from "../prepare.js";
import { markdownTable } from "../stats.js";
import { LETTERS } from "../prompt.js";
import { exposureBucket, type World } from "./people.js";
import { DOC_KINDS, epochDocuments, sftConversations, worldQuestions, type DocKind } from "./render.js";
import { WORLD_TOKENIZERS, worldWordTokenizer, type WorldStreamHeader } from "./prepare.js";

export interface WorldStats {
  hash: string;
  checksum: string;
  people: { all: number; train: number; heldOut: number };
  attributes: Record<string, number>;
  /** per exposure bucket: people (train / held-out) and the share of epoch-0 biographies */
  exposures: { bucket: string; train: number; heldOut: number; biographies: number }[];
  exposureSummary: { min: number; median: number; mean: number; max: number };
  /** epoch 0: documents and words per kind */
  epoch0: Record<DocKind, { documents: number; words: number }>;
  sft: { conversations: number; person: number; instruction: number; turns: number; mcqTurns: number };
  questions: { heldOut: number; train: number; positions: number[] };
  wordVocabulary: number;
  /** cached streams: tokenizer → stream → tokens */
  cached: Record<string, Record<string, number>>;
}

const WORD = /[\p{L}\p{N}]+/gu;

export function worldStats(world: World, o: { cacheDir?: string } = {}): WorldStats {
  const ex = world.people.map((p) => p.exposures).sort((a, b) => a - b);
  const buckets = new Map<string, { bucket: string; train: number; heldOut: number; biographies: number; lo: number }>();
  for (const p of world.people) {
    const b = exposureBucket(p.exposures);
    let e = buckets.get(b);
    if (!e) buckets.set(b, (e = { bucket: b, train: 0, heldOut: 0, biographies: 0, lo: Number(b.split("-")[0]) }));
    if (p.split === "train") e.train++;
    else e.heldOut++;
    e.biographies += p.exposures;
  }
  const epoch0 = Object.fromEntries(DOC_KINDS.map((k) => [k, { documents: 0, words: 0 }])) as WorldStats["epoch0"];
  for (const d of epochDocuments(world, 0)) {
    epoch0[d.kind].documents++;
    epoch0[d.kind].words += d.text.match(WORD)?.length ?? 0;
  }
  const convs = sftConversations(world);
  const userTurns = convs.flatMap((c) => c.messages.filter((m) => m.role === "user"));
  const qs = worldQuestions(world);
  const positions = LETTERS.map((_, i) => qs.filter((q) => q.answer === i).length);
  const cached: WorldStats["cached"] = {};
  const root = join(o.cacheDir ?? defaultCacheDir(), "world", world.hash);
  for (const t of WORLD_TOKENIZERS) {
    const dir = join(root, t);
    if (!existsSync(dir)) continue;
    for (const stream of ["validation", ...Array.from({ length: 64 }, (_, e) => `epoch-${e}`)]) {
      const f = join(dir, `${stream}.json`);
      if (!existsSync(f)) continue;
      try {
        const h = JSON.parse(readFileSync(f, "utf8")) as WorldStreamHeader;
        (cached[t] ??= {})[stream] = h.count;
      } catch {
        // unreadable header: not listed (prepare rebuilds it)
      }
    }
  }
  const mcqTurns = userTurns.filter((m) => m.content.includes("\nA. ")).length;
  return {
    hash: world.hash, checksum: world.checksum,
    people: { all: world.people.length, train: world.train.length, heldOut: world.heldOut.length },
    attributes: { ...world.config.attributes } as Record<string, number>,
    exposures: [...buckets.values()].sort((a, b) => a.lo - b.lo).map(({ lo: _lo, ...r }) => r),
    exposureSummary: { min: ex[0]!, median: ex[Math.floor(ex.length / 2)]!, mean: ex.reduce((a, x) => a + x, 0) / ex.length, max: ex[ex.length - 1]! },
    epoch0,
    sft: { conversations: convs.length, person: convs.filter((c) => c.kind === "person").length, instruction: convs.filter((c) => c.kind === "instruction").length, turns: userTurns.length, mcqTurns },
    questions: { heldOut: qs.length, train: world.train.length * world.attributes.length, positions },
    wordVocabulary: worldWordTokenizer(world).vocabSize,
    cached,
  };
}

export function formatWorldStats(s: WorldStats): string {
  const out: string[] = [];
  out.push(`Knowledge world ${s.hash} (people checksum ${s.checksum.slice(0, 16)}…)`, "");
  out.push(markdownTable(["people", "train", "held-out", "word-level V"], [[s.people.all, s.people.train, s.people.heldOut, s.wordVocabulary]]), "");
  out.push("Attributes (invented values per pool)", "", markdownTable(Object.keys(s.attributes), [Object.values(s.attributes)]), "");
  const e = s.exposureSummary;
  out.push(`Exposures (biographies per person per epoch): min ${e.min}, median ${e.median}, mean ${e.mean.toFixed(2)}, max ${e.max}`, "");
  out.push(markdownTable(["bucket", "train people", "held-out people", "biographies"], s.exposures.map((b) => [b.bucket, b.train, b.heldOut, b.biographies])), "");
  out.push("Pretraining documents of epoch 0", "");
  out.push(markdownTable(["kind", "documents", "words"], DOC_KINDS.map((k) => [k, s.epoch0[k].documents, s.epoch0[k].words])), "");
  out.push(`SFT conversations: ${s.sft.conversations} (${s.sft.person} about training people, ${s.sft.instruction} instruction tasks), ${s.sft.turns} user turns, ${s.sft.mcqTurns} of them multiple choice`, "");
  out.push(`Evaluation questions (held-out people): ${s.questions.heldOut}; gold positions A–D ${s.questions.positions.join(" / ")}`, "");
  const streams = [...new Set(Object.values(s.cached).flatMap((r) => Object.keys(r)))].sort((a, b) => (a === "validation" ? -1 : b === "validation" ? 1 : Number(a.slice(6)) - Number(b.slice(6))));
  if (streams.length === 0) out.push("Tokens: nothing cached yet (calib data prepare --world …)");
  else out.push("Tokens per cached stream", "", markdownTable(["tokenizer", ...streams], Object.entries(s.cached).map(([t, r]) => [t, ...streams.map((x) => r[x] ?? "–")])));
  return out.join("\n");
}
