// `calib export`: one of our Llama-family checkpoints (calib-llama/1) → a Hugging Face model folder
// that transformers' from_pretrained loads with the fine-tuned weights (backend/hf's
// exportHfFolder: config.json of the source with its dtype updated, model.safetensors in
// bfloat16 or float32, the tokenizer / chat template / generation files the checkpoint keeps in
// hf/). GPT checkpoints are refused: their tokenizers (byte, tiktoken encodings) have no
// tokenizer.json, and their model.safetensors already loads into nanoGPT (docs/trainer.md).
import { exportHfFolder, type ExportResult } from "../hf/index.js";
import { CheckpointError, isLlamaCheckpoint, readCheckpointConfig } from "./checkpoint.js";
import { openLlamaSource } from "./hf-run.js";

export interface CheckpointExportOptions {
  /** stored dtype; default the source's when float32, else bfloat16 */
  dtype?: "bfloat16" | "float32";
  /** replace an existing folder (default: refuse) */
  overwrite?: boolean;
}

/** Writes the Hugging Face folder `out` from checkpoint directory `checkpoint` (atomic). */
export function exportCheckpoint(checkpoint: string, out: string, o: CheckpointExportOptions = {}): ExportResult {
  const cfg = readCheckpointConfig(checkpoint);
  if (!isLlamaCheckpoint(cfg)) {
    throw new CheckpointError(
      `checkpoint ${checkpoint} holds a GPT (${cfg.format}, tokenizer ${cfg.tokenizer ?? "none"}): calib export writes Hugging Face folders of Llama-family models only; ` +
        "a GPT checkpoint's model.safetensors loads into nanoGPT as it is (docs/trainer.md)",
    );
  }
  const source = openLlamaSource(checkpoint);
  return exportHfFolder(out, {
    spec: source.folder.spec, params: source.params(), source: source.folder.dir,
    ...(o.dtype ? { dtype: o.dtype } : {}), ...(o.overwrite ? { overwrite: true } : {}),
  });
}
