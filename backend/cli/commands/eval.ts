// calib eval --checkpoint DIR: per-token and per-question evaluation records of a checkpoint.
// calib eval --model PATH --questions FILE.jsonl: a multiple-choice file scored by a Hugging Face
// model folder or one of our checkpoints, as lm-evaluation-harness scores it (letter and option).
import { join } from "node:path";
import { num, oneOf, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "evaluate a checkpoint (tokens.arrow, questions.arrow) or score a multiple-choice JSONL file with a Hugging Face model";

const HELP = `usage: calib eval --checkpoint DIR [options]
       calib eval --model PATH --questions FILE.jsonl [options]

  --checkpoint DIR     a checkpoint directory (config.json + model.safetensors)
  --out DIR            output directory (default: a run registered in data/runs/<id>, see calib runs)
  --split S            validation | test                               (default validation)
  --tasks LIST         comma-separated: pos,cloze,genre, or none        (default pos,cloze,genre)
  --max-tokens N       tokens for tokens.arrow, 0 = none                (default 8192)
  --max-questions N    questions per task, 0 = none                     (default 500)
  --question-seed N    (default 0)      --split-seed N                  (default 0)
  --temperature T      evaluate softmax(softcap(z/T))                   (default 1: raw logits)
  --softcap C          (default none)
  --epoch N            SFT epoch recorded in the rows (default: from the checkpoint, else 0)
  --scoring LIST       knowledge-world checkpoints: option,letter        (default option; needs --out)
  --batch-size N       (default 16)     --threads N  (default all cores)
  --device D           cpu | cuda | auto (default cpu; cuda evaluates Llama-family models in bfloat16)
  --bootstrap R        registered runs: bootstrap resamples of calibration.arrow (default 1000; 0: none)
  --bootstrap-seed S   their seed (default 0)
  --quiet              no progress bars
  --json               print the metrics as JSON on stdout

multiple-choice JSONL (one {"question", "choices": [...], "answer": index or letter, "subject"?} per line):
  --model PATH         a Hugging Face model folder (llama, qwen2, mistral, gemma2) or a checkpoint
  --questions FILE     the questions; records: questions.arrow (task = the file's name, split test)
  --scoring LIST       letter,option (default both; the first gives question_accuracy): letter = " A".." D"
                       after the listed options and "Answer:"; option = each option's text (acc, acc_norm)
  --shots K            K examples before each question (default 0): the first K other questions of the file
                       (of the same subject first), or of --fewshot FILE
  --chat               render the prompts with the model's chat template (examples as earlier turns)
  --context N          tokens to allocate for (default: the model's, at most 4096)
  --max-questions N    the first N questions (default 0 = all)
  --temperature T, --softcap C, --batch-size N, --threads N, --device D, --epoch N, --out DIR, --bootstrap R as above
                       (Gemma 2 applies its final soft-cap always: --softcap must then be absent or equal)

examples:
  calib eval --checkpoint data/runs/pt-byte/checkpoint --out data/runs/pt-byte-eval --tasks pos
  calib eval --model models/SmolLM2-135M-Instruct --questions mmlu.jsonl --shots 5 --out out/mmlu-base`;

function defaultOut(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  return join("data", "runs", `eval-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    checkpoint: { type: "string" }, out: { type: "string" }, split: { type: "string" }, tasks: { type: "string" },
    "max-tokens": { type: "string" }, "max-questions": { type: "string" }, "question-seed": { type: "string" },
    "split-seed": { type: "string" }, temperature: { type: "string" }, softcap: { type: "string" }, epoch: { type: "string" },
    "batch-size": { type: "string" }, threads: { type: "string" }, quiet: { type: "boolean" }, json: { type: "boolean" },
    bootstrap: { type: "string" }, "bootstrap-seed": { type: "string" },
    help: { type: "boolean", short: "h" }, scoring: { type: "string" },
    model: { type: "string" }, questions: { type: "string" }, shots: { type: "string" }, fewshot: { type: "string" }, chat: { type: "boolean" },
    context: { type: "string" }, device: { type: "string" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib eval --help)`);
  if (values.model !== undefined || values.questions !== undefined) return runModel(values);
  for (const f of ["shots", "fewshot", "chat", "context"] as const) if (values[f] !== undefined) throw new UsageError(`--${f} applies to --model with --questions`);
  if (!values.checkpoint) throw new UsageError("--checkpoint is required, or --model with --questions (see calib eval --help)");
  const int = (x: number) => Number.isInteger(x) && x >= 0;
  const split = oneOf(values.split, "split", ["validation", "test"] as const, "validation");
  const taskNames = ["pos", "cloze", "genre"];
  const tasks = values.tasks === undefined ? taskNames : values.tasks === "none" ? [] : values.tasks.split(",");
  for (const t of tasks) if (!taskNames.includes(t)) throw new UsageError(`--tasks: unknown task '${t}' (pos, cloze, genre, or none)`);
  const softcap = num(values.softcap, "softcap", 0, (x) => x > 0, "a number > 0");
  const evalOpts = {
    split, tasks,
    maxTokens: num(values["max-tokens"], "max-tokens", 8192, int, "an integer ≥ 0"),
    maxQuestions: num(values["max-questions"], "max-questions", 500, int, "an integer ≥ 0"),
    questionSeed: num(values["question-seed"], "question-seed", 0, int, "an integer ≥ 0"),
    temperature: num(values.temperature, "temperature", 1, (x) => x > 0, "a number > 0"),
    softcap: softcap > 0 ? softcap : null,
    batchSize: num(values["batch-size"], "batch-size", 16, (x) => Number.isInteger(x) && x >= 1, "an integer ≥ 1"),
  };
  const scoring = values.scoring?.split(",");
  for (const x of scoring ?? []) if (x !== "option" && x !== "letter") throw new UsageError(`--scoring: unknown scoring '${x}' (option, letter)`);
  if (scoring && values.out === undefined) throw new UsageError("--scoring needs --out");
  const { evaluateCheckpointDir, CheckpointError } = await import("../../train/index.js");
  const calibration = {
    resamples: num(values.bootstrap, "bootstrap", 1000, (x) => int(x) && x <= 1_000_000, "an integer in [0, 1000000]"),
    seed: num(values["bootstrap-seed"], "bootstrap-seed", 0, (x) => int(x) && x <= 2 ** 32 - 1, "an integer ≥ 0"),
  };
  // without --out: a registered eval run in data/runs/<id>, like POST /api/runs (docs/api.md)
  if (values.out === undefined) {
    return (await import("../../runs/local.js")).runFromCli({
      kind: "eval", checkpoint: values.checkpoint, eval: evalOpts, calibration, splitSeed: num(values["split-seed"], "split-seed", 0, int, "an integer ≥ 0"),
      threads: num(values.threads, "threads", 0, int, "an integer ≥ 0"), device: evalDevice(values.device), ...(values.epoch === undefined ? {} : { epoch: num(values.epoch, "epoch", 0, int, "an integer ≥ 0") }),
    }, { quiet: values.quiet ?? false, json: values.json ?? false });
  }
  if (values.bootstrap !== undefined || values["bootstrap-seed"] !== undefined) throw new UsageError("--bootstrap applies to registered runs (without --out: an --out directory gets no calibration.arrow)");
  const outDir = values.out ?? defaultOut();
  try {
    const r = evaluateCheckpointDir({
      checkpoint: values.checkpoint, outDir, eval: evalOpts, progress: !values.quiet,
      epoch: values.epoch === undefined ? undefined : num(values.epoch, "epoch", 0, int, "an integer ≥ 0"),
      splitSeed: num(values["split-seed"], "split-seed", 0, int, "an integer ≥ 0"),
      threads: num(values.threads, "threads", 0, int, "an integer ≥ 0"), device: evalDevice(values.device),
      ...(scoring && { scoring: scoring as ("option" | "letter")[] }),
    });
    printResult(r, values.json === true);
    return 0;
  } catch (err) {
    if (err instanceof CheckpointError) throw new UsageError(err.message);
    throw err;
  }
}

/** --device: where the model runs (cuda: Llama-family models in bfloat16, our GPTs in the engine's default). */
function evalDevice(v: unknown): "cpu" | "cuda" | "auto" {
  return oneOf(v as string | undefined, "device", ["cpu", "cuda", "auto"] as const, "cpu");
}

type Values = ReturnType<typeof parse<Record<string, { type: "string" | "boolean"; short?: string }>>>["values"];

/** calib eval --model PATH --questions FILE (see the help). */
async function runModel(values: Values): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  if (str("checkpoint") !== undefined) throw new UsageError("give either --checkpoint or --model, not both");
  if (!str("model")) throw new UsageError("--questions needs --model PATH (a Hugging Face folder or a checkpoint)");
  if (!str("questions")) throw new UsageError("--model needs --questions FILE.jsonl (multiple-choice questions)");
  for (const f of ["split", "tasks", "max-tokens", "question-seed", "split-seed"]) if (values[f] !== undefined) throw new UsageError(`--${f} applies to --checkpoint (the Brown tasks), not to --model`);
  const int = (x: number) => Number.isInteger(x) && x >= 0;
  const scoring = (str("scoring") ?? "letter,option").split(",");
  for (const x of scoring) if (x !== "option" && x !== "letter") throw new UsageError(`--scoring: unknown scoring '${x}' (letter, option)`);
  if (new Set(scoring).size !== scoring.length) throw new UsageError("--scoring: a scoring is listed twice");
  const softcap = num(values.softcap, "softcap", 0, (x) => x > 0, "a number > 0");
  const questions = {
    jsonl: str("questions")!, scoring: scoring as ("letter" | "option")[], shots: num(values.shots, "shots", 0, (x) => int(x) && x <= 64, "an integer in [0, 64]"),
    ...(str("fewshot") !== undefined ? { fewshot: str("fewshot")! } : {}), chat: values.chat === true,
    maxQuestions: num(values["max-questions"], "max-questions", 0, int, "an integer ≥ 0"),
  };
  if (questions.fewshot !== undefined && questions.shots === 0) throw new UsageError("--fewshot needs --shots K (K > 0)");
  const context = values.context === undefined ? undefined : num(values.context, "context", 0, (x) => Number.isInteger(x) && x >= 1 && x <= 65536, "an integer in [1, 65536]");
  const evalOpts = {
    temperature: num(values.temperature, "temperature", 1, (x) => x > 0, "a number > 0"), softcap: softcap > 0 ? softcap : null,
    batchSize: num(values["batch-size"], "batch-size", 16, (x) => Number.isInteger(x) && x >= 1, "an integer ≥ 1"),
  };
  const threads = num(values.threads, "threads", 0, int, "an integer ≥ 0");
  const epoch = values.epoch === undefined ? undefined : num(values.epoch, "epoch", 0, int, "an integer ≥ 0");
  const { evaluateModelQuestions, CheckpointError } = await import("../../train/index.js");
  if (values.out === undefined) {
    const calibration = {
      resamples: num(values.bootstrap, "bootstrap", 1000, (x) => int(x) && x <= 1_000_000, "an integer in [0, 1000000]"),
      seed: num(values["bootstrap-seed"], "bootstrap-seed", 0, (x) => int(x) && x <= 2 ** 32 - 1, "an integer ≥ 0"),
    };
    return (await import("../../runs/local.js")).runFromCli({
      kind: "eval", model: str("model")!, questions, eval: evalOpts, calibration, threads, device: evalDevice(str("device")),
      ...(context !== undefined ? { context } : {}), ...(epoch !== undefined ? { epoch } : {}),
    }, { quiet: values.quiet === true, json: values.json === true });
  }
  if (values.bootstrap !== undefined || values["bootstrap-seed"] !== undefined) throw new UsageError("--bootstrap applies to registered runs (without --out: an --out directory gets no calibration.arrow)");
  try {
    const r = evaluateModelQuestions({
      model: str("model")!, questions, outDir: str("out")!, eval: evalOpts, threads, device: evalDevice(str("device")), progress: values.quiet !== true,
      ...(context !== undefined ? { context } : {}), ...(epoch !== undefined ? { epoch } : {}),
    });
    printResult(r, values.json === true);
    return 0;
  } catch (err) {
    if (err instanceof CheckpointError) throw new UsageError(err.message);
    throw err;
  }
}

function printResult(r: { runId: string; outDir: string; metrics: Record<string, number>; artifacts: string[] }, json: boolean): void {
  if (json) console.log(JSON.stringify({ runId: r.runId, outDir: r.outDir, metrics: r.metrics, artifacts: r.artifacts }, null, 2));
  else {
    console.log(`eval ${r.runId} → ${r.outDir} (${r.artifacts.join(", ")})`);
    for (const [k, v] of Object.entries(r.metrics)) console.log(`  ${k.padEnd(20)} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
  }
}
