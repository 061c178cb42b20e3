// calib sweep FILE: a study (data/sweeps/*.json) or an API sweep config, planned, trained with
// concurrent worker processes, and published into data/runs (backend/study, docs/study.md).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { oneOf, optionalNum, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "run a study or sweep file end to end (pretrain grid × SFT arms) and publish its records";

const HELP = `usage: calib sweep FILE [options]

Runs a study (or an API sweep config) end to end: pretrains one model per point of the pretrain
grid, fine-tunes each with its SFT arms (evaluation after every epoch), writes calibration
records, and publishes the runs into DATA/runs (docs/study.md).

  FILE                  {"kind": "study", …} (data/sweeps/*.json) or {"kind": "sweep", …} (docs/api.md)
  --device D            cpu | cuda | auto (overrides the file; default: the file's, auto = cuda when present)
  --jobs N              concurrent runs (worker processes; default 1 on the CPU, 8 on a GPU)
  --data-dir DIR        publish into DIR/runs and DIR/study (default: CALIB_DATA_DIR or data/)
  --stage DIR           where the runs are trained (default DATA/scratch/study-<name>; checkpoints stay there)
  --resume              keep runs already done in the stage directory (same config)
  --deadline S          start no run expected to end later than S seconds from now
  --hard-deadline S     kill unfinished runs S seconds from now
  --only REGEX          only the runs whose id matches (and the pretrained models they need)
  --no-publish          train into the stage directory only
  --dry-run             print the plan (and the estimated size of its publication) and exit
  --install DIR…        install studies published elsewhere (the GPU job's DIR/runs + DIR/study),
                        merging parts of one study, into --data-dir
  --json                print the manifest as JSON on stdout
  -h, --help

examples:
  calib sweep data/sweeps/world-cpu.json                 # the knowledge-world study's CPU form (docs/study.md)
  calib sweep data/sweeps/world-gpu.json --dry-run       # its runs and published size, before the GPU job
  calib sweep data/sweeps/world-gpu.json --jobs 12       # on the GPU machine
  calib sweep data/sweeps/study-cpu.json                 # the Brown study's CPU form
  calib sweep data/sweeps/world-ci.json --data-dir /tmp/d # CI's reduced study`;

function readStudyFile(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`${file}: ${e.code === "ENOENT" ? "no such file" : e.code ? e.code : `not valid JSON (${e.message})`}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new UsageError(`${file}: must hold a JSON object (a study)`);
  return raw as Record<string, unknown>;
}

function onlyPattern(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (err) {
    throw new UsageError(`--only: ${(err as Error).message}`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    device: { type: "string" }, jobs: { type: "string" }, "data-dir": { type: "string" }, stage: { type: "string" }, resume: { type: "boolean" },
    deadline: { type: "string" }, "hard-deadline": { type: "string" }, only: { type: "string" }, "no-publish": { type: "boolean" },
    "dry-run": { type: "boolean" }, json: { type: "boolean" }, install: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return (console.log(HELP), 0);
  const { dataDir: defaultDataDir } = await import("../../runs/paths.js");
  const dataDir = values["data-dir"] !== undefined ? resolve(values["data-dir"]) : defaultDataDir();
  if (values.install) {
    if (positionals.length === 0) throw new UsageError("--install needs the published directories (DIR/runs, DIR/study)");
    const { installPublished } = await import("../../study/publish.js");
    for (const m of installPublished(positionals.map((p) => resolve(p)), dataDir)) {
      process.stderr.write(`installed study ${m.name}: ${m.runs.filter((r) => r.published).length} run(s), ${(m.bytes / 1e6).toFixed(1)} MB, into ${dataDir}\n`);
    }
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("one study file is required (see calib sweep --help)");
  const file = positionals[0]!;
  const raw = readStudyFile(file);
  if (values.device !== undefined) raw.device = oneOf(values.device, "device", ["cpu", "cuda", "auto"] as const, "auto");
  const jobs = optionalNum(values.jobs, "jobs", (x) => Number.isInteger(x) && x >= 1 && x <= 64, "an integer in [1, 64]");
  const deadlineS = optionalNum(values.deadline, "deadline", (x) => x > 0, "a number of seconds > 0");
  const hardDeadlineS = optionalNum(values["hard-deadline"], "hard-deadline", (x) => x > 0, "a number of seconds > 0");
  const { planStudy } = await import("../../study/definition.js");
  const { describePlan, restrictPlan, runStudy, scheduleOrder } = await import("../../study/main.js");
  let plan = planStudy(raw);
  if (values.only !== undefined) {
    plan = restrictPlan(plan, onlyPattern(values.only));
    if (plan.runs.length === 0) throw new UsageError(`--only ${values.only} matches no run`);
  }
  if (values["dry-run"]) {
    // `calib sweep FILE --dry-run | head` closes the pipe early: stop quietly instead of a stack trace
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
    console.log(describePlan(plan));
    for (const r of scheduleOrder(plan)) console.log(`  ${r.kind.padEnd(8)} ${r.id}`);
    return 0;
  }
  const result = await runStudy(plan, {
    source: file, dataDir, ...(values.stage !== undefined ? { stage: resolve(values.stage) } : {}),
    ...(jobs !== undefined ? { jobs } : {}), resume: values.resume ?? false, publish: !values["no-publish"],
    ...(deadlineS !== undefined ? { deadlineS } : {}), ...(hardDeadlineS !== undefined ? { hardDeadlineS } : {}),
  });
  if (values.json) console.log(JSON.stringify(result.manifest ?? { device: result.device, ...result.exec }, null, 1));
  return result.bad > 0 ? 1 : 0;
}
