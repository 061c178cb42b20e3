// calib data: prepare the encoded Brown splits, print their statistics, show sample questions;
// with --world the same for a knowledge world (docs/data.md, "Knowledge world").
import { parse, num, oneOf } from "../args.js";
import { UsageError } from "../errors.js";
import {
  TASK_NAMES,
  TOKENIZER_NAMES,
  answerFormat,
  encodeQuestion,
  formatExample,
  generateQuestions,
  prepareSplits,
  tokenizer,
  type TaskName,
  type TokenizerName,
} from "../../data/index.js";
import { dataStats, formatStats, markdownTable } from "../../data/stats.js";
import {
  CALIB_CHAT, DOC_KINDS, WORLD_TOKENIZERS, buildWorld, epochDocuments, loadWorldConfig, openPrompt, prepareWorld, sftConversations,
  worldQuestions, worldTokenizer, type World,
} from "../../data/index.js";
import { formatWorldStats, worldStats } from "../../data/world/stats.js";

export const summary = "Brown corpus or knowledge world data: prepare token caches, print statistics, show samples";

const HELP = `usage: calib data <prepare|stats|sample> [options]

  calib data prepare   encode the train/validation/test splits into data/cache/ (rebuilt when inputs change)
      --tokenizer T    byte | r50k | cl100k | o200k | all           (default all)
      --split-seed N   document split seed                          (default 0)
      --force          re-encode even when the cache is valid
      --cache-dir DIR  cache root                                   (default data/cache)
      --quiet          no progress bar
      --json           print the summary as JSON

  calib data stats     tables: documents, words, tokens per split and genre; questions per task
      --tokenizer T    tokenizers to count                          (default all)
      --split-seed N   (default 0)      --seed N  question seed     (default 0)
      --no-questions   skip the question counts (they take a few seconds)
      --cache-dir DIR  cache root                                   (default data/cache)
      --json           print the numbers as JSON

  calib data sample    print a few questions with their answers
      --task T         pos | cloze | genre                          (required)
      --n N            how many                                     (default 5)
      --split S        train | validation | test                    (default validation)
      --seed N         question seed (default 0)  --split-seed N    (default 0)
      --tokenizer T    also show the prompt's token count and the letter ids under T

knowledge world (--world default | CONFIG.json: a world config, fields in docs/data.md):
  calib data prepare --world W  encode the validation stream and the first epochs into data/cache/world/<hash>/
      --tokenizer T    byte | r50k | cl100k | o200k | word | all     (default all)
      --epochs N       pretraining epochs to encode                  (default 1)
      --force, --cache-dir DIR, --quiet, --json                      as above
  calib data stats --world W    people, exposures per bucket, documents, conversations, questions, cached tokens
      --cache-dir DIR, --json
  calib data sample --world W   rendered examples
      --kind K         bio | qa | mcq | sft | question | all        (default all)
      --n N            per kind                                      (default 2)
      --epoch N        pretraining epoch of the documents            (default 0)
      --tokenizer T    also show each example's token count under T

examples:
  calib data prepare --tokenizer r50k
  calib data stats
  calib data sample --task pos --n 5
  calib data prepare --world default --tokenizer word,r50k --epochs 3
  calib data sample --world my-world.json --kind sft`;

function tokenizerList<T extends string = TokenizerName>(value: string | undefined, all: readonly T[] = TOKENIZER_NAMES as unknown as readonly T[]): T[] {
  if (value === undefined || value === "all") return [...all];
  const names = value.split(",");
  for (const n of names) {
    if (!(all as readonly string[]).includes(n)) {
      throw new UsageError(`--tokenizer must be one of ${all.join(", ")} or all (got '${n}')`);
    }
  }
  return names as T[];
}

/** The world of --world (default | a JSON file); a bad file or field is a usage error naming it. */
function worldOption(spec: string): World {
  try {
    return buildWorld(loadWorldConfig(spec));
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(`--world ${err.message}`);
    throw err;
  }
}

const int = (x: number) => Number.isSafeInteger(x) && x >= 0;

async function prepare(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    tokenizer: { type: "string" }, "split-seed": { type: "string" }, force: { type: "boolean" }, "cache-dir": { type: "string" },
    quiet: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" }, world: { type: "string" }, epochs: { type: "string" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
  if (values.world !== undefined) return prepareWorldCli(values);
  if (values.epochs !== undefined) throw new UsageError("--epochs needs --world");
  const names = tokenizerList(values.tokenizer);
  const splitSeed = num(values["split-seed"], "split-seed", 0, int, "a non-negative integer");
  const rows = names.map((name) => {
    const p = prepareSplits({
      tokenizer: name, splitSeed, force: values.force ?? false, progress: !values.quiet,
      ...(values["cache-dir"] !== undefined && { cacheDir: values["cache-dir"] }),
    });
    return {
      tokenizer: name, vocabSize: p.tokenizer.vocabSize, built: p.built, reasons: p.rebuildReasons, seconds: p.seconds,
      train: p.splits.train.tokens.length, validation: p.splits.validation.tokens.length, test: p.splits.test.tokens.length, dir: p.dir,
    };
  });
  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  console.log(
    markdownTable(
      ["tokenizer", "V", "train", "validation", "test", "cache", "seconds"],
      rows.map((r) => [r.tokenizer, r.vocabSize, r.train, r.validation, r.test, r.built ? "built" : "valid", r.seconds.toFixed(2)]),
    ),
  );
  console.log(`cache: ${rows[0]!.dir.replace(/\/[^/]+$/, "/")}<tokenizer>/{train,validation,test}.{tokens,json}`);
  return 0;
}

async function stats(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    tokenizer: { type: "string" }, "split-seed": { type: "string" }, seed: { type: "string" },
    "no-questions": { type: "boolean" }, "cache-dir": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
    world: { type: "string" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
  if (values.world !== undefined) {
    const s = worldStats(worldOption(values.world), { ...(values["cache-dir"] !== undefined && { cacheDir: values["cache-dir"] }) });
    console.log(values.json ? JSON.stringify(s, null, 2) : formatWorldStats(s));
    return 0;
  }
  const names = tokenizerList(values.tokenizer);
  const s = dataStats({
    tokenizers: names,
    splitSeed: num(values["split-seed"], "split-seed", 0, int, "a non-negative integer"),
    seed: num(values.seed, "seed", 0, int, "a non-negative integer"),
    questions: !values["no-questions"],
    progress: !values.json,
    ...(values["cache-dir"] !== undefined && { cacheDir: values["cache-dir"] }),
  });
  console.log(values.json ? JSON.stringify(s, null, 2) : formatStats(s, names.length === 1 ? names[0] : undefined));
  return 0;
}

async function sample(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    task: { type: "string" }, n: { type: "string" }, split: { type: "string" }, seed: { type: "string" },
    "split-seed": { type: "string" }, tokenizer: { type: "string" }, help: { type: "boolean", short: "h" },
    world: { type: "string" }, kind: { type: "string" }, epoch: { type: "string" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
  if (values.world !== undefined) return sampleWorld(values);
  if (values.task === undefined) throw new UsageError(`--task is required: one of ${TASK_NAMES.join(", ")}`);
  const task = oneOf(values.task, "task", TASK_NAMES, "pos") as TaskName;
  const split = oneOf(values.split, "split", ["train", "validation", "test"] as const, "validation");
  const n = num(values.n, "n", 5, (x) => Number.isSafeInteger(x) && x >= 1, "a positive integer");
  const tok = values.tokenizer === undefined ? undefined : tokenizer(oneOf(values.tokenizer, "tokenizer", TOKENIZER_NAMES, "r50k"));
  const qs = generateQuestions({
    task, split, limit: n,
    seed: num(values.seed, "seed", 0, int, "a non-negative integer"),
    splitSeed: num(values["split-seed"], "split-seed", 0, int, "a non-negative integer"),
  });
  for (const q of qs) {
    console.log(`# ${q.id}  (${q.split}, document ${q.docId}, ${q.genre}${q.source.tag ? `, gold tag ${q.source.tag}` : ""})`);
    console.log(formatExample(q));
    if (tok) {
      const e = encodeQuestion(q, tok);
      const f = answerFormat(tok);
      console.log(
        `[${tok.name}] prompt ${e.promptIds.length} tokens; answer token ${e.answerId} (${JSON.stringify(f.letterTexts[q.answer])}); ` +
          `letters ${f.letterTexts.map((t, i) => `${JSON.stringify(t)}=${f.letterIds[i]}`).join(" ")}`,
      );
    }
    console.log("");
  }
  return 0;
}

function prepareWorldCli(values: { world?: string; tokenizer?: string; epochs?: string; force?: boolean; "cache-dir"?: string; quiet?: boolean; json?: boolean }): number {
  const world = worldOption(values.world!);
  const names = tokenizerList(values.tokenizer, WORLD_TOKENIZERS);
  const epochs = num(values.epochs, "epochs", 1, (x) => Number.isSafeInteger(x) && x >= 1, "a positive integer");
  const rows = names.map((name) => {
    const p = prepareWorld({
      world, tokenizer: name, epochs, force: values.force ?? false, progress: !values.quiet,
      ...(values["cache-dir"] !== undefined && { cacheDir: values["cache-dir"] }),
    });
    const streams = Object.fromEntries(p.streams.map((x) => [x.stream, x.tokens.length]));
    return { tokenizer: name, vocabSize: p.tokenizer.vocabSize, built: p.streams.some((x) => x.built), seconds: p.seconds, streams, dir: p.dir };
  });
  if (values.json) {
    console.log(JSON.stringify({ world: world.hash, checksum: world.checksum, rows }, null, 2));
    return 0;
  }
  const streams = Object.keys(rows[0]!.streams);
  console.log(`world ${world.hash} (${world.people.length} people, checksum ${world.checksum.slice(0, 16)}…)`);
  console.log(markdownTable(["tokenizer", "V", ...streams, "cache", "seconds"], rows.map((r) => [r.tokenizer, r.vocabSize, ...streams.map((x) => r.streams[x]!), r.built ? "built" : "valid", r.seconds.toFixed(2)])));
  console.log(`cache: ${rows[0]!.dir.replace(/\/[^/]+$/, "/")}<tokenizer>/{validation,epoch-<e>}.{tokens,docs,json}`);
  return 0;
}

const SAMPLE_KINDS = [...DOC_KINDS, "sft", "question", "all"] as const;

function sampleWorld(values: { world?: string; kind?: string; n?: string; epoch?: string; tokenizer?: string }): number {
  const world = worldOption(values.world!);
  const kind = oneOf(values.kind, "kind", SAMPLE_KINDS, "all");
  const n = num(values.n, "n", 2, (x) => Number.isSafeInteger(x) && x >= 1, "a positive integer");
  const epoch = num(values.epoch, "epoch", 0, int, "a non-negative integer");
  const tok = values.tokenizer === undefined ? null : worldTokenizer(world, oneOf(values.tokenizer, "tokenizer", WORLD_TOKENIZERS, "word"));
  const show = (title: string, text: string) => {
    console.log(`# ${title}${tok ? `  [${tok.name}: ${tok.encode(text).length} tokens]` : ""}`);
    console.log(text);
    console.log("");
  };
  const wants = (k: string) => kind === "all" || kind === k;
  for (const k of DOC_KINDS) {
    if (!wants(k)) continue;
    let shown = 0;
    for (const d of epochDocuments(world, epoch)) {
      if (d.kind !== k) continue;
      const p = world.people[d.person]!;
      show(`${k} (epoch ${epoch}) — person ${p.index}, ${p.name}, ${p.split}, ${p.exposures} biographies per epoch`, d.text);
      if (++shown >= n) break;
    }
  }
  if (wants("sft")) {
    for (const c of sftConversations(world).slice(0, n)) show(`sft ${c.id} (${c.kind}${c.person >= 0 ? `, person ${c.person}` : ""}) rendered with ${CALIB_CHAT.name}`, CALIB_CHAT.render(c.messages));
  }
  if (wants("question")) {
    for (const q of worldQuestions(world, { limit: n })) {
      show(`question ${q.id} (${q.attribute}, ${q.exposures} biographies per epoch, gold ${"ABCD"[q.answer]})`, `${formatExample(q)}\n\noption scoring, base model: ${JSON.stringify(openPrompt(q))} + " <option>"`);
    }
  }
  return 0;
}

const SUB: Record<string, (argv: string[]) => Promise<number>> = { prepare, stats, sample };

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "--help" || sub === "-h" || sub === "help") {
    console.log(HELP);
    return sub ? 0 : 2;
  }
  const fn = SUB[sub];
  if (!fn) throw new UsageError(`unknown subcommand '${sub}': one of ${Object.keys(SUB).join(", ")}`);
  return fn(rest);
}
