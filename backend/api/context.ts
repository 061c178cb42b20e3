// What the routers share: the registry, the executor, the data directory, limits and auth.
import type { RequestHandler } from "express";
import type { Executor } from "../runs/executor.js";
import type { Lane, Registry } from "../runs/registry.js";

export interface ApiLimits {
  /** JSON bodies (run configs), bytes */
  jsonBytes: number;
  /** lm-eval uploads, bytes (raw JSONL; JSON multi-file bodies get the same limit) */
  uploadBytes: number;
}

export interface ApiContext {
  registry: Registry;
  /** null: a read-only server (no job execution; submit still queues) */
  executor: Executor | null;
  dataDir: string;
  limits: ApiLimits;
  /** bearer check for mutating endpoints (a no-op when CALIB_TOKEN is unset) */
  requireAuth: RequestHandler;
  authRequired: boolean;
  startedAt: number;
  /** device → lane resolution override (tests) */
  resolveLane?: (device: "cpu" | "cuda" | "auto") => Promise<Lane>;
  log: (message: string) => void;
}
