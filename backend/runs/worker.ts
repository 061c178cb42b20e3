// The job child process: forked by the server's executor (executor.ts) through tsx, one per
// running run. It receives {type: "start", run, dataDir} over IPC, runs the job (jobs.ts), and
// reports JobEvents, then {type: "done", result} or {type: "failed", message}. {type: "cancel"}
// aborts the job at its next step. When the parent goes away (the IPC channel closes: the server
// was killed), the worker exits at once, so no orphan keeps writing into the run directory; the
// restarted server also kills a surviving worker by its recorded pid and start time.
import { executeJob, type JobEvent, type JobResult } from "./jobs.js";
import { runDir } from "./paths.js";
import type { RunRecord } from "./registry.js";

export type ToWorker = { type: "start"; run: RunRecord; dataDir: string } | { type: "cancel" };
export type FromWorker = JobEvent | { type: "done"; result: JobResult } | { type: "failed"; message: string };

if (!process.send) {
  console.error("backend/runs/worker.ts is started by the server's executor (child_process.fork), not by hand");
  process.exit(2);
}

const controller = new AbortController();
let started = false;

function send(msg: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) process.exit(1);
    process.send!(msg, undefined, {}, () => resolve());
  });
}

process.on("disconnect", () => process.exit(1));

process.on("message", (raw: unknown) => {
  const msg = raw as ToWorker;
  if (msg.type === "cancel") {
    controller.abort();
    return;
  }
  if (msg.type !== "start" || started) return;
  started = true;
  const { run, dataDir } = msg;
  process.env.CALIB_DATA_DIR = dataDir;
  executeJob({
    run, dataDir, dir: runDir(run.id, dataDir), signal: controller.signal, progress: true,
    emit: (e) => {
      if (!process.connected) process.exit(1);
      process.send!(e);
    },
  }).then(
    async (result) => {
      await send({ type: "done", result });
      process.exit(0);
    },
    async (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
      await send({ type: "failed", message });
      process.exit(1);
    },
  );
});
