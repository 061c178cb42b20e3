// Plain text from tagged Brown tokens, the way a reader expects it: Brown's `` and '' become
// ", punctuation attaches to the word before it, opening brackets and quotes to the word after,
// and the corpus's doubled sentence punctuation (";/. ;/.", "?/. ?/." — about 5,900 cases)
// is written once, as is a period after an abbreviation that already ends in one ("Jr." ".").
// Sentences of a paragraph are joined by one space, paragraphs by a blank
// line, and a document ends with one newline.
import type { BrownDocument, Sentence } from "./corpus.js";

/** Bump when the rendering changes: it is part of the token cache's source hash. */
export const TEXT_FORMAT_VERSION = 1;

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "''", "%"]);
const NO_SPACE_AFTER = new Set(["``", "(", "["]);
/** Punctuation written once when the corpus repeats it (an artifact of the tagged files). */
const COLLAPSE = new Set([",", ";", ":", "?", "!"]);

export interface Rendered {
  text: string;
  /** character span [start, end) of each token in `text`; [-1, -1] for a token not written */
  starts: Int32Array;
  ends: Int32Array;
}

/**
 * Joins tagged tokens into text. `replace` substitutes the surface form of some tokens (by
 * index), e.g. a blank for the cloze task; spacing still follows the original token.
 */
export function renderTokens(words: readonly string[], replace?: ReadonlyMap<number, string>): Rendered {
  const starts = new Int32Array(words.length).fill(-1);
  const ends = new Int32Array(words.length).fill(-1);
  let text = "";
  let glueNext = true; // no space before the first token
  let singleOpen = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (i > 0 && COLLAPSE.has(w) && words[i - 1] === w) continue;
    // A sentence-final period after an abbreviation ("Jr." + ".") is written once.
    if (w === "." && i > 0 && starts[i - 1]! >= 0 && words[i - 1]!.length > 1 && words[i - 1]!.endsWith(".")) continue;
    let surface = w === "``" || w === "''" ? '"' : w;
    let spaceBefore = !glueNext && !NO_SPACE_BEFORE.has(w);
    let glueAfter = NO_SPACE_AFTER.has(w);
    if (w === "'") {
      // A lone single quote opens or closes a quotation, alternately within the sentence.
      if (singleOpen) spaceBefore = false;
      else glueAfter = true;
      singleOpen = !singleOpen;
    }
    const sub = replace?.get(i);
    if (sub !== undefined) surface = sub;
    if (spaceBefore) text += " ";
    starts[i] = text.length;
    text += surface;
    ends[i] = text.length;
    glueNext = glueAfter;
  }
  return { text, starts, ends };
}

/** One sentence as text. */
export function sentenceText(s: Sentence): string {
  return renderTokens(s.words).text;
}

/** A run of sentences as one paragraph of text (joined by single spaces). */
export function passageText(sentences: readonly Sentence[]): string {
  return sentences.map(sentenceText).join(" ");
}

/** The whole document: paragraphs separated by a blank line, ending with "\n". */
export function documentText(doc: BrownDocument): string {
  return doc.paragraphs.map(passageText).join("\n\n") + "\n";
}

/** Text to be quoted inside double quotes: its own double quotes become single quotes. */
export function quoteInner(text: string): string {
  return text.replace(/"/g, "'");
}
