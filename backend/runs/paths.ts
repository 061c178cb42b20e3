// Where the registry and the run records live. Everything that reads or writes data/ goes
// through dataDir(), so tests (and a second installation) can point CALIB_DATA_DIR elsewhere.
//   <dataDir>/registry.sqlite        the run registry (git-ignored; WAL files beside it)
//   <dataDir>/runs/<id>/             one run's records: run.json, *.arrow, job.log, checkpoint/
import { existsSync, mkdirSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (two levels above backend/runs/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** CALIB_DATA_DIR when set (resolved against the working directory), else <repo>/data. */
export function dataDir(): string {
  const env = process.env.CALIB_DATA_DIR;
  return env && env.trim() !== "" ? resolve(env) : join(REPO_ROOT, "data");
}

export function registryPath(root = dataDir()): string {
  return join(root, "registry.sqlite");
}

export function runsRoot(root = dataDir()): string {
  return join(root, "runs");
}

/** Run ids: lower-case letters, digits and '-', 1–64 characters, starting with a letter or digit. */
export const RUN_ID_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function checkRunId(id: unknown, field = "id"): string {
  if (typeof id !== "string" || !RUN_ID_RE.test(id)) {
    throw new TypeError(`${field} must be a run id (lower-case letters, digits and '-', at most 64 characters), got ${JSON.stringify(id)}`);
  }
  return id;
}

export function runDir(id: string, root = dataDir()): string {
  return join(runsRoot(root), checkRunId(id));
}

export function ensureDir(path: string): string {
  if (!existsSync(path)) mkdirSync(path, { recursive: true });
  return path;
}

/** True when `child` is `parent` or inside it (after resolving both). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(resolve(parent), resolve(child));
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel) && !rel.split(sep).includes(".."));
}
