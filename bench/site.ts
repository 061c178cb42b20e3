// npm run bench -- site [--rows 1000000] [--reps 5] [--keep]
// The SQL console on a large tokens table, in headless Debian Chromium (DuckDB-wasm 1.29 in the
// page): builds the site against a temporary data directory whose only run has a tokens.arrow
// of --rows rows, opens /sql, and times the console's queries from the click on "Run query" to
// the result on screen (and DuckDB's own time as the page reports it). The rows are SYNTHETIC
// (seeded random confidences, over-confident on purpose), written only for this timing: they
// never go near data/. Baselines measured in the same run: COUNT(*) over the same table (the
// floor of a scan) and the ECE query without its input validation.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { Bool, Table, Utf8, makeData, makeVector, tableToIPC, type Vector } from "apache-arrow";
import { binnedMetricsSql, reliabilitySql } from "../backend/metrics/index.js";
import { formatTable } from "../backend/term/table.js";
import { Browser, waitReady } from "../test/site/browser.js";

const ROOT = resolve(import.meta.dirname, "..");

function arg(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

/** A utf8 column with the same string in every row, built directly (vectorFromArray is slow at 1M). */
function constantUtf8(value: string, n: number): Vector {
  const bytes = new TextEncoder().encode(value);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = i * bytes.length;
  const data = new Uint8Array(n * bytes.length);
  for (let i = 0; i < n; i++) data.set(bytes, i * bytes.length);
  return makeVector(makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data }));
}

function boolVector(values: Uint8Array): Vector {
  const n = values.length;
  const bits = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if (values[i]) bits[i >> 3]! |= 1 << (i & 7);
  return makeVector(makeData({ type: new Bool(), length: n, nullCount: 0, data: bits }));
}

/** SYNTHETIC tokens.arrow (docs/records.md columns) with n rows over two checkpoints. */
function syntheticTokens(n: number, runId: string): Uint8Array {
  let s = 0x9e3779b9 >>> 0;
  const rand = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const V = 256;
  const epoch = new Int32Array(n), doc = new Int32Array(n), position = new Int32Array(n), target = new Int32Array(n), argmax = new Int32Array(n);
  const correct = new Uint8Array(n), pTarget = new Float32Array(n), confidence = new Float32Array(n), entropy = new Float32Array(n), lse = new Float32Array(n);
  const topId = Array.from({ length: 5 }, () => new Int32Array(n)), topP = Array.from({ length: 5 }, () => new Float32Array(n));
  for (let i = 0; i < n; i++) {
    epoch[i] = i < n / 2 ? 0 : 1;
    doc[i] = (i >> 12) % 500;
    position[i] = i & 4095;
    const c = 0.05 + 0.95 * Math.sqrt(rand());
    const ok = rand() < c ** 1.4 ? 1 : 0; // over-confident: accuracy below confidence
    const t = Math.floor(rand() * V);
    const a = ok ? t : (t + 1 + Math.floor(rand() * (V - 1))) % V;
    confidence[i] = c;
    correct[i] = ok;
    target[i] = t;
    argmax[i] = a;
    pTarget[i] = ok ? c : (1 - c) * rand() * 0.5;
    entropy[i] = -c * Math.log(c) - (1 - c) * Math.log((1 - c) / (V - 1) + 1e-12);
    lse[i] = 5 + rand();
    let rest = 1 - c;
    for (let k = 0; k < 5; k++) {
      topId[k]![i] = k === 0 ? a : (a + k) % V;
      const p = k === 0 ? c : Math.min(c, rest * 0.5);
      topP[k]![i] = p;
      if (k > 0) rest -= p;
    }
  }
  const cols: Record<string, Vector> = {
    run_id: constantUtf8(runId, n), epoch: makeVector(epoch), split: constantUtf8("validation", n), doc: makeVector(doc), position: makeVector(position),
    target: makeVector(target), argmax: makeVector(argmax), correct: boolVector(correct), p_target: makeVector(pTarget), confidence: makeVector(confidence),
    entropy: makeVector(entropy), lse: makeVector(lse),
  };
  for (let k = 0; k < 5; k++) cols[`top${k + 1}_id`] = makeVector(topId[k]!);
  for (let k = 0; k < 5; k++) cols[`top${k + 1}_p`] = makeVector(topP[k]!);
  return tableToIPC(new Table(cols), "stream");
}

function build(out: string, data: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, "scripts/site-build.mjs"), "--out", out, "--quiet"], { cwd: ROOT, env: { ...process.env, CALIB_DATA_DIR: data }, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    p.stdout.on("data", (d) => (log += d));
    p.stderr.on("data", (d) => (log += d));
    p.on("close", (code) => (code === 0 ? res((performance.now() - t0) / 1000) : rej(new Error(`site build failed:\n${log.slice(-3000)}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(argv: string[]): Promise<void> {
  const rows = Number(arg(argv, "rows", "1000000"));
  const reps = Number(arg(argv, "reps", "5"));
  if (!Number.isInteger(rows) || rows < 1000) throw new RangeError(`--rows must be an integer ≥ 1000 (got ${rows})`);
  if (!Number.isInteger(reps) || reps < 1) throw new RangeError(`--reps must be a positive integer (got ${reps})`);
  if (!Browser.available()) throw new Error("needs /usr/bin/chromium (apt-get install -y chromium)");
  const tmp = mkdtempSync(join(tmpdir(), "calib-site-bench-"));
  try {
    const data = join(tmp, "data");
    const run = join(data, "runs", "site-bench");
    mkdirSync(run, { recursive: true });
    process.stderr.write(`writing a synthetic ${rows.toLocaleString("en-US")}-row tokens.arrow…\n`);
    const bytes = syntheticTokens(rows, "site-bench");
    writeFileSync(join(run, "tokens.arrow"), bytes);
    const now = new Date().toISOString();
    writeFileSync(join(run, "run.json"), JSON.stringify({
      id: "site-bench", name: "site benchmark (SYNTHETIC tokens, timing only)", kind: "eval", status: "succeeded", created_at: now, started_at: now, finished_at: now,
      config: { kind: "eval", note: "synthetic records written by bench/site.ts" }, metrics: {}, artifacts: ["tokens.arrow"],
    }));
    process.stderr.write("building the site against it…\n");
    const buildS = await build(join(tmp, "site"), data);
    const { serveSite } = (await import("../scripts/site-serve.mjs" as string)) as { serveSite(o: { dir: string }): Promise<{ server: { close(): void }; url: string }> };
    const { server, url } = await serveSite({ dir: join(tmp, "site") });
    const browser = await Browser.launch();
    try {
      const t0 = performance.now();
      const { page, log } = await browser.open(`${url}/sql`);
      await page.waitForSelector("#sql-status[data-state=done]", { timeout: 300_000 });
      await waitReady(page, 300_000);
      const readyS = (performance.now() - t0) / 1000;
      const sizes = await page.$eval("main", (m) => /Tables loaded: ([^(]*)/.exec(m.textContent ?? "")?.[1]?.trim() ?? "");
      const queries: Array<[string, string]> = [
        ["ECE, 15 equal-width bins, per run × checkpoint (the console's example)", binnedMetricsSql({ from: "tokens", bins: 15, groupBy: ["run_id", "epoch"] })],
        ["  same without input validation", binnedMetricsSql({ from: "tokens", bins: 15, groupBy: ["run_id", "epoch"], validate: false })],
        ["reliability rows, 10 equal-mass bins (window ranks)", reliabilitySql({ from: "tokens", bins: 10, scheme: "equal-mass", groupBy: ["run_id", "epoch"] })],
        ["baseline: SELECT COUNT(*) FROM tokens", "SELECT COUNT(*) AS n FROM tokens"],
      ];
      const results: Array<{ name: string; wall: number; duck: number; rows: number }> = [];
      for (const [name, sql] of queries) {
        const wall: number[] = [], duck: number[] = [];
        let nrows = 0;
        for (let r = 0; r < reps + 1; r++) {
          // a changed text each time: the console's Run button is disabled for an unchanged query
          await page.fill("textarea", `${sql}\n-- run ${r}`);
          await page.evaluate(() => document.querySelector("#sql-status")?.setAttribute("data-stale", "1"));
          const c0 = performance.now();
          await page.getByRole("button", { name: "Run query" }).click();
          await page.waitForFunction(() => {
            const s = document.querySelector("#sql-status");
            return s && !s.hasAttribute("data-stale") && s.getAttribute("data-state") !== null;
          }, null, { timeout: 120_000, polling: 10 });
          const ms = performance.now() - c0;
          const state = await page.getAttribute("#sql-status", "data-state");
          if (state !== "done") throw new Error(`${name}: ${await page.textContent("#sql-status")}`);
          nrows = Number(await page.getAttribute("#sql-status", "data-rows"));
          if (r === 0) continue; // warm-up
          wall.push(ms);
          duck.push(Number(await page.getAttribute("#sql-status", "data-ms")));
        }
        results.push({ name, wall: median(wall), duck: median(duck), rows: nrows });
      }
      if (log.consoleErrors.length || log.pageErrors.length) console.log(`page errors: ${[...log.consoleErrors, ...log.pageErrors].join("; ")}`);
      const version = browser.context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
      const floor = results.at(-1)!.wall;
      console.log(`\nSQL console on a ${rows.toLocaleString("en-US")}-row tokens table (SYNTHETIC rows, timing only)`);
      console.log(`headless Chromium ${version} (${process.env.CALIB_CHROMIUM ?? "/usr/bin/chromium"}), DuckDB-wasm 1.29.0; ${(await import("node:os")).cpus().length} CPU cores`);
      console.log(`site build ${buildS.toFixed(1)} s (tokens.arrow ${(bytes.length / 2 ** 20).toFixed(0)} MiB); /sql ready with every table loaded in ${readyS.toFixed(1)} s (${sizes})`);
      console.log(`median of ${reps} runs after one warm-up; "click → rows" = from the click on Run query to the result table on screen\n`);
      console.log(formatTable(["query", "click → rows", "DuckDB", "rows", "× COUNT(*)"],
        results.map((r) => [r.name, `${r.wall.toFixed(0)} ms`, `${r.duck.toFixed(0)} ms`, String(r.rows), (r.wall / floor).toFixed(1)]), { rule: false }));
      const ece = results[0]!;
      console.log(`\nECE query on ${rows.toLocaleString("en-US")} rows: ${(ece.wall / 1000).toFixed(2)} s from click to rows — ${ece.wall < 2000 ? "under" : "NOT under"} the 2 s target`);
      await page.close();
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    if (!argv.includes("--keep")) rmSync(tmp, { recursive: true, force: true });
    else console.log(`kept ${tmp}`);
  }
}
