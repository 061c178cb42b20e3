// Builds the site (prepare + `observable build`), optionally only when something changed.
//
//   node scripts/site-build.mjs [--if-needed] [--out DIR] [--quiet]
//   import { buildSite } from "./site-build.mjs"; await buildSite({ ifNeeded: true })
//
// --if-needed skips the build when DIR/index.html exists and nothing the build reads changed since
// the last build into DIR: the pages and loaders (src/), the config, backend/metrics, the data
// (runs, bench, registry under $CALIB_DATA_DIR or data/) and the Framework version. This is what
// `npm start` (scripts/start.mjs) calls before serving dist/ with the API.
// Environment: CALIB_DATA_DIR (data root for the loaders), CALIB_SITE_OUT (same as --out).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ROOT, dataFingerprint, prepareSite } from "./site-prepare.mjs";

function sourceFingerprint(out, env) {
  const h = createHash("sha256");
  h.update(dataFingerprint(env));
  h.update(`out\t${out}\n`);
  const fw = JSON.parse(readFileSync(join(ROOT, "node_modules/@observablehq/framework/package.json"), "utf8")).version;
  h.update(`framework\t${fw}\n`);
  // Pages, components, config and the build scripts (content, not mtimes: a fresh clone rebuilds once).
  const files = [];
  const visit = (dir) => {
    for (const e of readdirSyncSorted(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== ".observablehq" && e.name !== "data") visit(p);
      } else if (!p.endsWith("components/calibration.js")) files.push(p);
    }
  };
  visit(join(ROOT, "src"));
  files.push(join(ROOT, "observablehq.config.ts"), join(ROOT, "scripts/offline-npm-cache.mjs"), join(ROOT, "scripts/bundle-metrics.mjs"));
  for (const f of files) if (existsSync(f)) h.update(f).update(readFileSync(f));
  return h.digest("hex");
}

function readdirSyncSorted(dir) {
  return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)) : [];
}

/** Resolves the output directory: explicit, $CALIB_SITE_OUT, or dist/. */
export function outDir(out, env = process.env) {
  const o = out ?? env.CALIB_SITE_OUT ?? "dist";
  return isAbsolute(o) ? o : resolve(ROOT, o);
}

/**
 * Builds the site into `out` (default dist/). With ifNeeded, returns {built: false} when the last
 * build into `out` had the same inputs. Rejects with the build's output tail on failure.
 */
export async function buildSite({ ifNeeded = false, out, env = process.env, quiet = false } = {}) {
  const dest = outDir(out, env);
  const stampDir = join(ROOT, "src/.observablehq/cache");
  const stampFile = join(stampDir, `calib-build-${createHash("sha256").update(dest).digest("hex").slice(0, 12)}`);
  const fp = sourceFingerprint(dest, env);
  if (ifNeeded && existsSync(join(dest, "index.html")) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === fp) {
    return { built: false, out: dest, seconds: 0 };
  }
  const t0 = performance.now();
  const childEnv = {
    ...env, CALIB_SITE_OUT: dest, OBSERVABLE_TELEMETRY_DISABLE: "true",
    PATH: [join(ROOT, "node_modules/.bin"), env.PATH ?? ""].join(delimiter),
  };
  prepareSite(childEnv);
  // Framework clears only output directories inside the working directory; a stale build elsewhere
  // makes it fail with "file conflict". Clear it here, but only if it looks like a site build.
  if (existsSync(dest) && readdirSync(dest).length > 0) {
    if (!existsSync(join(dest, "_observablehq")) && !existsSync(join(dest, "index.html"))) {
      throw new Error(`${dest} is not empty and does not look like a site build; refusing to overwrite it`);
    }
    rmSync(dest, { recursive: true, force: true });
  }
  await new Promise((res, rej) => {
    const p = spawn(join(ROOT, "node_modules/.bin/observable"), ["build"], { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const onData = (d) => {
      log += d;
      if (log.length > 200_000) log = log.slice(-100_000);
      if (!quiet) process.stderr.write(d);
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("error", rej);
    p.on("close", (code) => {
      // Framework exits 0 after some failures ("Unexpected error: …", a loader's "error … loader exited").
      if (code === 0 && !/Unexpected error|loader exited with code|\berror\b in \d/i.test(log)) res();
      else rej(new Error(`observable build failed (exit ${code}):\n${log.slice(-4000)}`));
    });
  });
  mkdirSync(stampDir, { recursive: true });
  writeFileSync(stampFile, sourceFingerprint(dest, env));
  return { built: true, out: dest, seconds: (performance.now() - t0) / 1000 };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--out");
  try {
    const r = await buildSite({ ifNeeded: args.includes("--if-needed"), out: i >= 0 ? args[i + 1] : undefined, quiet: args.includes("--quiet") });
    console.error(r.built ? `site built into ${r.out} in ${r.seconds.toFixed(1)} s` : `site in ${r.out} is up to date`);
  } catch (err) {
    console.error(`site-build: ${err.message}`);
    process.exit(1);
  }
}
