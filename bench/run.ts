// npm run bench -- <name> [options]: runs bench/<name>.ts, which prints its tables. Bad input (a usage
// error, a TypeError or RangeError naming the field) is one line on stderr and exit code 2.
import { formatError, UsageError } from "../backend/cli/errors.js";

const BENCHES: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = {
  loss: () => import("./loss.js"),
  train: () => import("./train.js"),
  api: () => import("./api.js"),
  site: () => import("./site.js"),
  metrics: () => import("./metrics.js"),
  "train-cuda": () => import("./train_cuda.js"),
  "llama-train": () => import("./llama_train.js"),
};

const [name, ...rest] = process.argv.slice(2);
if (!name || !BENCHES[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join("|")}> [options]`);
  process.exit(2);
}
try {
  await (await BENCHES[name]!()).main(rest);
} catch (err) {
  if (!(err instanceof UsageError || err instanceof TypeError || err instanceof RangeError)) throw err;
  console.error(`bench ${name}: ${formatError(err)}`);
  process.exitCode = 2;
}
