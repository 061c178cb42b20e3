// Summary tables of the prepared data: documents, words and tokens per split and genre, tokens
// per tokenizer, and the multiple-choice questions per task (with their answer-letter balance).
import { GENRES } from "./corpus.js";
import { SPLITS, type SplitName } from "./split.js";
import { prepareSplits, type PreparedSplits } from "./prepare.js";
import { TOKENIZER_NAMES, type TokenizerName } from "./tokenizers.js";
import { TASK_NAMES, generateQuestions, type TaskName } from "./tasks.js";
import { formatTable } from "../term/table.js";

type PerSplit = Record<SplitName | "all", number>;

export interface GenreStats {
  genre: string;
  label: string;
  docs: PerSplit;
  words: PerSplit;
  /** tokens per tokenizer */
  tokens: Partial<Record<TokenizerName, PerSplit>>;
}

export interface TokenizerStats {
  tokenizer: TokenizerName;
  vocabSize: number;
  tokens: PerSplit;
  /** tokens per word over the whole corpus */
  tokensPerWord: number;
  /** seconds to prepare (encode or read the cache) */
  seconds: number;
  built: boolean;
}

export interface TaskStats {
  task: TaskName;
  questions: PerSplit;
  /** share of answers A, B, C, D over all splits */
  letters: number[];
}

export interface DataStats {
  splitSeed: number;
  splitChecksum: string;
  genres: GenreStats[];
  total: GenreStats;
  tokenizers: TokenizerStats[];
  tasks: TaskStats[];
}

export interface StatsOptions {
  tokenizers?: readonly TokenizerName[];
  splitSeed?: number;
  cacheDir?: string;
  corpusDir?: string;
  progress?: boolean;
  /** question counts (generates every task; default true) */
  questions?: boolean;
  /** question seed (default 0) */
  seed?: number;
}

const zero = (): PerSplit => ({ train: 0, validation: 0, test: 0, all: 0 });

export function dataStats(opts: StatsOptions = {}): DataStats {
  const names = opts.tokenizers ?? TOKENIZER_NAMES;
  if (names.length === 0) throw new TypeError("tokenizers must name at least one tokenizer");
  const prepared: PreparedSplits[] = names.map((name) =>
    prepareSplits({
      tokenizer: name,
      ...(opts.splitSeed !== undefined && { splitSeed: opts.splitSeed }),
      ...(opts.cacheDir !== undefined && { cacheDir: opts.cacheDir }),
      ...(opts.corpusDir !== undefined && { corpusDir: opts.corpusDir }),
      progress: opts.progress ?? true,
    }),
  );
  const first = prepared[0]!;
  const byGenre = new Map<string, GenreStats>(
    GENRES.map((g) => [g.code, { genre: g.code, label: g.label, docs: zero(), words: zero(), tokens: {} }]),
  );
  const total: GenreStats = { genre: "all", label: "all genres", docs: zero(), words: zero(), tokens: {} };
  for (const split of SPLITS) {
    for (const d of first.splits[split].docs) {
      const g = byGenre.get(d.genre)!;
      for (const row of [g, total]) {
        row.docs[split]++;
        row.docs.all++;
        row.words[split] += d.words;
        row.words.all += d.words;
      }
    }
  }
  const tokenizers: TokenizerStats[] = prepared.map((p) => {
    const name = p.tokenizer.name;
    for (const row of [...byGenre.values(), total]) row.tokens[name] = zero();
    for (const split of SPLITS) {
      for (const d of p.splits[split].docs) {
        const n = d.end - d.start;
        for (const row of [byGenre.get(d.genre)!, total]) {
          row.tokens[name]![split] += n;
          row.tokens[name]!.all += n;
        }
      }
    }
    const tokens = total.tokens[name]!;
    return { tokenizer: name, vocabSize: p.tokenizer.vocabSize, tokens, tokensPerWord: tokens.all / total.words.all, seconds: p.seconds, built: p.built };
  });
  const tasks: TaskStats[] = [];
  if (opts.questions ?? true) {
    for (const task of TASK_NAMES) {
      const questions = zero();
      const letters = [0, 0, 0, 0];
      for (const split of SPLITS) {
        const qs = generateQuestions({
          task,
          split,
          seed: opts.seed ?? 0,
          splitSeed: first.splitSeed,
          ...(opts.corpusDir !== undefined && { corpusDir: opts.corpusDir }),
        });
        questions[split] = qs.length;
        questions.all += qs.length;
        for (const q of qs) letters[q.answer]!++;
      }
      tasks.push({ task, questions, letters: letters.map((x) => x / Math.max(1, questions.all)) });
    }
  }
  return { splitSeed: first.splitSeed, splitChecksum: first.splitChecksum, genres: [...byGenre.values()], total, tokenizers, tasks };
}

/** A Markdown table with right-aligned numeric columns (backend/term/table.ts). */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  return formatTable(header, rows, { style: "markdown", align: "auto" });
}

/** The tables printed by `calib data stats`; the genre × split token table uses `tokenizer`. */
export function formatStats(s: DataStats, tokenizer?: TokenizerName): string {
  const out: string[] = [];
  const rows = [...s.genres, s.total];
  out.push(`Brown corpus, document split seed ${s.splitSeed} (checksum ${s.splitChecksum.slice(0, 16)}…)`);
  out.push("");
  out.push("Documents and words per split and genre");
  out.push("");
  out.push(
    markdownTable(
      ["genre", "docs train", "docs val", "docs test", "docs all", "words train", "words val", "words test", "words all"],
      rows.map((g) => [g.genre, g.docs.train, g.docs.validation, g.docs.test, g.docs.all, g.words.train, g.words.validation, g.words.test, g.words.all]),
    ),
  );
  out.push("");
  out.push("Tokens per split and tokenizer");
  out.push("");
  out.push(
    markdownTable(
      ["tokenizer", "V", "train", "validation", "test", "all", "tokens/word"],
      s.tokenizers.map((t) => [t.tokenizer, t.vocabSize, t.tokens.train, t.tokens.validation, t.tokens.test, t.tokens.all, t.tokensPerWord.toFixed(3)]),
    ),
  );
  const tok = tokenizer ?? (s.tokenizers.some((t) => t.tokenizer === "r50k") ? "r50k" : s.tokenizers[0]!.tokenizer);
  if (rows[0]!.tokens[tok]) {
    out.push("");
    out.push(`Tokens per split and genre (${tok})`);
    out.push("");
    out.push(
      markdownTable(
        ["genre", "train", "validation", "test", "all"],
        rows.map((g) => {
          const t = g.tokens[tok]!;
          return [g.genre, t.train, t.validation, t.test, t.all];
        }),
      ),
    );
  }
  if (s.tasks.length > 0) {
    out.push("");
    out.push("Multiple-choice questions per task and split (answer letters over all splits)");
    out.push("");
    out.push(
      markdownTable(
        ["task", "train", "validation", "test", "all", "A", "B", "C", "D"],
        s.tasks.map((t) => [t.task, t.questions.train, t.questions.validation, t.questions.test, t.questions.all, ...t.letters.map((x) => `${(x * 100).toFixed(2)}%`)]),
      ),
    );
  }
  return out.join("\n");
}
