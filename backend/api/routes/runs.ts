// /api/runs: submit, list, show, follow (SSE), cancel, and download the records of runs.
import { statSync } from "node:fs";
import { join } from "node:path";
import { Router, type Request, type Response } from "express";
import { z } from "zod";
import { NotFoundError } from "../../errors.js";
import { runDir } from "../../runs/paths.js";
import { RUN_KINDS, RUN_STATUSES, type RunRecord } from "../../runs/registry.js";
import { submitRun } from "../../runs/submit.js";
import { requestCancel } from "../../runs/cancel.js";
import type { ApiContext } from "../context.js";
import { streamEvents } from "../sse.js";
import { artifactParam, csvEnum, intParam, jsonBody, query, runIdParam } from "../validate.js";

export const CONTENT_TYPES: Record<string, string> = {
  arrow: "application/vnd.apache.arrow.stream",
  json: "application/json; charset=utf-8",
  log: "text/plain; charset=utf-8",
};

/** The API's view of a run (the process bookkeeping stays internal). */
export function publicRun(r: RunRecord): Omit<RunRecord, "owner" | "worker"> {
  const { owner: _o, worker: _w, ...rest } = r;
  return rest;
}

export const ListQuerySchema = z.strictObject({
  status: csvEnum(RUN_STATUSES).optional(),
  kind: csvEnum(RUN_KINDS).optional(),
  parent: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "must be a run id").optional(),
  limit: intParam(1, 1000).optional(),
  offset: intParam(0, 1e9).optional(),
});

export function runsRouter(ctx: ApiContext): Router {
  const r = Router();

  const load = (req: Request): RunRecord => {
    const id = runIdParam(req);
    const run = ctx.registry.get(id);
    if (!run) throw new NotFoundError(`no run '${id}'`);
    return run;
  };

  r.post("/", ctx.requireAuth, async (req: Request, res: Response) => {
    const body = jsonBody(req);
    const run = await submitRun(ctx.registry, body, { source: "api", dataDir: ctx.dataDir, ...(ctx.resolveLane ? { resolveLane: ctx.resolveLane } : {}) });
    ctx.executor?.kick();
    res.status(201).location(`/api/runs/${run.id}`).json(publicRun(run));
  });

  r.get("/", (req, res) => {
    const q = query(req, ListQuerySchema);
    const limit = q.limit ?? 100;
    const offset = q.offset ?? 0;
    const filter = { ...(q.status ? { status: q.status } : {}), ...(q.kind ? { kind: q.kind } : {}), ...(q.parent ? { parentId: q.parent } : {}) };
    const runs = ctx.registry.list({ ...filter, limit, offset });
    const total = q.parent ? ctx.registry.list(filter).length : ctx.registry.count(filter);
    res.json({ runs: runs.map(publicRun), total, limit, offset });
  });

  r.get("/:id", (req, res) => {
    res.json(publicRun(load(req)));
  });

  r.get("/:id/events", (req, res) => {
    const run = load(req);
    streamEvents(req, res, ctx.registry, run, publicRun);
  });

  r.post("/:id/cancel", ctx.requireAuth, async (req, res) => {
    const run = load(req);
    // without an executor (read-only server) the registry request reaches whichever process runs it
    const after = ctx.executor ? await ctx.executor.cancel(run.id) : requestCancel(ctx.registry, ctx.dataDir, run.id);
    res.json(publicRun(after));
  });

  r.get("/:id/artifacts", (req, res) => {
    const run = load(req);
    const dir = runDir(run.id, ctx.dataDir);
    res.json({
      artifacts: run.artifacts.map((name) => {
        let bytes: number | null = null;
        try {
          bytes = statSync(join(dir, name)).size;
        } catch {
          bytes = null;
        }
        const ext = name.split(".").pop() ?? "";
        return { name, bytes, content_type: CONTENT_TYPES[ext] ?? "application/octet-stream", url: `/api/runs/${run.id}/artifacts/${name}` };
      }),
    });
  });

  r.get("/:id/artifacts/:name", (req, res, next) => {
    const run = load(req);
    const name = artifactParam(req);
    if (!run.artifacts.includes(name)) {
      throw new NotFoundError(`run ${run.id} has no artifact '${name}'${TERMINAL_HINT(run)} (it has: ${run.artifacts.join(", ") || "none"})`);
    }
    const ext = name.split(".").pop() ?? "";
    res.setHeader("Content-Type", CONTENT_TYPES[ext] ?? "application/octet-stream");
    res.setHeader("Content-Disposition", `inline; filename="${run.id}-${name}"`);
    res.sendFile(name, { root: runDir(run.id, ctx.dataDir), dotfiles: "deny", lastModified: true, cacheControl: false }, (err) => {
      if (err && !res.headersSent) next(new NotFoundError(`run ${run.id}: artifact '${name}' is listed but cannot be read`));
    });
  });

  return r;
}

function TERMINAL_HINT(run: RunRecord): string {
  return run.status === "queued" || run.status === "running" ? ` yet (the run is ${run.status}; records are listed once complete)` : "";
}
