// A Hugging Face chat template (tokenizer_config.json `chat_template`, or chat_template.jinja as
// transformers 5 saves it) rendered with @huggingface/jinja, behind our ChatTemplate contract
// (backend/data/chat-template.ts).
//
// The template sees what transformers' apply_chat_template gives it: `messages`,
// `add_generation_prompt`, the tokenizer's special token strings (`bos_token`, `eos_token`,
// `pad_token`, `unk_token`; absent when unset), `raise_exception(msg)` (a TypeError here, naming
// the template), `range`, `namespace`. One difference, for reproducibility: `strftime_now` is
// defined only when a date is given (options.now); otherwise templates that print today's date
// (Llama 3.1+) take their own fallback ("26 Jul 2024"), so that the same data gives the same
// tokens on any day.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import type { ChatMessage, ChatTemplate, RenderOptions } from "../data/chat-template.js";
import { readJson } from "./config.js";
import { HfFolderError } from "./errors.js";

export interface HfChatTemplateOptions {
  /** identifies the template in run.json; default 'hf-chat/sha256:<hash of the source>' */
  name?: string;
  /** special token strings (the tokenizer's specialTokens); null / absent = undefined in the template */
  bosToken?: string | null;
  eosToken?: string | null;
  padToken?: string | null;
  unkToken?: string | null;
  /** the date strftime_now formats; absent: strftime_now is undefined */
  now?: Date;
  /** extra variables (e.g. date_string, tools) */
  context?: Record<string, unknown>;
  /** where the template came from, for errors */
  file?: string;
}

const ROLES = new Set(["system", "user", "assistant"]);
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** Python's strftime for the directives chat templates use (%d %m %Y %b %B %H %M %%), in UTC. */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%[dmYbBHM%]/g, (t) => {
    switch (t) {
      case "%d": return p2(date.getUTCDate());
      case "%m": return p2(date.getUTCMonth() + 1);
      case "%Y": return String(date.getUTCFullYear());
      case "%b": return MONTHS[date.getUTCMonth()]!;
      case "%B": return MONTHS_LONG[date.getUTCMonth()]!;
      case "%H": return p2(date.getUTCHours());
      case "%M": return p2(date.getUTCMinutes());
      default: return "%";
    }
  });
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new RangeError("range() step must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

export class HfChatTemplate implements ChatTemplate {
  readonly name: string;
  /** the Jinja source */
  readonly source: string;
  private readonly template: Template;
  private readonly opts: HfChatTemplateOptions;

  constructor(source: string, opts: HfChatTemplateOptions = {}) {
    if (typeof source !== "string" || source.length === 0) throw new TypeError("a chat template must be a non-empty string");
    try {
      this.template = new Template(source);
    } catch (err) {
      const msg = `chat_template does not parse (${(err as Error).message})`;
      if (opts.file) throw new HfFolderError(opts.file, msg, "chat_template");
      throw new TypeError(msg);
    }
    this.source = source;
    this.opts = { ...opts };
    this.name = opts.name ?? `hf-chat/sha256:${createHash("sha256").update(source).digest("hex").slice(0, 16)}`;
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    if (!Array.isArray(messages)) throw new TypeError("messages must be an array of {role, content}");
    const plain = messages.map((m, i) => {
      if (m === null || typeof m !== "object") throw new TypeError(`messages[${i}] must be an object {role, content}`);
      if (!ROLES.has(m.role as string)) throw new TypeError(`messages[${i}].role must be system, user or assistant (got ${JSON.stringify(m.role)})`);
      if (typeof m.content !== "string") throw new TypeError(`messages[${i}].content must be a string`);
      return { role: m.role, content: m.content };
    });
    const env = new Environment();
    const globals: Record<string, unknown> = {
      true: true, false: false, none: null, True: true, False: false, None: null,
      range,
      raise_exception: (msg: unknown) => {
        throw new TypeError(`chat template ${this.name}: ${String(msg)}`);
      },
      ...this.opts.context,
      messages: plain,
      add_generation_prompt: options.addGenerationPrompt === true,
    };
    if (this.opts.now) {
      const now = this.opts.now;
      globals.strftime_now = (format: string) => strftime(now, format);
    }
    for (const [key, value] of [["bos_token", this.opts.bosToken], ["eos_token", this.opts.eosToken], ["pad_token", this.opts.padToken], ["unk_token", this.opts.unkToken]] as const) {
      if (typeof value === "string") globals[key] = value;
    }
    for (const [k, v] of Object.entries(globals)) env.set(k, v);
    try {
      return (new Interpreter(env).run(this.template.parsed) as { value: string }).value;
    } catch (err) {
      if (err instanceof TypeError && err.message.startsWith(`chat template ${this.name}:`)) throw err;
      throw new TypeError(`chat template ${this.name}: ${(err as Error).message}`);
    }
  }
}

/** Where a folder's template is: tokenizer_config.json `chat_template` (a string, or a list of
 * {name, template}: the one called `templateName`, default 'default'), else chat_template.jinja,
 * else chat_template.json {chat_template}. Null when the folder has none (base models). */
export function readChatTemplateSource(dir: string, templateName = "default"): { source: string; file: string } | null {
  const configPath = join(dir, "tokenizer_config.json");
  const cfg = existsSync(configPath) ? (readJson(configPath) as Record<string, unknown> | null) : null;
  const t = cfg && typeof cfg === "object" ? cfg.chat_template : undefined;
  if (typeof t === "string") return { source: t, file: configPath };
  if (Array.isArray(t)) {
    const entry = t.find((e) => e && typeof e === "object" && (e as { name?: unknown }).name === templateName) as { template?: unknown } | undefined;
    if (!entry || typeof entry.template !== "string") {
      const names = t.map((e) => (e as { name?: unknown })?.name).join(", ");
      throw new HfFolderError(configPath, `chat_template has no template named '${templateName}' (${names})`, "chat_template");
    }
    return { source: entry.template, file: configPath };
  }
  if (t !== undefined && t !== null) throw new HfFolderError(configPath, "chat_template must be a string or a list of {name, template}", "chat_template");
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) return { source: readFileSync(jinja, "utf8"), file: jinja };
  const json = join(dir, "chat_template.json");
  if (existsSync(json)) {
    const v = readJson(json) as { chat_template?: unknown } | null;
    if (v && typeof v.chat_template === "string") return { source: v.chat_template, file: json };
    throw new HfFolderError(json, "has no chat_template string", "chat_template");
  }
  return null;
}
