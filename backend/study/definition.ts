// Study definitions (`calib sweep FILE`, docs/study.md): one JSON file that pretrains one model
// per point of a pretrain grid and fine-tunes each with the SFT "arms" that apply to it.
//
//   {"kind": "study", "name": "ls", "device": "auto",
//    "pretrain": {"base": {…pretrain config…}, "grid": {"tokenizer": ["byte", "o200k"], "model.dModel": [64, 128]},
//                 "overrides": [{"where": {"tokenizer": "byte"}, "set": {"model.context": 384}}]},
//    "sft": {"base": {…sft config without init…},
//            "arms": [{"name": "ls", "grid": {"loss.labelSmoothing": [0, 0.1], "seed": [0, 1, 2]}},
//                     {"name": "remedy", "where": {"tokenizer": "o200k", "model.dModel": 64},
//                      "grid": {"loss.labelSmoothing": [0, 0.1], "loss.temperature": [0.5], "seed": [0, 1, 2]}}]}}
//
// Knowledge-world studies put a `world` block (docs/trainer.md) in the pretrain base (and may vary
// pretraining seeds: `"seed": [0, 1, 2]` in the pretrain grid); `"sft": {"inheritSeed": true}` then
// gives every SFT run its pretrained model's seed, so that a seed varies pretraining and SFT together.
// `"evidence": false` marks a study whose numbers only show that the pipeline works (CPU / CI forms):
// the manifest and every page that shows them say so.
//
// A generic `{"kind": "sweep", …}` run config (docs/api.md) is accepted too: its pretrain grid and
// one SFT arm. `where` matches the values of the pretrain grid point (and of its overrides), a
// value or a list of values per dotted path. Every expanded run config is validated with the
// trainer's own schema before anything runs; runs that expand to the same id must be identical.
//
// Run ids are readable and stable: <name>-<tokenizer>-d<dModel>[-s<seed>][-<other varied keys>] for
// the pretrained models, <pretrain id>-e<ε>[-t<T>][-c<cap>][-s<seed>][-<other keys>] for SFT
// (decimal points written as "p": e0p1 = ε 0.1; an inherited seed is not repeated), so that reruns
// of a study overwrite their own runs.
import { z } from "zod";
import { parseTrainConfig, type PretrainConfig, type SftConfig } from "../train/config.js";
import { describePoint, expandGrid, getPath, GridPath, GridSchema, GridValue, setPath, type GridPoint } from "../runs/grid.js";
import type { CalibrationSettings } from "../records/calibration.js";
import { CalibrationSchema } from "../runs/schema.js";

const Where = z.record(GridPath, z.union([GridValue, z.array(GridValue).min(1)])).default({});
const Obj = z.record(z.string(), z.unknown()).default({});

export const StudySchema = z.strictObject({
  kind: z.literal("study"),
  /** prefix of every run id: lower-case letters, digits, '-' */
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, "name must be 1–24 lower-case letters, digits or '-', starting with a letter"),
  title: z.string().max(200).optional(),
  description: z.string().max(4000).optional(),
  /** device of every run (a run config's own device is overridden); auto = cuda when present */
  device: z.enum(["cpu", "cuda", "auto"]).default("auto"),
  /** false: the numbers only show that the pipeline works (CPU / CI forms); pages flag them "not evidence" */
  evidence: z.boolean().default(true),
  /** settings of every run's calibration.arrow (bootstrap resamples and seed), recorded in its run.json config */
  calibration: CalibrationSchema.prefault({}),
  pretrain: z.strictObject({
    base: Obj,
    grid: GridSchema,
    overrides: z.array(z.strictObject({ where: Where, set: Obj })).default([]),
  }),
  sft: z.strictObject({
    base: Obj,
    /** every SFT run takes its pretrained model's seed (arms must then not vary `seed`) */
    inheritSeed: z.boolean().default(false),
    arms: z.array(z.strictObject({
      name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
      where: Where,
      grid: GridSchema,
      set: Obj,
    })).default([]),
  }).optional(),
  /** what `publish` keeps of the per-token records (question records are always kept whole) */
  publish: z.strictObject({
    /** tokens kept per run × checkpoint (evenly spaced); 0 = all */
    tokensPerCheckpoint: z.number().int().min(0).default(1024),
    /** tokens kept of a pretrained model's (single) evaluation; default: tokensPerCheckpoint */
    pretrainTokens: z.number().int().min(0).optional(),
    /** question records of SFT runs: every epoch, or only the last (intermediate epochs stay in calibration.arrow) */
    questionEpochs: z.enum(["all", "last"]).default("all"),
    /** publish each run's job.log (the trainer's progress lines) */
    logs: z.boolean().default(true),
  }).prefault({}),
});

export type Study = z.infer<typeof StudySchema>;

export interface PlannedRun {
  id: string;
  kind: "pretrain" | "sft";
  name: string;
  /** the validated trainer config; sft.init is the pretrained run's checkpoint (relative to the runs root: '<id>/checkpoint') */
  config: PretrainConfig | SftConfig;
  /** id of the pretrained run (sft) */
  parent: string | null;
  /** the varied values: the pretrain point (and, for SFT, the arm's point), dotted paths */
  point: Record<string, unknown>;
  arm: string | null;
  /** settings of its calibration.arrow (the study's) */
  calibration: CalibrationSettings;
  /** rough relative cost (tokens processed), for scheduling */
  cost: number;
  /** a knowledge-world run (its pretrained model has a world block) */
  world: boolean;
}

export interface StudyPlan {
  study: Study;
  runs: PlannedRun[];
}

/** Most points of one grid of a study. */
const MAX_POINTS = 5000;

function matches(where: Record<string, unknown>, config: unknown): boolean {
  return Object.entries(where).every(([path, want]) => {
    const have = getPath(config, path);
    return Array.isArray(want) ? want.some((w) => w === have) : want === have;
  });
}

/** "0.05" → "0p05", "-1" → "m1": a number in an id. */
function idNumber(v: unknown): string {
  return String(v).replace(/\./g, "p").replace(/^-/, "m").toLowerCase().replace(/[^a-z0-9]/g, "");
}

const SFT_KEYS: Record<string, (v: unknown) => string> = {
  "loss.labelSmoothing": (v) => `e${idNumber(v)}`,
  "loss.temperature": (v) => (v === 1 ? "" : `t${idNumber(v)}`),
  "loss.softcap": (v) => (v === null ? "" : `c${idNumber(v)}`),
  seed: (v) => `s${idNumber(v)}`,
};

function otherKey(path: string, v: unknown): string {
  const last = path.split(".").pop()!.toLowerCase().replace(/[^a-z0-9]/g, "");
  return `${last.slice(0, 6)}${idNumber(v)}`;
}

/** The API's `{"kind": "sweep", …}` config as a study with one SFT arm (its bases' calibration settings become the study's). */
function studyOfSweep(raw: Record<string, unknown>): Record<string, unknown> {
  const sw = raw as { name?: string; pretrain?: { base?: Record<string, unknown>; grid?: unknown }; sft?: { base?: Record<string, unknown>; grid?: unknown } };
  const name = (sw.name ?? "sweep").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").slice(0, 24) || "sweep";
  const { calibration: ptCal, ...ptBase } = sw.pretrain?.base ?? {};
  const { calibration: sftCal, ...sftBase } = sw.sft?.base ?? {};
  if (ptCal !== undefined && sftCal !== undefined && JSON.stringify(ptCal) !== JSON.stringify(sftCal)) {
    throw new TypeError("sft.base.calibration: a study has one calibration setting; it differs from pretrain.base.calibration");
  }
  const calibration = ptCal ?? sftCal;
  return {
    kind: "study", name, device: "auto", ...(calibration !== undefined ? { calibration } : {}),
    pretrain: { base: ptBase, grid: sw.pretrain?.grid ?? {} },
    ...(sw.sft ? { sft: { base: sftBase, arms: [{ name: "sft", grid: sw.sft.grid ?? {} }] } } : {}),
  };
}

function parseStudy(input: unknown): Study {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError("study must be a JSON object");
  const raw = input as Record<string, unknown>;
  const r = StudySchema.safeParse(raw.kind === "sweep" ? studyOfSweep(raw) : raw);
  if (!r.success) {
    throw new TypeError(`invalid study: ${r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "study"}: ${i.message}`).join("; ")}`);
  }
  return r.data;
}

/** The pretrained model of one point of the pretrain grid (overrides applied, validated, named). */
function pretrainRun(study: Study, p: GridPoint, index: number): PlannedRun {
  const cfg = p.config;
  for (const [oi, o] of study.pretrain.overrides.entries()) {
    if (matches(o.where, cfg)) for (const [path, v] of Object.entries(o.set)) setPath(cfg, path, v, `pretrain.overrides[${oi}].set.${path}`);
  }
  cfg.device = study.device;
  let config: PretrainConfig;
  try {
    config = parseTrainConfig(cfg) as PretrainConfig;
  } catch (err) {
    throw new TypeError(`pretrain point ${index} (${describePoint(p.point)}): ${(err as Error).message}`);
  }
  const keys = Object.keys(study.pretrain.grid);
  const parts = [study.name, config.tokenizer, `d${config.model.dModel}`];
  for (const k of keys) if (k !== "tokenizer" && k !== "model.dModel") parts.push(k === "seed" ? `s${idNumber(p.point[k])}` : otherKey(k, p.point[k]));
  config.name = `${study.name} pretrain ${config.tokenizer} d${config.model.dModel}${keys.length > 2 ? ` ${describePoint(p.point)}` : ""}`;
  const tokensPerStep = config.batchSize * config.model.context * config.gradAccum;
  return {
    id: parts.join("-"), kind: "pretrain", name: config.name, config, parent: null, point: p.point, arm: null, calibration: study.calibration,
    cost: config.steps * tokensPerStep * (config.model.dModel * config.model.nLayer * 12 + 0.02 * vocabGuess(config.tokenizer)),
    world: config.world !== undefined,
  };
}

/** The SFT runs of one arm on one pretrained model. */
function sftRuns(study: Study, arm: NonNullable<Study["sft"]>["arms"][number], pt: PlannedRun): PlannedRun[] {
  const parent = pt.config as PretrainConfig;
  const base = structuredClone(study.sft!.base) as Record<string, unknown>;
  base.kind = "sft";
  for (const [path, v] of Object.entries(arm.set)) setPath(base, path, v, `sft.arms.${arm.name}.set.${path}`);
  const inherit = study.sft!.inheritSeed;
  if (inherit && ("seed" in arm.grid || "seed" in arm.set)) throw new TypeError(`sft.arms.${arm.name}: varies seed, but sft.inheritSeed gives every SFT run its pretrained model's seed`);
  if (inherit) base.seed = parent.seed;
  return expandGrid(base, arm.grid, { max: MAX_POINTS, field: `sft.arms.${arm.name}.grid` }).map(({ point: sp, config: s }) => {
    s.init = `${pt.id}/checkpoint`;
    s.device = study.device;
    let sc: SftConfig;
    try {
      sc = parseTrainConfig(s) as SftConfig;
    } catch (err) {
      throw new TypeError(`sft arm ${arm.name} (${describePoint(sp)}) of ${pt.id}: ${(err as Error).message}`);
    }
    const tags = [
      SFT_KEYS["loss.labelSmoothing"]!(sc.loss.labelSmoothing), SFT_KEYS["loss.temperature"]!(sc.loss.temperature),
      SFT_KEYS["loss.softcap"]!(sc.loss.softcap), inherit ? "" : SFT_KEYS.seed!(sc.seed),
    ];
    for (const k of Object.keys(sp)) if (!(k in SFT_KEYS)) tags.push(otherKey(k, sp[k]));
    sc.name = `${study.name} sft ${parent.tokenizer} d${parent.model.dModel} ε=${sc.loss.labelSmoothing}`
      + `${sc.loss.temperature !== 1 ? ` T=${sc.loss.temperature}` : ""}${sc.loss.softcap !== null ? ` cap=${sc.loss.softcap}` : ""} seed=${sc.seed}`;
    // world SFT: conversations (about one per training person and as many instruction tasks); Brown: questions per task
    const ex = sc.world ? sc.maxExamples || 4000 : (sc.maxExamples || 20000) * sc.tasks.length;
    return {
      id: [pt.id, ...tags.filter((t) => t !== "")].join("-"), kind: "sft", name: sc.name, config: sc, parent: pt.id, point: { ...pt.point, ...sp },
      arm: arm.name, calibration: study.calibration, world: parent.world !== undefined,
      cost: sc.epochs * ex * parent.model.context * 0.6 * (parent.model.dModel * parent.model.nLayer * 12),
    };
  });
}

/** Validates a study (or a generic sweep run config) and expands it into its runs. */
export function planStudy(input: unknown): StudyPlan {
  const study = parseStudy(input);
  const runs: PlannedRun[] = [];
  const byId = new Map<string, PlannedRun>();
  const add = (run: PlannedRun) => {
    const prev = byId.get(run.id);
    if (prev) {
      if (JSON.stringify(prev.config) !== JSON.stringify(run.config)) throw new TypeError(`run id ${run.id} is produced twice with different configs (arms ${prev.arm} and ${run.arm})`);
      return;
    }
    if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(run.id)) throw new TypeError(`run id '${run.id}' is not valid (at most 64 lower-case letters, digits and '-'): shorten the study name`);
    byId.set(run.id, run);
    runs.push(run);
  };
  const points = expandGrid({ ...structuredClone(study.pretrain.base), kind: "pretrain" }, study.pretrain.grid, { max: MAX_POINTS, field: "pretrain.grid" });
  for (const [i, p] of points.entries()) {
    const pt = pretrainRun(study, p, i);
    add(pt);
    for (const arm of study.sft?.arms ?? []) if (matches(arm.where, pt.config)) sftRuns(study, arm, pt).forEach(add);
  }
  if (runs.length === 0) throw new TypeError("the study expands to no runs");
  return { study, runs };
}

function vocabGuess(tok: string): number {
  return tok === "byte" ? 256 : tok === "word" ? 2000 : tok === "r50k" ? 50257 : tok === "cl100k" ? 100277 : 200019;
}

/** "world" when the study pretrains on a knowledge world, else "brown" (the manifest's `regime`). */
export function studyRegime(plan: StudyPlan): "world" | "brown" {
  return plan.runs.some((r) => r.world) ? "world" : "brown";
}
