// A questions.arrow stream for synthetic tests: the columns the claim table reads (docs/records.md),
// every question a validation "pos" question with gold answer A — or, when the rows say so, a
// knowledge world's held-out "world" question with its scoring and the person's exposures.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Bool, Float32, Int32, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";

export interface QuestionRow { epoch: number; id: string; confidence: number; correct: boolean; scoring?: "option" | "letter"; exposures?: number }

export function writeQuestions(dir: string, runId: string, rows: readonly QuestionRow[]): void {
  const world = rows.some((r) => r.scoring !== undefined);
  const t = new Table({
    run_id: vectorFromArray(rows.map(() => runId), new Utf8()),
    epoch: vectorFromArray(rows.map((r) => r.epoch), new Int32()),
    split: vectorFromArray(rows.map(() => (world ? "held-out" : "validation")), new Utf8()),
    task: vectorFromArray(rows.map(() => (world ? "world" : "pos")), new Utf8()),
    id: vectorFromArray(rows.map((r) => r.id), new Utf8()),
    gold: vectorFromArray(rows.map(() => 0), new Int32()),
    correct: vectorFromArray(rows.map((r) => r.correct), new Bool()),
    confidence: vectorFromArray(rows.map((r) => r.confidence), new Float32()),
    ...(world ? {
      scoring: vectorFromArray(rows.map((r) => r.scoring ?? "letter"), new Utf8()),
      exposures: vectorFromArray(rows.map((r) => r.exposures ?? null), new Int32()),
    } : {}),
  });
  writeFileSync(join(dir, "questions.arrow"), tableToIPC(t, "stream"));
}
