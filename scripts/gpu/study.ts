// The study's entry point on the GPU machine (no Node.js packages there): `calib sweep` and its
// worker processes in one esbuild bundle (scripts/gpu/study-bundle.sh → .device/study/study.mjs).
//   node .device/study/study.mjs FILE [calib sweep options]     the driver
//   node .device/study/study.mjs --study-worker                 a worker (forked by the driver)
//   node .device/study/study.mjs --install DIR                  (unused there) install a published study
import { run as runSweep } from "../../backend/cli/commands/sweep.js";
import "../../backend/study/worker.js";

if (!process.argv.includes("--study-worker")) {
  runSweep(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack ?? err.message : String(err));
      process.exit(1);
    },
  );
}
