// CI check: `npm start` on this checkout serves the site and the API from one server.
//   node scripts/site-check-start.mjs [--timeout-s 900] [--no-browser] [--live]
// Starts `npm start` with PORT=0 (any free port), waits for "listening on http://…" (a fresh
// clone builds dist/ first), then checks over HTTP: the Overview page (not the "not built"
// placeholder), a clean URL (/sql), application/wasm for DuckDB's .wasm, an Arrow data file,
// /api/health and /api/runs (JSON). With Chromium at /usr/bin/chromium it also opens /runs, /sql
// and /findings in headless Chromium: no error cell, no console error, no request outside
// 127.0.0.1; the Runs page says "Live" (it found the API); /findings shows a verdict for each of
// C1–C4 from the published study; screenshots go to test-results/screenshots/start-*.png.
// --live also submits a tiny CPU pretrain run (150 steps, d=32) through POST /api/runs, opens /runs
// while it is queued or running, and waits for the page to show it succeeded without a reload (SSE).
// Stops the server (its whole process group) at the end.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const args = process.argv.slice(2);
const timeoutS = Number(args.includes("--timeout-s") ? args[args.indexOf("--timeout-s") + 1] : 900);
const CHROMIUM = process.env.CALIB_CHROMIUM ?? "/usr/bin/chromium";

function fail(msg) {
  console.error(`site-check-start: FAIL: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

/** The studies published in data/study/*.json, with their number of published runs. */
function publishedStudies() {
  const dir = join(ROOT, "data", "study");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
    .filter((m) => m.format === "calib-study/1").map((m) => ({ name: m.name, runs: m.runs.filter((r) => r.published).length }));
}

function findFile(dir, re) {
  if (!existsSync(dir)) return null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const r = findFile(p, re);
      if (r) return r;
    } else if (re.test(e.name)) return p;
  }
  return null;
}

function stop() {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    // already gone
  }
}

const child = spawn("npm", ["start"], {
  cwd: ROOT, env: { ...process.env, PORT: "0", HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"], detached: true,
});
let log = "";
const url = await new Promise((res, rej) => {
  const timer = setTimeout(() => rej(new Error(`no "listening on" within ${timeoutS} s`)), timeoutS * 1000);
  const onData = (d) => {
    log += d;
    process.stderr.write(d);
    const m = /listening on (http:\/\/[\d.:]+)/.exec(log);
    if (m) {
      clearTimeout(timer);
      res(m[1]);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  child.on("exit", (code) => {
    clearTimeout(timer);
    rej(new Error(`npm start exited with ${code} before listening`));
  });
}).catch((err) => {
  stop();
  console.error(log.slice(-3000));
  fail(err.message);
});

try {
  const get = async (path, expectType) => {
    const r = await fetch(url + path);
    if (r.status !== 200) fail(`GET ${path}: HTTP ${r.status}`);
    const type = r.headers.get("content-type") ?? "";
    if (expectType && !type.startsWith(expectType)) fail(`GET ${path}: content-type ${type}, expected ${expectType}`);
    return r;
  };
  const home = await (await get("/", "text/html")).text();
  if (!/<title>[^<]*Calibration Lab/.test(home) || /not built yet/.test(home)) fail("GET / did not return the built Overview page");
  await get("/sql", "text/html");
  await get("/reliability", "text/html");
  const dist = process.env.CALIB_SITE_DIR || join(ROOT, "dist");
  const wasm = findFile(join(dist, "_npm"), /\.wasm$/);
  if (!wasm) fail(`no .wasm under ${dist}/_npm`);
  await get("/" + relative(dist, wasm).split("\\").join("/"), "application/wasm");
  const arrow = findFile(join(dist, "_file"), /^runs\..*\.arrow$/);
  if (!arrow) fail(`no runs.*.arrow under ${dist}/_file`);
  await get("/" + relative(dist, arrow).split("\\").join("/"));
  const health = await (await get("/api/health", "application/json")).json();
  const runs = await (await get("/api/runs", "application/json")).json();
  if (!Array.isArray(runs.runs)) fail("GET /api/runs: no runs array");
  console.error(`site-check-start: HTTP ok at ${url} (health: ${JSON.stringify(health).slice(0, 120)}; ${runs.runs.length} registry runs)`);

  if (!args.includes("--no-browser") && !existsSync(CHROMIUM)) {
    if (process.env.CALIB_REQUIRE_BROWSER === "1") fail(`${CHROMIUM} not found and CALIB_REQUIRE_BROWSER=1: apt-get install -y chromium`);
    console.error(`site-check-start: browser checks skipped: ${CHROMIUM} not found — apt-get install chromium to run them`);
  }
  if (!args.includes("--no-browser") && existsSync(CHROMIUM)) {
    const { chromium } = await import("playwright-core");
    const profile = mkdtempSync(join(tmpdir(), "calib-start-"));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    });
    const external = [];
    await ctx.route("**/*", (r) => (new URL(r.request().url()).hostname === "127.0.0.1" || /^(data|blob):/.test(r.request().url()) ? r.continue() : (external.push(r.request().url()), r.abort())));
    try {
      for (const path of ["/runs", "/sql", "/findings"]) {
        const page = await ctx.newPage();
        const errors = [];
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(url + path);
        await page.waitForFunction(() => document.querySelectorAll("observablehq-loading").length === 0, null, { timeout: 120_000 });
        await page.waitForTimeout(500);
        const cells = await page.$$eval(".observablehq--error", (els) => els.map((e) => e.textContent));
        if (cells.length) fail(`${path}: error cells ${JSON.stringify(cells)}`);
        if (errors.length) fail(`${path}: console errors ${JSON.stringify(errors)}`);
        if (path === "/runs" && !(await page.textContent("main")).includes("Live")) fail("/runs does not show the live registry");
        if (path === "/sql") await page.waitForSelector("#sql-status[data-state=done]", { timeout: 120_000 });
        if (path === "/findings") {
          // the published study, as committed: every claim has a verdict, and the summary names the study
          const verdicts = await page.$$eval("#findings-claims tr[data-claim]", (rows) => rows.map((r) => r.getAttribute("data-verdict")));
          const summary = (await page.textContent("#study-summary").catch(() => "")) ?? "";
          const published = publishedStudies();
          if (published.length > 0) {
            if (verdicts.length !== 4 || verdicts.some((v) => !v)) fail(`/findings: expected a verdict for C1–C4, got ${JSON.stringify(verdicts)}`);
            if (!published.some((m) => summary.includes(`${m.runs} runs published`))) fail(`/findings: the study summary does not show the published study (${summary.slice(0, 200)})`);
            console.error(`site-check-start: /findings shows the published study: ${verdicts.join(", ")}`);
          }
        }
        mkdirSync(join(ROOT, "test-results", "screenshots"), { recursive: true });
        await page.screenshot({ path: join(ROOT, "test-results", "screenshots", `start${path.replace("/", "-")}.png`), fullPage: true });
        await page.close();
      }
      if (args.includes("--live")) {
        const res = await fetch(url + "/api/runs", {
          method: "POST", headers: { "content-type": "application/json", ...(process.env.CALIB_TOKEN ? { authorization: `Bearer ${process.env.CALIB_TOKEN}` } : {}) },
          body: JSON.stringify({
            kind: "pretrain", name: "site-check-start live run", tokenizer: "byte", steps: 150, batchSize: 4, logEvery: 5, evalEvery: 0, evalWindows: 2,
            model: { nLayer: 1, nHead: 2, dModel: 32, context: 64 }, eval: { maxTokens: 128, maxQuestions: 0 },
          }),
        });
        if (res.status !== 201) fail(`POST /api/runs: HTTP ${res.status} ${await res.text()}`);
        const run = await res.json();
        // open /runs while the job is queued or running: the page follows it through /api/runs/<id>/events
        const page = await ctx.newPage();
        const errors = [];
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
        await page.goto(url + "/runs");
        const seen = new Set();
        const deadline = Date.now() + 300_000;
        while (Date.now() < deadline) {
          const status = await page.getAttribute(`tr[data-run="${run.id}"]`, "data-status", { timeout: 1000 }).catch(() => null);
          if (status && !seen.has(status)) {
            seen.add(status);
            console.error(`site-check-start: /runs shows ${run.id} as ${status}`);
            if (status === "running") await page.screenshot({ path: join(ROOT, "test-results", "screenshots", "start-runs-live-running.png"), fullPage: true });
          }
          if (status === "succeeded" || status === "failed" || status === "cancelled") break;
          await page.waitForTimeout(200);
        }
        await page.screenshot({ path: join(ROOT, "test-results", "screenshots", "start-runs-live-done.png"), fullPage: true });
        if (!seen.has("succeeded") || seen.size < 2) fail(`/runs did not follow ${run.id} to succeeded without a reload (saw ${[...seen].join(" → ") || "nothing"})`);
        if (errors.length) fail(`/runs (live): console errors ${JSON.stringify(errors)}`);
        await page.close();
        console.error(`site-check-start: live updates ok (${[...seen].join(" → ")})`);
      }
      if (external.length) fail(`requests outside 127.0.0.1: ${external.join(", ")}`);
      console.error("site-check-start: Chromium ok (/runs live, /sql query done, no outside request)");
    } finally {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }
  console.error("site-check-start: PASS");
} finally {
  stop();
}
