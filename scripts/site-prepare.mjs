// Runs before `observable build` and `observable preview` (npm's prebuild / predev):
//   1. fills Framework's npm cache from node_modules (offline-npm-cache.mjs: no CDN, no registry);
//   2. bundles backend/metrics for the browser (bundle-metrics.mjs → src/components/calibration.js);
//   3. drops cached loader output when the data changed. Framework reuses a loader's cached output
//      while the loader file itself is unchanged (and `build` even uses stale output), so new runs in
//      data/ would never appear. We fingerprint the inputs of the loaders (the data root, the files
//      under runs/ and bench/, the registry, src/data/** and backend/metrics/**) and delete
//      src/.observablehq/cache/data when the fingerprint differs from the last one.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CACHE = join(ROOT, "src/.observablehq/cache");

/** The data root the loaders will read ($CALIB_DATA_DIR or data/). */
export function dataRoot(env = process.env) {
  const d = env.CALIB_DATA_DIR;
  return d && d.trim() !== "" ? (isAbsolute(d) ? d : resolve(ROOT, d)) : join(ROOT, "data");
}

/** path, size and mtime of every file under dir (recursively), skipping `skip` directory names. */
function walk(dir, out, skip = new Set()) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!skip.has(e.name)) walk(p, out, skip);
    } else if (e.isFile()) {
      const s = statSync(p);
      out.push(`${p}\t${s.size}\t${Math.floor(s.mtimeMs)}`);
    }
  }
  return out;
}

/** Fingerprint of everything the data loaders read. */
export function dataFingerprint(env = process.env) {
  const root = dataRoot(env);
  const lines = [`root\t${root}`];
  // Checkpoints and per-epoch copies are not read by the loaders.
  walk(join(root, "runs"), lines, new Set(["checkpoint", "evals"]));
  walk(join(root, "bench"), lines);
  for (const f of ["registry.sqlite", "registry.sqlite-wal"]) {
    const p = join(root, f);
    if (existsSync(p)) lines.push(`${p}\t${statSync(p).size}\t${Math.floor(statSync(p).mtimeMs)}`);
  }
  walk(join(ROOT, "src/data"), lines);
  walk(join(ROOT, "backend/metrics"), lines);
  walk(join(ROOT, "backend/records"), lines);
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/** Drops Framework's cached loader output when the data changed since the last prepare. */
export function invalidateLoaderCache(env = process.env) {
  const stamp = join(CACHE, "calib-data-fingerprint");
  const fp = dataFingerprint(env);
  const old = existsSync(stamp) ? readFileSync(stamp, "utf8") : "";
  if (old !== fp) {
    rmSync(join(CACHE, "data"), { recursive: true, force: true });
    mkdirSync(CACHE, { recursive: true });
    writeFileSync(stamp, fp);
    return true;
  }
  return false;
}

export function prepareSite(env = process.env) {
  for (const script of ["scripts/offline-npm-cache.mjs", "scripts/bundle-metrics.mjs"]) {
    const r = spawnSync(process.execPath, [join(ROOT, script)], { cwd: ROOT, stdio: "inherit", env });
    if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status})`);
  }
  if (invalidateLoaderCache(env)) console.error(`site data: loaders will rerun (data root ${dataRoot(env)})`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    prepareSite();
  } catch (err) {
    console.error(`site-prepare: ${err.message}`);
    process.exit(1);
  }
}
