// POST /api/imports/lm-eval: lm-evaluation-harness samples files → an `import` run.
//   raw upload   body = one samples_<task>_<timestamp>.jsonl (Content-Type application/x-ndjson,
//                application/jsonl, text/plain or application/octet-stream);
//                ?name=NAME (required) &filename=samples_….jsonl &task=TASK (when the name lacks it)
//                &resamples=R &seed=S (the calibration settings, default 1000 and 0)
//                The body streams to a temporary file (never held in memory) under the upload limit.
//   JSON         {"name": NAME, "files": [{"filename", "text", "task"?}, …], "calibration"?: {"resamples", "seed"}}
//                for several tasks in one run
// The files are fully validated before the run exists (400 naming the file and line); the run is
// then queued (202) and its job writes questions.arrow and calibration.arrow.
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import express, { Router, type Request, type Response } from "express";
import { z } from "zod";
import { FieldError, fromZod } from "../../errors.js";
import { CALIBRATION_DEFAULTS, type CalibrationSettings } from "../../records/calibration.js";
import { CalibrationSchema } from "../../runs/schema.js";
import { submitLmEvalImport, type ImportFile } from "../../runs/submit.js";
import type { ApiContext } from "../context.js";
import { HttpError } from "../errors.js";
import { query } from "../validate.js";
import { publicRun } from "./runs.js";

const RAW_TYPES = ["application/x-ndjson", "application/jsonl", "application/x-jsonlines", "text/plain", "application/octet-stream"];

const count = (max: number) => z.string().regex(/^\d{1,10}$/, "must be a non-negative integer").transform(Number).pipe(z.number().int().min(0).max(max));

export const RawImportQuery = z.strictObject({
  name: z.string().min(1).max(200),
  filename: z.string().min(1).max(255).optional(),
  task: z.string().min(1).max(200).optional(),
  /** the calibration settings (as in JSON: calibration.resamples, calibration.seed) */
  resamples: count(1_000_000).optional(),
  seed: count(2 ** 32 - 1).optional(),
});

export const JsonImportBody = z.strictObject({
  name: z.string().min(1).max(200),
  files: z.array(z.strictObject({
    filename: z.string().min(1).max(255),
    text: z.string(),
    task: z.string().min(1).max(200).optional(),
  })).min(1).max(100),
  /** settings of the run's calibration.arrow (default: 1000 bootstrap resamples, seed 0) */
  calibration: CalibrationSchema.optional(),
});

function incomingDir(ctx: ApiContext): string {
  const d = join(ctx.dataDir, ".incoming");
  mkdirSync(d, { recursive: true });
  return d;
}

const tmpName = () => `${Date.now()}-${randomBytes(6).toString("hex")}.jsonl`;

/** Streams the request body into `path`; rejects with 413 past `limit` bytes (draining the rest). */
function receive(req: Request, path: string, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.get("content-length"));
    const tooLarge = () => new HttpError(413, `the upload is larger than the limit of ${limit} bytes`, "(body)");
    const out = createWriteStream(path);
    let bytes = 0;
    let over = false;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      out.destroy();
      reject(err);
    };
    if (Number.isFinite(declared) && declared > limit) over = true;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (over || bytes > limit) {
        over = true;
        // keep draining (discarding) up to 4× the limit so the client can read the 413, then hang up
        if (bytes > 4 * limit + (1 << 20)) req.destroy();
        return;
      }
      if (!out.write(chunk)) {
        req.pause();
        out.once("drain", () => req.resume());
      }
    });
    req.on("end", () => {
      if (over) return fail(tooLarge());
      out.end(() => (failed ? undefined : resolve(bytes)));
    });
    req.on("error", (err) => fail(err));
    req.on("aborted", () => fail(new HttpError(400, "the upload was aborted", "(body)")));
    out.on("error", (err) => fail(err));
  });
}

export function importsRouter(ctx: ApiContext): Router {
  const r = Router();
  const jsonUpload = express.json({ limit: ctx.limits.uploadBytes, strict: true });

  r.post("/lm-eval", ctx.requireAuth, async (req: Request, res: Response, next) => {
    const temps: string[] = [];
    try {
      let files: ImportFile[];
      let name: string;
      let calibration: Partial<CalibrationSettings> = {};
      if (req.is("application/json")) {
        await new Promise<void>((resolve, reject) => jsonUpload(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
        const q = query(req, z.strictObject({}));
        void q;
        const parsed = JsonImportBody.safeParse(req.body);
        if (!parsed.success) throw fromZod(parsed.error);
        name = parsed.data.name;
        calibration = parsed.data.calibration ?? {};
        files = parsed.data.files.map((f) => {
          const path = join(incomingDir(ctx), tmpName());
          writeFileSync(path, f.text);
          temps.push(path);
          return { path, filename: f.filename, ...(f.task ? { task: f.task } : {}) };
        });
      } else {
        const type = req.get("content-type");
        if (!type || !RAW_TYPES.some((t) => req.is(t))) {
          throw new HttpError(415, `Content-Type must be application/x-ndjson (a samples_<task>_<timestamp>.jsonl file) or application/json (got ${type ?? "none"})`, "(body)");
        }
        const q = query(req, RawImportQuery);
        name = q.name;
        calibration = { ...(q.resamples !== undefined ? { resamples: q.resamples } : {}), ...(q.seed !== undefined ? { seed: q.seed } : {}) };
        const path = join(incomingDir(ctx), tmpName());
        temps.push(path);
        const bytes = await receive(req, path, ctx.limits.uploadBytes);
        if (bytes === 0) throw new FieldError("(body)", "the upload is empty (no samples)");
        files = [{ path, filename: q.filename ?? (q.task ? `samples_${q.task}.jsonl` : "upload.jsonl"), ...(q.task ? { task: q.task } : {}) }];
      }
      const { run, parsed } = await submitLmEvalImport(ctx.registry, files, {
        name, source: "api", dataDir: ctx.dataDir, move: true, calibration: { ...CALIBRATION_DEFAULTS, ...calibration },
      });
      ctx.executor?.kick();
      res.status(202).location(`/api/runs/${run.id}`).json({
        run: publicRun(run),
        tasks: parsed.map((p) => ({ task: p.task, filename: p.filename, questions: p.rows.length, duplicate_filters: p.duplicateFilters })),
      });
    } catch (err) {
      next(err);
    } finally {
      for (const t of temps) rmSync(t, { force: true });
    }
  });

  return r;
}
