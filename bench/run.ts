// npm run bench -- <name> [options]: runs bench/<name>.ts, which prints its tables.
const BENCHES: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = {
  loss: () => import("./loss.js"),
  train: () => import("./train.js"),
  api: () => import("./api.js"),
  site: () => import("./site.js"),
  metrics: () => import("./metrics.js"),
  "train-cuda": () => import("./train_cuda.js"),
};

const [name, ...rest] = process.argv.slice(2);
if (!name || !BENCHES[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join("|")}> [options]`);
  process.exit(2);
}
await (await BENCHES[name]!()).main(rest);
