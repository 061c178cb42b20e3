// Entry point of the bundled benchmark on the GPU machine (scripts/gpu/bundle.sh):
// node .device/b/bench.mjs [bench/loss_cuda.ts options]
import { main } from "../loss_cuda.js";

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
