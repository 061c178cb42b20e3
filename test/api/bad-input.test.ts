// Bad input at the edge: malformed JSON, unknown fields, out-of-range values, path traversal in
// :id and :name, oversized bodies and uploads, truncated or non-harness JSONL, missing or
// wrong tokens, bad query strings, foreign Host/Origin. Every one is a 4xx with a JSON error
// that names the problem; 250+ of them are sent (half concurrently), then normal requests
// still work.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { http, postJson, removeDir, startTestServer, tinyPretrain, type RawResponse, type TestServer } from "./helpers.js";
import { REAL_ARC_EASY, harnessFile, harnessLine, randomSamples } from "./lmeval-samples.js";

const TOKEN = "test-token-5f3a";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { "content-type": "application/json", ...AUTH };
let srv: TestServer;
let queuedId = "";

before(async () => {
  srv = await startTestServer({ env: { CALIB_TOKEN: TOKEN, CALIB_NO_EXECUTOR: "1", CALIB_MAX_BODY_BYTES: "16384", CALIB_MAX_UPLOAD_BYTES: "65536" } });
  const r = await postJson(srv.url, "/api/runs", tinyPretrain(), AUTH);
  assert.equal(r.status, 201, r.text);
  queuedId = r.json.id;
});
after(async () => {
  await srv?.stop();
  if (srv) removeDir(srv.dataDir);
});

interface Case {
  what: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  /** the error's field must match */
  field?: RegExp;
  /** the error's message must match */
  message?: RegExp;
}

const FILE = "samples_arc_easy_2024-05-01T10-00-00.123456.jsonl";

function cases(): Case[] {
  const c: Case[] = [];
  const valid = JSON.stringify(tinyPretrain());
  // malformed JSON: every 7th prefix of a valid config, plus hand-made ones
  for (let n = 1; n < valid.length; n += 7) {
    c.push({ what: `truncated JSON (${n} bytes)`, method: "POST", path: "/api/runs", body: valid.slice(0, n), headers: JSON_AUTH, status: 400, field: /\(body\)/, message: /malformed JSON/ });
  }
  for (const body of ["{kind: 'pretrain'}", "{\"kind\":\"pretrain\",}", "nul", "\u0000\u0001", "{\"a\":1}}", "[1,2"]) {
    c.push({ what: `malformed JSON ${JSON.stringify(body)}`, method: "POST", path: "/api/runs", body, headers: JSON_AUTH, status: 400, field: /\(body\)/ });
  }
  for (const body of ["[]", "\"pretrain\"", "42", "null", "true"]) {
    c.push({ what: `non-object JSON ${body}`, method: "POST", path: "/api/runs", body, headers: JSON_AUTH, status: 400, field: /\(body\)/ });
  }
  c.push({ what: "text/plain config", method: "POST", path: "/api/runs", body: valid, headers: { "content-type": "text/plain", ...AUTH }, status: 415, field: /\(body\)/ });
  c.push({ what: "no content type", method: "POST", path: "/api/runs", body: valid, headers: AUTH, status: 415 });
  // unknown fields and out-of-range values, each naming the field
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ["unknown top-level field", { bogus: 1 }, /^bogus$/],
    ["unknown nested field", { model: { nLayer: 1, nHead: 2, dModel: 32, context: 256, wat: 1 } }, /^model\.wat$/],
    ["unknown optim field", { optim: { lr: 1e-3, momentum: 0.9 } }, /^optim\.momentum$/],
    ["unknown eval field", { eval: { maxTokens: 1, extra: true } }, /^eval\.extra$/],
    ["steps 0", { steps: 0 }, /^steps$/], ["steps -5", { steps: -5 }, /^steps$/], ["steps 1.5", { steps: 1.5 }, /^steps$/],
    ["steps as a string", { steps: "10" }, /^steps$/], ["lr negative", { optim: { lr: -1 } }, /^optim\.lr$/],
    ["lr zero", { optim: { lr: 0 } }, /^optim\.lr$/], ["label smoothing 1.5", { loss: { labelSmoothing: 1.5 } }, /^loss\.labelSmoothing$/],
    ["temperature 0", { loss: { temperature: 0 } }, /^loss\.temperature$/], ["softcap -1", { loss: { softcap: -1 } }, /^loss\.softcap$/],
    ["nHead does not divide dModel", { model: { nLayer: 1, nHead: 3, dModel: 32, context: 256 } }, /^model\.nHead$/],
    ["context 0", { model: { nLayer: 1, nHead: 2, dModel: 32, context: 0 } }, /^model\.context$/],
    ["batchSize 0", { batchSize: 0 }, /^batchSize$/], ["device tpu", { device: "tpu" }, /^device$/],
    ["tokenizer gpt5", { tokenizer: "gpt5" }, /^tokenizer$/], ["seed -1", { seed: -1 }, /^seed$/], ["threads 5000", { threads: 5000 }, /^threads$/],
    ["beta2 = 1", { optim: { beta2: 1 } }, /^optim\.beta2$/], ["eval split train", { eval: { split: "train" } }, /^eval\.split$/],
    ["eval task unknown", { eval: { tasks: ["sentiment"] } }, /^eval\.tasks\.0$/], ["name empty", { name: "" }, /^name$/],
    ["gradAccum 0", { gradAccum: 0 }, /^gradAccum$/], ["NaN-like lr", { optim: { lr: "NaN" } }, /^optim\.lr$/],
  ];
  for (const [what, over, field] of bad) {
    c.push({ what, method: "POST", path: "/api/runs", body: JSON.stringify(tinyPretrain(over)), headers: JSON_AUTH, status: 400, field });
  }
  for (const [what, body, field] of [
    ["kind missing", { steps: 3 }, /^kind$/], ["kind unknown", { kind: "train" }, /^kind$/], ["kind import (not submittable)", { kind: "import" }, /^kind$/],
    ["sft init unknown run", { kind: "sft", init: "run:20990101-000000-abcdef" }, /^init$/],
    ["sft init absolute path", { kind: "sft", init: "/etc/passwd" }, /^init$/],
    ["sft init relative traversal", { kind: "sft", init: "../../data/runs/x/checkpoint" }, /^init$/],
    ["sft init malformed reference", { kind: "sft", init: "run:../x" }, /^init$/],
    ["sft init missing", { kind: "sft" }, /^init$/],
    ["eval checkpoint traversal", { kind: "eval", checkpoint: "../../../etc" }, /^checkpoint$/],
    ["eval of a queued pretrain is fine but of an unknown run is not", { kind: "eval", checkpoint: "run:nope" }, /^checkpoint$/],
    ["sweep with a bad grid path", { kind: "sweep", pretrain: { base: {}, grid: { "../x": [1] } } }, /^pretrain\.grid/],
    ["sweep with a bad grid value", { kind: "sweep", pretrain: { base: { steps: 3 }, grid: { steps: [0] } } }, /steps$/],
    ["sweep too large", { kind: "sweep", pretrain: { base: {}, grid: { seed: Array.from({ length: 1000 }, (_, i) => i), steps: [1, 2, 3] } } }, /grid/],
  ] as Array<[string, Record<string, unknown>, RegExp]>) {
    c.push({ what, method: "POST", path: "/api/runs", body: JSON.stringify(body), headers: JSON_AUTH, status: 400, field });
  }
  // oversized JSON body
  c.push({ what: "oversized config", method: "POST", path: "/api/runs", body: JSON.stringify({ ...tinyPretrain(), name: "x".repeat(20000) }), headers: JSON_AUTH, status: 413 });
  // path traversal and malformed ids
  const badIds = ["..", "%2e%2e", "..%2F..%2Fregistry.sqlite", "%2Fetc%2Fpasswd", "%252e%252e", "UPPER", "a%00b", "a".repeat(65), "-x", "a.b", "%2F", "a%5Cb", "~root"];
  for (const id of badIds) {
    for (const suffix of ["", "/events", "/artifacts", "/artifacts/run.json"]) {
      c.push({ what: `id ${id}${suffix}`, method: "GET", path: `/api/runs/${id}${suffix}`, status: 400, field: /^id$/ });
    }
    c.push({ what: `cancel id ${id}`, method: "POST", path: `/api/runs/${id}/cancel`, headers: AUTH, status: 400, field: /^id$/ });
  }
  c.push({ what: "malformed percent-encoding", method: "GET", path: "/api/runs/%E0%A4%A", status: 400 });
  const badNames = ["..", "..%2F..%2Fregistry.sqlite", "%2Fetc%2Fpasswd", ".upload", "checkpoint", "run.json%00.txt", "..%5Crun.json", "%2e%2e%2frun.json", "a%2Fb.arrow", ".run.json.tmp"];
  for (const name of badNames) c.push({ what: `artifact name ${name}`, method: "GET", path: `/api/runs/__ID__/artifacts/${name}`, status: 400, field: /^name$/ });
  for (const name of ["calibration.arrow", "secret.txt", "registry.sqlite"]) {
    c.push({ what: `artifact ${name} not (yet) listed`, method: "GET", path: `/api/runs/__ID__/artifacts/${name}`, status: 404 });
  }
  c.push({ what: "unknown run", method: "GET", path: "/api/runs/20990101-000000-abcdef", status: 404 });
  c.push({ what: "unknown endpoint", method: "GET", path: "/api/nothing", status: 404 });
  c.push({ what: "wrong method", method: "DELETE", path: "/api/runs/__ID__", headers: AUTH, status: 404 });
  // bad query strings
  for (const [q, field] of [["status=bogus", /^status$/], ["kind=train", /^kind$/], ["limit=0", /^limit$/], ["limit=abc", /^limit$/], ["limit=5&limit=6", /^limit$/],
    ["offset=-1", /^offset$/], ["foo=1", /^foo$/], ["parent=..%2F", /^parent$/], ["limit=99999", /^limit$/]] as Array<[string, RegExp]>) {
    c.push({ what: `query ${q}`, method: "GET", path: `/api/runs?${q}`, status: 400, field });
  }
  c.push({ what: "events after=-1", method: "GET", path: "/api/runs/__ID__/events?after=-1", status: 400, field: /^after$/ });
  c.push({ what: "events Last-Event-ID junk", method: "GET", path: "/api/runs/__ID__/events", headers: { "last-event-id": "x1" }, status: 400, field: /^Last-Event-ID$/ });
  // auth
  c.push({ what: "POST without token", method: "POST", path: "/api/runs", body: valid, headers: { "content-type": "application/json" }, status: 401, field: /Authorization/ });
  c.push({ what: "POST with a wrong token", method: "POST", path: "/api/runs", body: valid, headers: { "content-type": "application/json", authorization: "Bearer nope" }, status: 401 });
  c.push({ what: "Basic auth", method: "POST", path: "/api/runs", body: valid, headers: { "content-type": "application/json", authorization: `Basic ${TOKEN}` }, status: 401 });
  c.push({ what: "cancel without token", method: "POST", path: "/api/runs/__ID__/cancel", status: 401 });
  c.push({ what: "import without token", method: "POST", path: `/api/imports/lm-eval?name=x&filename=${FILE}`, body: harnessFile(REAL_ARC_EASY), headers: { "content-type": "application/x-ndjson" }, status: 401 });
  // foreign Host and Origin
  c.push({ what: "DNS-rebinding Host", method: "GET", path: "/api/health", headers: { host: "evil.example:3000" }, status: 403, field: /^Host$/ });
  c.push({ what: "cross-site POST", method: "POST", path: "/api/runs", body: valid, headers: { ...JSON_AUTH, origin: "https://evil.example" }, status: 403, field: /^Origin$/ });
  c.push({ what: "cross-site preflight", method: "OPTIONS", path: "/api/runs", headers: { origin: "https://evil.example" }, status: 403 });
  // lm-eval uploads
  const good = harnessFile(randomSamples(20, 5));
  const up = (q: string) => `/api/imports/lm-eval?${q}`;
  const nd = { "content-type": "application/x-ndjson", ...AUTH };
  for (const cut of [50, 400, 1500, good.length - 30]) {
    c.push({ what: `truncated JSONL at ${cut}`, method: "POST", path: up(`name=m&filename=${FILE}`), body: good.slice(0, cut), headers: nd, status: 400, field: /line \d+/, message: /invalid JSON/ });
  }
  c.push({ what: "non-harness JSONL", method: "POST", path: up(`name=m&filename=${FILE}`), body: '{"prompt": "hi", "completion": "there"}\n', headers: nd, status: 400, field: /line 1/, message: /not an lm-eval-harness sample/ });
  c.push({ what: "CSV upload", method: "POST", path: up(`name=m&filename=${FILE}`), body: "doc_id,target\n0,1\n", headers: nd, status: 400, field: /line 1/ });
  c.push({ what: "generation task", method: "POST", path: up(`name=m&filename=${FILE}`), body: JSON.stringify({ doc_id: 0, target: "x", filtered_resps: ["some text"] }), headers: nd, status: 400, message: /only multiple-choice/ });
  c.push({ what: "gold out of range", method: "POST", path: up(`name=m&filename=${FILE}`), body: harnessLine({ ...REAL_ARC_EASY[0]!, gold: 9 }), headers: nd, status: 400, message: /not a choice index/ });
  c.push({ what: "upload without a name", method: "POST", path: up(`filename=${FILE}`), body: good, headers: nd, status: 400, field: /^name$/ });
  c.push({ what: "upload without a task", method: "POST", path: up("name=m"), body: good, headers: nd, status: 400, field: /^task$/ });
  c.push({ what: "upload with a traversal task", method: "POST", path: up("name=m&task=..%2F..%2Fx"), body: good, headers: nd, status: 400, field: /^task$/ });
  c.push({ what: "upload with an unknown query field", method: "POST", path: up(`name=m&filename=${FILE}&x=1`), body: good, headers: nd, status: 400, field: /^x$/ });
  c.push({ what: "empty upload", method: "POST", path: up(`name=m&filename=${FILE}`), body: "", headers: nd, status: 400 });
  c.push({ what: "blank-line upload", method: "POST", path: up(`name=m&filename=${FILE}`), body: "\n\n\n", headers: nd, status: 400, message: /empty/ });
  c.push({ what: "image upload", method: "POST", path: up(`name=m&filename=${FILE}`), body: Buffer.from([0x89, 0x50, 0x4e, 0x47]), headers: { "content-type": "image/png", ...AUTH }, status: 415 });
  c.push({ what: "oversized upload", method: "POST", path: up(`name=m&filename=${FILE}`), body: harnessFile(randomSamples(300, 9)), headers: nd, status: 413 });
  c.push({ what: "oversized JSON import", method: "POST", path: up(""), body: JSON.stringify({ name: "m", files: [{ filename: FILE, text: harnessFile(randomSamples(300, 9)) }] }), headers: JSON_AUTH, status: 413 });
  c.push({ what: "JSON import with an unknown field", method: "POST", path: up(""), body: JSON.stringify({ name: "m", files: [{ filename: FILE, text: good, size: 3 }] }), headers: JSON_AUTH, status: 400, field: /^files\.0\.size$/ });
  c.push({ what: "JSON import without files", method: "POST", path: up(""), body: JSON.stringify({ name: "m", files: [] }), headers: JSON_AUTH, status: 400, field: /^files$/ });
  c.push({ what: "JSON import, two files of one task", method: "POST", path: up(""), body: JSON.stringify({ name: "m", files: [{ filename: FILE, text: good }, { filename: FILE, text: good }] }), headers: JSON_AUTH, status: 400, field: /^files$/ });
  c.push({ what: "JSON import, malformed", method: "POST", path: up(""), body: "{\"name\": \"m\", \"files\": [", headers: JSON_AUTH, status: 400, field: /\(body\)/ });
  return c;
}

function checkCase(k: Case, r: RawResponse): void {
  assert.equal(r.status, k.status, `${k.what}: status ${r.status} ${r.text.slice(0, 300)}`);
  if (k.method === "OPTIONS") return;
  assert.ok(r.json && typeof r.json.error === "object", `${k.what}: JSON error body, got ${String(r.headers["content-type"])} ${r.text.slice(0, 200)}`);
  const e = r.json.error as { status: number; message: string; field?: string; code: string };
  assert.equal(e.status, k.status);
  assert.ok(typeof e.message === "string" && e.message.length > 5, `${k.what}: message`);
  if (k.field) assert.match(e.field ?? "", k.field, `${k.what}: field '${e.field}' (${e.message})`);
  if (k.message) assert.match(e.message, k.message, `${k.what}: message '${e.message}'`);
}

test("250+ bad requests: each a 4xx JSON error naming the problem; the server keeps serving", async () => {
  const all = cases().map((k) => ({ ...k, path: k.path.replace("__ID__", queuedId) }));
  assert.ok(all.length >= 125, `${all.length} cases`);
  let sent = 0;
  for (const k of all) {
    checkCase(k, await http(srv.url, k.method, k.path, { ...(k.body !== undefined ? { body: k.body } : {}), ...(k.headers ? { headers: k.headers } : {}) }));
    sent++;
  }
  // the same again, 25 at a time
  for (let i = 0; i < all.length; i += 25) {
    const batch = all.slice(i, i + 25);
    const rs = await Promise.all(batch.map((k) => http(srv.url, k.method, k.path, { ...(k.body !== undefined ? { body: k.body } : {}), ...(k.headers ? { headers: k.headers } : {}) })));
    rs.forEach((r, j) => checkCase(batch[j]!, r));
    sent += batch.length;
  }
  assert.ok(sent >= 250, `sent ${sent}`);
  // still serving, and nothing was created by the bad requests
  const h = await http(srv.url, "GET", "/api/health");
  assert.equal(h.status, 200);
  assert.equal(h.json.runs.total, 1, "only the run made in before()");
  const ok = await postJson(srv.url, "/api/runs", tinyPretrain({ name: "after the storm" }), AUTH);
  assert.equal(ok.status, 201, ok.text);
  const imp = await http(srv.url, "POST", `/api/imports/lm-eval?name=ok&filename=${FILE}`, { body: harnessFile(REAL_ARC_EASY), headers: { "content-type": "application/x-ndjson", ...AUTH } });
  assert.equal(imp.status, 202, imp.text);
  const list = await http(srv.url, "GET", "/api/runs");
  assert.equal(list.json.total, 3);
  assert.ok(!/Error:|at .*\.ts:\d+/.test(srv.stderr()), `no stack traces logged: ${srv.stderr().slice(-1000)}`);
});

test("cancel: a queued run is cancelled once, a second cancel is a 409", async () => {
  const r = await postJson(srv.url, "/api/runs", tinyPretrain({ name: "to cancel" }), AUTH);
  const c1 = await http(srv.url, "POST", `/api/runs/${r.json.id}/cancel`, { headers: AUTH });
  assert.equal(c1.status, 200, c1.text);
  assert.equal(c1.json.status, "cancelled");
  const c2 = await http(srv.url, "POST", `/api/runs/${r.json.id}/cancel`, { headers: AUTH });
  assert.equal(c2.status, 409);
  assert.match(c2.json.error.message, /already cancelled/);
});

test("a sweep expands into its child runs (pretrain grid × SFT grid, SFT depending on its pretrain); cancel reaches every child", async () => {
  const sweep = {
    kind: "sweep", name: "mini",
    pretrain: { base: tinyPretrain({ name: undefined }), grid: { "model.dModel": [32, 64] } },
    sft: { base: { tasks: ["pos"], epochs: 1 }, grid: { "loss.labelSmoothing": [0, 0.1], seed: [0, 1] } },
  };
  delete (sweep.pretrain.base as Record<string, unknown>).kind;
  delete (sweep.pretrain.base as Record<string, unknown>).name;
  const r = await postJson(srv.url, "/api/runs", sweep, AUTH);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.kind, "sweep");
  assert.equal(r.json.device, "none");
  const kids = (await http(srv.url, "GET", `/api/runs?parent=${r.json.id}&limit=1000`)).json.runs as Array<Record<string, any>>;
  assert.equal(kids.length, 2 + 2 * 4);
  const pts = kids.filter((k) => k.kind === "pretrain");
  assert.deepEqual(pts.map((p) => p.config.model.dModel).sort(), [32, 64]);
  for (const p of pts) {
    const sfts = kids.filter((k) => k.kind === "sft" && k.depends_on[0] === p.id);
    assert.equal(sfts.length, 4);
    assert.ok(sfts.every((s) => s.config.init === `run:${p.id}` && s.config.epochs === 1));
    assert.deepEqual(sfts.map((s) => `${s.config.loss.labelSmoothing}/${s.config.seed}`).sort(), ["0.1/0", "0.1/1", "0/0", "0/1"]);
  }
  const c = await http(srv.url, "POST", `/api/runs/${r.json.id}/cancel`, { headers: AUTH });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.status, "cancelled");
  const after = (await http(srv.url, "GET", `/api/runs?parent=${r.json.id}&limit=1000`)).json.runs as Array<{ status: string }>;
  assert.ok(after.every((k) => k.status === "cancelled"));
});
