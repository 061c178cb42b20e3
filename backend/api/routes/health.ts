// GET /api/health: liveness plus what a client wants to know before submitting: the engine's
// devices, what runs on each lane now, the queue length, and whether writes need a token.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Router } from "express";
import { REPO_ROOT } from "../../runs/paths.js";
import type { ApiContext } from "../context.js";

let version = "unknown";
try {
  version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
} catch {
  // keep unknown
}

let engineCache: Record<string, unknown> | null = null;

async function engine(): Promise<Record<string, unknown>> {
  if (engineCache) return engineCache;
  try {
    const { engineInfo } = await import("../../engine/index.js");
    const info = engineInfo();
    engineCache = { available: true, cuda_built: info.cudaBuilt, cuda_devices: info.cudaDevices, cuda_message: info.cudaMessage, cpu_threads: info.cpuThreads };
  } catch (err) {
    engineCache = { available: false, message: (err as Error).message.split("\n")[0] };
  }
  return engineCache;
}

export function healthRouter(ctx: ApiContext): Router {
  const r = Router();
  r.get("/", async (_req, res) => {
    const running = ctx.registry.list({ status: "running" });
    const lanes: Record<string, string | null> = { cpu: null, cuda: null, io: null };
    for (const run of running) if (run.device in lanes) lanes[run.device] = run.id;
    res.json({
      status: "ok",
      version,
      uptime_s: (Date.now() - ctx.startedAt) / 1000,
      pid: process.pid,
      executor: ctx.executor !== null,
      auth_required: ctx.authRequired,
      runs: { total: ctx.registry.count(), queued: ctx.registry.count({ status: "queued" }), running: running.length },
      lanes,
      engine: await engine(),
      limits: { json_bytes: ctx.limits.jsonBytes, upload_bytes: ctx.limits.uploadBytes },
    });
  });
  return r;
}
