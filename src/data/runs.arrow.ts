// Loader → runs.arrow: one row per run: the run directories under <data>/runs (run.json flattened:
// status, tokenizer and V, model size, ε / T / softcap, record sizes; full config and metrics as
// JSON) merged with the run registry (<data>/registry.sqlite) when there is one.
import { listRuns, RUNS_COLUMNS, runRows, tableFromRows, withRegistry, writeStream } from "./lib/records.js";

writeStream(tableFromRows(runRows(await withRegistry(listRuns())), RUNS_COLUMNS));
