// The lm-eval import job and its config: the samples files uploaded into <run dir>/.upload/
// (<index>.jsonl, in the order of config.files) become questions.arrow; the metrics are the
// harness's accuracy per task, recomputed from the per-option probabilities, and the mismatch
// counts against the harness's own acc / acc_norm. The run's job (backend/runs/jobs.ts) then
// writes calibration.arrow with config.calibration and removes the uploads.
import { join } from "node:path";
import type { CalibrationSettings } from "../records/calibration.js";
import { writeQuestions } from "../records/questions.js";
import { parseSamplesPath, type ParsedSamples } from "./lmeval.js";

/** Import configuration stored in the registry (the uploads are in <dir>/.upload/<index>.jsonl). */
export interface ImportConfig {
  kind: "import";
  format: "lm-eval";
  name: string;
  files: Array<{ filename: string; task: string; bytes: number }>;
  /** settings of its calibration.arrow (absent in runs registered before it existed: the defaults) */
  calibration?: CalibrationSettings;
}

export const UPLOAD_DIR = ".upload";

/** Index of the highest value (the first on ties). */
function argmax(p: ArrayLike<number>): number {
  let b = 0;
  for (let j = 1; j < p.length; j++) if (p[j]! > p[b]!) b = j;
  return b;
}

function taskMetrics(p: ParsedSamples): Record<string, number> {
  const n = p.rows.length;
  let acc = 0, accNorm = 0;
  const hasNorm = p.rows.some((r) => r.probsNorm);
  for (const r of p.rows) {
    if (argmax(r.probs) === r.gold) acc++;
    if (r.probsNorm && argmax(r.probsNorm) === r.gold) accNorm++;
  }
  return {
    [`n_${p.task}`]: n,
    [`accuracy_${p.task}`]: acc / n,
    ...(hasNorm ? { [`accuracy_norm_${p.task}`]: accNorm / n } : {}),
    ...(p.duplicateFilters > 0 ? { [`duplicate_filters_${p.task}`]: p.duplicateFilters } : {}),
    [`acc_mismatches_${p.task}`]: p.accMismatches,
    ...(hasNorm ? { [`acc_norm_mismatches_${p.task}`]: p.accNormMismatches } : {}),
  };
}

/** Writes <dir>/questions.arrow from the uploads; returns the run's metrics. */
export async function runLmEvalImport(dir: string, runId: string, config: ImportConfig, log: (message: string) => void): Promise<Record<string, number>> {
  log(`importing ${config.files.length} lm-eval samples file(s)`);
  const parsed: ParsedSamples[] = [];
  for (const [i, f] of config.files.entries()) parsed.push(await parseSamplesPath(join(dir, UPLOAD_DIR, `${i}.jsonl`), f.filename, f.task));
  const rows = parsed.flatMap((p) => p.rows);
  writeQuestions(join(dir, "questions.arrow"), runId, rows);
  return Object.assign({ questions: rows.length, tasks: parsed.length }, ...parsed.map(taskMetrics)) as Record<string, number>;
}
