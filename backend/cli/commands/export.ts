// calib export --checkpoint DIR --hf OUT: a Llama-family checkpoint of ours as a Hugging Face model
// folder (config.json, model.safetensors, tokenizer files) that transformers loads.
import { oneOf, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "write a fine-tuned Llama-family checkpoint as a Hugging Face model folder (transformers' from_pretrained)";

const HELP = `usage: calib export --checkpoint DIR --hf OUT [options]

  --checkpoint DIR     a checkpoint of a Llama-family model (calib-llama/1: SFT from "init": {"hf": …})
  --hf OUT             the folder to write: config.json (the source's, dtype updated), model.safetensors
                       (sharded above 5 GB, with model.safetensors.index.json), the tokenizer, chat template
                       and generation files the checkpoint keeps
  --dtype D            bfloat16 | float32 (default: float32 when the source model was float32, else bfloat16)
  --overwrite          replace OUT if it exists
  --json               print the result as JSON on stdout

GPT checkpoints (calib-gpt/1) are refused: their model.safetensors loads into nanoGPT as it is (docs/trainer.md).

example:
  calib export --checkpoint data/runs/sft-smollm/checkpoint --hf out/smollm-ls0.1
  python -c "from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('out/smollm-ls0.1')"`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    checkpoint: { type: "string" }, hf: { type: "string" }, dtype: { type: "string" }, overwrite: { type: "boolean" }, json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib export --help)`);
  if (!values.checkpoint) throw new UsageError("--checkpoint is required (see calib export --help)");
  if (!values.hf) throw new UsageError("--hf OUT (the folder to write) is required (see calib export --help)");
  const dtype = values.dtype === undefined ? undefined : oneOf(values.dtype, "dtype", ["bfloat16", "float32"] as const, "bfloat16");
  const { exportCheckpoint, CheckpointError } = await import("../../train/index.js");
  try {
    const r = exportCheckpoint(values.checkpoint, values.hf, { ...(dtype ? { dtype } : {}), overwrite: values.overwrite === true });
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else console.log(`exported ${values.checkpoint} → ${r.dir} (${r.dtype}, ${(r.totalSize / 2 ** 20).toFixed(1)} MiB of weights: ${[...r.weightFiles, ...r.files].join(", ")})`);
    return 0;
  } catch (err) {
    if (err instanceof CheckpointError) throw new UsageError(err.message);
    throw err;
  }
}
