// run.json (docs/records.md): the description of a run directory, rewritten atomically at
// each status change.
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";

export type RunKind = "pretrain" | "sft" | "eval" | "sweep" | "import";
export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface RunJson {
  id: string;
  name: string;
  kind: RunKind;
  status: RunStatus;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  config: unknown;
  metrics: Record<string, number | string | null>;
  artifacts: string[];
  error?: string;
  /** the model trained or evaluated: family (gpt2, or a Hugging Face model_type), parameters, where it came from */
  model?: { family: string; params: number; source: string };
  /** data-parallel runs: ranks and how they communicated (docs/parallel.md) */
  parallel?: { world_size: number; transport: string };
}

export function writeRunJson(path: string, run: RunJson): void {
  writeFileAtomic(path, JSON.stringify(run, null, 2) + "\n");
}

/** Marks the run.json at `path` failed with `error` (nothing when there is none yet, or it cannot be read). */
export function markRunFailed(path: string, error: string): void {
  try {
    if (!existsSync(path)) return;
    const prev = JSON.parse(readFileSync(path, "utf8")) as RunJson;
    writeRunJson(path, { ...prev, status: "failed", finished_at: new Date().toISOString(), error });
  } catch {
    // the original error matters more
  }
}
