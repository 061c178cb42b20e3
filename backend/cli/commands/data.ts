// calib data: prepare the encoded Brown splits, print their statistics, show sample questions.
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

export const summary = "Brown corpus data: prepare token caches, print statistics, sample questions";

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

examples:
  calib data prepare --tokenizer r50k
  calib data stats
  calib data sample --task pos --n 5`;

function tokenizerList(value: string | undefined): TokenizerName[] {
  if (value === undefined || value === "all") return [...TOKENIZER_NAMES];
  const names = value.split(",");
  for (const n of names) {
    if (!(TOKENIZER_NAMES as readonly string[]).includes(n)) {
      throw new UsageError(`--tokenizer must be one of ${TOKENIZER_NAMES.join(", ")} or all (got '${n}')`);
    }
  }
  return names as TokenizerName[];
}

const int = (x: number) => Number.isSafeInteger(x) && x >= 0;

async function prepare(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    tokenizer: { type: "string" }, "split-seed": { type: "string" }, force: { type: "boolean" }, "cache-dir": { type: "string" },
    quiet: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
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
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
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
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib data --help)`);
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
