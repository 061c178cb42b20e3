// Loader → llama_train.arrow: the Llama family's training-step benchmark as published in
// <data>/bench/llama_train.arrow by bench/llama_train.ts (one row per benchmark: engine, model, tokens/s,
// step time, GPU memory, ratios to the peers; the meta JSON — card, versions, date, method — in the schema
// metadata under "meta"), passed through; with no file (or an unreadable one, with a warning) the same
// columns and no rows.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { llamaTable } from "../../bench/llama_train.js";
import { dataDir, writeStream } from "./lib/records.js";

const file = join(dataDir(), "bench", "llama_train.arrow");
let table = llamaTable([], null);
try {
  if (existsSync(file)) table = tableFromIPC(readFileSync(file));
} catch (err) {
  process.stderr.write(`warning: cannot read ${file}: ${(err as Error).message}\n`);
}
writeStream(table);
