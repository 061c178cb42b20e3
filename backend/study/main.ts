// `calib sweep FILE`: plans, runs and publishes a study (docs/study.md). Shared by the CLI
// command (backend/cli/commands/sweep.ts) and the GPU job's bundled entry (scripts/gpu/study.ts).
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { planStudy, type PlannedRun, type StudyPlan } from "./definition.js";
import { executePlan, scheduleOrder, type ExecuteResult } from "./execute.js";
import { installPublished, manifestPath, publishStudy, type Manifest } from "./publish.js";
import { dataDir as defaultDataDir } from "../runs/paths.js";

export const HELP = `usage: calib sweep FILE [options]

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
  --dry-run             print the plan and exit
  --install DIR…        install studies published elsewhere (the GPU job's DIR/runs + DIR/study),
                        merging parts of one study, into --data-dir
  --json                print the manifest as JSON on stdout
  -h, --help

examples:
  calib sweep data/sweeps/study-cpu.json                 # the CPU study (docs/study.md)
  calib sweep data/sweeps/study-gpu.json --jobs 12       # on the GPU machine
  calib sweep data/sweeps/study-ci.json --data-dir /tmp/d # CI's reduced study`;

export class SweepUsageError extends Error {}

function num(v: string | undefined, flag: string, ok: (x: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || !ok(x)) throw new SweepUsageError(`--${flag} must be a valid number (got '${v}')`);
  return x;
}

export function loadStudyFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new SweepUsageError(`${file}: ${e.code === "ENOENT" ? "no such file" : e.code ? e.code : `not valid JSON (${e.message})`}`);
  }
}

/** The runs matching `re` plus the pretrained runs they need. */
export function restrictPlan(plan: StudyPlan, re: RegExp): StudyPlan {
  const keep = new Set(plan.runs.filter((r) => re.test(r.id)).map((r) => r.id));
  for (const r of plan.runs) if (keep.has(r.id) && r.parent) keep.add(r.parent);
  return { ...plan, runs: plan.runs.filter((r) => keep.has(r.id)) };
}

function describePlan(plan: StudyPlan): string {
  const pt = plan.runs.filter((r) => r.kind === "pretrain");
  const sft = plan.runs.filter((r) => r.kind === "sft");
  const lines = [`study ${plan.study.name}: ${pt.length} pretrained model(s), ${sft.length} SFT run(s) (device ${plan.study.device})`];
  for (const p of pt) {
    const c = p.config as PlannedRun["config"] & { tokenizer: string; steps: number; model: { dModel: number; nLayer: number; context: number } };
    const kids = sft.filter((s) => s.parent === p.id);
    const arms = [...new Set(kids.map((k) => k.arm))].map((a) => `${a} ×${kids.filter((k) => k.arm === a).length}`).join(", ");
    lines.push(`  ${p.id.padEnd(28)} ${c.tokenizer} d${c.model.dModel} L${c.model.nLayer} T${c.model.context} ${c.steps} steps; sft: ${arms || "none"}`);
  }
  return lines.join("\n");
}

/** Tokenized corpus caches for every tokenizer of the plan, built once before the workers start. */
async function prepareData(plan: StudyPlan, log: (l: string) => void): Promise<void> {
  const { prepareSplits, tokenizer } = await import("../data/index.js");
  const toks = new Set(plan.runs.filter((r) => r.kind === "pretrain").map((r) => (r.config as { tokenizer: string }).tokenizer));
  for (const t of toks) {
    const p = prepareSplits({ tokenizer: tokenizer(t as Parameters<typeof tokenizer>[0]), progress: false });
    log(`data: Brown with ${t}: ${p.splits.train.tokens.length} training tokens (${p.built ? `encoded in ${p.seconds.toFixed(1)} s` : "cached"})`);
  }
}

export interface SweepRunResult {
  plan: StudyPlan;
  exec: ExecuteResult;
  manifest: Manifest | null;
}

export async function runSweep(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true, options: {
        device: { type: "string" }, jobs: { type: "string" }, "data-dir": { type: "string" }, stage: { type: "string" }, resume: { type: "boolean" },
        deadline: { type: "string" }, "hard-deadline": { type: "string" }, only: { type: "string" }, "no-publish": { type: "boolean" },
        "dry-run": { type: "boolean" }, json: { type: "boolean" }, install: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new SweepUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.install) {
    if (positionals.length === 0) throw new SweepUsageError("--install needs the published directories (DIR/runs, DIR/study)");
    const target = values["data-dir"] !== undefined ? resolve(values["data-dir"]) : defaultDataDir();
    for (const m of installPublished(positionals.map((p) => resolve(p)), target)) {
      process.stderr.write(`installed study ${m.name}: ${m.runs.filter((r) => r.published).length} run(s), ${(m.bytes / 1e6).toFixed(1)} MB, into ${target}\n`);
    }
    return 0;
  }
  if (positionals.length !== 1) throw new SweepUsageError("one study file is required (see calib sweep --help)");
  const file = positionals[0]!;
  const raw = loadStudyFile(file) as Record<string, unknown>;
  if (values.device !== undefined) {
    if (!["cpu", "cuda", "auto"].includes(values.device)) throw new SweepUsageError(`--device must be cpu, cuda or auto (got '${values.device}')`);
    raw.device = values.device;
  }
  let plan = planStudy(raw);
  if (values.only) {
    let re: RegExp;
    try {
      re = new RegExp(values.only);
    } catch (err) {
      throw new SweepUsageError(`--only: ${(err as Error).message}`);
    }
    plan = restrictPlan(plan, re);
    if (plan.runs.length === 0) throw new SweepUsageError(`--only ${values.only} matches no run`);
  }
  const log = (l: string) => process.stderr.write(l + "\n");
  if (values["dry-run"]) {
    console.log(describePlan(plan));
    for (const r of scheduleOrder(plan)) console.log(`  ${r.kind.padEnd(8)} ${r.id}`);
    return 0;
  }
  const jobsArg = num(values.jobs, "jobs", (x) => Number.isInteger(x) && x >= 1 && x <= 64);
  const { resolveDevice, engineInfo } = await import("../engine/index.js");
  const device = resolveDevice(plan.study.device);
  // every run of the study on the resolved device (auto → what this machine has)
  for (const r of plan.runs) (r.config as { device: string }).device = device;
  const dataDir = values["data-dir"] !== undefined ? resolve(values["data-dir"]) : defaultDataDir();
  const stage = resolve(values.stage ?? join(dataDir, "scratch", `study-${plan.study.name}`));
  const runsRoot = join(stage, "runs");
  const jobs = jobsArg ?? (device === "cuda" ? 8 : 1);
  const info = engineInfo();
  const deviceName = device === "cuda" ? info.cudaMessage : `cpu (${(await import("node:os")).cpus()[0]?.model ?? "?"}, ${(await import("node:os")).cpus().length} cores)`;
  log(describePlan(plan));
  log(`device ${device}: ${deviceName}; ${jobs} concurrent run(s); stage ${stage}`);
  await prepareData(plan, log);
  const now = Date.now();
  const deadline = num(values.deadline, "deadline", (x) => x > 0);
  const hard = num(values["hard-deadline"], "hard-deadline", (x) => x > 0);
  const exec = await executePlan(plan, {
    runsRoot, jobs, resume: values.resume ?? false,
    ...(deadline !== undefined ? { deadline: now + deadline * 1000 } : {}),
    ...(hard !== undefined ? { hardDeadline: now + hard * 1000 } : {}),
    env: device === "cuda" ? { CALIB_THREADS: process.env.CALIB_THREADS ?? "2" } : {},
    log,
  });
  const by = (s: string) => exec.outcomes.filter((x) => x.status === s).length;
  log(`study ${plan.study.name}: ${by("succeeded")} succeeded, ${by("kept")} kept, ${by("failed")} failed, ${by("skipped")} skipped, ${by("killed")} killed in ${exec.wall_seconds.toFixed(0)} s`);
  writeFileSync(join(stage, "execution.json"), JSON.stringify({ device: deviceName, ...exec }, null, 1) + "\n");
  let manifest: Manifest | null = null;
  if (!values["no-publish"]) {
    manifest = publishStudy(plan, exec, { runsRoot, dataDir, source: basename(file), device: deviceName });
    log(`published ${manifest.runs.filter((r) => r.published).length} run(s) (${(manifest.bytes / 1e6).toFixed(1)} MB) into ${join(dataDir, "runs")}; manifest ${manifestPath(dataDir, plan.study.name)}`);
  }
  if (values.json) console.log(JSON.stringify(manifest ?? { device: deviceName, ...exec }, null, 1));
  const bad = by("failed") + by("killed");
  return bad > 0 ? 1 : 0;
}
