// backend/hf — Hugging Face model folders in and out: the entry point (import from here).
//
// Contract
//   In: a folder as save_pretrained / the Hub writes it —
//     config.json                       model_type llama (also SmolLM2, Llama 3), qwen2, mistral, gemma2
//     model.safetensors                 or model-0000i-of-0000N.safetensors + model.safetensors.index.json
//                                       tensors BF16 / F16 / F32
//     tokenizer.json, tokenizer_config.json (special tokens, add_bos_token, chat_template),
//     chat_template.jinja, generation_config.json   (optional)
//   →  spec: HfModelSpec       the engine's configuration (arch 'llama', calib_llama_config's fields),
//                              Gemma 2's final soft-cap, special ids, config.json as read
//      weights: HfWeights      every parameter as float32 in one flat buffer, in the engine's tensor
//                              order and names (calib.h; or the engine's own table), ready for
//                              model.write('params', weights.params)
//      tokenizer: HfTokenizer  our TextTokenizer over @huggingface/tokenizers
//      chatTemplate            our ChatTemplate over @huggingface/jinja, or null (base models)
//   Out: exportHfFolder(out, {spec, params}) writes a folder transformers loads (atomic).
//   Errors: every problem of a folder is an HfFolderError (a CheckpointError: CLI exit 2) whose
//   message names the file and the tensor or field; bad arguments are TypeError / RangeError.
//   Nothing here computes: the numerics of these models live in native/ (calib.h). docs/hf.md.
//
// Typical use:
//   const hf = loadHfModel("models/SmolLM2-135M", { context: 2048 });
//   hf.spec.model            // { arch: 'llama', nLayer: 30, nHead: 9, dModel: 576, …, llama: {nKvHead: 3, …} }
//   hf.weights.params        // Float32Array, hf.weights.table gives each tensor's offset
//   hf.tokenizer.encode("Hello")
//   hf.chatTemplate?.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true })
//   exportHfFolder("out/finetuned", { spec: hf.spec, params: trainedParams });
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HfChatTemplate, readChatTemplateSource } from "./chat.js";
import { readHfConfig, type HfConfigOptions, type HfModelSpec } from "./config.js";
import { HfFolderError } from "./errors.js";
import { loadHfTokenizer, type HfTokenizer } from "./tokenizer.js";
import { loadHfWeights, type HfWeights, type LoadWeightsOptions } from "./weights.js";

export { HfFolderError } from "./errors.js";
export {
  readHfConfig, parseHfConfig, embedScaleFor, isHfFamily, HF_MODEL_TYPES, DEFAULT_CONTEXT,
  type HfModelSpec, type HfFamily, type HfDtype, type LlamaModelConfig, type LlamaConfig, type RopeScaling, type HfConfigOptions,
} from "./config.js";
export { llamaTensorTable, hfSlices, hfTensorName, tableSize, type EngineTensor, type HfSlice, type LlamaTensorName } from "./layout.js";
export { loadHfWeights, findWeightFiles, SINGLE_FILE, INDEX_FILE, type HfWeights, type LoadWeightsOptions, type WeightFiles } from "./weights.js";
export { loadHfTokenizer, hfModelLabel, type HfTokenizer, type HfTokenizerOptions, type HfEncodeOptions, type HfDecodeOptions } from "./tokenizer.js";
export { HfChatTemplate, readChatTemplateSource, strftime, type HfChatTemplateOptions } from "./chat.js";
export { exportHfFolder, shardName, COPIED_FILES, DEFAULT_MAX_SHARD_BYTES, type ExportOptions, type ExportResult } from "./export.js";

export interface OpenOptions extends HfConfigOptions {
  /** which of several named chat templates (tokenizer_config.json list form); default 'default' */
  chatTemplate?: string;
  /** the date the chat template's strftime_now formats (default: undefined, see chat.ts) */
  now?: Date;
}

/** A folder's configuration, tokenizer and chat template (no weights: cheap). */
export interface HfFolder {
  dir: string;
  spec: HfModelSpec;
  tokenizer: HfTokenizer;
  chatTemplate: HfChatTemplate | null;
}

/** Reads config.json, the tokenizer and the chat template of `dir`, checking them against each other. */
export function openHfFolder(dir: string, opts: OpenOptions = {}): HfFolder {
  const spec = readHfConfig(dir, opts);
  const tokenizer = loadHfTokenizer(dir, { spec });
  if (tokenizer.vocabSize > spec.model.vocab) {
    throw new HfFolderError(join(dir, "tokenizer.json"), `has ids up to ${tokenizer.vocabSize - 1}, beyond config.json's vocab_size ${spec.model.vocab}`, "vocab_size");
  }
  const found = readChatTemplateSource(dir, opts.chatTemplate);
  const t = tokenizer.specialTokens;
  const chatTemplate = found
    ? new HfChatTemplate(found.source, {
        name: `${tokenizer.name}/chat:sha256:${createHash("sha256").update(found.source).digest("hex").slice(0, 16)}`,
        bosToken: t.bos, eosToken: t.eos, padToken: t.pad, unkToken: t.unk,
        file: found.file,
        ...(opts.now ? { now: opts.now } : {}),
      })
    : null;
  return { dir, spec, tokenizer, chatTemplate };
}

/** openHfFolder plus the weights. */
export function loadHfModel(dir: string, opts: OpenOptions & LoadWeightsOptions = {}): HfFolder & { weights: HfWeights } {
  const folder = openHfFolder(dir, opts);
  return { ...folder, weights: loadHfWeights(folder.spec, opts) };
}
