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
// A generic `{"kind": "sweep", …}` run config (docs/api.md) is accepted too: its pretrain grid and
// one SFT arm. `where` matches the values of the pretrain grid point (and of its overrides), a
// value or a list of values per dotted path. Every expanded run config is validated with the
// trainer's own schema before anything runs; runs that expand to the same id must be identical.
//
// Run ids are readable and stable: <name>-<tokenizer>-d<dModel>[-<other varied keys>] for the
// pretrained models, <pretrain id>-e<ε>[-t<T>][-c<cap>]-s<seed>[-<other keys>] for SFT
// (decimal points written as "p": e0p1 = ε 0.1), so that reruns of a study overwrite their own runs.
import { z } from "zod";
import { parseTrainConfig, type PretrainConfig, type SftConfig } from "../train/config.js";

const PATH = z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, "keys are dotted config paths like loss.labelSmoothing");
const VALUE = z.union([z.number(), z.string(), z.boolean(), z.null()]);
const Grid = z.record(PATH, z.array(VALUE).min(1).max(1000)).default({});
const Where = z.record(PATH, z.union([VALUE, z.array(VALUE).min(1)])).default({});
const Obj = z.record(z.string(), z.unknown()).default({});

export const StudySchema = z.strictObject({
  kind: z.literal("study"),
  /** prefix of every run id: lower-case letters, digits, '-' */
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, "name must be 1–24 lower-case letters, digits or '-', starting with a letter"),
  title: z.string().max(200).optional(),
  description: z.string().max(4000).optional(),
  /** device of every run (a run config's own device is overridden); auto = cuda when present */
  device: z.enum(["cpu", "cuda", "auto"]).default("auto"),
  pretrain: z.strictObject({
    base: Obj,
    grid: Grid,
    overrides: z.array(z.strictObject({ where: Where, set: Obj })).default([]),
  }),
  sft: z.strictObject({
    base: Obj,
    arms: z.array(z.strictObject({
      name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
      where: Where,
      grid: Grid,
      set: Obj,
    })).default([]),
  }).optional(),
  /** what `publish` keeps of the per-token records (question records are always kept whole) */
  publish: z.strictObject({
    /** tokens kept per run × checkpoint (evenly spaced); 0 = all */
    tokensPerCheckpoint: z.number().int().min(0).default(1024),
    /** tokens kept of a pretrained model's (single) evaluation; default: tokensPerCheckpoint */
    pretrainTokens: z.number().int().min(0).optional(),
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
  /** rough relative cost (tokens processed), for scheduling */
  cost: number;
}

export interface StudyPlan {
  study: Study;
  runs: PlannedRun[];
}

function setPath(target: Record<string, unknown>, path: string, value: unknown, field: string): void {
  const keys = path.split(".");
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (next === undefined || next === null) o[k] = {};
    else if (typeof next !== "object" || Array.isArray(next)) throw new TypeError(`${field}: '${k}' of '${path}' is not an object in the base config`);
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

export function getPath(source: unknown, path: string): unknown {
  let o = source;
  for (const k of path.split(".")) {
    if (o === null || typeof o !== "object") return undefined;
    o = (o as Record<string, unknown>)[k];
  }
  return o;
}

/** Cartesian product of a grid (key order, last key fastest). */
export function gridPoints(grid: Record<string, readonly unknown[]>): Array<Record<string, unknown>> {
  let points: Array<Record<string, unknown>> = [{}];
  for (const [path, values] of Object.entries(grid)) {
    const next: Array<Record<string, unknown>> = [];
    for (const p of points) for (const v of values) next.push({ ...p, [path]: v });
    points = next;
    if (points.length > 5000) throw new RangeError("grid expands to more than 5000 points");
  }
  return points;
}

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

function describe(point: Record<string, unknown>): string {
  return Object.entries(point).map(([k, v]) => `${k.split(".").pop()}=${String(v)}`).join(" ");
}

/** Validates a study (or a generic sweep run config) and expands it into its runs. */
export function planStudy(input: unknown): StudyPlan {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError("study must be a JSON object");
  let raw = input as Record<string, unknown>;
  if (raw.kind === "sweep") {
    // the API's sweep config: one SFT arm
    const sw = raw as { name?: string; pretrain?: { base?: unknown; grid?: unknown }; sft?: { base?: unknown; grid?: unknown } };
    const name = (sw.name ?? "sweep").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").slice(0, 24) || "sweep";
    raw = {
      kind: "study", name, device: "auto",
      pretrain: { base: sw.pretrain?.base ?? {}, grid: sw.pretrain?.grid ?? {} },
      ...(sw.sft ? { sft: { base: sw.sft.base ?? {}, arms: [{ name: "sft", grid: sw.sft.grid ?? {} }] } } : {}),
    };
  }
  const r = StudySchema.safeParse(raw);
  if (!r.success) {
    throw new TypeError(`invalid study: ${r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "study"}: ${i.message}`).join("; ")}`);
  }
  const study = r.data;
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

  const ptKeys = Object.keys(study.pretrain.grid);
  for (const [pi, point] of gridPoints(study.pretrain.grid).entries()) {
    const cfg = structuredClone(study.pretrain.base) as Record<string, unknown>;
    cfg.kind = "pretrain";
    for (const [p, v] of Object.entries(point)) setPath(cfg, p, v, `pretrain.grid.${p}`);
    for (const [oi, o] of study.pretrain.overrides.entries()) {
      if (matches(o.where, cfg)) for (const [p, v] of Object.entries(o.set)) setPath(cfg, p, v, `pretrain.overrides[${oi}].set.${p}`);
    }
    cfg.device = study.device;
    let config: PretrainConfig;
    try {
      config = parseTrainConfig(cfg) as PretrainConfig;
    } catch (err) {
      throw new TypeError(`pretrain point ${pi} (${describe(point)}): ${(err as Error).message}`);
    }
    const parts = [study.name, config.tokenizer, `d${config.model.dModel}`];
    for (const k of ptKeys) if (k !== "tokenizer" && k !== "model.dModel") parts.push(otherKey(k, point[k]));
    const id = parts.join("-");
    config.name = `${study.name} pretrain ${config.tokenizer} d${config.model.dModel}${ptKeys.length > 2 ? ` ${describe(point)}` : ""}`;
    const tokensPerStep = config.batchSize * config.model.context * config.gradAccum;
    const pt: PlannedRun = {
      id, kind: "pretrain", name: config.name, config, parent: null, point, arm: null,
      cost: config.steps * tokensPerStep * (config.model.dModel * config.model.nLayer * 12 + 0.02 * vocabGuess(config.tokenizer)),
    };
    add(pt);
    if (!study.sft) continue;
    for (const arm of study.sft.arms) {
      if (!matches(arm.where, config)) continue;
      for (const sp of gridPoints(arm.grid)) {
        const s = structuredClone(study.sft.base) as Record<string, unknown>;
        s.kind = "sft";
        for (const [p, v] of Object.entries(arm.set)) setPath(s, p, v, `sft.arms.${arm.name}.set.${p}`);
        for (const [p, v] of Object.entries(sp)) setPath(s, p, v, `sft.arms.${arm.name}.grid.${p}`);
        s.init = `${id}/checkpoint`;
        s.device = study.device;
        let sc: SftConfig;
        try {
          sc = parseTrainConfig(s) as SftConfig;
        } catch (err) {
          throw new TypeError(`sft arm ${arm.name} (${describe(sp)}) of ${id}: ${(err as Error).message}`);
        }
        const tags = [
          SFT_KEYS["loss.labelSmoothing"]!(sc.loss.labelSmoothing), SFT_KEYS["loss.temperature"]!(sc.loss.temperature),
          SFT_KEYS["loss.softcap"]!(sc.loss.softcap), SFT_KEYS.seed!(sc.seed),
        ];
        for (const k of Object.keys(sp)) if (!(k in SFT_KEYS)) tags.push(otherKey(k, sp[k]));
        const sid = [id, ...tags.filter((t) => t !== "")].join("-");
        sc.name = `${study.name} sft ${config.tokenizer} d${config.model.dModel} ε=${sc.loss.labelSmoothing}`
          + `${sc.loss.temperature !== 1 ? ` T=${sc.loss.temperature}` : ""}${sc.loss.softcap !== null ? ` cap=${sc.loss.softcap}` : ""} seed=${sc.seed}`;
        const ex = (sc.maxExamples || 20000) * sc.tasks.length;
        add({
          id: sid, kind: "sft", name: sc.name, config: sc, parent: id, point: { ...point, ...sp }, arm: arm.name,
          cost: sc.epochs * ex * config.model.context * 0.6 * (config.model.dModel * config.model.nLayer * 12),
        });
      }
    }
  }
  if (runs.length === 0) throw new TypeError("the study expands to no runs");
  return { study, runs };
}

function vocabGuess(tok: string): number {
  return tok === "byte" ? 256 : tok === "r50k" ? 50257 : tok === "cl100k" ? 100277 : 200019;
}
