// The analysis site end to end: real tiny records (./fixture.ts) → data loaders → `observable build`
// (offline recipe) → a static server on 127.0.0.1 → headless Debian Chromium (playwright-core).
// Checks every page for error cells, console errors and requests outside 127.0.0.1, the
// reliability diagram's bin control, the SQL console, the Findings page's study selector (knowledge
// world / Brown) and scoring choice, the Reliability page's scoring choice (values checked against
// the fixture's records), the Speed page's benchmark tables against their Arrow files (and old
// /kernels links landing there), and a second build with no runs at all.
// Screenshots of every page go to test-results/screenshots/ (git-ignored).
// Also unit-tests the loaders' library (src/data/lib) against independent float64 references.
//
// One file on purpose: the builds share Framework's cache (src/.observablehq/cache) and must not
// run concurrently. The browser part needs /usr/bin/chromium (apt-get install -y chromium): without
// it that part skips with one line (browserSkip), unless CALIB_REQUIRE_BROWSER=1 (CI, .ci/run) makes
// it fail. The loader tests run either way.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { tableFromIPC, type Table } from "apache-arrow";
import type { Page } from "playwright-core";
import { Browser, browserSkip, errorCells, waitReady } from "./browser.js";
import { makeFixture, FIXTURE_RUNS, FIXTURE_WORLD_RUNS } from "./fixture.js";
import { refEce } from "../metrics/reference.js";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOTS = join(ROOT, "test-results", "screenshots");
const PAGES = ["", "findings", "reliability", "entropy", "training", "sweeps", "speed", "sql", "runs"];

interface Served { url: string; close(): void }
const serveModule = "../../scripts/site-serve.mjs";
async function serve(dir: string): Promise<Served> {
  const m = (await import(serveModule as string)) as { serveSite(o: { dir: string }): Promise<{ server: { close(): void }; url: string }> };
  const { server, url } = await m.serveSite({ dir });
  return { url, close: () => server.close() };
}

/** `node scripts/site-build.mjs --out DIR` with CALIB_DATA_DIR = data; rejects with the log tail. */
function build(out: string, data: string): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, "scripts/site-build.mjs"), "--out", out, "--quiet"], {
      cwd: ROOT, env: { ...process.env, CALIB_DATA_DIR: data }, stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    p.stdout.on("data", (d) => (log += d));
    p.stderr.on("data", (d) => (log += d));
    p.on("close", (code) => (code === 0 ? res() : rej(new Error(`site build failed (${code}):\n${log.slice(-3000)}`))));
  });
}

let tmp: string;
let data: string;
let browser: Browser;
let site: Served;

/** Opens a page, waits until no cell is pending, asserts it is clean, saves a screenshot. */
async function visit(base: string, path: string, shot: string): Promise<Page> {
  const { page, log } = await browser.open(`${base}/${path}`);
  await waitReady(page);
  const errors = await errorCells(page);
  assert.deepEqual(errors, [], `error cells on /${path}`);
  assert.deepEqual(log.pageErrors, [], `page errors on /${path}`);
  assert.deepEqual(log.consoleErrors, [], `console errors on /${path}`);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${shot}.png`), fullPage: true });
  return page;
}

interface ClaimJson { id: string; status: string; effect: { estimate: number; lo: number; hi: number } | null; n_questions: number; runs: string[] }
interface ClaimsIndexJson {
  primary: string | null;
  studies: Array<{ name: string; regime: string; evidence: boolean; results: Array<{ scoring: string; claims: ClaimJson[]; buckets: Array<{ bucket: string; n_questions: number }> }> }>;
}

/** question key → [confidence, correct] of a run's published records at one epoch and scoring (Brown files: letter). */
function recordsAt(root: string, run: string, epoch: number, scoring: string): Map<string, [number, number]> {
  const q = tableFromIPC(readFileSync(join(root, "runs", run, "questions.arrow")));
  const sc = q.getChild("scoring");
  const m = new Map<string, [number, number]>();
  for (let i = 0; i < q.numRows; i++) {
    if (q.getChild("epoch")!.get(i) !== epoch || (sc ? sc.get(i) : "letter") !== scoring) continue;
    m.set(`${q.getChild("split")!.get(i)}|${q.getChild("task")!.get(i)}|${q.getChild("id")!.get(i)}`, [q.getChild("confidence")!.get(i) as number, q.getChild("correct")!.get(i) ? 1 : 0]);
  }
  return m;
}
const lastEpoch = (root: string, run: string) => Math.max(...(tableFromIPC(readFileSync(join(root, "runs", run, "questions.arrow"))).getChild("epoch")!.toArray() as Int32Array));
/** ECE(b) − ECE(a) on the questions both have (15 equal-width bins, float64). */
function refDelta(a: Map<string, [number, number]>, b: Map<string, [number, number]>): { delta: number; n: number } {
  const keys = [...a.keys()].filter((k) => b.has(k));
  const ece = (m: Map<string, [number, number]>) => refEce(keys.map((k) => m.get(k)![0]), keys.map((k) => m.get(k)![1]));
  return { delta: ece(b) - ece(a), n: keys.length };
}
/** C1 of one ε = 0 SFT run: its last epoch against its epoch 0 (the fixture's SFT runs keep it). */
const refC1 = (root: string, run: string, scoring: string) => refDelta(recordsAt(root, run, 0, scoring), recordsAt(root, run, lastEpoch(root, run), scoring));
/** C2 of one pair: ECE(ε = 0.1) − ECE(ε = 0) at the last epoch. */
const refC2 = (root: string, a: string, b: string, scoring: string) => refDelta(recordsAt(root, a, lastEpoch(root, a), scoring), recordsAt(root, b, lastEpoch(root, b), scoring)).delta;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "calib-site-"));
  data = join(tmp, "data");
  await makeFixture(data);
}, { timeout: 600_000 });

after(async () => {
  await browser?.close();
  site?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
describe("site loaders (src/data/lib)", () => {
  const env = (root = data) => ({ ...process.env, CALIB_DATA_DIR: root });
  const runLoader = (name: string, root = data): Promise<Buffer> => new Promise((res, rej) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/data", name)], { cwd: ROOT, env: env(root), stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => (code === 0 ? res(Buffer.concat(out)) : rej(new Error(`${name} exited ${code}: ${err}`))));
  });
  const raw = (run: string, file: string): Table => tableFromIPC(readFileSync(join(data, "runs", run, file)));

  test("records loaders concatenate every run's records unchanged", async () => {
    for (const [loader, file] of [["questions.arrow.ts", "questions.arrow"], ["tokens.arrow.ts", "tokens.arrow"], ["train_log.arrow.ts", "train_log.arrow"]] as const) {
      const t = tableFromIPC(await runLoader(loader));
      let total = 0;
      for (const run of [...FIXTURE_RUNS, ...FIXTURE_WORLD_RUNS]) {
        if (!existsSync(join(data, "runs", run, file))) continue;
        const r = raw(run, file);
        total += r.numRows;
        // every row of the run is there, in order, with the same values
        const ids = t.getChild("run_id")!;
        const idx: number[] = [];
        for (let i = 0; i < t.numRows; i++) if (ids.get(i) === run) idx.push(i);
        assert.equal(idx.length, r.numRows, `${file} rows of ${run}`);
        for (const col of ["epoch", "correct", "confidence", "entropy", "loss", "step"]) {
          const a = t.getChild(col), b = r.getChild(col);
          if (!b) continue;
          for (let k = 0; k < r.numRows; k += Math.max(1, Math.floor(r.numRows / 50))) assert.equal(a!.get(idx[k]!), b.get(k), `${file} ${run} ${col}[${k}]`);
        }
      }
      assert.equal(t.numRows, total, `${file}: total rows`);
      assert.ok(total > 0, `${file}: the fixture has rows`);
      if (file === "questions.arrow") {
        // answer / answer_class, regenerated from backend/data: a part of speech for pos and cloze, the
        // attribute asked for a knowledge world's questions (whose records also keep scoring and exposures)
        const COARSE = new Set(["noun", "verb", "adjective", "adverb", "pronoun", "determiner", "preposition", "conjunction", "numeral", "interjection"]);
        const { buildWorld, worldQuestions } = await import("../../backend/data/index.js");
        const { FIXTURE_WORLD } = await import("./fixture.js");
        const wq = new Map(worldQuestions(buildWorld(FIXTURE_WORLD)).map((q) => [q.id, q]));
        for (let i = 0; i < t.numRows; i++) {
          const task = t.getChild("task")!.get(i), cls = t.getChild("answer_class")!.get(i), ans = t.getChild("answer")!.get(i);
          assert.ok(typeof ans === "string" && ans.length > 0, `answer of row ${i}`);
          if (task === "world") {
            const q = wq.get(t.getChild("id")!.get(i))!;
            assert.deepEqual([ans, cls], [q.options[q.answer], q.attribute]);
            assert.ok(["option", "letter"].includes(t.getChild("scoring")!.get(i)));
            assert.equal(t.getChild("exposures")!.get(i), q.exposures);
            continue;
          }
          assert.equal(t.getChild("scoring")!.get(i), "letter", "Brown records are letter scoring");
          assert.ok(COARSE.has(cls), `answer_class '${cls}' of a ${task} question`);
          if (task === "pos") assert.equal(ans, cls, "a pos answer is its own class");
        }
      }
    }
  });

  test("llama_train loader passes the published benchmark through, meta included; no file gives its columns and no rows", async () => {
    const published = tableFromIPC(readFileSync(join(data, "bench", "llama_train.arrow")));
    const t = tableFromIPC(await runLoader("llama_train.arrow.ts"));
    assert.deepEqual(t.toArray().map((r) => r.toJSON()), published.toArray().map((r) => r.toJSON()));
    assert.deepEqual(JSON.parse(t.schema.metadata.get("meta")!), JSON.parse(readFileSync(join(data, "bench", "llama_train_meta.json"), "utf8")));
    const empty = tableFromIPC(await runLoader("llama_train.arrow.ts", join(tmp, "no-such-data")));
    assert.equal(empty.numRows, 0);
    assert.deepEqual(empty.schema.fields.map((f) => f.name), published.schema.fields.map((f) => f.name));
    // bench.json leaves it to its own loader
    const bench = JSON.parse((await runLoader("bench.json.ts")).toString("utf8")) as Array<{ file: string }>;
    assert.deepEqual(bench.map((b) => b.file), ["kernels.arrow", "trainer.arrow"]);
  });

  test("runs loader describes every run, with model size and ε from the configs", async () => {
    const t = tableFromIPC(await runLoader("runs.arrow.ts"));
    const rows = t.toArray().map((r) => r.toJSON() as Record<string, unknown>);
    assert.deepEqual(rows.map((r) => r.run_id).sort(), [...FIXTURE_RUNS, ...FIXTURE_WORLD_RUNS].sort());
    // a knowledge world's word vocabulary: V from the checkpoint (study runs record it in run.json)
    const wsft = rows.find((r) => r.run_id === "fxw-sft-0")!;
    assert.equal(wsft.tokenizer, "word");
    assert.equal(wsft.vocab_size, JSON.parse(readFileSync(join(data, "runs", "fxw-pt", "checkpoint", "config.json"), "utf8")).model.vocab);
    const sft = rows.find((r) => r.run_id === "fx-sft-0.1")!;
    assert.equal(sft.kind, "sft");
    assert.equal(sft.parent, "fx-pt");
    assert.equal(sft.tokenizer, "byte");
    assert.equal(sft.vocab_size, 256);
    assert.equal(sft.d_model, 32);
    // fx-pt's GPT (1 layer, d 32, context 256, tied, V 256): wte + wpe + one block (12C² + 13C) + ln_f
    assert.equal(sft.family, "gpt2");
    assert.equal(sft.n_params, 256 * 32 + 256 * 32 + (12 * 32 * 32 + 13 * 32) + 2 * 32);
    assert.equal(rows.find((r) => r.run_id === "fx-pt")!.n_params, sft.n_params, "the pretrain run (no run.json model description): from its config");
    assert.ok(Math.abs((sft.label_smoothing as number) - 0.1) < 1e-12);
    assert.equal(sft.n_questions, raw("fx-sft-0.1", "questions.arrow").numRows);
  });

  test("calibration rows: the loader's own (no calibration.arrow) match a float64 ECE written here", async () => {
    const t = tableFromIPC(await runLoader("calibration.arrow.ts"));
    const rows = t.toArray().map((r) => r.toJSON() as Record<string, unknown>);
    // fx-pt has no calibration.arrow: its rows are computed by the loader from tokens.arrow
    const pt = rows.filter((r) => r.run_id === "fx-pt");
    assert.ok(pt.length >= 2 && pt.every((r) => r.source === "loader" && r.task === "next-token" && r.confidence_def === "token"));
    const tok = raw("fx-pt", "tokens.arrow");
    const conf = Array.from(tok.getChild("confidence")!.toArray() as Float32Array, Number);
    const cor: number[] = Array.from({ length: tok.numRows }, (_, i) => (tok.getChild("correct")!.get(i) ? 1 : 0));
    // independent reference: 15 equal-width bins, last bin closed
    const M = 15, cnt = new Array(M).fill(0), sc = new Array(M).fill(0), sa = new Array(M).fill(0);
    conf.forEach((c, i) => {
      const b = Math.min(Math.floor(c * M), M - 1);
      cnt[b]++; sc[b] += c; sa[b] += cor[i]!;
    });
    let ece = 0;
    for (let b = 0; b < M; b++) if (cnt[b]) ece += Math.abs(sa[b] / cnt[b] - sc[b] / cnt[b]) * cnt[b];
    ece /= conf.length;
    const row = pt.find((r) => r.scheme === "equal-width" && r.n_bins === 15)!;
    assert.equal(row.n, conf.length);
    assert.ok(Math.abs((row.ece as number) - ece) < 1e-9, `ece ${row.ece} vs ${ece}`);
    assert.ok(Math.abs((row.accuracy as number) - cor.reduce((s: number, x: number) => s + x, 0) / cor.length) < 1e-12);
    assert.ok((row.ece_lo as number) <= (row.ece_hi as number));
    // SFT runs carry calibration.arrow (backend/runs) when that module exists: used as published
    if (existsSync(join(data, "runs", "fx-sft-0", "calibration.arrow"))) {
      const published = raw("fx-sft-0", "calibration.arrow");
      const mine = rows.filter((r) => r.run_id === "fx-sft-0");
      assert.equal(mine.length, published.numRows);
      assert.ok(mine.every((r) => r.source === "record"));
      assert.equal(mine[0]!.ece, published.getChild("ece")!.get(0));
    }
  });

  test("claims: one table per study and scoring; C1/C2 are the paired ECE differences on shared questions (float64 reference)", async () => {
    const index = JSON.parse((await runLoader("claims.json.ts")).toString("utf8")) as ClaimsIndexJson;
    // the knowledge-world study first (even as "not evidence"), then the Brown study
    assert.deepEqual(index.studies.map((st) => [st.name, st.regime, st.evidence, st.results.map((r) => r.scoring)]), [["fxw", "world", false, ["option", "letter"]], ["fxb", "brown", true, ["letter"]]]);
    assert.equal(index.primary, "fxw");
    for (const [study, scoring, sft0, sft1] of [["fxb", "letter", "fx-sft-0", "fx-sft-0.1"], ["fxw", "option", "fxw-sft-0", "fxw-sft-0.1"], ["fxw", "letter", "fxw-sft-0", "fxw-sft-0.1"]] as const) {
      const res = index.studies.find((st) => st.name === study)!.results.find((r) => r.scoring === scoring)!;
      const byId = new Map(res.claims.map((c) => [c.id, c]));
      assert.deepEqual([...byId.keys()], ["C1", "C2", "C3", "C4"]);
      const c1 = byId.get("C1")!, ref1 = refC1(data, sft0, scoring);
      assert.equal(c1.status, "measured");
      assert.ok(Math.abs(c1.effect!.estimate - ref1.delta) < 1e-9, `${study}/${scoring} C1 ${c1.effect!.estimate} vs ${ref1.delta}`);
      assert.ok(c1.effect!.lo <= c1.effect!.hi);
      assert.equal(c1.n_questions, ref1.n);
      const c2 = byId.get("C2")!;
      assert.ok(Math.abs(c2.effect!.estimate - refC2(data, sft0, sft1, scoring)) < 1e-9, `${study}/${scoring} C2`);
      assert.deepEqual(c2.runs, [sft0, sft1]);
      assert.equal(byId.get("C3")!.status, "not yet measured");
      assert.equal(byId.get("C4")!.status, "not yet measured");
      // knowledge worlds: the claims per exposure bucket, whose questions partition the run's
      assert.equal(res.buckets.length > 0, study === "fxw");
      if (study === "fxw") assert.equal(res.buckets.reduce((a, b) => a + b.n_questions, 0), ref1.n);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Without Chromium: one skipped entry with the reason (counted in the runner's "skipped"), not one per test.
const noBrowser = browserSkip();
if (noBrowser) test("site in Chromium", { skip: noBrowser }, () => {});
else describe("site in Chromium", () => {
  before(async () => {
    browser = await Browser.launch(); // first: a missing browser fails before the minute of building
    await build(join(tmp, "site"), data);
    site = await serve(join(tmp, "site"));
  }, { timeout: 600_000 });

  describe("fixture runs", () => {
    for (const path of PAGES) {
      test(`/${path} loads with no error cell, console error or outside request`, { timeout: 120_000 }, async () => {
        const page = await visit(site.url, path, path || "index");
        // each page shows data (a chart or a table) rather than only "no data" notes
        const content = await page.$$eval("main svg, main table", (els) => els.length);
        assert.ok(content > 0, `/${path} shows no chart or table`);
        await page.close();
      });
    }

    test("the Speed page shows the round-robin timings of kernels_meta.json", { timeout: 60_000 }, async () => {
      const meta = JSON.parse(readFileSync(join(data, "bench", "kernels_meta.json"), "utf8")) as { interleaved: { ms: Record<string, number> }[] };
      const page = await visit(site.url, "speed", "speed");
      const cells = await page.$$eval("table.interleaved tbody tr", (rows) => rows.map((r) => [r.getAttribute("data-impl"), ...[...r.querySelectorAll("td")].slice(1).map((td) => td.textContent)]));
      const ms = meta.interleaved[0]!.ms;
      // impl, ms (2 decimals), × ours: the page's numbers are the file's
      assert.deepEqual(cells, Object.entries(ms).map(([k, v]) => [k, v.toFixed(2), (v / ms.ours!).toFixed(2)]));
      await page.close();
    });

    test("the Speed page shows the trainer benchmark of trainer.arrow: table, chart and card", { timeout: 60_000 }, async () => {
      interface Row { config: string; impl: string; tokens_per_s: number; step_ms: number; peak_mib: number }
      const rows = tableFromIPC(readFileSync(join(data, "bench", "trainer.arrow"))).toArray().map((r) => r.toJSON() as unknown as Row);
      const meta = JSON.parse(readFileSync(join(data, "bench", "trainer_meta.json"), "utf8")) as { card: string; date: string };
      assert.ok(rows.length >= 3, "the published file has rows");
      const page = await visit(site.url, "speed", "speed-trainer");
      const cells = await page.$$eval("table.trainer tbody tr", (trs) => trs.map((r) => [r.getAttribute("data-config"), r.getAttribute("data-impl"), ...[...r.querySelectorAll("td")].slice(2).map((td) => td.textContent)]));
      // per config (in the file's order): impl, tokens/s, step ms, peak GiB, × eager, × compile, from the file's values
      const configs = [...new Set(rows.map((r) => r.config))];
      const ratio = (r: Row, impl: string, config: string) => {
        const b = rows.find((x) => x.config === config && x.impl === impl);
        return b ? (r.tokens_per_s / b.tokens_per_s).toFixed(2) : "–";
      };
      const expected = configs.flatMap((c) => rows.filter((r) => r.config === c).map((r) => [c, r.impl, Math.round(r.tokens_per_s).toLocaleString("en-US"),
        r.step_ms.toFixed(1), (r.peak_mib / 1024).toFixed(1), ratio(r, "eager", c), ratio(r, "compile", c)]));
      assert.deepEqual(cells, expected);
      const bars = await page.$$eval("figure", (figs) => figs.filter((f) => /Training tokens per second/.test(f.textContent ?? "")).map((f) => f.querySelectorAll("g[aria-label=bar] rect").length));
      assert.deepEqual(bars, [rows.length], "one bar per (config, impl) in the trainer chart");
      const about = await page.$eval("#trainer-meta", (p) => p.textContent ?? "");
      assert.ok(about.includes(meta.card) && about.includes(meta.date), `card and date on the page: ${about}`);
      await page.close();
    });

    test("the Speed page shows the Llama family's training step of llama_train.arrow: table, ratios, chart, card and date", { timeout: 60_000 }, async () => {
      interface Row { engine: string; label: string; model: string; tokens_per_s: number; step_ms: number; gpu_mib: number; max_allocated_gib: number | null }
      const rows = tableFromIPC(readFileSync(join(data, "bench", "llama_train.arrow"))).toArray().map((r) => r.toJSON() as unknown as Row);
      const meta = JSON.parse(readFileSync(join(data, "bench", "llama_train_meta.json"), "utf8")) as { card: string; date: string };
      assert.ok(rows.some((r) => r.engine === "calib") && rows.some((r) => r.engine !== "calib"), "the published file has ours and peers");
      const page = await visit(site.url, "speed", "speed-llama");
      const cells = await page.$$eval("table.llama-train tr[data-engine]", (trs) => trs.map((r) => [r.getAttribute("data-model"), ...[...r.querySelectorAll("td")].map((td) => td.textContent)]));
      // per model (in the file's order): label, tokens/s, ms/step, GPU GiB, torch max allocated GiB, and the ratios
      // to the fastest (tokens/s) and the leanest (GPU memory) transformers row of that model, computed here
      const models = [...new Set(rows.map((r) => r.model))];
      const expected = models.flatMap((m) => {
        const peers = rows.filter((r) => r.model === m && r.engine !== "calib");
        const fastest = Math.max(...peers.map((p) => p.tokens_per_s)), leanest = Math.min(...peers.map((p) => p.gpu_mib));
        return rows.filter((r) => r.model === m).map((r) => [m, r.label, Math.round(r.tokens_per_s).toLocaleString("en-US"), r.step_ms.toFixed(1), (r.gpu_mib / 1024).toFixed(1),
          r.max_allocated_gib === null ? "–" : r.max_allocated_gib.toFixed(1), (r.tokens_per_s / fastest).toFixed(2), (r.gpu_mib / leanest).toFixed(2)]);
      });
      assert.deepEqual(cells, expected);
      const dots = await page.$$eval("figure", (figs) => figs.filter((f) => /against the GPU memory each process holds/.test(f.textContent ?? "")).map((f) => f.querySelectorAll("g[aria-label=dot] path").length));
      assert.deepEqual(dots, [rows.length], "one dot per benchmark in the chart");
      const about = await page.$eval("#llama-meta", (p) => p.textContent ?? "");
      assert.ok(about.includes(meta.card) && about.includes(meta.date), `card and date on the page: ${about}`);
      assert.deepEqual(await page.$$eval("#llama-summary li", (lis) => lis.map((li) => li.getAttribute("data-model"))), models);
      await page.close();
    });

    test("old links to the Kernels page land on the same place of the Speed page", { timeout: 60_000 }, async () => {
      const { page } = await browser.open(`${site.url}/kernels#training-step`);
      await page.waitForURL(/\/speed#training-step$/, { timeout: 30_000 });
      await waitReady(page);
      assert.ok(await page.$("#training-step"), "the anchor exists on the Speed page");
      await page.close();
    });

    test("the Overview's claim table reads claims.json", { timeout: 60_000 }, async () => {
      const page = await visit(site.url, "", "index");
      const status = await page.$$eval("#claims-table tr[data-claim]", (rows) => rows.map((r) => [r.getAttribute("data-claim"), r.getAttribute("data-status")]));
      assert.deepEqual(status, [["C1", "measured"], ["C2", "measured"], ["C3", "not yet measured"], ["C4", "not yet measured"]]);
      await page.close();
    });

    test("Findings: the study selector names each regime; the verdicts follow the study and the scoring (values from the fixture's records)", { timeout: 180_000 }, async () => {
      const page = await visit(site.url, "findings", "findings-world");
      const options = await page.locator("#study-controls form", { hasText: "Study" }).locator("label:has(input)").allTextContents();
      assert.equal(options.length, 2);
      assert.match(options[0]!, /^Knowledge world — base models that know the answers \(fxw, CPU, not evidence\)/);
      assert.match(options[1]!, /^Brown corpus — base models that cannot answer \(fxb, CPU\)/);
      const table = () => page.$eval("#findings-claims", (t) => ({
        study: t.getAttribute("data-study"), scoring: t.getAttribute("data-scoring"),
        c1: Number(t.querySelector("tr[data-claim=C1]")!.getAttribute("data-estimate")), c2: Number(t.querySelector("tr[data-claim=C2]")!.getAttribute("data-estimate")),
      }));
      const check = async (study: string, scoring: string, sft0: string, sft1: string) => {
        await page.waitForFunction(([st, sc]) => {
          const t = document.querySelector("#findings-claims");
          return t?.getAttribute("data-study") === st && t.getAttribute("data-scoring") === sc;
        }, [study, scoring]);
        await waitReady(page);
        const t = await table();
        assert.ok(Math.abs(t.c1 - refC1(data, sft0, scoring).delta) < 1e-9, `${study}/${scoring} C1 ${t.c1}`);
        assert.ok(Math.abs(t.c2 - refC2(data, sft0, sft1, scoring)) < 1e-9, `${study}/${scoring} C2 ${t.c2}`);
        assert.deepEqual(await errorCells(page), []);
      };
      // the knowledge world first, option scoring, flagged as not evidence, with its per-bucket view
      await check("fxw", "option", "fxw-sft-0", "fxw-sft-0.1");
      assert.equal(await page.$eval("#study-regime", (p) => p.getAttribute("data-regime")), "world");
      assert.ok(await page.$("#not-evidence"), "the not-evidence banner");
      assert.ok((await page.$$("#per-bucket tr[data-bucket]")).length > 0, "claims per exposure bucket");
      assert.ok((await page.$$("#base-cells tr[data-cell]")).length === 1, "base accuracy per cell");
      // letter scoring of the same study
      await page.locator("#study-controls form", { hasText: "Scoring" }).locator("label", { hasText: "letter scoring" }).locator("input").check();
      await check("fxw", "letter", "fxw-sft-0", "fxw-sft-0.1");
      assert.match(page.url(), /scoring=letter/);
      await page.screenshot({ path: join(SHOTS, "findings-world-letter.png"), fullPage: true });
      // the Brown study: its own regime, letter scoring only, evidence
      await page.locator("#study-controls form", { hasText: "Study" }).locator("label", { hasText: "Brown corpus" }).locator("input").check();
      await check("fxb", "letter", "fx-sft-0", "fx-sft-0.1");
      assert.equal(await page.$eval("#study-regime", (p) => p.getAttribute("data-regime")), "brown");
      assert.equal(await page.$("#not-evidence"), null, "no banner for evidence");
      assert.equal(await page.locator("#study-controls form", { hasText: "Scoring" }).count(), 0, "one scoring: no choice");
      assert.match(page.url(), /study=fxb/);
      await page.screenshot({ path: join(SHOTS, "findings-brown.png"), fullPage: true });
      await page.close();
      // the link opens the same view
      const again = await visit(site.url, "findings?study=fxb", "findings-brown-link");
      assert.equal(await again.$eval("#findings-claims", (t) => t.getAttribute("data-study")), "fxb");
      await again.close();
    });

    test("the Overview reads the knowledge-world study and says it is not evidence", { timeout: 60_000 }, async () => {
      const page = await visit(site.url, "", "index-study");
      const shown = await page.$eval("#claims-study", (p) => [p.getAttribute("data-study"), p.getAttribute("data-regime"), p.getAttribute("data-scoring"), p.getAttribute("data-evidence")]);
      assert.deepEqual(shown, ["fxw", "world", "option", "false"]);
      assert.ok(await page.$("#not-evidence"));
      await page.close();
    });

    test("Reliability: the scoring choice selects a run's option or letter records (accuracy from the fixture's records)", { timeout: 120_000 }, async () => {
      const page = await visit(site.url, "reliability?run=fxw-sft-0&epoch=1", "reliability-option");
      const accuracy = (scoring: string) => {
        const m = recordsAt(data, "fxw-sft-0", 1, scoring);
        return [...m.values()].reduce((a, [, c]) => a + c, 0) / m.size;
      };
      const shown = () => page.$eval("#metrics-table tbody tr", (tr) => tr.querySelectorAll("td")[1]!.textContent);
      assert.equal(await page.locator("form", { hasText: "Scoring" }).locator("input[type=radio]").count(), 2);
      assert.equal(await shown(), accuracy("option").toFixed(4));
      assert.match(await page.$eval("#metrics-table + p", (p) => p.textContent!), /option scoring/);
      await page.locator("form", { hasText: "Scoring" }).locator("label", { hasText: "letter scoring" }).locator("input").check();
      await page.waitForFunction(() => /letter scoring/.test(document.querySelector("#metrics-table + p")?.textContent ?? ""));
      await waitReady(page);
      assert.equal(await shown(), accuracy("letter").toFixed(4));
      assert.match(page.url(), /scoring=letter/);
      assert.deepEqual(await errorCells(page), []);
      await page.screenshot({ path: join(SHOTS, "reliability-letter.png"), fullPage: true });
      await page.close();
    });

    test("the reliability diagram redraws when the bin control changes", { timeout: 120_000 }, async () => {
      // next-token records of the pretrained model, equal-mass bins: every requested bin is non-empty
      const page = await visit(site.url, "reliability?src=tokens&run=fx-pt&scheme=equal-mass", "reliability-tokens");
      const before = await page.$eval("figure.reliability", (f) => ({ bins: Number(f.getAttribute("data-bins")), caption: f.querySelector("figcaption")!.textContent!, bars: f.querySelectorAll("svg")[0]!.querySelectorAll("circle").length }));
      assert.match(before.caption, /15 equal-mass bins/);
      assert.equal(before.bins, 15, "15 equal-mass bins drawn");
      await page.evaluate(() => ((document.querySelector("figure.reliability") as HTMLElement & { __old?: boolean }).__old = true));
      const input = page.locator("form", { hasText: "Bins" }).locator("input[type=number]");
      await input.fill("3");
      await input.dispatchEvent("input");
      await page.waitForFunction(() => /3 equal-mass bins/.test(document.querySelector("figure.reliability figcaption")?.textContent ?? ""), null, { timeout: 30_000 });
      await waitReady(page);
      const afterBins = await page.$eval("figure.reliability", (f) => ({ old: Boolean((f as HTMLElement & { __old?: boolean }).__old), bins: Number(f.getAttribute("data-bins")), bars: f.querySelectorAll("svg")[0]!.querySelectorAll("circle").length }));
      assert.equal(afterBins.old, false, "the figure was redrawn");
      assert.equal(afterBins.bins, 3, "3 bins drawn");
      assert.equal(before.bars, 15, "one point per bin before");
      assert.equal(afterBins.bars, 3, "one point per bin after");
      assert.match(page.url(), /bins=3/, "the bin count is in the URL");
      // the metrics table follows the control
      assert.match(await page.$eval("#metrics-table", (t) => t.textContent!), /3 equal-mass bins/);
      assert.deepEqual(await errorCells(page), []);
      await page.screenshot({ path: join(SHOTS, "reliability-3-bins.png"), fullPage: true });
      await page.close();
    });

    test("the reliability page compares two runs on the same questions", { timeout: 120_000 }, async () => {
      const page = await visit(site.url, "reliability?run=fx-sft-0.1&vs=fx-sft-0", "reliability-paired");
      const text = await page.$eval("#paired", (t) => t.textContent!);
      assert.match(text, /ECE/);
      assert.match(text, /shared questions/);
      await page.close();
    });

    test("the SQL console runs an example query and shows rows; its link encodes the query", { timeout: 120_000 }, async () => {
      const page = await visit(site.url, "sql", "sql");
      // the first example (ECE of the next tokens per run and checkpoint) runs on load
      await page.waitForSelector("#sql-status[data-state=done]");
      const first = Number(await page.getAttribute("#sql-status", "data-rows"));
      assert.ok(first > 0, "ECE example returned rows");
      assert.ok((await page.$$("main table tbody tr")).length > 0 || (await page.$$("main form table tr")).length > 0);
      // another example through the select
      await page.locator("form", { hasText: "Example" }).locator("select").selectOption({ label: "Most over-confident wrong answers" });
      await page.waitForFunction(() => /WHERE NOT correct/.test((document.querySelector("textarea") as HTMLTextAreaElement | null)?.value ?? ""));
      await page.waitForFunction(() => document.querySelector("#sql-status")?.getAttribute("data-state") === "done" && /wrong|LIMIT/.test(decodeURIComponent(location.search)));
      assert.ok(Number(await page.getAttribute("#sql-status", "data-rows")) > 0);
      // a query of one's own, run with the button; the link and the URL carry it
      const q = "SELECT run_id, COUNT(*) AS n FROM questions GROUP BY run_id ORDER BY run_id";
      await page.fill("textarea", q);
      await page.getByRole("button", { name: "Run query" }).click();
      // one row per fixture run with question records
      const withQuestions = [...FIXTURE_RUNS, ...FIXTURE_WORLD_RUNS].filter((r) => existsSync(join(data, "runs", r, "questions.arrow"))).length;
      await page.waitForFunction((n) => document.querySelector("#sql-status")?.getAttribute("data-rows") === String(n), withQuestions);
      const href = await page.getAttribute("#sql-share", "href");
      assert.equal(new URL(href!).searchParams.get("q"), q);
      const cells = await page.$$eval("main table td", (tds) => tds.map((td) => td.textContent?.trim()));
      assert.ok(cells.includes("fx-sft-0") && cells.includes("fx-sft-0.1"), "result rows are shown");
      await page.close();
      // opening the link runs the query
      const again = await visit(site.url, `sql?q=${encodeURIComponent(q)}`, "sql-link");
      await again.waitForSelector("#sql-status[data-state=done]");
      assert.equal(await again.getAttribute("#sql-status", "data-rows"), String(withQuestions));
      await again.close();
    });

    test("no request left 127.0.0.1", () => {
      assert.ok(browser.requests.length > 20, "requests were recorded");
      assert.deepEqual(browser.external, []);
      assert.ok(browser.requests.some((u) => u.endsWith(".wasm")), "DuckDB's wasm was loaded from the site");
    });
  });

  describe("no runs", () => {
    let empty: Served;
    before(async () => {
      const d = join(tmp, "empty-data");
      mkdirSync(d, { recursive: true });
      await build(join(tmp, "site-empty"), d);
      empty = await serve(join(tmp, "site-empty"));
    }, { timeout: 600_000 });
    after(() => empty?.close());

    test("every page loads cleanly and says there is nothing yet", { timeout: 300_000 }, async () => {
      for (const path of PAGES) {
        const page = await visit(empty.url, path, `empty-${path || "index"}`);
        const notes = await page.$$eval("[data-empty]", (els) => els.length);
        assert.ok(notes > 0, `/${path} shows a "no runs yet" note`);
        await page.close();
      }
      const page = await visit(empty.url, "", "empty-index");
      const status = await page.$$eval("#claims-table tr[data-claim]", (rows) => rows.map((r) => r.getAttribute("data-status")));
      assert.deepEqual(status, ["not yet measured", "not yet measured", "not yet measured", "not yet measured"]);
      await page.close();
      assert.deepEqual(browser.external, []);
    });
  });
});
