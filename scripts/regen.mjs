#!/usr/bin/env node
// npm run regen: the whole pipeline on whatever device this machine has (docs/study.md):
//   1. the study: the knowledge-world study data/sweeps/world-gpu.json with a GPU, else
//      data/sweeps/world-cpu.json (minutes on two cores; its numbers are not evidence); with --ci the
//      CI forms of both regimes, world-ci.json and study-ci.json (the Brown corpus); --file FILE
//      (repeatable) names the studies instead. `calib sweep` trains each and publishes its records
//      into DATA/runs + DATA/study/<name>.json;
//   2. a new study replaces the published studies of its regime (knowledge world / Brown) in DATA
//      (their runs are removed; `git checkout data/` restores the committed ones); the other
//      regime's study stays, so the site keeps both;
//   3. the site's loaders: `npm run build` (all of them, into dist/), or with --ci / --no-build only
//      the claim, run and study loaders, whose outputs are checked and summarized.
// Prints each study's claim table and the time of each stage.
//
//   npm run regen [-- --ci] [--file FILE]… [--data-dir DIR] [--jobs N] [--no-build]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    ci: { type: "boolean" }, file: { type: "string", multiple: true }, "data-dir": { type: "string" }, jobs: { type: "string" },
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

// 1. device and study files
let t = Date.now();
const info = JSON.parse(run(process.execPath, ["--import", "tsx", "-e",
  "import('./backend/engine/index.ts').then((m) => { const i = m.engineInfo(); console.log(JSON.stringify(i)); })"], { capture: true }).trim().split("\n").pop());
const gpu = info.cudaBuilt && info.cudaDevices > 0;
const sweeps = join(root, "data", "sweeps");
const files = (values.file?.length ? values.file : values.ci ? ["world-ci.json", "study-ci.json"] : [gpu ? "world-gpu.json" : "world-cpu.json"])
  .map((f) => resolve(values.file?.length ? f : join(sweeps, f)));
for (const f of files) {
  if (!existsSync(f)) {
    console.error(`regen: ${f} does not exist`);
    process.exit(2);
  }
}
// a study's regime: a knowledge world when its pretrain base (or grid) names one
const regimeOf = (st) => (st.pretrain?.base?.world !== undefined || Object.keys(st.pretrain?.grid ?? {}).some((k) => k.startsWith("world")) ? "world" : "brown");
const studies = files.map((file) => ({ file, study: JSON.parse(readFileSync(file, "utf8")) })).map((x) => ({ ...x, regime: regimeOf(x.study) }));
console.error(`regen: ${gpu ? `GPU (${info.cudaMessage})` : `CPU (${info.cpuThreads} threads)`}; ${studies.map((x) => `study ${x.study.name} (${x.regime}) from ${x.file}`).join(", ")}; data ${dataDir}`);

// say up front what will be replaced (the sweep takes minutes; the committed studies come back with git)
const studyDir = join(dataDir, "study");
const published = (existsSync(studyDir) ? readdirSync(studyDir).filter((x) => x.endsWith(".json")) : [])
  .map((f) => { try { return { f, m: JSON.parse(readFileSync(join(studyDir, f), "utf8")) }; } catch { return null; } })
  .filter((x) => x?.m?.format === "calib-study/1");
const replaced = published.filter((x) => !studies.some((s) => s.study.name === x.m.name) && studies.some((s) => s.regime === (x.m.regime ?? "brown")));
if (replaced.length > 0) console.error(`regen: when the sweep succeeds, it replaces the published stud${replaced.length === 1 ? "y" : "ies"} ${replaced.map((x) => x.m.name).join(", ")} (same regime) in ${dataDir}${dataDir === join(root, "data") ? " (git checkout data/ restores the committed ones)" : ""}`);

// 2. sweeps → records (published into dataDir)
for (const { file, study } of studies) {
  t = Date.now();
  run(process.execPath, ["bin/calib.js", "sweep", file, "--data-dir", dataDir, ...(gpu ? ["--device", "cuda"] : ["--device", "cpu"]), ...(values.jobs ? ["--jobs", values.jobs] : [])]);
  lap(`sweep (${study.name})`, t);
}

// the new studies are the published ones of their regimes: the others' runs and manifests go
for (const { f, m } of replaced) {
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
  if (runsArrow.length === 0 || !studies.every((x) => studyJson.studies.some((s) => s.name === x.study.name))) {
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
for (const st of claims.studies) {
  const res = st.results.find((r) => r.scoring === st.default_scoring) ?? st.results[0];
  console.log(`\nclaims (${res.n_runs} runs of study ${st.name ?? "(all runs)"}, ${st.regime === "world" ? "knowledge world" : "Brown"}, ${res.scoring} scoring${st.evidence ? "" : "; NOT EVIDENCE: a CPU / CI form"}):`);
  for (const c of res.claims) {
    console.log(`  ${c.id}  ${c.effect ? `${f(c.effect.estimate)} [${f(c.effect.lo)}, ${f(c.effect.hi)}]`.padEnd(28) : "–".padEnd(28)} ${(c.verdict ?? c.status).padEnd(15)} ${c.preliminary && c.effect ? `(${c.min_seeds} seed(s) in some cells)` : ""}`);
  }
}
lap("total", t0);
console.log("\ntimes:");
for (const [name, s] of times) console.log(`  ${name.padEnd(32)} ${s.toFixed(1)} s`);
