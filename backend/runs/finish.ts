// Ending a run, the same way for the server's executor and the CLI: run.json first (atomic),
// then the registry transition with the metrics and the list of complete artifacts, so that
// whatever the registry lists is already on disk in full.
import { ensureDir, runDir } from "./paths.js";
import { listArtifacts, RECORD_FILES, writeRunRecord } from "./jobs.js";
import { TERMINAL, type Registry, type RunRecord } from "./registry.js";

export function finalizeRun(
  registry: Registry, dataDir: string, run: RunRecord, status: "succeeded" | "failed" | "cancelled",
  f: { metrics?: Record<string, unknown>; error?: string | null } = {},
): boolean {
  const dir = ensureDir(runDir(run.id, dataDir));
  const present = new Set([...listArtifacts(dir), "run.json"]);
  const artifacts = RECORD_FILES.filter((f) => present.has(f));
  const view: RunRecord = {
    ...run, status, finished_at: new Date().toISOString(), metrics: (f.metrics ?? run.metrics) as RunRecord["metrics"], error: f.error ?? null,
  };
  writeRunRecord(dir, view, artifacts);
  return registry.finish(run.id, status, { ...(f.metrics ? { metrics: f.metrics } : {}), artifacts, ...(f.error !== undefined ? { error: f.error } : {}) });
}

/** Finishes a running sweep once all its children are done (succeeded only if they all did). */
export function settleSweep(registry: Registry, dataDir: string, sweep: RunRecord): boolean {
  const children = registry.list({ parentId: sweep.id });
  if (children.some((c) => !TERMINAL.has(c.status))) return false;
  const count = (s: string) => children.filter((c) => c.status === s).length;
  const metrics = { runs: children.length, succeeded: count("succeeded"), failed: count("failed"), cancelled: count("cancelled") };
  const ok = metrics.succeeded === children.length;
  const error = ok ? null : `${metrics.failed} of ${children.length} runs failed, ${metrics.cancelled} cancelled`;
  return finalizeRun(registry, dataDir, sweep, ok ? "succeeded" : "failed", { metrics, error });
}
