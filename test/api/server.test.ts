// Integration: the real server (child process, ephemeral port, temporary data directory).
// A tiny CPU pretrain → SFT → eval chain submitted at once through the API and followed over
// SSE to completion; every artifact downloaded and read back with apache-arrow and with DuckDB
// (DuckDB-wasm reading the Arrow IPC streams, as the site does; @duckdb/node-api for the SQL
// metrics); calibration.arrow checked against backend/metrics and a float64 reference; an
// lm-eval import; then load: 100 concurrent downloads and 50 concurrent submissions.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DuckDBInstance } from "@duckdb/node-api";
import { tableFromIPC, type Table } from "apache-arrow";
import { binnedMetricsSql, calibrationSummaries, type SummaryInput } from "../../backend/metrics/index.js";
import {
  followEvents, http, postJson, removeDir, startTestServer, tinyEval, tinyPretrain, tinySft, type SseEvent, type TestServer,
} from "./helpers.js";
import { harnessFile, randomSamples, softmax64 } from "./lmeval-samples.js";
import { refEce } from "../metrics/reference.js";
import { connectDuckDBWasm } from "../helpers/duckdb-wasm.js";

let srv: TestServer;
const ids: Record<"pretrain" | "sft" | "eval", string> = { pretrain: "", sft: "", eval: "" };
const events: Record<string, SseEvent[]> = {};
const downloads = new Map<string, Buffer>(); // "<id>/<name>" → bytes

before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv?.stop();
  if (srv) removeDir(srv.dataDir);
});

// docs/records.md, column → Arrow type (as apache-arrow prints it)
const SCHEMAS: Record<string, Record<string, string>> = {
  "train_log.arrow": {
    run_id: "Utf8", phase: "Utf8", step: "Int32", epoch: "Float32", split: "Utf8", loss: "Float32", lr: "Float32", grad_norm: "Float32",
    tokens_per_s: "Float32", entropy: "Float32", time_s: "Float64",
  },
  "tokens.arrow": {
    run_id: "Utf8", epoch: "Int32", split: "Utf8", doc: "Int32", position: "Int32", target: "Int32", argmax: "Int32", correct: "Bool",
    p_target: "Float32", confidence: "Float32", entropy: "Float32", lse: "Float32",
    top1_id: "Int32", top2_id: "Int32", top3_id: "Int32", top4_id: "Int32", top5_id: "Int32",
    top1_p: "Float32", top2_p: "Float32", top3_p: "Float32", top4_p: "Float32", top5_p: "Float32",
  },
  "questions.arrow": {
    run_id: "Utf8", epoch: "Int32", split: "Utf8", task: "Utf8", id: "Utf8", doc: "Int32", n_options: "Int32", gold: "Int32", pred: "Int32",
    correct: "Bool", confidence: "Float32", entropy: "Float32", logits: "List<Float32>", probs: "List<Float32>", vocab_probs: "List<Float32>",
    probs_norm: "List<Float32>", confidence_norm: "Float32", correct_norm: "Bool", scoring: "Utf8", exposures: "Int32",
  },
  "calibration.arrow": {
    run_id: "Utf8", epoch: "Int32", split: "Utf8", task: "Utf8", scoring: "Utf8", exposure_bucket: "Utf8", confidence_def: "Utf8", scheme: "Utf8",
    n_bins: "Int32", n: "Int32",
    ...Object.fromEntries(["accuracy", "nll", "brier", "ece", "rmsce", "mce", "ace", "smece", "debiased_l2", "mean_confidence", "mean_entropy",
      "ece_lo", "ece_hi", "rmsce_lo", "rmsce_hi", "brier_lo", "brier_hi", "nll_lo", "nll_hi"].map((k) => [k, "Float64"])),
    ...Object.fromEntries(["bin_lo", "bin_hi", "bin_confidence", "bin_accuracy", "bin_wilson_lo", "bin_wilson_hi"].map((k) => [k, "List<Float64>"])),
    bin_count: "List<Int32>",
  },
};

function typeName(t: { toString(): string }): string {
  return t.toString().replace(/<.*?(Float32|Float64|Int32)>/, "<$1>");
}

function checkSchema(name: string, t: Table): void {
  const want = SCHEMAS[name]!;
  assert.deepEqual(t.schema.fields.map((f) => f.name), Object.keys(want), `${name}: columns`);
  for (const f of t.schema.fields) assert.equal(typeName(f.type), want[f.name], `${name}.${f.name}: type`);
}

async function download(id: string, name: string): Promise<Buffer> {
  const r = await http(srv.url, "GET", `/api/runs/${id}/artifacts/${name}`);
  assert.equal(r.status, 200, `${id}/${name}: ${r.text.slice(0, 200)}`);
  const want = name.endsWith(".arrow") ? "application/vnd.apache.arrow.stream" : name.endsWith(".json") ? "application/json" : "text/plain";
  assert.ok(String(r.headers["content-type"]).startsWith(want), `${name}: content-type ${r.headers["content-type"]}`);
  assert.equal(Number(r.headers["content-length"]), r.body.length);
  downloads.set(`${id}/${name}`, r.body);
  return r.body;
}

test("health and OpenAPI", async () => {
  const h = await http(srv.url, "GET", "/api/health");
  assert.equal(h.status, 200);
  assert.equal(h.json.status, "ok");
  assert.equal(h.json.executor, true);
  assert.equal(h.json.engine.available, true);
  const o = await http(srv.url, "GET", "/api/openapi.json");
  assert.equal(o.status, 200);
  assert.equal(o.json.openapi, "3.1.0");
  for (const p of ["/api/runs", "/api/runs/{id}", "/api/runs/{id}/events", "/api/runs/{id}/cancel", "/api/runs/{id}/artifacts/{name}", "/api/imports/lm-eval", "/api/health"]) {
    assert.ok(o.json.paths[p], `openapi documents ${p}`);
  }
  assert.deepEqual(o.json.components.schemas.RunConfig.oneOf.map((s: { properties: { kind: { const: string } } }) => s.properties.kind.const), ["pretrain", "sft", "eval", "sweep"]);
  const site = await http(srv.url, "GET", "/");
  assert.equal(site.status, 200);
  assert.match(site.text, /not built yet/);
});

test("a tiny CPU pretrain → SFT → eval chain, submitted at once, followed over SSE to completion", async () => {
  const pt = await postJson(srv.url, "/api/runs", tinyPretrain());
  assert.equal(pt.status, 201, pt.text);
  assert.equal(pt.headers.location, `/api/runs/${pt.json.id}`);
  ids.pretrain = pt.json.id;
  const sft = await postJson(srv.url, "/api/runs", tinySft(`run:${ids.pretrain}`));
  assert.equal(sft.status, 201, sft.text);
  ids.sft = sft.json.id;
  assert.deepEqual(sft.json.depends_on, [ids.pretrain]);
  const ev = await postJson(srv.url, "/api/runs", tinyEval(`run:${ids.sft}`));
  assert.equal(ev.status, 201, ev.text);
  ids.eval = ev.json.id;
  const [a, b, c] = await Promise.all([followEvents(srv.url, ids.pretrain), followEvents(srv.url, ids.sft), followEvents(srv.url, ids.eval)]);
  events[ids.pretrain] = a;
  events[ids.sft] = b;
  events[ids.eval] = c;
  for (const [kind, id] of Object.entries(ids)) {
    const evs = events[id]!;
    assert.equal(evs[0]!.event, "state", `${kind}: first event is the state`);
    const end = evs[evs.length - 1]!;
    assert.equal(end.event, "end");
    assert.equal(end.data.status, "succeeded", `${kind} ${id}: ${JSON.stringify(end.data.run?.error)} ${srv.stderr().slice(-2000)}`);
    const statuses = evs.filter((e) => e.event === "status").map((e) => e.data.status);
    assert.deepEqual(statuses.slice(-2), ["running", "succeeded"], `${kind}: status events`);
    const seqs = evs.filter((e) => e.id !== undefined).map((e) => Number(e.id));
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), "event ids increase");
  }
  // train_log rows and progress (with an ETA) streamed while training
  const rows = events[ids.pretrain]!.filter((e) => e.event === "row").map((e) => e.data);
  const trainRows = rows.filter((r) => r.split === "train");
  assert.deepEqual(trainRows.map((r) => r.step), [3, 6, 9, 12]);
  assert.ok(rows.some((r) => r.split === "validation" && r.step === 12));
  const prog = events[ids.pretrain]!.filter((e) => e.event === "progress").map((e) => e.data);
  assert.ok(prog.length >= 1 && prog.every((p) => p.phase === "pretrain" && p.total_steps === 12 && typeof p.loss === "number"));
  assert.ok(prog.some((p) => typeof p.eta_s === "number" && p.eta_s >= 0));
  assert.ok(events[ids.sft]!.some((e) => e.event === "row" && e.data.phase === "sft"));
  // the three ran one after another on the cpu lane
  const runs = await Promise.all(Object.values(ids).map(async (id) => (await http(srv.url, "GET", `/api/runs/${id}`)).json));
  assert.ok(runs[0].finished_at <= runs[1].started_at && runs[1].finished_at <= runs[2].started_at);
  for (const r of runs) assert.equal(r.device, "cpu");
  assert.equal(runs[1].progress.phase, "sft");
});

test("reconnecting with Last-Event-ID replays only what was missed", async () => {
  const all = events[ids.pretrain]!.filter((e) => e.id !== undefined);
  const k = Number(all[2]!.id);
  const again = await followEvents(srv.url, ids.pretrain, { "Last-Event-ID": String(k) });
  assert.equal(again[0]!.event, "state");
  assert.deepEqual(again.filter((e) => e.id !== undefined).map((e) => Number(e.id)), all.filter((e) => Number(e.id) > k).map((e) => Number(e.id)));
  assert.equal(again[again.length - 1]!.event, "end");
});

test("every artifact downloads with its content type and reads back with apache-arrow; run.json matches the registry", async () => {
  for (const [kind, id] of Object.entries(ids)) {
    const run = (await http(srv.url, "GET", `/api/runs/${id}`)).json;
    const expected = kind === "eval" ? ["run.json", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"]
      : ["run.json", "train_log.arrow", "tokens.arrow", "questions.arrow", "calibration.arrow", "job.log"];
    assert.deepEqual(run.artifacts, expected, `${kind} artifacts`);
    const listed = (await http(srv.url, "GET", `/api/runs/${id}/artifacts`)).json.artifacts;
    assert.deepEqual(listed.map((a: { name: string }) => a.name), expected);
    for (const name of expected) {
      const bytes = await download(id, name);
      assert.equal(listed.find((a: { name: string }) => a.name === name).bytes, bytes.length);
      if (name.endsWith(".arrow")) {
        assert.equal(bytes.readUInt32LE(0), 0xffffffff, `${name}: IPC stream (continuation marker), not the file format`);
        const t = tableFromIPC(bytes);
        checkSchema(name, t);
        assert.ok(t.numRows > 0, `${kind}/${name} has rows`);
        assert.ok(t.getChild("run_id")!.toArray().every((v: string) => v === id));
      }
    }
    const rj = JSON.parse(downloads.get(`${id}/run.json`)!.toString());
    assert.equal(rj.id, id);
    assert.equal(rj.status, "succeeded");
    assert.equal(rj.kind, kind);
    assert.deepEqual(rj.artifacts, expected);
    assert.deepEqual(rj.config, run.config);
  }
  const q = tableFromIPC(downloads.get(`${ids.sft}/questions.arrow`)!);
  assert.deepEqual([...new Set(q.getChild("epoch")!.toArray())], [0, 1, 2], "SFT evaluates the pretrained model and every epoch");
  const r = await http(srv.url, "GET", `/api/runs/${ids.pretrain}/artifacts/calibration.arrow`, { headers: { range: "bytes=0-7" } });
  assert.equal(r.status, 206);
  assert.equal(r.body.length, 8);
});

test("calibration.arrow equals backend/metrics recomputed from the downloaded questions and tokens (and a float64 ECE)", async () => {
  for (const id of Object.values(ids)) {
    const cal = tableFromIPC(downloads.get(`${id}/calibration.arrow`)!).toArray().map((r) => r.toJSON() as Record<string, any>);
    const q = tableFromIPC(downloads.get(`${id}/questions.arrow`)!).toArray().map((r) => r.toJSON() as Record<string, any>);
    const tk = tableFromIPC(downloads.get(`${id}/tokens.arrow`)!).toArray().map((r) => r.toJSON() as Record<string, any>);
    const defs = new Set(cal.map((r) => r.confidence_def));
    assert.deepEqual([...defs].sort(), ["renormalized", "token", "vocab"]);
    let checked = 0;
    for (const row of cal) {
      const pick = row.confidence_def === "token"
        ? tk.filter((t) => t.epoch === row.epoch && t.split === row.split)
        : q.filter((x) => x.epoch === row.epoch && x.split === row.split && (row.task === "all" || x.task === row.task));
      assert.equal(row.n, pick.length);
      let input: SummaryInput;
      if (row.confidence_def === "token") {
        input = { confidence: pick.map((t) => t.confidence), correct: pick.map((t) => t.correct), pTarget: pick.map((t) => t.p_target), entropy: pick.map((t) => t.entropy) };
      } else if (row.confidence_def === "renormalized") {
        input = { confidence: pick.map((x) => x.confidence), correct: pick.map((x) => x.correct), pTarget: pick.map((x) => x.probs.get(x.gold)), entropy: pick.map((x) => x.entropy) };
      } else {
        input = { confidence: pick.map((x) => x.vocab_probs.get(x.pred)), correct: pick.map((x) => x.correct), pTarget: pick.map((x) => x.vocab_probs.get(x.gold)) };
      }
      const ref = calibrationSummaries(input, { resamples: 200, seed: 0 }).find((s) => s.scheme === row.scheme && s.n_bins === row.n_bins)!;
      for (const k of ["accuracy", "nll", "brier", "ece", "rmsce", "mce", "ace", "smece", "debiased_l2", "mean_confidence", "mean_entropy", "ece_lo", "ece_hi", "nll_lo", "nll_hi"] as const) {
        const got = row[k] as number | null, want = ref[k] as number | null;
        if (want === null) assert.equal(got, null, `${k}`);
        else assert.ok(Math.abs(got! - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${id} ${row.confidence_def} ${row.scheme} ${k}: ${got} vs ${want}`);
      }
      assert.deepEqual(Array.from(row.bin_count), ref.bin_count);
      if (row.scheme === "equal-width") {
        const conf = (input.confidence as number[]).map(Number), corr = (input.correct as boolean[]).map((v) => (v ? 1 : 0));
        assert.ok(Math.abs(row.ece - refEce(conf, corr, row.n_bins)) < 1e-12, "float64 reference ECE");
      }
      checked++;
    }
    assert.ok(checked >= 6);
  }
});

test("DuckDB reads the Arrow streams (DuckDB-wasm) and its SQL metrics agree (DuckDB-wasm and @duckdb/node-api)", async () => {
  const conn = await connectDuckDBWasm();
  const rows = (sql: string): Record<string, unknown>[] => conn.query(sql).toArray().map((r: { toJSON(): Record<string, unknown> }) => r.toJSON());
  const num = (v: unknown) => (typeof v === "bigint" ? Number(v) : (v as number));
  const node = await DuckDBInstance.create(":memory:");
  const nconn = await node.connect();
  try {
    for (const id of Object.values(ids)) {
      for (const name of ["train_log", "tokens", "questions", "calibration"]) {
        const bytes = downloads.get(`${id}/${name}.arrow`);
        if (!bytes) continue;
        const table = `${name}_${id.replace(/-/g, "_")}`;
        conn.insertArrowFromIPCStream(new Uint8Array(bytes), { name: table });
        const n = num(rows(`SELECT count(*) AS n FROM ${table}`)[0]!.n);
        assert.equal(n, tableFromIPC(bytes).numRows, `${name}: DuckDB row count`);
      }
      const qt = `questions_${id.replace(/-/g, "_")}`, ct = `calibration_${id.replace(/-/g, "_")}`;
      const cal = rows(`SELECT epoch, task, ece, mce, accuracy, n FROM ${ct} WHERE confidence_def = 'renormalized' AND scheme = 'equal-width' AND n_bins = 15 AND task <> 'all' ORDER BY epoch, task`);
      const sql = rows(binnedMetricsSql({ from: qt, bins: 15, scheme: "equal-width", groupBy: ["epoch", "task"] }));
      assert.equal(sql.length, cal.length);
      sql.forEach((s, i) => {
        assert.equal(num(s.n), num(cal[i]!.n));
        for (const k of ["ece", "mce", "accuracy"]) assert.ok(Math.abs(num(s[k]) - num(cal[i]![k])) < 1e-9, `${id} DuckDB-wasm ${k}: ${s[k]} vs ${cal[i]![k]}`);
      });
      // @duckdb/node-api has no Arrow IPC reader without downloading an extension: the decoded
      // columns go in through its appender, and the same SQL must give the same numbers
      const q = tableFromIPC(downloads.get(`${id}/questions.arrow`)!);
      const tname = `q_${id.replace(/-/g, "_")}`;
      await nconn.run(`CREATE TABLE ${tname} (epoch INTEGER, task VARCHAR, confidence FLOAT, correct BOOLEAN)`);
      const app = await nconn.createAppender(tname);
      for (const r of q.toArray()) {
        const o = r.toJSON() as { epoch: number; task: string; confidence: number; correct: boolean };
        app.appendInteger(o.epoch);
        app.appendVarchar(o.task);
        app.appendFloat(o.confidence);
        app.appendBoolean(o.correct);
        app.endRow();
      }
      app.closeSync();
      const nsql = (await nconn.runAndReadAll(binnedMetricsSql({ from: tname, bins: 15, scheme: "equal-width", groupBy: ["epoch", "task"] }))).getRowObjectsJS();
      assert.equal(nsql.length, cal.length);
      nsql.forEach((s: Record<string, unknown>, i: number) => assert.ok(Math.abs(num(s.ece) - num(cal[i]!.ece)) < 1e-9, `${id} node-api ece`));
    }
  } finally {
    nconn.closeSync();
  }
});

test("lm-eval import through the API: raw upload and a two-task JSON body", async () => {
  const specs = randomSamples(300, 11);
  const file = "samples_arc_easy_2024-05-01T10-00-00.123456.jsonl";
  const up = await http(srv.url, "POST", `/api/imports/lm-eval?name=test-model&filename=${file}`, { body: harnessFile(specs), headers: { "content-type": "application/x-ndjson" } });
  assert.equal(up.status, 202, up.text);
  assert.deepEqual(up.json.tasks, [{ task: "arc_easy", filename: file, questions: 300, duplicate_filters: 0 }]);
  const id = up.json.run.id as string;
  const evs = await followEvents(srv.url, id);
  assert.equal(evs[evs.length - 1]!.data.status, "succeeded", JSON.stringify(evs[evs.length - 1]!.data.run?.error));
  const run = (await http(srv.url, "GET", `/api/runs/${id}`)).json;
  assert.equal(run.kind, "import");
  assert.equal(run.device, "io");
  assert.equal(run.metrics.acc_mismatches_arc_easy, 0);
  assert.equal(run.metrics.acc_norm_mismatches_arc_easy, 0);
  const accRef = specs.filter((s) => s.acc === 1).length / specs.length;
  assert.ok(Math.abs(run.metrics.accuracy_arc_easy - accRef) < 1e-12);
  const q = tableFromIPC(await download(id, "questions.arrow"));
  checkSchema("questions.arrow", q);
  const rowsQ = q.toArray().map((r) => r.toJSON() as Record<string, any>);
  rowsQ.forEach((r, i) => {
    const p = softmax64(specs[i]!.lls);
    p.forEach((v, k) => assert.ok(Math.abs(r.probs.get(k) - v) < 1e-6, "probs = float64 softmax (float32 stored)"));
    assert.equal(r.doc, -1);
    assert.equal(r.vocab_probs, null);
    assert.equal(r.correct, specs[i]!.acc === 1);
    assert.equal(r.correct_norm, specs[i]!.accNorm === 1);
  });
  const cal = tableFromIPC(await download(id, "calibration.arrow")).toArray().map((r) => r.toJSON() as Record<string, any>);
  assert.deepEqual([...new Set(cal.map((r) => r.confidence_def))].sort(), ["norm", "renormalized"]);
  const ren = cal.find((r) => r.confidence_def === "renormalized" && r.scheme === "equal-width")!;
  const conf = specs.map((s) => Math.max(...softmax64(s.lls)));
  assert.ok(Math.abs(ren.ece - refEce(conf, specs.map((s) => s.acc!), 15)) < 1e-6, "ECE vs float64 reference from the raw log-likelihoods");
  const nrm = cal.find((r) => r.confidence_def === "norm" && r.scheme === "equal-width")!;
  const confN = specs.map((s) => Math.max(...softmax64(s.lls.map((ll, k) => ll / s.choices[k]!.length))));
  assert.ok(Math.abs(nrm.ece - refEce(confN, specs.map((s) => s.accNorm!), 15)) < 1e-6, "length-normalized ECE vs float64 reference");
  // two tasks in one run (JSON body)
  const two = await postJson(srv.url, "/api/imports/lm-eval", {
    name: "two tasks",
    files: [
      { filename: "samples_arc_easy_2024-05-01T10-00-00.1.jsonl", text: harnessFile(randomSamples(40, 1)) },
      { filename: "samples_hellaswag_2024-05-01T10-00-00.1.jsonl", text: harnessFile(randomSamples(50, 2)) },
    ],
  });
  assert.equal(two.status, 202, two.text);
  const e2 = await followEvents(srv.url, two.json.run.id);
  assert.equal(e2[e2.length - 1]!.data.status, "succeeded");
  const cal2 = tableFromIPC(await download(two.json.run.id, "calibration.arrow")).toArray().map((r) => r.toJSON() as Record<string, any>);
  assert.deepEqual([...new Set(cal2.map((r) => r.task))].sort(), ["all", "arc_easy", "hellaswag"]);
  assert.equal(cal2.find((r) => r.task === "all")!.n, 90);
});

test("load: 100 concurrent artifact downloads return the exact bytes", async () => {
  const keys = [...downloads.keys()].filter((k) => k.endsWith(".arrow"));
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const jobs = Array.from({ length: 100 }, (_, i) => keys[i % keys.length]!);
  const results = await Promise.all(jobs.map((k) => http(srv.url, "GET", `/api/runs/${k.split("/")[0]}/artifacts/${k.split("/")[1]}`)));
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.equal(sha(r.body), sha(downloads.get(jobs[i]!)!), `${jobs[i]} bytes`);
  });
});

test("load: 50 concurrent submissions are all queued, in order, one running per lane; cancelling them loses none", async () => {
  const before = (await http(srv.url, "GET", "/api/runs?limit=1")).json.total as number;
  const subs = await Promise.all(Array.from({ length: 50 }, (_, i) => postJson(srv.url, "/api/runs", tinyEval(`run:${ids.sft}`, { name: `load ${i}` }))));
  for (const s of subs) assert.equal(s.status, 201, s.text);
  const subIds = subs.map((s) => s.json.id as string);
  assert.equal(new Set(subIds).size, 50);
  const list = (await http(srv.url, "GET", "/api/runs?limit=1000&kind=eval")).json;
  assert.equal((await http(srv.url, "GET", "/api/runs?limit=1")).json.total, before + 50);
  const mine = list.runs.filter((r: { id: string }) => subIds.includes(r.id));
  assert.equal(mine.length, 50);
  const running = mine.filter((r: { status: string }) => r.status === "running");
  assert.ok(running.length <= 1, "at most one running on the cpu lane");
  // the list is newest first: a run that already started must be the oldest of the 50
  if (running.length === 1) assert.equal(running[0].id, mine[mine.length - 1].id, "the queue runs in submission order");
  const statuses = await http(srv.url, "GET", "/api/runs?status=queued,running&limit=1000");
  assert.ok(statuses.json.runs.length >= 49);
  const cancels = await Promise.all(subIds.map((id) => http(srv.url, "POST", `/api/runs/${id}/cancel`)));
  const after = await Promise.all(subIds.map(async (id) => (await http(srv.url, "GET", `/api/runs/${id}`)).json));
  cancels.forEach((c, i) => assert.ok(c.status === 200 || (c.status === 409 && after[i].status === "succeeded"), `${c.status} ${c.text}`));
  for (const r of after) assert.ok(r.status === "cancelled" || r.status === "succeeded", r.status);
  assert.ok(after.filter((r) => r.status === "cancelled").length >= 48);
  const h = (await http(srv.url, "GET", "/api/health")).json;
  assert.equal(h.runs.running, 0);
  assert.equal(h.runs.queued, 0);
});
