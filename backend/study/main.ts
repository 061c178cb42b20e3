// A study end to end (docs/study.md): plan → token caches → trained runs (the worker pool of
// execute.ts) → published records. The `calib sweep` command (backend/cli/commands/sweep.ts)
// parses its options and calls runStudy; the GPU job's bundled entry (scripts/gpu/study.ts)
// goes through that command too.
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { PretrainConfig } from "../train/config.js";
import type { PlannedRun, StudyPlan } from "./definition.js";
import { estimatePublication } from "./estimate.js";
import { executePlan, type ExecuteResult } from "./execute.js";
import { manifestPath, publishStudy, type Manifest } from "./publish.js";

export { scheduleOrder } from "./execute.js";

/** The runs matching `re` plus the pretrained runs they need. */
export function restrictPlan(plan: StudyPlan, re: RegExp): StudyPlan {
  const keep = new Set(plan.runs.filter((r) => re.test(r.id)).map((r) => r.id));
  for (const r of plan.runs) if (keep.has(r.id) && r.parent) keep.add(r.parent);
  return { ...plan, runs: plan.runs.filter((r) => keep.has(r.id)) };
}

/** One line for the study and one per pretrained model with its SFT arms. */
export function describePlan(plan: StudyPlan): string {
  const pt = plan.runs.filter((r) => r.kind === "pretrain");
  const sft = plan.runs.filter((r) => r.kind === "sft");
  const est = estimatePublication(plan);
  const lines = [
    `study ${plan.study.name}: ${pt.length} pretrained model(s), ${sft.length} SFT run(s) (device ${plan.study.device})${plan.study.evidence ? "" : "; not evidence (a CPU / CI form)"}`,
    `  published size ≈ ${(est.bytes / 1e6).toFixed(1)} MB (${est.questionRows.toLocaleString("en-US")} question rows, ${est.calibrationRows.toLocaleString("en-US")} calibration rows, ${est.tokenRows.toLocaleString("en-US")} token rows, ${est.files} files)`,
  ];
  for (const p of pt) {
    const c = p.config as PlannedRun["config"] & { tokenizer: string; steps: number; model: { dModel: number; nLayer: number; context: number } };
    const kids = sft.filter((s) => s.parent === p.id);
    const arms = [...new Set(kids.map((k) => k.arm))].map((a) => `${a} ×${kids.filter((k) => k.arm === a).length}`).join(", ");
    lines.push(`  ${p.id.padEnd(28)} ${c.tokenizer} d${c.model.dModel} L${c.model.nLayer} T${c.model.context} ${c.steps} steps${p.world ? " (world)" : ""}; sft: ${arms || "none"}`);
  }
  return lines.join("\n");
}

/**
 * Token caches built once before the workers start: Brown's splits for every tokenizer of the
 * plan, and for knowledge-world pretrains the world's validation stream and every epoch their
 * steps reach (the workers would otherwise encode the same epochs concurrently).
 */
async function prepareData(plan: StudyPlan, log: (l: string) => void): Promise<void> {
  const { buildWorld, lmWindowCount, prepareSplits, tokenizer, worldStream } = await import("../data/index.js");
  const pretrains = plan.runs.filter((r) => r.kind === "pretrain").map((r) => r.config as PretrainConfig);
  for (const t of new Set(pretrains.filter((c) => !c.world).map((c) => c.tokenizer))) {
    const p = prepareSplits({ tokenizer: tokenizer(t as Parameters<typeof tokenizer>[0]), progress: false });
    log(`data: Brown with ${t}: ${p.splits.train.tokens.length} training tokens (${p.built ? `encoded in ${p.seconds.toFixed(1)} s` : "cached"})`);
  }
  // per (world, tokenizer): the most windows any of its pretrains consumes
  const need = new Map<string, { world: ReturnType<typeof buildWorld>; tok: string; context: number; windows: number }>();
  for (const c of pretrains.filter((x) => x.world)) {
    const world = buildWorld(c.world!.config ?? "default");
    const k = `${world.hash}|${c.tokenizer}|${c.model.context}`;
    const windows = c.steps * c.batchSize * c.gradAccum;
    const have = need.get(k);
    if (!have || have.windows < windows) need.set(k, { world, tok: c.tokenizer, context: c.model.context, windows });
  }
  for (const { world, tok, context, windows } of need.values()) {
    const t0 = performance.now();
    worldStream({ world, tokenizer: tok, stream: "validation", progress: false });
    let got = 0, epochs = 0, tokens = 0;
    while (got < windows) {
      const s = worldStream({ world, tokenizer: tok, stream: epochs, progress: false });
      got += lmWindowCount(s.tokens.length, context);
      tokens += s.tokens.length;
      epochs++;
    }
    log(`data: world ${world.hash.slice(0, 8)} (${world.people.length} people) with ${tok}: ${epochs} epoch(s), ${(tokens / epochs / 1e6).toFixed(2)}M tokens per epoch, ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

export interface StudyOptions {
  /** the study file's name, recorded in the manifest */
  source: string;
  /** publish into dataDir/runs and dataDir/study */
  dataDir: string;
  /** where the runs are trained (default dataDir/scratch/study-<name>) */
  stage?: string;
  /** concurrent runs (default 1 on the CPU, 8 on a GPU) */
  jobs?: number;
  resume?: boolean;
  /** seconds from now: no run starts that is expected to end later */
  deadlineS?: number;
  /** seconds from now: unfinished runs are killed */
  hardDeadlineS?: number;
  /** false: train into the stage directory only */
  publish?: boolean;
  /** one line per event (default: stderr) */
  log?: (line: string) => void;
}

export interface StudyResult {
  device: string;
  exec: ExecuteResult;
  manifest: Manifest | null;
  /** failed + killed runs */
  bad: number;
}

/** Trains every run of the plan on the device the study names (auto: this machine's) and publishes them. */
export async function runStudy(plan: StudyPlan, o: StudyOptions): Promise<StudyResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const { resolveDevice, engineInfo } = await import("../engine/index.js");
  const device = resolveDevice(plan.study.device);
  // every run of the study on the resolved device (auto → what this machine has)
  for (const r of plan.runs) (r.config as { device: string }).device = device;
  const stage = o.stage ?? join(o.dataDir, "scratch", `study-${plan.study.name}`);
  const runsRoot = join(stage, "runs");
  const jobs = o.jobs ?? (device === "cuda" ? 8 : 1);
  const { cpus } = await import("node:os");
  const deviceName = device === "cuda" ? engineInfo().cudaMessage : `cpu (${cpus()[0]?.model ?? "?"}, ${cpus().length} cores)`;
  log(describePlan(plan));
  log(`device ${device}: ${deviceName}; ${jobs} concurrent run(s); stage ${stage}`);
  await prepareData(plan, log);
  const now = Date.now();
  const exec = await executePlan(plan, {
    runsRoot, jobs, resume: o.resume ?? false,
    ...(o.deadlineS !== undefined ? { deadline: now + o.deadlineS * 1000 } : {}),
    ...(o.hardDeadlineS !== undefined ? { hardDeadline: now + o.hardDeadlineS * 1000 } : {}),
    env: device === "cuda" ? { CALIB_THREADS: process.env.CALIB_THREADS ?? "2" } : {},
    log,
  });
  const by = (s: string) => exec.outcomes.filter((x) => x.status === s).length;
  log(`study ${plan.study.name}: ${by("succeeded")} succeeded, ${by("kept")} kept, ${by("failed")} failed, ${by("skipped")} skipped, ${by("killed")} killed in ${exec.wall_seconds.toFixed(0)} s`);
  writeFileSync(join(stage, "execution.json"), JSON.stringify({ device: deviceName, ...exec }, null, 1) + "\n");
  let manifest: Manifest | null = null;
  if (o.publish ?? true) {
    manifest = publishStudy(plan, exec, { runsRoot, dataDir: o.dataDir, source: basename(o.source), device: deviceName });
    log(`published ${manifest.runs.filter((r) => r.published).length} run(s) (${(manifest.bytes / 1e6).toFixed(1)} MB) into ${join(o.dataDir, "runs")}; manifest ${manifestPath(o.dataDir, plan.study.name)}`);
  }
  return { device: deviceName, exec, manifest, bad: by("failed") + by("killed") };
}
