// Cancelling a run from a process that does not execute it (the CLI): queued runs end at once,
// runs executed by a live process get a cancel request in the registry (that process stops the
// job at its next step), runs whose process died are failed. The server's executor has its own
// cancel for the runs it executes (executor.ts), and honours registry requests for them too.
import { ConflictError, NotFoundError } from "../errors.js";
import { finalizeRun } from "./finish.js";
import { processAlive, TERMINAL, type Registry, type RunRecord } from "./registry.js";

export function requestCancel(registry: Registry, dataDir: string, id: string): RunRecord {
  const run = registry.get(id);
  if (!run) throw new NotFoundError(`no run '${id}'`);
  if (TERMINAL.has(run.status)) throw new ConflictError(`run ${id} is already ${run.status}`);
  if (run.kind === "sweep") {
    for (const c of registry.list({ parentId: id })) {
      if (!TERMINAL.has(c.status)) requestCancel(registry, dataDir, c.id);
    }
    registry.requestCancel(id);
    const latest = registry.get(id)!;
    if (!TERMINAL.has(latest.status)) finalizeRun(registry, dataDir, latest, "cancelled", { error: "cancelled" });
    return registry.get(id)!;
  }
  if (run.status === "queued") {
    if (registry.finish(id, "cancelled")) return registry.get(id)!;
    return requestCancel(registry, dataDir, id); // started in between
  }
  if (!processAlive(run.owner)) {
    finalizeRun(registry, dataDir, run, "failed", { error: "its process died before the cancel" });
    return registry.get(id)!;
  }
  registry.requestCancel(id);
  return registry.get(id)!;
}

/** Waits until a run is finished (polling the registry), at most timeoutMs. */
export async function waitFinished(registry: Registry, id: string, timeoutMs: number, pollMs = 200): Promise<RunRecord> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = registry.get(id);
    if (!r) throw new NotFoundError(`no run '${id}'`);
    if (TERMINAL.has(r.status) || Date.now() >= end) return r;
    await new Promise((res) => setTimeout(res, pollMs));
  }
}
