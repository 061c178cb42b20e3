// The job child process of the server's executor (executor.ts), forked through tsx by the worker
// pool (pool.ts), one per running run: it receives {run, dataDir}, runs the job (jobs.ts) and
// reports its JobEvents, then its result or what it threw; a cancel aborts the job at its next
// step. When the parent goes away (the IPC channel closes: the server was killed), the worker
// exits at once, so no orphan keeps writing into the run directory; the restarted server also
// kills a surviving worker by its recorded pid and start time.
import { executeJob, type JobEvent, type JobResult } from "./jobs.js";
import { runDir } from "./paths.js";
import { serveJobs } from "./pool.js";
import type { RunRecord } from "./registry.js";

export interface RunJob {
  run: RunRecord;
  dataDir: string;
}

if (!process.send) {
  console.error("backend/runs/worker.ts is started by the server's executor (child_process.fork), not by hand");
  process.exit(2);
}

serveJobs<RunJob, JobEvent, JobResult>(async ({ run, dataDir }, { signal, emit }) => {
  process.env.CALIB_DATA_DIR = dataDir;
  return executeJob({ run, dataDir, dir: runDir(run.id, dataDir), signal, progress: true, emit });
});
