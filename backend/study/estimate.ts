// How much a study will add to data/ once published (docs/study.md, "Size budget"): the rows of
// every record file a planned run publishes (publish.ts's rules: question records per scoring,
// SFT epochs kept, subsampled tokens, calibration rows per group of backend/records) times the
// bytes per row measured on published runs, each file rounded up to whole 4 KiB blocks as `du`
// counts them (the repository's limit is on `git ls-files data | xargs du -c`). Printed by
// `calib sweep --dry-run`; the regen test checks it against a real publication.
import { parseWorldConfig } from "../data/world/config.js";
import type { PretrainConfig, SftConfig } from "../train/config.js";
import type { PlannedRun, StudyPlan } from "./definition.js";

/** Bytes per row of the published Arrow files and per small file, measured on published runs. */
export const ROW_BYTES = { question: 215, brownQuestion: 168, calibration: 720, token: 125, trainLog: 56, runJson: 2600, jobLog: 1500 } as const;
const BLOCK = 4096;

export interface SizeEstimate {
  bytes: number;
  questionRows: number;
  calibrationRows: number;
  tokenRows: number;
  files: number;
}

const blocks = (bytes: number) => (bytes <= 0 ? 0 : Math.ceil(bytes / BLOCK) * BLOCK);

/** Exposure buckets of a knowledge world's people (1, 2-3, 4-7, …): one per power of two up to exposures.max. */
function bucketCount(world: PretrainConfig["world"]): number {
  const c = parseWorldConfig(world?.config ?? "default");
  return Math.floor(Math.log2(c.exposures.max)) - Math.floor(Math.log2(c.exposures.min)) + 1;
}

function estimateRun(plan: StudyPlan, run: PlannedRun, parentOf: Map<string, PlannedRun>): SizeEstimate {
  const pub = plan.study.publish;
  const pt = (run.kind === "pretrain" ? run.config : parentOf.get(run.parent!)!.config) as PretrainConfig;
  const cfg = run.config as PretrainConfig | SftConfig;
  const world = pt.world !== undefined;
  const evalEpochs = run.kind === "pretrain" ? 1 : (cfg as SftConfig).epochs + 1;
  // published question epochs: the pretrained model's one; SFT: epoch 0 comes from the parent
  const questionEpochs = run.kind === "pretrain" ? 1 : pub.questionEpochs === "last" ? 1 : (cfg as SftConfig).epochs;
  let questionsPerEpoch: number, calPerEpoch: number;
  if (world) {
    const scorings = (cfg.world?.scoring ?? pt.world!.scoring);
    questionsPerEpoch = cfg.eval.maxQuestions * scorings.length;
    // per scoring: renormalized + norm (option) or vocab (letter), 2 binnings each, and one row per exposure bucket
    calPerEpoch = cfg.eval.maxQuestions > 0 ? scorings.length * (4 + bucketCount(pt.world)) : 0;
  } else {
    const tasks = run.kind === "pretrain" ? cfg.eval.tasks.length : (cfg as SftConfig).tasks.filter((t) => cfg.eval.tasks.includes(t)).length || cfg.eval.tasks.length;
    questionsPerEpoch = cfg.eval.maxQuestions * tasks;
    calPerEpoch = cfg.eval.maxQuestions > 0 ? (tasks + (tasks > 1 ? 1 : 0)) * 4 : 0;
  }
  const tokensKept = run.kind === "pretrain" ? pub.pretrainTokens ?? pub.tokensPerCheckpoint : pub.tokensPerCheckpoint;
  const tokensPerEpoch = tokensKept === 0 ? cfg.eval.maxTokens : Math.min(tokensKept, cfg.eval.maxTokens);
  const tokenCal = cfg.eval.maxTokens > 0 ? 2 : 0;
  const steps = run.kind === "pretrain" ? (cfg as PretrainConfig).steps : 150 * (cfg as SftConfig).epochs;
  const q = questionsPerEpoch * questionEpochs, cal = (calPerEpoch + tokenCal) * evalEpochs, tok = tokensPerEpoch * evalEpochs;
  const files = [
    ROW_BYTES.runJson, steps / cfg.logEvery * ROW_BYTES.trainLog + 2048,
    q * (world ? ROW_BYTES.question : ROW_BYTES.brownQuestion), cal * ROW_BYTES.calibration, tok * ROW_BYTES.token,
    pub.logs ? ROW_BYTES.jobLog : 0,
  ].filter((b) => b > 0);
  return { bytes: files.reduce((a, b) => a + blocks(b), 0), questionRows: q, calibrationRows: cal, tokenRows: tok, files: files.length };
}

/** The estimated size of a study's publication (every planned run succeeding). */
export function estimatePublication(plan: StudyPlan): SizeEstimate {
  const parentOf = new Map(plan.runs.map((r) => [r.id, r]));
  const total: SizeEstimate = { bytes: 0, questionRows: 0, calibrationRows: 0, tokenRows: 0, files: 0 };
  for (const r of plan.runs) {
    const e = estimateRun(plan, r, parentOf);
    for (const k of Object.keys(total) as (keyof SizeEstimate)[]) total[k] += e[k];
  }
  return total;
}
