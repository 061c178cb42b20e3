// The Calibration Lab server: the Express API, the job executor and the built site in one
// process. Started by `npm start` (scripts/start.mjs), `calib serve`, or directly:
//   node --import tsx backend/server.ts
// Environment: PORT (default 3000; 0 = any free port), HOST (default 127.0.0.1),
// CALIB_DATA_DIR (default data/), CALIB_TOKEN (bearer token for POST endpoints),
// CALIB_MAX_BODY_BYTES, CALIB_MAX_UPLOAD_BYTES, CALIB_SITE_DIR (default dist/), CALIB_NO_EXECUTOR=1.
// It prints `listening on http://HOST:PORT` on stdout once it accepts connections.
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createApp, DEFAULT_LIMITS } from "./api/app.js";
import { Executor } from "./runs/executor.js";
import { dataDir as defaultDataDir, ensureDir, REPO_ROOT, registryPath } from "./runs/paths.js";
import { Registry } from "./runs/registry.js";

export interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  token?: string | null;
  siteDir?: string | null;
  executor?: boolean;
  jsonBytes?: number;
  uploadBytes?: number;
  /** diagnostics (default: stderr with a timestamp) */
  log?: (message: string) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  registry: Registry;
  executor: Executor | null;
  close(reason?: string): Promise<void>;
}

function envInt(name: string, fallback: number, min: number, max: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}] (got '${v}')`);
  return n;
}

/** Options from the environment (see the header). */
export function optionsFromEnv(): ServeOptions {
  const token = process.env.CALIB_TOKEN;
  return {
    port: envInt("PORT", 3000, 0, 65535),
    host: process.env.HOST && process.env.HOST !== "" ? process.env.HOST : "127.0.0.1",
    dataDir: defaultDataDir(),
    token: token && token !== "" ? token : null,
    siteDir: process.env.CALIB_SITE_DIR && process.env.CALIB_SITE_DIR !== "" ? process.env.CALIB_SITE_DIR : join(REPO_ROOT, "dist"),
    executor: process.env.CALIB_NO_EXECUTOR !== "1",
    jsonBytes: envInt("CALIB_MAX_BODY_BYTES", DEFAULT_LIMITS.jsonBytes, 1024, 1 << 30),
    uploadBytes: envInt("CALIB_MAX_UPLOAD_BYTES", DEFAULT_LIMITS.uploadBytes, 1024, 8 * 2 ** 30),
  };
}

const stamp = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);

export async function startServer(o: ServeOptions = {}): Promise<RunningServer> {
  const log = o.log ?? stamp;
  const dataDir = ensureDir(o.dataDir ?? defaultDataDir());
  const host = o.host ?? "127.0.0.1";
  const registry = Registry.open(registryPath(dataDir));
  const executor = o.executor === false ? null : new Executor(registry, { dataDir, log });
  let version = "0.0.0";
  try {
    version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // keep
  }
  const app = createApp({
    registry, executor, dataDir, token: o.token ?? null, siteDir: o.siteDir === undefined ? join(REPO_ROOT, "dist") : o.siteDir, host, log, version,
    limits: { jsonBytes: o.jsonBytes ?? DEFAULT_LIMITS.jsonBytes, uploadBytes: o.uploadBytes ?? DEFAULT_LIMITS.uploadBytes },
  });
  if (executor) {
    const rec = executor.start();
    if (rec.failed.length || rec.requeued.length) log(`recovered: ${rec.failed.length} interrupted run(s) marked failed, ${rec.requeued.length} re-queued`);
  }
  const server = createServer(app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 3000, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    server, url: `http://${shownHost}:${port}`, port, registry, executor,
    close(reason?: string) {
      closing ??= (async () => {
        await executor?.stop(reason ?? "the server stopped while the run was running");
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        registry.close();
      })();
      return closing;
    },
  };
}

/** Runs the server until SIGINT / SIGTERM. */
export async function main(o: ServeOptions = optionsFromEnv()): Promise<void> {
  const s = await startServer(o);
  console.log(`listening on ${s.url}`);
  if (o.token) stamp("POST endpoints require the bearer token (CALIB_TOKEN)");
  const stop = (signal: string) => {
    stamp(`${signal}: stopping (running jobs are marked failed)`);
    s.close(`the server stopped (${signal}) while the run was running`).then(() => process.exit(0), () => process.exit(1));
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((err: unknown) => {
    console.error(`calib server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof TypeError || err instanceof RangeError ? 2 : 1);
  });
}
