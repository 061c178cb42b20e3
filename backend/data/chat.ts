// Chat-format SFT data for our own tokenizers: the built-in chat template, conversations →
// token ids with an assistant-only loss mask (the prefix rule of chat-template.ts), SFT
// batches, and readers of chat JSONL files.
//
// The template `calib-chat/1` (CALIB_CHAT):
//
//   <|system|>\n{content}\n            (a system message, if any)
//   <|user|>\n{content}\n
//   <|assistant|>\n{content}<|end|>\n
//
// and the generation prompt is "<|assistant|>\n". Every message renders on its own, so the
// template is prefix-stable. The markers are plain text for byte / r50k / cl100k / o200k
// (encoded like any other text) and single special ids for the word-level tokenizer.
//
// Assistant-only loss: the supervised tokens of assistant message k are those of
// render(messages[0..k]) after those of render(messages[0..k−1], {addGenerationPrompt: true}),
// i.e. the reply's text and its "<|end|>\n" — so the model learns to stop. encodeConversation()
// checks that each of these encodings is a prefix of the next (a tokenizer that merges across
// the boundary is an error naming the message), and sets mask[t] = 1 on the reply tokens. As a
// next-token example, inputs = ids[0 … L−2] and targets[t] = ids[t+1] where mask[t+1], else −100.
//
// JSONL readers (one conversation per line; blank lines skipped; errors name file:line and field):
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}     Tulu / open-instruct
//   {"conversations": [{"from": "system"|"human"|"gpt", "value": "…"}, …]}       ShareGPT / OpenHermes
//   {"prompt": "…", "completion": "…"}                                          prompt–completion (TRL);
//       prompt / completion may also be message lists (TRL's conversational form)
// Other keys on a line (id, source, …) are ignored.
import { readFileSync } from "node:fs";
import type { ChatMessage, ChatRole, ChatTemplate, RenderOptions } from "./chat-template.js";
import { IGNORE_INDEX, sequenceBatches, type SequenceExample, type SftEpoch, type SftOptions } from "./sft.js";
import type { TextTokenizer } from "./tokenizers.js";

export const CHAT_ROLES: readonly ChatRole[] = Object.freeze(["system", "user", "assistant"] as const);
export const CHAT_MARKERS = Object.freeze({ system: "<|system|>", user: "<|user|>", assistant: "<|assistant|>", end: "<|end|>" });

/** Checks a message list; TypeError naming the message index and field. */
export function checkMessages(messages: unknown, field = "messages"): ChatMessage[] {
  if (!Array.isArray(messages)) throw new TypeError(`${field} must be a list of {role, content}`);
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object" || Array.isArray(m)) throw new TypeError(`${field}[${i}] must be an object {role, content}`);
    const { role, content } = m as Record<string, unknown>;
    if (!(CHAT_ROLES as readonly unknown[]).includes(role)) throw new TypeError(`${field}[${i}].role must be one of ${CHAT_ROLES.join(", ")} (got ${JSON.stringify(role)})`);
    if (typeof content !== "string") throw new TypeError(`${field}[${i}].content must be a string`);
  });
  return messages as ChatMessage[];
}

/** The built-in template of our GPTs (see the header). */
export const CALIB_CHAT: ChatTemplate = Object.freeze({
  name: "calib-chat/1",
  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    checkMessages(messages);
    let text = "";
    for (const m of messages) text += m.role === "assistant" ? `${CHAT_MARKERS.assistant}\n${m.content}${CHAT_MARKERS.end}\n` : `${CHAT_MARKERS[m.role]}\n${m.content}\n`;
    return options.addGenerationPrompt ? `${text}${CHAT_MARKERS.assistant}\n` : text;
  },
});

/** A conversation as one next-token example with assistant-only targets. */
export interface ChatExample extends SequenceExample {
  /** all tokens of the rendered conversation (L) */
  ids: Int32Array;
  /** 1 where ids[t] belongs to an assistant reply (its text and end marker), else 0 (L) */
  mask: Uint8Array;
  /** ids[0 … L−2] */
  inputs: Int32Array;
  /** targets[t] = ids[t+1] where mask[t+1], else IGNORE_INDEX (L − 1) */
  targets: Int32Array;
}

function startsWith(a: Int32Array, prefix: Int32Array): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/**
 * Encodes a conversation with `template` and `tok` and marks the assistant replies by the prefix
 * rule. Needs at least one assistant message (nothing would be supervised); TypeError otherwise.
 */
export function encodeConversation(messages: readonly ChatMessage[], template: ChatTemplate, tok: TextTokenizer, id = "conversation"): ChatExample {
  checkMessages(messages, `${id}: messages`);
  const ids = tok.encode(template.render(messages));
  const mask = new Uint8Array(ids.length);
  let replies = 0;
  messages.forEach((m, k) => {
    if (m.role !== "assistant") return;
    const before = tok.encode(template.render(messages.slice(0, k), { addGenerationPrompt: true }));
    const after = k === messages.length - 1 ? ids : tok.encode(template.render(messages.slice(0, k + 1)));
    if (!startsWith(after, before) || !startsWith(ids, after)) {
      throw new TypeError(`${id}: messages[${k}]: template ${template.name} with tokenizer ${tok.name} is not prefix-stable here (the reply's tokens merge with the text before or after it)`);
    }
    mask.fill(1, before.length, after.length);
    replies++;
  });
  if (replies === 0) throw new TypeError(`${id}: the conversation has no assistant message (nothing to train on)`);
  const L = ids.length;
  const targets = new Int32Array(L - 1);
  for (let t = 0; t < L - 1; t++) targets[t] = mask[t + 1] ? ids[t + 1]! : IGNORE_INDEX;
  return { id, ids, mask, inputs: ids.subarray(0, L - 1), targets };
}

/** SFT batches of conversations (pad: one per row; pack: several per row), as sftBatches. */
export function chatSftBatches(examples: readonly ChatExample[], opts: SftOptions): SftEpoch {
  return sequenceBatches(examples, opts);
}

// ------------------------------------------------------------------------------------------
// JSONL

export interface ChatRecord {
  /** 1-based line number in the file */
  line: number;
  messages: ChatMessage[];
}

const SHAREGPT_ROLES: Record<string, ChatRole> = { system: "system", human: "user", user: "user", gpt: "assistant", assistant: "assistant" };

function fromShareGpt(turns: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(turns)) throw new TypeError(`${where}: conversations must be a list of {from, value}`);
  return turns.map((t, i) => {
    const { from, value } = (t ?? {}) as Record<string, unknown>;
    const role = typeof from === "string" ? SHAREGPT_ROLES[from] : undefined;
    if (!role) throw new TypeError(`${where}: conversations[${i}].from must be one of system, human, gpt (got ${JSON.stringify(from)})`);
    if (typeof value !== "string") throw new TypeError(`${where}: conversations[${i}].value must be a string`);
    return { role, content: value };
  });
}

function promptCompletion(obj: Record<string, unknown>, where: string): ChatMessage[] {
  const part = (v: unknown, key: string, role: ChatRole): ChatMessage[] => {
    if (typeof v === "string") return [{ role, content: v }];
    if (Array.isArray(v)) return checkMessages(v, `${where}: ${key}`);
    throw new TypeError(`${where}: ${key} must be a string or a list of {role, content}`);
  };
  return [...part(obj.prompt, "prompt", "user"), ...part(obj.completion, "completion", "assistant")];
}

/**
 * Calls `fn` with every JSON object of JSONL text, its place ("<source>:<line>") and 1-based line;
 * blank lines are skipped, a line that is not valid JSON or not an object is a TypeError naming it
 * (`shape` describes the expected object in that message).
 */
export function forEachJsonlObject(text: string, source: string, fn: (o: Record<string, unknown>, where: string, line: number) => void, shape = ""): void {
  if (typeof text !== "string") throw new TypeError(`${source}: expected text`);
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const where = `${source}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new TypeError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new TypeError(`${where}: each line must be a JSON object${shape ? ` ${shape}` : ""}`);
    fn(obj as Record<string, unknown>, where, i + 1);
  });
}

/** The text of a data file; TypeError naming it when it cannot be read. */
export function readTextFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TypeError(`${path}: ${e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "is a directory" : e.message}`);
  }
}

/**
 * Parses SFT JSONL text (any of the three line formats of the header). `source` names the file
 * in errors: "<source>:<line>: messages[1].role must be one of …".
 */
export function parseChatJsonl(text: string, source = "<jsonl>"): ChatRecord[] {
  const out: ChatRecord[] = [];
  forEachJsonlObject(text, source, (o, where, line) => {
    let messages: ChatMessage[];
    if ("messages" in o) messages = checkMessages(o.messages, `${where}: messages`);
    else if ("conversations" in o) messages = fromShareGpt(o.conversations, where);
    else if ("prompt" in o || "completion" in o) {
      if (!("prompt" in o)) throw new TypeError(`${where}: prompt is missing (a prompt–completion line needs both)`);
      if (!("completion" in o)) throw new TypeError(`${where}: completion is missing (a prompt–completion line needs both)`);
      messages = promptCompletion(o, where);
    } else throw new TypeError(`${where}: needs "messages" (a list of {role, content}), "conversations" (ShareGPT) or "prompt" and "completion"`);
    if (messages.length === 0) throw new TypeError(`${where}: the conversation is empty`);
    if (!messages.some((m) => m.role === "assistant")) throw new TypeError(`${where}: the conversation has no assistant message (nothing to train on)`);
    out.push({ line, messages });
  });
  return out;
}

/** Reads an SFT JSONL file (see parseChatJsonl); errors name the file and line. */
export function readChatJsonl(path: string): ChatRecord[] {
  return parseChatJsonl(readTextFile(path), path);
}
