// The tokenizer of a Hugging Face model folder (tokenizer.json + tokenizer_config.json) through
// @huggingface/tokenizers, behind our TextTokenizer interface.
//
// encode(text) gives the tokens of the text alone, as transformers' encode(text,
// add_special_tokens=False) does: a chat template's rendering already contains its BOS, and SFT
// data is assembled from pieces. Special tokens written in the text (e.g. "<|eot_id|>") become
// their ids, as in transformers. encode(text, { addSpecialTokens: true }) adds what transformers
// adds by default (specialPrefix / specialSuffix):
//   - tokenizer_config.json sets add_bos_token or add_eos_token, or its tokenizer_class is a
//     Llama / CodeLlama / Gemma tokenizer: [bos if add_bos_token (default true for those
//     classes)] text [eos if add_eos_token (default false)] (transformers 5's
//     update_post_processor; Gemma: <bos> text);
//   - otherwise tokenizer.json's post_processor decides (Llama 3: <|begin_of_text|> text;
//     SmolLM2, Qwen2: nothing).
// decode() keeps every token (special ones too) and does not clean up spaces, so that decode(encode(x))
// gives x back for tokenizers without a lossy normalizer. Ids: bos from tokenizer_config.json's
// bos_token; eos from its eos_token, then config.json's and generation_config.json's
// eos_token_id (Llama 3 Instruct stops on several); pad from pad_token, else config.json /
// generation_config.json, else the first eos.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Tokenizer as HfJsTokenizer } from "@huggingface/tokenizers";
import type { TextTokenizer } from "../data/tokenizers.js";
import { readJson, type HfModelSpec } from "./config.js";
import { HfFolderError } from "./errors.js";

export interface HfEncodeOptions {
  /** add the BOS/EOS transformers adds by default (specialPrefix, specialSuffix); default false */
  addSpecialTokens?: boolean;
}

export interface HfDecodeOptions {
  /** leave out special tokens (BOS, EOS, chat markers); default false */
  skipSpecialTokens?: boolean;
}

export interface HfTokenizer extends TextTokenizer {
  /** 'hf:<model>' (the folder, or the Hub repository of a cache snapshot) */
  readonly name: `hf:${string}`;
  /** the tokenizer.json model type: BPE, Unigram, WordPiece */
  readonly encoding: string;
  /** max id of the vocabulary and the added tokens, + 1 (may be below config.json's vocab_size) */
  readonly vocabSize: number;
  /** the first end-of-sequence id (tokenizer_config.json eos_token), or null */
  readonly eotId: number | null;
  readonly padId: number;
  /** "@huggingface/tokenizers@<version>/sha256:<tokenizer.json + tokenizer_config.json>" */
  readonly fingerprint: string;
  readonly bosId: number | null;
  /** every id that ends a sequence (tokenizer, config.json, generation_config.json), eotId first */
  readonly eosIds: readonly number[];
  /** the token strings of tokenizer_config.json (null when unset): what chat templates receive */
  readonly specialTokens: Readonly<{ bos: string | null; eos: string | null; pad: string | null; unk: string | null }>;
  /** ids encode() adds before / after the text with addSpecialTokens */
  readonly specialPrefix: readonly number[];
  readonly specialSuffix: readonly number[];
  encode(text: string, options?: HfEncodeOptions): Int32Array;
  decode(ids: ArrayLike<number>, options?: HfDecodeOptions): string;
  /** the id of a token string (vocabulary or added token), or null */
  tokenToId(token: string): number | null;
  /** the token string of an id, or null */
  idToToken(id: number): string | null;
}

export interface HfTokenizerOptions {
  /** the folder's parsed config.json (for its eos/pad ids); read from the folder when absent */
  spec?: Pick<HfModelSpec, "eosTokenIds" | "padTokenId" | "bosTokenId">;
}

const require = createRequire(import.meta.url);
/** set by esbuild in bundles that travel without node_modules (scripts/gpu/lib.sh bundle_ts) */
declare const __HF_TOKENIZERS_VERSION__: string | undefined;
let library: string | undefined;
/** "@huggingface/tokenizers@<version>" (its package.json is not exported: found beside its entry file;
 * read on first use, so that importing this module needs no node_modules) */
function libraryName(): string {
  if (library === undefined) {
    const version = typeof __HF_TOKENIZERS_VERSION__ === "string" ? __HF_TOKENIZERS_VERSION__
      : (JSON.parse(readFileSync(join(dirname(require.resolve("@huggingface/tokenizers")), "..", "package.json"), "utf8")) as { version: string }).version;
    library = `@huggingface/tokenizers@${version}`;
  }
  return library;
}
/** tokenizer classes whose post-processor transformers rebuilds from add_bos_token / add_eos_token */
const FLAG_CLASSES = /^(Llama|CodeLlama|Gemma)Tokenizer(Fast)?$/;

type Raw = Record<string, unknown>;

/** The content of a special-token entry: a string or an AddedToken object ({content, …}). */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

function optionalJson(path: string): Raw | null {
  if (!existsSync(path)) return null;
  const v = readJson(path);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new HfFolderError(path, "is not a JSON object");
  return v as Raw;
}

/** 'hf:<org>/<name>' for a Hub cache snapshot (models--org--name/snapshots/<hash>), else 'hf:<folder>'. */
export function hfModelLabel(dir: string): string {
  const snap = basename(dirname(dir)) === "snapshots" ? basename(dirname(dirname(dir))) : null;
  if (snap && snap.startsWith("models--")) return snap.slice("models--".length).replace("--", "/");
  return basename(dir.replace(/[/\\]+$/, "")) || "model";
}

function idsOf(v: unknown): number[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return list.filter((x): x is number => Number.isSafeInteger(x) && (x as number) >= 0);
}

/** Loads tokenizer.json and tokenizer_config.json of `dir`. */
export function loadHfTokenizer(dir: string, opts: HfTokenizerOptions = {}): HfTokenizer {
  const jsonPath = join(dir, "tokenizer.json");
  const configPath = join(dir, "tokenizer_config.json");
  if (!existsSync(jsonPath)) {
    const slow = ["tokenizer.model", "vocab.json"].find((f) => existsSync(join(dir, f)));
    throw new HfFolderError(jsonPath, `is missing${slow ? ` (only ${slow}: save a fast tokenizer with tokenizer.save_pretrained)` : ""}`);
  }
  const jsonText = readFileSync(jsonPath);
  const tj = readJson(jsonPath) as Raw;
  if (!tj || typeof tj !== "object" || !tj.model || typeof tj.model !== "object") throw new HfFolderError(jsonPath, "has no model object", "model");
  const cfg = optionalJson(configPath) ?? optionalJson(join(dir, "special_tokens_map.json")) ?? {};
  const gen = optionalJson(join(dir, "generation_config.json")) ?? {};
  const spec = opts.spec ?? configIds(dir);

  let tok: HfJsTokenizer;
  try {
    tok = new HfJsTokenizer({ added_tokens: [], ...tj }, cfg);
  } catch (err) {
    throw new HfFolderError(jsonPath, `cannot be used by ${libraryName()} (${(err as Error).message})`);
  }
  const vocabSize = maxId(tj) + 1;
  const idOf = (token: string | null, field: string): number | null => {
    if (token === null) return null;
    const id = tok.token_to_id(token);
    if (id === undefined) throw new HfFolderError(existsSync(configPath) ? configPath : jsonPath, `${field} '${token}' is not a token of tokenizer.json`, field);
    return id;
  };
  const special = {
    bos: tokenContent(cfg.bos_token),
    eos: tokenContent(cfg.eos_token),
    pad: tokenContent(cfg.pad_token),
    unk: tokenContent(cfg.unk_token),
  };
  const bosId = idOf(special.bos, "bos_token");
  const eosFirst = idOf(special.eos, "eos_token");
  const eosIds = [...new Set([...(eosFirst === null ? [] : [eosFirst]), ...spec.eosTokenIds, ...idsOf(gen.eos_token_id)])];
  const padId = idOf(special.pad, "pad_token") ?? spec.padTokenId ?? idsOf(gen.pad_token_id)[0] ?? eosIds[0] ?? 0;
  for (const [what, id] of [["eos_token_id", eosIds], ["pad", [padId]]] as const) {
    for (const i of id) if (i >= vocabSize) throw new HfFolderError(configPath, `${what} ${i} is outside the tokenizer's ${vocabSize} ids`, what);
  }
  const specialIds = new Set<number>();
  for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) specialIds.add(id);

  const raw = (text: string): number[] => tok.encode(text, { add_special_tokens: false }).ids;
  let prefix: number[] = [];
  let suffix: number[] = [];
  const cls = typeof cfg.tokenizer_class === "string" ? cfg.tokenizer_class : "";
  if ("add_bos_token" in cfg || "add_eos_token" in cfg || FLAG_CLASSES.test(cls)) {
    const addBos = cfg.add_bos_token === undefined ? FLAG_CLASSES.test(cls) : cfg.add_bos_token === true;
    const addEos = cfg.add_eos_token === true;
    if (addBos && bosId !== null) prefix = [bosId];
    if (addEos && eosFirst !== null) suffix = [eosFirst];
  } else {
    // tokenizer.json's post-processor: what it puts around a probe text
    const probe = "probe";
    const bare = raw(probe);
    const full = tok.encode(probe, { add_special_tokens: true }).ids;
    for (let k = 0; k + bare.length <= full.length; k++) {
      if (bare.every((id, i) => full[k + i] === id)) {
        prefix = full.slice(0, k);
        suffix = full.slice(k + bare.length);
        break;
      }
    }
  }
  const hash = createHash("sha256").update(jsonText).update(existsSync(configPath) ? readFileSync(configPath) : "").digest("hex").slice(0, 16);

  const checkIds = (ids: ArrayLike<number>): number[] => {
    if (ids == null || typeof ids.length !== "number") throw new TypeError("ids must be an array of token ids");
    const out = Array.from(ids);
    out.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize || tok.id_to_token(id) === undefined) {
        throw new RangeError(`ids[${i}] = ${id} is not a token id of ${name} (0 ≤ id < ${vocabSize})`);
      }
    });
    return out;
  };
  const name = `hf:${hfModelLabel(dir)}` as const;
  return Object.freeze({
    name,
    encoding: String((tj.model as Raw).type ?? "unknown"),
    vocabSize,
    eotId: eosIds[0] ?? null,
    padId,
    fingerprint: `${libraryName()}/sha256:${hash}`,
    bosId,
    eosIds: Object.freeze(eosIds),
    specialTokens: Object.freeze(special),
    specialPrefix: Object.freeze(prefix),
    specialSuffix: Object.freeze(suffix),
    encode(text: string, options: HfEncodeOptions = {}): Int32Array {
      if (typeof text !== "string") throw new TypeError(`text must be a string (got ${typeof text})`);
      const ids = text.length === 0 ? [] : raw(text);
      return Int32Array.from(options.addSpecialTokens ? [...prefix, ...ids, ...suffix] : ids);
    },
    decode(ids: ArrayLike<number>, options: HfDecodeOptions = {}): string {
      let list = checkIds(ids);
      if (options.skipSpecialTokens) list = list.filter((id) => !specialIds.has(id));
      return list.length === 0 ? "" : tok.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    },
    tokenToId(token: string): number | null {
      return tok.token_to_id(token) ?? null;
    },
    idToToken(id: number): string | null {
      return Number.isInteger(id) && id >= 0 ? tok.id_to_token(id) ?? null : null;
    },
  });
}

/** The special ids of config.json when no parsed spec is given (a tokenizer-only folder has none). */
function configIds(dir: string): Pick<HfModelSpec, "eosTokenIds" | "padTokenId" | "bosTokenId"> {
  const c = optionalJson(join(dir, "config.json")) ?? {};
  return { eosTokenIds: idsOf(c.eos_token_id), padTokenId: idsOf(c.pad_token_id)[0] ?? null, bosTokenId: idsOf(c.bos_token_id)[0] ?? null };
}

/** The largest id of tokenizer.json: vocabulary (an object of ids, or Unigram's list) and added tokens. */
function maxId(tj: Raw): number {
  let max = -1;
  const vocab = (tj.model as Raw).vocab;
  if (Array.isArray(vocab)) max = vocab.length - 1;
  else if (vocab && typeof vocab === "object") for (const id of Object.values(vocab as Record<string, unknown>)) if (typeof id === "number" && id > max) max = id;
  for (const t of (Array.isArray(tj.added_tokens) ? tj.added_tokens : []) as Array<{ id?: unknown }>) {
    if (typeof t.id === "number" && t.id > max) max = t.id;
  }
  return max;
}
