// Our side of the check against transformers (issue 19's GPU acceptance; the job is
// scripts/gpu/hf-job.sh, the PyTorch side bench/gpu/hf_parity.py, docs/hf.md "Checking against
// transformers"). Bundled by scripts/gpu/hf-bundle.sh into .device/hf/hf-parity.mjs for a machine
// without node_modules. Everything here runs the engine on the CPU in float32 (the Llama family
// has no CUDA path yet); CALIB_THREADS (or --threads) caps its cores.
//
//   logits --model PATH --inputs IDS.npy [--targets TARGETS.npy] --out PREFIX [--label-smoothing 0.1] [--device cpu|cuda]
//       PATH: a Hugging Face folder or a calib-llama/1 checkpoint. Writes PREFIX.logits.npy
//       (float32 [B, T, V]: the model's logits — Gemma 2's final soft-cap applied, as transformers'
//       outputs.logits) and PREFIX.json ({loss: mean label-smoothed loss over the targets ≠ -100,
//       valid, family, params, seconds, …}).
//   sft-batches --config RUN.json --out DIR
//       The micro-batches of every optimizer step of that SFT run as `calib train` feeds them
//       (backend/train's sftStepBatches): DIR/inputs.npy, DIR/targets.npy (int32 [M, B, Tmax], unused
//       cells -100 / the pad id), DIR/micro.json ({step, rows, t} per micro-batch), and the weight-decay
//       set of the model by Hugging Face tensor name (decay: matmul weights only, as our AdamW).
//   train-log --run DIR --out FILE.json
//       The per-step training loss of a finished run (DIR/train_log.arrow, its train rows).
//   calib train|eval|export ARGS…
//       Those `calib` commands (backend/cli/commands), as bin/calib.js runs them; runs need --out
//       (the registry's SQLite is not in the bundle).
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { num, parse } from "../../backend/cli/args.js";
import { formatError, UsageError } from "../../backend/cli/errors.js";
import * as evalCommand from "../../backend/cli/commands/eval.js";
import * as exportCommand from "../../backend/cli/commands/export.js";
import * as trainCommand from "../../backend/cli/commands/train.js";
import { GptModel, tensorTable, type Batch } from "../../backend/engine/index.js";
import { hfSlices, readHfConfig } from "../../backend/hf/index.js";
import { writeFileAtomic } from "../../backend/io/atomic.js";
import { readNpy, toInt32Targets, writeNpy } from "../../backend/io/npy.js";
import { readTrainLog } from "../../backend/records/index.js";
import { openLlamaSource, parseTrainConfig, sftStepBatches } from "../../backend/train/index.js";

const CALIB: Record<string, { run(argv: string[]): Promise<number> }> = { train: trainCommand, eval: evalCommand, export: exportCommand };

const USAGE = `usage: node hf-parity.mjs <command> [options]
  logits --model PATH --inputs IDS.npy [--targets T.npy] --out PREFIX [--label-smoothing E] [--threads N] [--device cpu|cuda]
  sft-batches --config RUN.json --out DIR
  train-log --run DIR --out FILE.json
  calib train|eval|export ARGS…`;

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(value, null, 1) + "\n");
}

/** [B, T] token ids from a .npy file (int32 or int64). */
function readIds(path: string, name: string): { data: Int32Array; b: number; t: number } {
  const a = readNpy(path);
  if (a.shape.length !== 2) throw new UsageError(`${name} ${path}: expected a [B, T] array, got shape [${a.shape.join(", ")}]`);
  return { data: toInt32Targets(a, name), b: a.shape[0]!, t: a.shape[1]! };
}

/** The logits of every position over the whole vocabulary, and the mean ε-smoothed loss. */
function logits(argv: string[]): number {
  const { values } = parse(argv, {
    model: { type: "string" }, inputs: { type: "string" }, targets: { type: "string" }, out: { type: "string" },
    "label-smoothing": { type: "string" }, threads: { type: "string" }, device: { type: "string" },
  });
  const device = values.device ?? "cpu";
  if (device !== "cpu" && device !== "cuda") throw new UsageError(`--device must be cpu (float32) or cuda (bfloat16 mixed precision), got ${device}`);
  if (!values.model || !values.inputs || !values.out) throw new UsageError("logits needs --model, --inputs and --out");
  const eps = num(values["label-smoothing"], "label-smoothing", 0.1, (x) => x >= 0 && x <= 1, "in [0, 1]");
  const threads = num(values.threads, "threads", 0, (x) => Number.isInteger(x) && x >= 0, "an integer ≥ 0");
  const ids = readIds(values.inputs, "--inputs");
  const targets = values.targets ? readIds(values.targets, "--targets") : null;
  if (targets && (targets.b !== ids.b || targets.t !== ids.t)) throw new UsageError(`--targets has shape [${targets.b}, ${targets.t}], --inputs [${ids.b}, ${ids.t}]`);
  const t0 = performance.now();
  const source = openLlamaSource(values.model, { context: ids.t });
  const params = source.params();
  const loaded = (performance.now() - t0) / 1000;
  const precision = device === "cuda" ? "bfloat16" : "float32";
  const model = GptModel.create(source.config, { maxBatch: ids.b, device, precision, threads });
  try {
    model.write("params", params);
    const V = source.config.vocab;
    const batch: Batch = { inputs: ids.data, targets: targets?.data ?? new Int32Array(ids.data.length).fill(-100), b: ids.b, t: ids.t };
    const t1 = performance.now();
    // optionLogits are the transformed logits softcap(z): Gemma 2's final soft-cap, as transformers applies it
    const ev = model.evaluate(batch, { optionIds: Int32Array.from({ length: V }, (_, i) => i), topK: 0, softcap: source.finalSoftcap });
    mkdirSync(dirname(values.out), { recursive: true });
    writeNpy(`${values.out}.logits.npy`, ev.optionLogits!, [ids.b, ids.t, V]);
    const r = targets ? model.forward(batch, { labelSmoothing: eps, softcap: source.finalSoftcap }) : null;
    const info = {
      model: source.path, kind: source.kind, family: source.info.family, params: source.info.params, shape: [ids.b, ids.t, V],
      final_softcap: source.finalSoftcap, label_smoothing: eps, loss: r ? r.lossSum / r.validCount : null, valid: r?.validCount ?? 0,
      device, precision, load_s: loaded, compute_s: (performance.now() - t1) / 1000, threads: threads || Number(process.env.CALIB_THREADS ?? 0) || null,
    };
    writeJson(`${values.out}.json`, info);
    console.log(`${source.info.family} ${source.path}: ${(source.info.params / 1e6).toFixed(1)}M parameters, logits [${info.shape.join(", ")}]` +
      `${r ? `, loss ${info.loss!.toFixed(6)} over ${info.valid} tokens` : ""} (load ${loaded.toFixed(1)} s, compute ${info.compute_s.toFixed(1)} s)`);
  } finally {
    model.free();
  }
  return 0;
}

/** Every micro-batch of an SFT run (as the trainer feeds them) and the model's weight-decay set. */
function sftBatches(argv: string[]): number {
  const { values } = parse(argv, { config: { type: "string" }, out: { type: "string" } });
  if (!values.config || !values.out) throw new UsageError("sft-batches needs --config and --out");
  const raw = JSON.parse(readFileSyncText(values.config)) as Record<string, unknown>;
  const config = parseTrainConfig(raw);
  if (config.kind !== "sft" || typeof config.init !== "object") throw new UsageError(`${values.config}: sft-batches takes an sft config with init.hf`);
  const micro: Array<{ step: number; batch: Batch }> = [];
  let step = 0;
  for (const list of sftStepBatches(config)) {
    step++;
    for (const batch of list) micro.push({ step, batch });
  }
  const B = Math.max(...micro.map((m) => m.batch.b)), T = Math.max(...micro.map((m) => m.batch.t));
  const inputs = new Int32Array(micro.length * B * T), targets = new Int32Array(micro.length * B * T).fill(-100);
  micro.forEach(({ batch }, m) => {
    for (let r = 0; r < batch.b; r++) {
      inputs.set(batch.inputs.subarray(r * batch.t, (r + 1) * batch.t), (m * B + r) * T);
      targets.set(batch.targets.subarray(r * batch.t, (r + 1) * batch.t), (m * B + r) * T);
    }
  });
  mkdirSync(values.out, { recursive: true });
  writeNpy(join(values.out, "inputs.npy"), inputs, [micro.length, B, T]);
  writeNpy(join(values.out, "targets.npy"), targets, [micro.length, B, T]);
  // the trainer's AdamW decays the matmul weights only (TensorInfo.decay); PyTorch needs it by name
  const spec = readHfConfig(config.init.hf, config.init.context !== undefined ? { context: config.init.context } : {});
  const table = tensorTable(spec.model);
  const decayOf = new Map(table.map((t) => [t.name as string, t.decay]));
  const decay = Object.fromEntries(hfSlices(spec.family, spec.model).map((s) => [s.hfName, decayOf.get(s.tensor) ?? false]));
  const supervised = micro.reduce((a, m) => a + m.batch.targets.reduce((n, y) => n + (y === -100 ? 0 : 1), 0), 0);
  writeJson(join(values.out, "micro.json"), {
    config: values.config, steps: step, micro: micro.map(({ step, batch }) => ({ step, rows: batch.b, t: batch.t })), decay,
    supervised_tokens: supervised,
  });
  console.log(`${step} steps, ${micro.length} micro-batches of up to ${B} × ${T} tokens (${supervised} supervised) → ${values.out}`);
  return 0;
}

function readFileSyncText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The per-step training losses of a run directory. */
function trainLog(argv: string[]): number {
  const { values } = parse(argv, { run: { type: "string" }, out: { type: "string" } });
  if (!values.run || !values.out) throw new UsageError("train-log needs --run and --out");
  const rows = readTrainLog(join(values.run, "train_log.arrow")).filter((r) => r.split === "train");
  writeJson(values.out, { run: values.run, steps: rows.map((r) => r.step), loss: rows.map((r) => r.loss), lr: rows.map((r) => r.lr), grad_norm: rows.map((r) => r.grad_norm) });
  console.log(`${rows.length} training rows → ${values.out}`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === "logits") return logits(rest);
    if (cmd === "sft-batches") return sftBatches(rest);
    if (cmd === "train-log") return trainLog(rest);
    if (cmd === "calib") {
      const [sub, ...args] = rest;
      const c = sub ? CALIB[sub] : undefined;
      if (!c) throw new UsageError(`calib: this bundle has the commands ${Object.keys(CALIB).join(", ")} (got ${String(sub)})`);
      return await c.run(args);
    }
    console.error(USAGE);
    return 2;
  } catch (err) {
    console.error(`hf-parity ${cmd}: ${formatError(err)}`);
    return err instanceof UsageError || err instanceof TypeError || err instanceof RangeError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
