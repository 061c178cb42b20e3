// Imports of evaluation logs from other tools into runs of kind `import`. Today: the
// lm-evaluation-harness `--log_samples` files (lmeval.ts). The files are validated here, before
// any registry entry exists (bad input → FieldError naming the file and line); the run then
// keeps them under data/runs/<id>/.upload/ until its job (jobs.ts, lane `io`) has written
// questions.arrow and calibration.arrow.
import { copyFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { FieldError } from "../runs/errors.js";
import { ensureDir, runDir } from "../runs/paths.js";
import { UPLOAD_DIR, type ImportConfig } from "../runs/jobs.js";
import type { Registry, RunRecord, RunSource } from "../runs/registry.js";
import { checkDistinctTasks, parseSamplesPath, type ParsedSamples } from "./lmeval.js";

export {
  parseSamples, parseSamplesFiles, parseSamplesPath, taskFromFilename, SamplesParser, type ParsedSamples, type SamplesFile,
} from "./lmeval.js";

export interface ImportFile {
  /** where the file is now */
  path: string;
  /** its name (the task is read from samples_<task>_<timestamp>.jsonl) */
  filename: string;
  /** the task, when the name does not carry it */
  task?: string;
}

export interface ImportOptions {
  name: string;
  source: RunSource;
  dataDir: string;
  /** the executing process (the CLI); null: the server's queue */
  owner?: string | null;
  /** move the files into the run (uploads) instead of copying them (the CLI's own files) */
  move?: boolean;
}

export function checkImportName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200 || /[\u0000-\u001f]/.test(name)) {
    throw new FieldError("name", "must be a non-empty string of at most 200 characters without control characters");
  }
  return name;
}

/** Validates lm-eval samples files and registers an import run (queued on lane io). */
export async function registerLmEvalImport(registry: Registry, files: readonly ImportFile[], o: ImportOptions): Promise<{ run: RunRecord; parsed: ParsedSamples[] }> {
  const name = checkImportName(o.name);
  if (files.length === 0) throw new FieldError("files", "no samples file given");
  const parsed: ParsedSamples[] = [];
  for (const f of files) parsed.push(await parseSamplesPath(f.path, f.filename, f.task));
  checkDistinctTasks(parsed);
  const config: ImportConfig = {
    kind: "import", format: "lm-eval", name,
    files: parsed.map((p, i) => ({ filename: p.filename, task: p.task, bytes: statSync(files[i]!.path).size })),
  };
  const run = registry.db.transaction(() => {
    const r = registry.create({ name, kind: "import", device: "io", config, source: o.source, owner: o.owner ?? null });
    const up = ensureDir(join(runDir(r.id, o.dataDir), UPLOAD_DIR));
    files.forEach((f, i) => (o.move ? renameSync : copyFileSync)(f.path, join(up, `${i}.jsonl`)));
    return r;
  }).immediate();
  return { run, parsed };
}
