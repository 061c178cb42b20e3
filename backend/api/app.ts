// The Express application: one router per resource under /api, then the built site.
//   /api/health          health.ts        /api/runs[...]   routes/runs.ts (incl. SSE, artifacts)
//   /api/imports         routes/imports.ts                  /api/openapi.json
// Edge rules: JSON bodies up to limits.jsonBytes; uploads up to limits.uploadBytes; POST needs
// the bearer token when one is configured; when bound to loopback, the Host header must name a
// loopback host (no DNS rebinding) and cross-site writes are refused (Origin check); CORS is
// granted to loopback origins only (the Framework preview on another port).
import { createHash, timingSafeEqual } from "node:crypto";
import express, { type Express, type RequestHandler } from "express";
import type { Executor } from "../runs/executor.js";
import type { Lane, Registry } from "../runs/registry.js";
import type { ApiContext, ApiLimits } from "./context.js";
import { errorBody, errorHandler, notFound } from "./errors.js";
import { healthRouter } from "./routes/health.js";
import { importsRouter } from "./routes/imports.js";
import { runsRouter } from "./routes/runs.js";
import { openApiDocument } from "./openapi.js";
import { siteHandler } from "./site.js";

export interface AppOptions {
  registry: Registry;
  executor: Executor | null;
  dataDir: string;
  /** bearer token for mutating endpoints (CALIB_TOKEN); none: open */
  token?: string | null;
  limits?: Partial<ApiLimits>;
  /** built site directory (default: none served) */
  siteDir?: string | null;
  /** the address the server listens on: loopback enables the Host/Origin checks */
  host?: string;
  resolveLane?: (device: "cpu" | "cuda" | "auto") => Promise<Lane>;
  log?: (message: string) => void;
  version?: string;
}

export const DEFAULT_LIMITS: ApiLimits = { jsonBytes: 1 << 20, uploadBytes: 512 << 20 };

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);
const isLoopbackHost = (h: string) => LOOPBACK_NAMES.has(h) || /^127\.\d+\.\d+\.\d+$/.test(h);

function hostname(hostHeader: string): string {
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  return hostHeader.split(":")[0]!;
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const u = new URL(origin);
    return (u.protocol === "http:" || u.protocol === "https:") && isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

function bearer(token: string | null | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const want = createHash("sha256").update(token).digest();
  return (req, res, next) => {
    const header = req.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header);
    const got = createHash("sha256").update(m ? m[1]!.trim() : "").digest();
    if (!m || !timingSafeEqual(want, got)) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="calib"');
      res.status(401).json(errorBody(401, m ? "the bearer token is wrong" : "this endpoint needs Authorization: Bearer <CALIB_TOKEN>", "Authorization"));
      return;
    }
    next();
  };
}

export function createApp(o: AppOptions): Express {
  const log = o.log ?? (() => {});
  const ctx: ApiContext = {
    registry: o.registry, executor: o.executor, dataDir: o.dataDir, limits: { ...DEFAULT_LIMITS, ...o.limits },
    requireAuth: bearer(o.token), authRequired: Boolean(o.token), startedAt: Date.now(), log,
    ...(o.resolveLane ? { resolveLane: o.resolveLane } : {}),
  };
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", "strong");
  app.set("query parser", "simple");
  const loopback = isLoopbackHost(o.host ?? "127.0.0.1");

  app.use((req, res, next) => {
    res.setHeader("X-Content-Type-Options", "nosniff");
    if (loopback) {
      const host = req.get("host");
      if (!host || !isLoopbackHost(hostname(host))) {
        res.status(403).json(errorBody(403, `Host '${host ?? ""}' is not a loopback name; this server only answers to localhost / 127.0.0.1`, "Host"));
        return;
      }
    }
    const origin = req.get("origin");
    if (origin) {
      const ok = isLoopbackOrigin(origin);
      if (ok) {
        res.setHeader("Access-Control-Allow-Origin", origin);
        res.setHeader("Vary", "Origin");
        res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
        res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.setHeader("Access-Control-Expose-Headers", "Location");
      }
      if (req.method === "OPTIONS") {
        res.status(ok ? 204 : 403).end();
        return;
      }
      if (!ok && req.method !== "GET" && req.method !== "HEAD") {
        res.status(403).json(errorBody(403, `cross-site request from ${origin} refused`, "Origin"));
        return;
      }
    }
    next();
  });

  const api = express.Router();
  api.use("/runs", express.json({ limit: ctx.limits.jsonBytes, strict: true }));
  api.use("/health", healthRouter(ctx));
  api.get("/openapi.json", (_req, res) => {
    res.json(openApiDocument({ version: o.version ?? "0.0.0", authRequired: ctx.authRequired }));
  });
  api.use("/runs", runsRouter(ctx));
  api.use("/imports", importsRouter(ctx));
  api.use(notFound);
  app.use("/api", api);
  if (o.siteDir) app.use(siteHandler(o.siteDir));
  app.use((req, res) => {
    res.status(404).type("text/plain").send(`Not found: ${req.path}\n`);
  });
  app.use(errorHandler(log));
  return app;
}
