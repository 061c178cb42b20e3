// The text and class of each question's correct answer, for the per-class views: the questions
// records keep only the option index, so the loader regenerates the questions with backend/data
// (deterministic from task, split, question seed and split seed; ids like pos-<seed>-ca01-3-7)
// and joins them by id. answer_class = the coarse part of speech of the answer for `pos` (the
// option itself) and `cloze` (the blanked word's tag), the genre for `genre`. A knowledge world's
// questions (ids w<hash 8>-<person>-<attribute>) regenerate from the world configs of the runs
// (worldAnswers): answer = the correct value, answer_class = the attribute asked. Questions that do
// not regenerate (imports, other seeds) keep nulls.
import { buildWorld, coarsePos, generateQuestions, worldQuestions, type TaskName, type WorldConfigInput } from "../../../backend/data/index.js";

export interface Answer {
  answer: string;
  answer_class: string | null;
  /** index of the correct option in the regenerated question (checked against the record's gold) */
  gold: number;
}

const TASKS = new Set(["pos", "cloze", "genre"]);

/** id → answer for the (task, split, seed, splitSeed) combinations needed by `wanted` ids. */
export function answersFor(wanted: ReadonlyArray<{ id: string; task: string; split: string; splitSeed: number }>): Map<string, Answer> {
  const combos = new Map<string, { task: TaskName; split: "train" | "validation" | "test"; seed: number; splitSeed: number }>();
  for (const w of wanted) {
    const m = /^([a-z]+)-(\d+)-/.exec(w.id);
    if (!m || !TASKS.has(w.task) || m[1] !== w.task || !["train", "validation", "test"].includes(w.split)) continue;
    const key = `${w.task}|${w.split}|${m[2]}|${w.splitSeed}`;
    if (!combos.has(key)) combos.set(key, { task: w.task as TaskName, split: w.split as "validation", seed: Number(m[2]), splitSeed: w.splitSeed });
  }
  const out = new Map<string, Answer>();
  for (const [key, c] of combos) {
    try {
      for (const q of generateQuestions({ task: c.task, split: c.split, seed: c.seed, splitSeed: c.splitSeed })) {
        const answer = q.options[q.answer]!;
        const cls = q.task === "cloze" ? (q.source.tag ? coarsePos(q.source.tag) : null) : answer;
        out.set(`${key.split("|")[3]}|${q.id}`, { answer, answer_class: cls, gold: q.answer });
      }
    } catch (err) {
      process.stderr.write(`warning: cannot regenerate ${key} questions: ${(err as Error).message}\n`);
    }
  }
  return out;
}

/** id → answer of every held-out question of the given knowledge worlds (configs as in run.json). */
export function worldAnswers(configs: Iterable<unknown>): Map<string, Answer> {
  const out = new Map<string, Answer>();
  const seen = new Set<string>();
  for (const c of configs) {
    const key = JSON.stringify(c);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      const world = buildWorld((c ?? "default") as WorldConfigInput | "default");
      for (const q of worldQuestions(world)) out.set(q.id, { answer: q.options[q.answer]!, answer_class: q.attribute, gold: q.answer });
    } catch (err) {
      process.stderr.write(`warning: cannot regenerate a knowledge world's questions: ${(err as Error).message}\n`);
    }
  }
  return out;
}
