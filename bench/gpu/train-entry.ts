// Entry point of the bundled trainer benchmark on the GPU machine (scripts/gpu/bundle-trainer.sh):
// node .device/b/train-bench.mjs --json bench.json --out trainer.arrow [--commit REV]   (bench/train_cuda.ts)
import { main } from "../train_cuda.js";

await main(process.argv.slice(2));
