// CLI parity: `calib import lm-eval`, `calib runs list|show|submit|cancel` and runLocally (what
// `calib train` / `calib eval` call) use the same registry as a server running on the same data
// directory: the server lists and serves CLI runs, executes runs the CLI queued, and stops a run
// when the CLI cancels it; bad input is exit code 2 with one line.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { runLocally } from "../../backend/runs/local.js";
import { CLI, followEvents, http, postJson, removeDir, ROOT, startTestServer, tempDataDir, tinyPretrain, waitFor, type TestServer } from "./helpers.js";
import { harnessFile, randomSamples } from "./lmeval-samples.js";

const dataDir = tempDataDir("calib-cli-");
let srv: TestServer;

before(async () => {
  srv = await startTestServer({ dataDir });
});
after(async () => {
  await srv?.stop();
  removeDir(dataDir);
});

function calib(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, CALIB_DATA_DIR: dataDir }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c));
    p.stderr.on("data", (c: Buffer) => (stderr += c));
    p.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test("calib import lm-eval FILE --name NAME: a registry run the server lists and serves", async () => {
  const file = join(dataDir, "samples_mmlu_anatomy_2024-05-01T10-00-00.123456.jsonl");
  writeFileSync(file, harnessFile(randomSamples(80, 21)));
  const r = await calib(["import", "lm-eval", file, "--name", "cli-model", "--json", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const run = JSON.parse(r.stdout);
  assert.equal(run.kind, "import");
  assert.equal(run.source, "cli");
  assert.equal(run.status, "succeeded");
  assert.equal(run.metrics.n_mmlu_anatomy, 80);
  const api = (await http(srv.url, "GET", `/api/runs/${run.id}`)).json;
  assert.equal(api.status, "succeeded");
  assert.deepEqual(api.artifacts, run.artifacts);
  assert.deepEqual(api.artifacts, ["run.json", "questions.arrow", "calibration.arrow"]);
  const q = tableFromIPC((await http(srv.url, "GET", `/api/runs/${run.id}/artifacts/questions.arrow`)).body);
  assert.equal(q.numRows, 80);
  assert.equal(q.getChild("task")!.get(0), "mmlu_anatomy");
  const list = await calib(["runs", "list", "--kind", "import", "--json"]);
  assert.equal(list.code, 0);
  assert.deepEqual(JSON.parse(list.stdout).map((x: { id: string }) => x.id), [run.id]);
  const show = await calib(["runs", "show", run.id]);
  assert.equal(show.code, 0);
  assert.match(show.stdout, new RegExp(`run ${run.id}  import  succeeded  on io  \\(cli\\)`));
  assert.match(show.stdout, /accuracy_mmlu_anatomy/);
  // the bootstrap settings are the config's, recorded in run.json (default 1000 resamples, seed 0)
  const json = JSON.parse((await http(srv.url, "GET", `/api/runs/${run.id}/artifacts/run.json`)).text);
  assert.deepEqual(json.config.calibration, { resamples: 1000, seed: 0 });
  const cal = tableFromIPC((await http(srv.url, "GET", `/api/runs/${run.id}/artifacts/calibration.arrow`)).body);
  assert.ok(cal.numRows > 0 && cal.getChild("ece_lo")!.nullCount === 0);
});

test("bad CLI input: exit code 2 and one line naming the problem", async () => {
  const bad = join(dataDir, "samples_arc_easy_2024-05-01T10-00-00.1.jsonl");
  writeFileSync(bad, '{"prompt": "not a harness file"}\n');
  const r1 = await calib(["import", "lm-eval", bad, "--name", "x", "--quiet"]);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr.trim(), /^calib import: samples_arc_easy_2024-05-01T10-00-00\.1\.jsonl line 1: not an lm-eval-harness sample/);
  assert.equal(r1.stderr.trim().split("\n").length, 1);
  const r2 = await calib(["import", "lm-eval", bad]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--name is required/);
  const r3 = await calib(["runs", "show", "20990101-000000-abcdef"]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /no run '20990101-000000-abcdef'/);
  const r4 = await calib(["runs", "show", "../etc"]);
  assert.equal(r4.code, 2);
  const r5 = await calib(["runs", "list", "--status", "done"]);
  assert.equal(r5.code, 2);
  assert.match(r5.stderr, /--status: 'done' is not one of/);
  // nothing was registered by the failures
  const list = JSON.parse((await calib(["runs", "list", "--json"])).stdout);
  assert.equal(list.length, 1);
});

test("calib runs submit queues a run that the server executes; calib runs cancel stops a run the server is executing", async () => {
  const cfg = join(dataDir, "tiny.json");
  writeFileSync(cfg, JSON.stringify(tinyPretrain({ name: "from the cli", steps: 3, logEvery: 1, eval: { maxTokens: 256, maxQuestions: 0 } })));
  const sub = await calib(["runs", "submit", cfg, "--json"]);
  assert.equal(sub.code, 0, sub.stderr);
  const queued = JSON.parse(sub.stdout);
  assert.equal(queued.source, "cli");
  const evs = await followEvents(srv.url, queued.id);
  assert.equal(evs[evs.length - 1]!.data.status, "succeeded");
  // a long run through the API, cancelled from the CLI
  const long = await postJson(srv.url, "/api/runs", tinyPretrain({ name: "long", steps: 100000, logEvery: 1 }));
  await waitFor("the long run to start", async () => (await http(srv.url, "GET", `/api/runs/${long.json.id}`)).json.progress?.step >= 1, 60000);
  const c = await calib(["runs", "cancel", long.json.id, "--wait", "30"]);
  assert.equal(c.code, 0, c.stderr + c.stdout);
  assert.match(c.stdout, /: cancelled/);
  const after = (await http(srv.url, "GET", `/api/runs/${long.json.id}`)).json;
  assert.equal(after.status, "cancelled");
  assert.ok(after.artifacts.includes("run.json"));
});

test("runLocally (for calib train / calib eval): registered like an API run, executed in this process", async () => {
  const seen: string[] = [];
  const run = await runLocally(tinyPretrain({ name: "local", steps: 4, logEvery: 2, eval: { maxTokens: 256, maxQuestions: 8, tasks: ["pos"] } }), {
    dataDir, progress: false, onEvent: (_r, e) => seen.push(e.type),
  });
  assert.equal(run.status, "succeeded", run.error ?? "");
  assert.equal(run.source, "cli");
  assert.ok(seen.includes("row") && seen.includes("progress"));
  const api = (await http(srv.url, "GET", `/api/runs/${run.id}`)).json;
  assert.equal(api.status, "succeeded");
  assert.deepEqual(api.artifacts, ["run.json", "train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow"]);
  // the calibration settings are part of the config, recorded in run.json (not passed to the trainer)
  assert.deepEqual(JSON.parse((await http(srv.url, "GET", `/api/runs/${run.id}/artifacts/run.json`)).text).config.calibration, { resamples: 200, seed: 0 });
  const evs = await followEvents(srv.url, run.id);
  assert.deepEqual(evs.filter((e) => e.event === "row" && e.data.split === "train").map((e) => e.data.step), [2, 4]);
  // invalid configs never reach the registry
  await assert.rejects(runLocally({ kind: "pretrain", steps: 0 }, { dataDir, progress: false }), /steps/);
});

test("runLocally runs a sweep child after child and settles it", async () => {
  const base = tinyPretrain({ steps: 2, logEvery: 1, eval: { maxTokens: 256, maxQuestions: 0 } });
  delete base.kind;
  delete base.name;
  const sweep = await runLocally({ kind: "sweep", name: "local sweep", pretrain: { base, grid: { seed: [0, 1] } } }, { dataDir, progress: false });
  assert.equal(sweep.status, "succeeded", sweep.error ?? "");
  assert.deepEqual(sweep.metrics, { runs: 2, succeeded: 2, failed: 0, cancelled: 0 });
  const kids = (await http(srv.url, "GET", `/api/runs?parent=${sweep.id}`)).json.runs as Array<{ status: string; source: string; config: { seed: number } }>;
  assert.deepEqual(kids.map((k) => k.config.seed).sort(), [0, 1]);
  assert.ok(kids.every((k) => k.status === "succeeded" && k.source === "cli"));
});

test("calib import --bootstrap 0 --bootstrap-seed 7: recorded in run.json; no intervals, the same point estimates", async () => {
  const file = join(dataDir, "samples_arc_easy_2024-05-01T10-00-00.123456.jsonl");
  writeFileSync(file, harnessFile(randomSamples(40, 5)));
  const runs = [];
  for (const args of [["--bootstrap", "0", "--bootstrap-seed", "7"], ["--bootstrap", "30"]]) {
    const r = await calib(["import", "lm-eval", file, "--name", `boot ${args[1]}`, "--json", "--quiet", ...args]);
    assert.equal(r.code, 0, r.stderr);
    runs.push(JSON.parse(r.stdout));
  }
  const [none, thirty] = runs;
  assert.deepEqual(none.config.calibration, { resamples: 0, seed: 7 });
  assert.deepEqual(thirty.config.calibration, { resamples: 30, seed: 0 });
  const table = async (id: string) => tableFromIPC((await http(srv.url, "GET", `/api/runs/${id}/artifacts/calibration.arrow`)).body);
  const a = await table(none.id), b = await table(thirty.id);
  assert.equal(a.numRows, b.numRows);
  assert.equal(a.getChild("ece_lo")!.nullCount, a.numRows, "resamples 0: no intervals");
  assert.equal(b.getChild("ece_lo")!.nullCount, 0);
  assert.deepEqual(Array.from(a.getChild("ece")!.toArray() as Float64Array), Array.from(b.getChild("ece")!.toArray() as Float64Array));
  const bad = await calib(["import", "lm-eval", file, "--name", "x", "--bootstrap", "-1"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr.trim(), /^calib import: --bootstrap must be an integer in \[0, 1000000\] \(got '-1'\)$/);
});
