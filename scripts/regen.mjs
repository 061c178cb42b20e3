#!/usr/bin/env node
// npm run regen: the whole pipeline on whatever device this machine has (docs/study.md):
//   1. the study: data/sweeps/study-gpu.json with a GPU, else data/sweeps/study-cpu.json (about
//      15 minutes on two cores), or data/sweeps/study-ci.json with --ci (CI: about a minute);
//      `calib sweep` trains it and publishes its records into DATA/runs + DATA/study/<name>.json;
//   2. the published study replaces every other published study in DATA (their runs are removed:
//      `git checkout data/` restores the committed GPU study);
//   3. the site's loaders: `npm run build` (all of them, into dist/), or with --ci / --no-build only
//      the claim, run and study loaders, whose outputs are checked and summarized.
// Prints the claim table and the time of each stage.
//
//   npm run regen [-- --ci] [--file FILE] [--data-dir DIR] [--jobs N] [--no-build]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    ci: { type: "boolean" }, file: { type: "string" }, "data-dir": { type: "string" }, jobs: { type: "string" },
    "no-build": { type: "boolean" }, help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n"));
  process.exit(0);
}
const dataDir = resolve(values["data-dir"] ?? process.env.CALIB_DATA_DIR ?? join(root, "data"));
const env = { ...process.env, CALIB_DATA_DIR: dataDir };
const times = [];
const t0 = Date.now();
const lap = (name, since) => times.push([name, (Date.now() - since) / 1000]);
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: opts.capture ? ["ignore", "pipe", "inherit"] : "inherit", maxBuffer: 256 << 20 });
  if (r.status !== 0) {
    console.error(`regen: ${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return r.stdout?.toString() ?? "";
};

// 1. device and study file
let t = Date.now();
const info = JSON.parse(run(process.execPath, ["--import", "tsx", "-e",
  "import('./backend/engine/index.ts').then((m) => { const i = m.engineInfo(); console.log(JSON.stringify(i)); })"], { capture: true }).trim().split("\n").pop());
const gpu = info.cudaBuilt && info.cudaDevices > 0;
const file = resolve(values.file ?? join(root, "data", "sweeps", values.ci ? "study-ci.json" : gpu ? "study-gpu.json" : "study-cpu.json"));
if (!existsSync(file)) {
  console.error(`regen: ${file} does not exist`);
  process.exit(2);
}
const study = JSON.parse(readFileSync(file, "utf8"));
console.error(`regen: ${gpu ? `GPU (${info.cudaMessage})` : `CPU (${info.cpuThreads} threads)`}; study ${study.name} from ${file}; data ${dataDir}`);

// say up front what will be replaced (the sweep takes minutes; the committed study comes back with git)
const studyDir = join(dataDir, "study");
const others = (existsSync(studyDir) ? readdirSync(studyDir).filter((x) => x.endsWith(".json")) : [])
  .map((f) => { try { return { f, m: JSON.parse(readFileSync(join(studyDir, f), "utf8")) }; } catch { return null; } })
  .filter((x) => x?.m?.format === "calib-study/1" && x.m.name !== study.name);
if (others.length > 0) console.error(`regen: when the sweep succeeds, it replaces the published stud${others.length === 1 ? "y" : "ies"} ${others.map((x) => x.m.name).join(", ")} in ${dataDir}${dataDir === join(root, "data") ? " (git checkout data/ restores the committed one)" : ""}`);

// 2. sweep → records (published into dataDir)
t = Date.now();
run(process.execPath, ["bin/calib.js", "sweep", file, "--data-dir", dataDir, ...(gpu ? ["--device", "cuda"] : ["--device", "cpu"]), ...(values.jobs ? ["--jobs", values.jobs] : [])]);
lap(`sweep (${study.name})`, t);

// the new study is the published one: other studies' runs and manifests go
for (const { f, m } of others) {
  for (const r of m.runs ?? []) if (r.published) rmSync(join(dataDir, "runs", r.id), { recursive: true, force: true });
  rmSync(join(studyDir, f));
  console.error(`regen: removed the previously published study ${m.name} (${(m.runs ?? []).filter((r) => r.published).length} runs) from ${dataDir}`);
}

// 3. loaders
t = Date.now();
let claims;
if (values.ci || values["no-build"]) {
  claims = JSON.parse(run(process.execPath, ["--import", "tsx", "src/data/claims.json.ts"], { capture: true }));
  const runsArrow = run(process.execPath, ["--import", "tsx", "src/data/runs.arrow.ts"], { capture: true });
  const studyJson = JSON.parse(run(process.execPath, ["--import", "tsx", "src/data/study.json.ts"], { capture: true }));
  if (runsArrow.length === 0 || !studyJson.studies.some((s) => s.name === study.name)) {
    console.error("regen: the loaders did not see the published study");
    process.exit(1);
  }
  lap("loaders (claims, runs, study)", t);
} else {
  run("npm", ["run", "build"]);
  lap("site build (all loaders)", t);
  const out = join(root, "src", ".observablehq", "cache", "data", "claims.json");
  claims = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : JSON.parse(run(process.execPath, ["--import", "tsx", "src/data/claims.json.ts"], { capture: true }));
}

const f = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;
console.log(`\nclaims (${claims.n_runs} runs of study ${claims.studies?.join(", ") || "(all runs)"}):`);
for (const c of claims.claims) {
  console.log(`  ${c.id}  ${c.effect ? `${f(c.effect.estimate)} [${f(c.effect.lo)}, ${f(c.effect.hi)}]`.padEnd(28) : "–".padEnd(28)} ${(c.verdict ?? c.status).padEnd(15)} ${c.preliminary && c.effect ? `(${c.min_seeds} seed(s) in some cells)` : ""}`);
}
lap("total", t0);
console.log("\ntimes:");
for (const [name, s] of times) console.log(`  ${name.padEnd(32)} ${s.toFixed(1)} s`);
