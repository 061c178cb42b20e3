// Restart safety: the server is SIGKILLed while a training run is in the middle of its steps
// (checkpointing every few steps). Its job process must exit on its own (no orphan writing into
// the run directory); after a restart the run is failed with a clear error, no temporary or
// partial file is left or listed, every listed artifact reads back, a finished run is untouched
// byte for byte, and the run that was queued behind it is re-queued and completes.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { Registry, tagPid } from "../../backend/runs/registry.js";
import { followEvents, http, postJson, removeDir, startTestServer, tempDataDir, tinyPretrain, waitFor, type TestServer } from "./helpers.js";
import { harnessFile, randomSamples } from "./lmeval-samples.js";

const dataDir = tempDataDir("calib-restart-");
const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.kill();
  removeDir(dataDir);
});

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    out.push(p);
    if (statSync(p).isDirectory()) out.push(...walk(p));
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("SIGKILL mid-run, restart: the run is failed, nothing partial is visible, other runs are intact", async () => {
  const a = await startTestServer({ dataDir });
  servers.push(a);
  // a finished run (an import) whose records must survive untouched
  const imp = await http(a.url, "POST", "/api/imports/lm-eval?name=done&filename=samples_arc_easy_2024-05-01T10-00-00.1.jsonl", {
    body: harnessFile(randomSamples(60, 4)), headers: { "content-type": "application/x-ndjson" },
  });
  assert.equal(imp.status, 202, imp.text);
  const doneId = imp.json.run.id as string;
  const evs = await followEvents(a.url, doneId);
  assert.equal(evs[evs.length - 1]!.data.status, "succeeded");
  const doneBefore = (await http(a.url, "GET", `/api/runs/${doneId}`)).json;
  const bytesBefore = new Map<string, Buffer>();
  for (const name of doneBefore.artifacts as string[]) bytesBefore.set(name, (await http(a.url, "GET", `/api/runs/${doneId}/artifacts/${name}`)).body);

  // a long run, checkpointing every 4 steps, and a run queued behind it
  const long = await postJson(a.url, "/api/runs", tinyPretrain({ name: "long", steps: 100000, logEvery: 1, checkpointEvery: 4 }));
  assert.equal(long.status, 201, long.text);
  const longId = long.json.id as string;
  const queued = await postJson(a.url, "/api/runs", tinyPretrain({ name: "queued behind", steps: 3, logEvery: 1, eval: { maxTokens: 256, maxQuestions: 0 } }));
  const queuedId = queued.json.id as string;
  const running = await waitFor("the long run to pass step 9", async () => {
    const r = (await http(a.url, "GET", `/api/runs/${longId}`)).json;
    return r.status === "running" && r.progress && r.progress.step >= 9 ? r : null;
  }, 90000, 100);
  assert.equal(running.status, "running");
  const reg = Registry.open(join(dataDir, "registry.sqlite"), { readonly: true });
  const workerPid = tagPid(reg.get(longId)!.worker)!;
  reg.close();
  assert.ok(workerPid > 0 && alive(workerPid), "the job runs in its own process");

  await a.kill();
  // the job process notices that its parent is gone and exits by itself
  await waitFor("the orphaned worker to exit", async () => !alive(workerPid), 15000, 50);
  const runDir = join(dataDir, "runs", longId);
  // what a writer killed half-way leaves behind (temp + rename): it must never become visible
  writeFileSync(join(runDir, ".tokens.arrow.99999.zz.tmp"), "partial");

  const b = await startTestServer({ dataDir });
  servers.push(b);
  assert.match(b.stderr(), /recovered: 1 interrupted run\(s\) marked failed/);
  const failed = (await http(b.url, "GET", `/api/runs/${longId}`)).json;
  assert.equal(failed.status, "failed");
  assert.match(failed.error, /stopped while it was running/);
  assert.ok(failed.finished_at);
  // no temporary files anywhere in the run directory, and only complete records are listed
  const leftovers = walk(runDir).filter((p) => /\.tmp$/.test(p));
  assert.deepEqual(leftovers, []);
  assert.ok(!failed.artifacts.includes("tokens.arrow"), "the run never wrote tokens.arrow");
  assert.ok(failed.artifacts.includes("run.json"));
  for (const name of failed.artifacts as string[]) {
    const r = await http(b.url, "GET", `/api/runs/${longId}/artifacts/${name}`);
    assert.equal(r.status, 200, name);
    if (name.endsWith(".arrow")) assert.ok(tableFromIPC(r.body).numRows > 0, `${name} reads back whole`);
    if (name === "run.json") {
      const j = JSON.parse(r.text);
      assert.equal(j.status, "failed");
      assert.equal(j.error, failed.error);
    }
  }
  if (failed.artifacts.includes("train_log.arrow")) {
    const log = tableFromIPC((await http(b.url, "GET", `/api/runs/${longId}/artifacts/train_log.arrow`)).body);
    const steps = log.getChild("step")!.toArray() as Int32Array;
    assert.equal(steps[steps.length - 1]! % 4, 0, "train_log.arrow is the one written with the last checkpoint");
  }
  const temp = await http(b.url, "GET", `/api/runs/${longId}/artifacts/.tokens.arrow.99999.zz.tmp`);
  assert.equal(temp.status, 400);
  assert.ok(!existsSync(join(runDir, ".tokens.arrow.99999.zz.tmp")));

  // the finished run is intact, byte for byte
  const doneAfter = (await http(b.url, "GET", `/api/runs/${doneId}`)).json;
  assert.deepEqual(doneAfter, doneBefore);
  for (const [name, bytes] of bytesBefore) {
    const r = await http(b.url, "GET", `/api/runs/${doneId}/artifacts/${name}`);
    assert.ok(r.body.equals(bytes), `${name} unchanged`);
  }
  // the queued run was re-queued and now completes
  const qe = await followEvents(b.url, queuedId);
  assert.equal(qe[qe.length - 1]!.data.status, "succeeded", JSON.stringify(qe[qe.length - 1]!.data.run?.error));
  await b.stop();
});
