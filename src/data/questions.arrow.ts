// Loader → questions.arrow: the questions.arrow records of every run, concatenated (one row per
// run × checkpoint epoch × multiple-choice question; ids are stable across runs for pairing),
// plus two columns for the per-class views: `answer` (the text of the correct option) and
// `answer_class` (its coarse part of speech for pos / cloze, its genre for genre, the attribute asked
// for a knowledge world's questions), regenerated
// with backend/data (./lib/answers.ts); null where a question does not regenerate. `scoring` is
// "letter" for files written before the column existed.
import { Utf8, vectorFromArray, type Vector } from "apache-arrow";
import { answersFor, worldAnswers } from "./lib/answers.js";
import { concatTables, conform, listRuns, QUESTIONS_COLUMNS, readRecord, writeStream, type ColumnSpec } from "./lib/records.js";

const SPEC: ColumnSpec[] = [...QUESTIONS_COLUMNS, { name: "answer", type: "utf8" }, { name: "answer_class", type: "utf8" }];
const parts: Record<string, Vector>[] = [];
const runs = listRuns();
// knowledge worlds named by the runs (an SFT run's world is its pretrained model's)
const world = worldAnswers(runs.map((r) => (r.json.config as { world?: { config?: unknown } } | undefined)?.world).filter((w) => w?.config !== undefined).map((w) => w!.config));
for (const run of runs) {
  const t = readRecord(run, "questions.arrow");
  if (!t || t.numRows === 0) continue;
  const c = conform(t, QUESTIONS_COLUMNS, run.id);
  // files written before `scoring` existed are letter scoring (docs/records.md)
  if (!t.getChild("scoring")) c.scoring = vectorFromArray(new Array<string>(t.numRows).fill("letter"), new Utf8());
  const config = (run.json.config ?? {}) as { splitSeed?: unknown };
  const splitSeed = typeof config.splitSeed === "number" ? config.splitSeed : 0;
  const rows = Array.from({ length: t.numRows }, (_, i) => ({ id: String(c.id!.get(i)), task: String(c.task!.get(i)), split: String(c.split!.get(i)), splitSeed }));
  const answers = answersFor(rows);
  // a regenerated question counts only if its correct option is the record's gold (same question)
  const hit = rows.map((r, i) => {
    const a = r.task === "world" ? world.get(r.id) : answers.get(`${splitSeed}|${r.id}`);
    return a && a.gold === c.gold!.get(i) ? a : null;
  });
  c.answer = vectorFromArray(hit.map((h) => h?.answer ?? null), new Utf8());
  c.answer_class = vectorFromArray(hit.map((h) => h?.answer_class ?? null), new Utf8());
  parts.push(c);
}
writeStream(concatTables(parts, SPEC));
