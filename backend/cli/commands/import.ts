// calib import lm-eval FILE… --name NAME: lm-evaluation-harness --log_samples files of
// multiple-choice tasks → an `import` run with questions.arrow and calibration.arrow, registered
// like POST /api/imports/lm-eval and executed in this process.
import { existsSync, statSync } from "node:fs";
import { basename } from "node:path";
import { num, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "import lm-evaluation-harness samples (multiple-choice tasks) as a run with calibration records";

const HELP = `usage: calib import lm-eval FILE… --name NAME [options]

  FILE             samples_<task>_<timestamp>.jsonl written by lm_eval --log_samples (one per task)
  --name NAME      the run's name (required), e.g. the model: "pythia-160m"
  --task T         the task, when a single FILE's name does not carry it
  --bootstrap R    bootstrap resamples of calibration.arrow's intervals (default 1000; 0: none)
  --bootstrap-seed S  their seed (default 0)
  --queue          only register the import; a running server executes it
  --data-dir DIR   registry and records (default $CALIB_DATA_DIR or data/)
  --quiet          no progress on stderr
  --json           print the run as JSON

The per-option log-likelihoods become questions.arrow (probabilities renormalized over the
options; length-normalized too where the harness reports acc_norm), then calibration.arrow.

example:
  calib import lm-eval out/pythia/samples_arc_easy_2024-05-01T10-00-00.123456.jsonl --name pythia-160m`;

export async function run(argv: string[]): Promise<number> {
  const [format, ...rest] = argv;
  if (!format || format === "--help" || format === "-h") {
    console.log(HELP);
    return format ? 0 : 2;
  }
  if (format !== "lm-eval") throw new UsageError(`unknown import format '${format}' (lm-eval)`);
  const { values, positionals } = parse(rest, {
    name: { type: "string" }, task: { type: "string" }, queue: { type: "boolean" }, "data-dir": { type: "string" },
    bootstrap: { type: "string" }, "bootstrap-seed": { type: "string" },
    quiet: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length === 0) throw new UsageError("give at least one samples_<task>_<timestamp>.jsonl file (see calib import --help)");
  if (!values.name) throw new UsageError("--name is required (see calib import --help)");
  if (values.task !== undefined && positionals.length > 1) throw new UsageError("--task applies to a single file");
  for (const f of positionals) {
    if (!existsSync(f) || !statSync(f).isFile()) throw new UsageError(`${f}: no such file`);
  }
  const calibration = {
    resamples: num(values.bootstrap, "bootstrap", 1000, (x) => Number.isInteger(x) && x >= 0 && x <= 1_000_000, "an integer in [0, 1000000]"),
    seed: num(values["bootstrap-seed"], "bootstrap-seed", 0, (x) => Number.isInteger(x) && x >= 0 && x <= 2 ** 32 - 1, "an integer ≥ 0"),
  };
  if (values["data-dir"] !== undefined) process.env.CALIB_DATA_DIR = values["data-dir"];
  const { Registry, processTag } = await import("../../runs/registry.js");
  const { dataDir, registryPath } = await import("../../runs/paths.js");
  const { submitLmEvalImport } = await import("../../runs/submit.js");
  const { executeLocally } = await import("../../runs/local.js");
  const { FieldError } = await import("../../errors.js");
  const root = dataDir();
  const registry = Registry.open(registryPath(root));
  try {
    let reg;
    try {
      reg = await submitLmEvalImport(
        registry,
        positionals.map((p) => ({ path: p, filename: basename(p), ...(values.task ? { task: values.task } : {}) })),
        { name: values.name, source: "cli", dataDir: root, owner: values.queue ? null : processTag(), calibration },
      );
    } catch (err) {
      if (err instanceof FieldError) throw new UsageError(err.message);
      throw err;
    }
    const { run: created, parsed } = reg;
    if (!values.quiet) {
      for (const p of parsed) {
        process.stderr.write(`${p.filename}: task ${p.task}, ${p.rows.length} questions${p.duplicateFilters ? ` (${p.duplicateFilters} extra filter lines skipped)` : ""}\n`);
      }
    }
    if (values.queue) {
      console.log(values.json ? JSON.stringify(created, null, 2) : `queued import ${created.id}; a running server executes it`);
      return 0;
    }
    const r = await executeLocally(registry, created.id, { dataDir: root, progress: !values.quiet });
    const { owner: _o, worker: _w, ...pub } = r;
    if (values.json) console.log(JSON.stringify(pub, null, 2));
    else {
      console.log(`import ${r.id} (${r.name}): ${r.status}${r.error ? ` — ${r.error}` : ""}`);
      for (const [k, v] of Object.entries(r.metrics)) console.log(`  ${k.padEnd(32)} ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`);
      if (r.status === "succeeded") console.log(`records in ${root}/runs/${r.id}/: ${r.artifacts.join(", ")}`);
    }
    return r.status === "succeeded" ? 0 : 1;
  } finally {
    registry.close();
  }
}
