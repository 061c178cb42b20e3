// bench/llama_train.ts: scripts/gpu/llama-job.sh's llama_bench.json (one benchmark a line) and job log →
// data/bench/llama_train.arrow + _meta.json. Checked against a hand-written file whose ratios are worked
// out here by hand; every kind of bad line is rejected with the file, the line number and the field;
// the CLI gives exit 2 and one line, and writes nothing, on bad input; the published file is what its
// recorded source converts to.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { convert, LLAMA_ARROW, parseJobLog, parseLlamaBench, readLlamaBench, writeLlamaBench, type LlamaMeta } from "../../bench/llama_train.js";

const ROOT = resolve(import.meta.dirname, "../..");
const GiB = 2 ** 30;

// batch 2 × context 8 = 16 tokens a step: step 8 ms → 2000 tokens/s, 10 → 1600, 20 → 800, 16 → 1000.
const line = (o: Record<string, unknown>) => JSON.stringify({ model: "tiny", params: 1234, batch: 2, context: 8, steps: 12, gpu_mib_source: "process", ...o });
const OURS = line({ engine: "calib", checkpoint_layers: 0, step_ms: 8, tokens_per_s: 2000, gpu_mib: 100, losses: [1, 2] });
const OURS_CK = line({ engine: "calib", checkpoint_layers: 2, head_workspace_bytes: GiB, step_ms: 10, tokens_per_s: 1600, gpu_mib: 80 });
const SDPA = line({ engine: "transformers+sdpa", step_ms: 20, tokens_per_s: 800, gpu_mib: 200, max_allocated_gib: 0.15, max_reserved_gib: 0.18, torch: "2.11.0" });
const LIGER = line({ engine: "transformers+liger", step_ms: 16, tokens_per_s: 1000, gpu_mib: 50, max_allocated_gib: 0.04 });
// another model with no peer: no ratios
const LONE = line({ engine: "calib", model: "other", step_ms: 16, tokens_per_s: 1000, gpu_mib: 10 });
const GOOD = [OURS, OURS_CK, "", SDPA, LIGER, LONE, ""].join("\n");

test("rows, labels and the ratios to the fastest and the leanest peer of the same model (worked out by hand)", () => {
  const rows = parseLlamaBench(GOOD, "good.jsonl");
  const pick = (r: (typeof rows)[number]) => [r.engine, r.label, r.model, r.checkpoint_layers, r.head_workspace_bytes, r.tokens_per_s, r.gpu_mib, r.max_allocated_gib, r.max_reserved_gib, r.speed_vs_fastest_peer, r.memory_vs_leanest_peer];
  // fastest peer: liger, 1000 tokens/s; leanest peer: liger, 50 MiB
  assert.deepEqual(rows.map(pick), [
    ["calib", "ours", "tiny", 0, null, 2000, 100, null, null, 2, 2],
    ["calib", "ours, 2 layers checkpointed, head workspace 1 GiB", "tiny", 2, GiB, 1600, 80, null, null, 1.6, 1.6],
    ["transformers+sdpa", "transformers+sdpa", "tiny", 0, null, 800, 200, 0.15, 0.18, 0.8, 4],
    ["transformers+liger", "transformers+liger", "tiny", 0, null, 1000, 50, 0.04, null, 1, 1],
    ["calib", "ours", "other", 0, null, 1000, 10, null, null, null, null],
  ]);
  assert.deepEqual([rows[0]!.params, rows[0]!.batch, rows[0]!.context, rows[0]!.steps, rows[0]!.step_ms, rows[0]!.gpu_mib_source], [1234, 2, 8, 12, 8, "process"]);
  assert.ok(!("losses" in rows[0]!) && !("torch" in rows[2]!), "fields outside the table are dropped");
});

test("bad lines: a TypeError or RangeError naming the file, the line and the field", () => {
  const bad = (text: string, kind: typeof TypeError | typeof RangeError, pattern: RegExp) =>
    assert.throws(() => parseLlamaBench(text, "b.jsonl"), (e: Error) => e instanceof kind && pattern.test(e.message), `${pattern}`);
  bad(`${OURS}\n{"engine": "calib",`, TypeError, /^b\.jsonl:2: not a JSON line/);
  bad(`${OURS}\n\n[1, 2]`, TypeError, /^b\.jsonl:3: not a JSON object$/);
  bad(`${OURS}\nnull`, TypeError, /^b\.jsonl:2: not a JSON object$/);
  bad(line({ step_ms: 8, tokens_per_s: 2000, gpu_mib: 1 }), TypeError, /^b\.jsonl:1: 'engine' is missing/);
  bad(`${SDPA}\n${line({ engine: "calib", step_ms: "8", tokens_per_s: 2000, gpu_mib: 1 })}`, TypeError, /^b\.jsonl:2: 'step_ms' must be a finite number > 0 \(got "8"\)$/);
  bad(line({ engine: "calib", step_ms: 8, tokens_per_s: 2000, gpu_mib: -1 }), RangeError, /^b\.jsonl:1: 'gpu_mib' must be a finite number ≥ 0 \(got -1\)$/);
  bad(line({ engine: "calib", batch: 2.5, step_ms: 8, tokens_per_s: 2000, gpu_mib: 1 }), RangeError, /^b\.jsonl:1: 'batch' must be an integer ≥ 1/);
  bad(line({ engine: "calib", checkpoint_layers: -2, step_ms: 8, tokens_per_s: 2000, gpu_mib: 1 }), RangeError, /'checkpoint_layers' must be an integer ≥ 0/);
  bad(line({ engine: "calib", step_ms: 8, tokens_per_s: 2000, gpu_mib: 1, max_allocated_gib: "n/a" }), TypeError, /'max_allocated_gib' must be a finite number ≥ 0/);
  bad(line({ engine: "", step_ms: 8, tokens_per_s: 2000, gpu_mib: 1 }), TypeError, /'engine' must be a non-empty string/);
  // 16 tokens in 8 ms are 2000 tokens/s, not 2100
  bad(line({ engine: "calib", step_ms: 8, tokens_per_s: 2100, gpu_mib: 1 }), RangeError, /^b\.jsonl:1: 'tokens_per_s' 2100 is not batch × context \/ step time/);
  bad([OURS, SDPA, "", OURS.replace('"gpu_mib":100', '"gpu_mib":101')].join("\n"), RangeError, /^b\.jsonl:4: the same benchmark as line 1 /);
  bad("\n\n", TypeError, /^b\.jsonl: no benchmark lines$/);
  // a different setting of ours is another benchmark, not a repeat
  assert.equal(parseLlamaBench([OURS, line({ engine: "calib", head_workspace_bytes: 0, step_ms: 8, tokens_per_s: 2000, gpu_mib: 100 })].join("\n"), "x").length, 2);
});

const LOG = `started 2026-12-09T10:11:12Z
NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 1980 MHz
torch 2.11.0+cu130 transformers 5.17.0
v20.20.2
engine commit abc1234; budget 530 s
===== llama-tests: node .device/b/llama-test.mjs
not ok 2 - something
===== ours-tiny: bash -c "$@" | tee -a $TMPDIR/bench-lines.jsonl _ node .device/b/llama-bench.mjs --model tiny
${OURS}
===== torch-sdpa-tiny: bash -c "$@" | tee -a $TMPDIR/bench-lines.jsonl _ python3 bench/gpu/llama_step.py --model tiny --variant sdpa
Traceback (most recent call last):
torch.OutOfMemoryError: CUDA out of memory
llama-tests      exit 1       3s
ours-tiny        exit 0      39s
torch-sdpa-tiny  exit 0      21s
torch-liger-tiny not run: the job budget (JOB_BUDGET_S) is spent
engine                 model           ck  ms/step
`;

test("the job log: card, driver, versions, commit, start, and the benchmarks that left no row", () => {
  assert.deepEqual(parseJobLog(LOG), {
    card: "NVIDIA H100 80GB HBM3", driver: "580.159.04", torch: "2.11.0+cu130", transformers: "5.17.0", commit: "abc1234", started: "2026-12-09T10:11:12Z",
    errors: ["torch-sdpa-tiny: no result line (last output: torch.OutOfMemoryError: CUDA out of memory)", "torch-liger-tiny: not run (the job budget (JOB_BUDGET_S) is spent)"],
  });
  assert.deepEqual(parseJobLog("engine commit ?; budget 1 s\n"), { card: null, driver: null, torch: null, transformers: null, commit: null, started: null, errors: [] });
});

test("Arrow and meta, written atomically: the rows back, the meta in the schema metadata, card and date on every row", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "calib-llama-bench-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "llama_bench.json"), GOOD);
  writeFileSync(join(dir, "job.log"), LOG);
  const { rows, meta } = convert({ jsonl: join(dir, "llama_bench.json"), log: join(dir, "job.log"), commit: "def5678" });
  assert.deepEqual({ ...meta, description: "" }, {
    card: "NVIDIA H100 80GB HBM3", driver: "580.159.04", torch: "2.11.0+cu130", transformers: "5.17.0", date: "2026-12-09T10:11:12Z", commit: "def5678",
    source: join(dir, "llama_bench.json"), log: join(dir, "job.log"), description: "", errors: parseJobLog(LOG).errors,
  } satisfies LlamaMeta);
  const out = join(dir, "bench", "llama_train.arrow");
  writeLlamaBench(out, rows, meta);
  assert.deepEqual(readdirSync(join(dir, "bench")).sort(), ["llama_train.arrow", "llama_train_meta.json"], "no temporary file left");
  const back = readLlamaBench(out);
  assert.deepEqual(back.meta, meta);
  assert.deepEqual(back.rows.map(({ card, measured_at, ...r }) => [card, measured_at, r]), rows.map((r) => [meta.card, meta.date, { ...r }]));
  const table = tableFromIPC(readFileSync(out));
  assert.deepEqual(JSON.parse(table.schema.metadata.get("meta")!), meta);
  const types = Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
  assert.deepEqual([types.engine, types.batch, types.params, types.head_workspace_bytes, types.tokens_per_s], ["Utf8", "Int32", "Float64", "Float64", "Float64"]);
});

test("the date: --date, else the log's start, else a YYYY-MM-DD folder of the file; the card: --card or the log", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "calib-llama-date-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "2026-01-02"));
  const file = join(dir, "2026-01-02", "llama_bench.json");
  writeFileSync(file, GOOD);
  writeFileSync(join(dir, "job.log"), LOG);
  assert.equal(convert({ jsonl: file, card: "A" }).meta.date, "2026-01-02");
  assert.equal(convert({ jsonl: file, log: join(dir, "job.log") }).meta.date, "2026-12-09T10:11:12Z");
  assert.equal(convert({ jsonl: file, log: join(dir, "job.log"), date: "2027-03-04", card: "B" }).meta.card, "B");
  writeFileSync(join(dir, "flat.json"), GOOD);
  assert.throws(() => convert({ jsonl: join(dir, "flat.json"), card: "A" }), /give --date YYYY-MM-DD/);
  assert.throws(() => convert({ jsonl: file }), /give --log JOB\.LOG or --card NAME/);
  assert.throws(() => convert({ jsonl: file, card: "A", date: "yesterday" }), /--date must be YYYY-MM-DD/);
});

const bench = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", "llama-train", ...args], { cwd: ROOT, encoding: "utf8" });

test("CLI: bad input is exit 2 with one line and writes nothing; good input writes both files and prints the table", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "calib-llama-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "out.arrow");
  writeFileSync(join(dir, "bad.json"), `${OURS}\n${OURS_CK.replace('"gpu_mib":80', '"gpu_mib":"80"')}\n`);
  writeFileSync(join(dir, "job.log"), LOG);
  for (const [args, pattern] of [
    [["--jsonl", join(dir, "bad.json"), "--log", join(dir, "job.log"), "--out", out], /^bench llama-train: .*bad\.json:2: 'gpu_mib' must be a finite number ≥ 0 \(got "80"\)$/],
    [["--jsonl", join(dir, "missing.json"), "--out", out], /^bench llama-train: --jsonl: no such file .*missing\.json$/],
    [["--jsonl", join(dir, "bad.json"), "--bogus"], /^bench llama-train: Unknown option '--bogus'/],
  ] as const) {
    const r = bench(...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.trim(), pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  assert.ok(!existsSync(out), "nothing written");
  writeFileSync(join(dir, "good.json"), GOOD);
  const r = bench("--jsonl", join(dir, "good.json"), "--log", join(dir, "job.log"), "--out", out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote .*out\.arrow and its _meta\.json \(5 rows, 2 benchmarks without a row\)/);
  assert.match(r.stdout, /\| tiny +\| ours, 2 layers checkpointed, head workspace 1 GiB +\| +16 \| +1,600 \| +10\.0 \| +0\.1 \| +– \| +1\.60 \| +1\.60 \|/);
  assert.equal(readLlamaBench(out).rows.length, 5);
  assert.equal(JSON.parse(readFileSync(join(dir, "out_meta.json"), "utf8")).card, "NVIDIA H100 80GB HBM3");
});

test("the published data/bench/llama_train.arrow is what its recorded source and log convert to", { skip: !existsSync(LLAMA_ARROW) && "not published" }, () => {
  const { rows, meta } = readLlamaBench(LLAMA_ARROW);
  const src = join(ROOT, meta.source);
  if (!existsSync(src)) return; // a source outside the repository: nothing to compare with
  const again = convert({ jsonl: src, log: meta.log ? join(ROOT, meta.log) : undefined, card: meta.card, date: meta.date, commit: meta.commit ?? undefined });
  assert.deepEqual(rows.map(({ card: _card, measured_at: _date, ...r }) => r), again.rows.map((r) => ({ ...r })));
  assert.ok(rows.every((r) => r.card === meta.card && r.measured_at === meta.date));
});
