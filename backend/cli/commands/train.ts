// calib train --config FILE: pretraining or SFT per a JSON run config (backend/train/config.ts,
// docs/trainer.md), with a progress bar on stderr; writes the records and a checkpoint.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { num, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "train from a JSON config: a GPT (pretrain on Brown text or a knowledge world; SFT on the multiple-choice tasks or the world's conversations), or chat SFT of a Hugging Face model";

const HELP = `usage: calib train --config FILE [options]

  --config FILE     JSON run config: {"kind": "pretrain" | "sft", ...} (fields and defaults: docs/trainer.md;
                    registered runs also take "calibration": {"resamples": 1000, "seed": 0}, docs/api.md)
  --out DIR         output directory (default: a run registered in data/runs/<id>, see calib runs)
  --resume          continue from DIR/checkpoint (same config; bit-identical to an uninterrupted run)
  --threads N       CPU threads (overrides the config; 0 = all cores)
  --gpus N          data-parallel ranks, one process per GPU (overrides the config's "gpus"; docs/parallel.md)
  --transport T     how the ranks communicate: nccl (default; device cuda) or cpu-test (CPU ranks over a
                    localhost socket, for tests on machines without GPUs)
  --quiet           no progress bar
  --json            print the result as JSON on stdout

writes DIR/run.json, train_log.arrow, tokens.arrow, questions.arrow and DIR/checkpoint/
(model.safetensors with nanoGPT names, optimizer.safetensors, config.json, trainer_state.json; a Llama-family
model's checkpoint: calib-llama/1 with the engine's tensor names and the source's tokenizer files in hf/)

fine-tuning a Hugging Face model folder (llama, qwen2, mistral, gemma2; CPU, float32) on chat JSONL:
  {"kind": "sft", "init": {"hf": "models/SmolLM2-135M-Instruct", "context": 1024},
   "data": {"jsonl": "chat.jsonl", "validation": "chat-val.jsonl", "pack": false},
   "questions": {"jsonl": "mmlu.jsonl", "shots": 5}, "loss": {"labelSmoothing": 0.1}, "epochs": 2}
  lines {"messages": [{"role", "content"}, …]}, {"conversations": [{"from", "value"}, …]} or {"prompt", "completion"};
  loss on the assistant tokens only; export the result with calib export --checkpoint DIR/checkpoint --hf OUT

examples:
  calib train --config runs/pretrain-byte.json --out data/runs/pt-byte
  calib train --config runs/sft-pos.json        # {"kind": "sft", "init": "data/runs/pt-byte/checkpoint", ...}`;

function defaultOut(kind: string): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
  return join("data", "runs", `${kind}-${stamp}`);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    config: { type: "string" }, out: { type: "string" }, resume: { type: "boolean" }, threads: { type: "string" }, gpus: { type: "string" }, transport: { type: "string" },
    quiet: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib train --help)`);
  if (!values.config) throw new UsageError("--config is required (see calib train --help)");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(values.config, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--config ${values.config}: ${e.code === "ENOENT" ? "no such file" : e.code ? e.code : `not valid JSON (${e.message})`}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new UsageError(`--config ${values.config}: must hold a JSON object`);
  if (values.threads !== undefined) {
    (raw as Record<string, unknown>).threads = num(values.threads, "threads", 0, (x) => Number.isInteger(x) && x >= 0, "an integer ≥ 0");
  }
  if (values.gpus !== undefined) {
    (raw as Record<string, unknown>).gpus = num(values.gpus, "gpus", 1, (x) => Number.isInteger(x) && x >= 1, "an integer ≥ 1");
  }
  const transport = values.transport;
  if (transport !== undefined && transport !== "nccl" && transport !== "cpu-test") throw new UsageError(`--transport must be nccl or cpu-test (got '${transport}')`);
  const { parseTrainConfig, train, CheckpointError } = await import("../../train/index.js");
  // `calibration` (the settings of calibration.arrow) belongs to registered runs, not to the trainer
  const { calibration, ...trainerConfig } = raw as Record<string, unknown>;
  const registered = values.out === undefined && !values.resume;
  if (calibration !== undefined && !registered) throw new UsageError(`--config ${values.config}: calibration applies to registered runs (without --out/--resume: those write no calibration.arrow)`);
  const config = parseTrainConfig(trainerConfig);
  // without --out: a registered run in data/runs/<id>, like POST /api/runs (docs/api.md)
  if (registered) {
    if (transport !== undefined) throw new UsageError("--transport applies with --out (a registered run uses the default transport)");
    const run = { ...config, ...(calibration !== undefined ? { calibration } : {}) };
    return (await import("../../runs/local.js")).runFromCli(run, { quiet: values.quiet ?? false, json: values.json ?? false });
  }
  const outDir = values.out ?? defaultOut(config.kind);
  try {
    const r = await train(config, { outDir, resume: values.resume ?? false, progress: !values.quiet, ...(transport ? { transport } : {}) });
    if (values.json) {
      console.log(JSON.stringify({ runId: r.runId, outDir: r.outDir, kind: r.kind, steps: r.steps, completed: r.completed, metrics: r.metrics, artifacts: r.artifacts }, null, 2));
    } else {
      console.log(`${r.kind} run ${r.runId}: ${r.steps} steps → ${r.outDir}`);
      for (const [k, v] of Object.entries(r.metrics)) console.log(`  ${k.padEnd(20)} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof CheckpointError) throw new UsageError(err.message);
    throw err;
  }
}
