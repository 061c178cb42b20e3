// A word-level tokenizer over a closed vocabulary (the words, digits and punctuation a knowledge
// world renders), lossless on any string:
//
//   ids 0 … 5        special tokens <|endoftext|> <|pad|> and the chat markers <|system|>
//                    <|user|> <|assistant|> <|end|> (the marker text always encodes to its id)
//   ids 6 … 261      byte fallback <0x00> … <0xFF>: a piece outside the vocabulary is written
//                    as its UTF-8 bytes (the world never needs them; foreign text still works)
//   ids 262 …        the vocabulary's pieces, sorted
//
// Text is cut into pieces like GPT-2's pre-tokenizer, simplified: a special marker, a run of
// letters with an optional leading space (" born"), one digit with an optional leading space
// (" 1", "9", …), one other non-space character with an optional leading space (".", " ("),
// or one whitespace character. The pieces concatenate to the text, and decode() writes each
// piece's text (bytes for the fallback ids), so decode(encode(x)) === x for any well-formed x.
import { CHAT_MARKERS } from "./chat.js";
import { sha256Hex } from "./rng.js";
import type { TextTokenizer } from "./tokenizers.js";

export const WORD_SPECIALS: readonly string[] = Object.freeze(["<|endoftext|>", "<|pad|>", CHAT_MARKERS.system, CHAT_MARKERS.user, CHAT_MARKERS.assistant, CHAT_MARKERS.end]);
const BYTE_BASE = WORD_SPECIALS.length;
const PIECE_BASE = BYTE_BASE + 256;

const PIECE = /<\|(?:endoftext|pad|system|user|assistant|end)\|>| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]|\s/gsu;
const PUNCTUATION = ".,;:!?'\"()-&/+*=%$#@[]{}<>|_";

/** The pieces of a text (they concatenate to it). */
export function wordPieces(text: string): string[] {
  return text.match(PIECE) ?? [];
}

export interface WordTokenizer extends TextTokenizer {
  readonly name: "word";
  /** the vocabulary's pieces in id order (from id PIECE_BASE) */
  readonly pieces: readonly string[];
  /** tokens of the byte fallback in an id sequence */
  fallbackCount(ids: ArrayLike<number>): number;
}

/**
 * The word-level tokenizer whose vocabulary holds the pieces of `texts` — each text's pieces,
 * and each word also with and without a leading space — plus every ASCII letter, digit and
 * punctuation mark (with and without a leading space), newline, space and tab.
 */
export function wordTokenizer(texts: Iterable<string>): WordTokenizer {
  const set = new Set<string>();
  const add = (p: string) => {
    if (!WORD_SPECIALS.includes(p)) set.add(p);
  };
  for (const t of texts) {
    for (const p of wordPieces(t)) {
      add(p);
      if (p.startsWith(" ") && p.length > 1) add(p.slice(1));
      else if (!/\s/.test(p)) add(` ${p}`);
    }
  }
  for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + PUNCTUATION) add(ch), add(` ${ch}`);
  for (const ws of ["\n", " ", "\t"]) add(ws);
  const pieces = [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const idOf = new Map<string, number>();
  WORD_SPECIALS.forEach((s, i) => idOf.set(s, i));
  pieces.forEach((p, i) => idOf.set(p, PIECE_BASE + i));
  const vocabSize = PIECE_BASE + pieces.length;
  const hash = sha256Hex(pieces.join("\n")).slice(0, 16);

  return Object.freeze({
    name: "word" as const,
    encoding: `world-words/${hash}`,
    vocabSize,
    eotId: 0,
    padId: 1,
    fingerprint: `word/1/${hash}`,
    pieces,
    encode(text: string): Int32Array {
      if (typeof text !== "string") throw new TypeError(`text must be a string (got ${typeof text})`);
      const out: number[] = [];
      for (const p of wordPieces(text)) {
        const id = idOf.get(p);
        if (id !== undefined) out.push(id);
        else for (const b of Buffer.from(p, "utf8")) out.push(BYTE_BASE + b);
      }
      return Int32Array.from(out);
    },
    decode(ids: ArrayLike<number>): string {
      if (ids == null || typeof ids.length !== "number") throw new TypeError("ids must be an array of token ids (word)");
      let text = "";
      let bytes: number[] = [];
      const flush = () => {
        if (bytes.length > 0) text += Buffer.from(bytes).toString("utf8");
        bytes = [];
      };
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`ids[${i}] = ${id} is not a token id of word (0 ≤ id < ${vocabSize})`);
        if (id >= BYTE_BASE && id < PIECE_BASE) {
          bytes.push(id - BYTE_BASE);
          continue;
        }
        flush();
        text += id < BYTE_BASE ? WORD_SPECIALS[id]! : pieces[id - PIECE_BASE]!;
      }
      flush();
      return text;
    },
    fallbackCount(ids: ArrayLike<number>): number {
      let n = 0;
      for (let i = 0; i < ids.length; i++) if (ids[i]! >= BYTE_BASE && ids[i]! < PIECE_BASE) n++;
      return n;
    },
  });
}
