// calib metrics: Arrow (stream and file) and CSV inputs give the library's numbers; filters,
// norms, bootstrap reproducibility; bad input exits with code 2 and one line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bool, Field, Float32, Int32, List, makeVector, Table, tableToIPC, Utf8, vectorFromArray } from "apache-arrow";
import { main } from "../../backend/cli/main.js";
import { binnedMetrics, brierMulticlass, bootstrapMetrics, classwiseECE, fitTemperatureFromProbs, nll, smECE, topLabel } from "../../backend/metrics/index.js";
import { lcg } from "./reference.js";

let dir = "";
const n = 600, K = 4;
const rnd = lcg(17);
const probs: Float32Array[] = [];
const gold: number[] = [];
for (let i = 0; i < n; i++) {
  const w = Array.from({ length: K }, () => Math.exp(2.5 * rnd()));
  const s = w.reduce((a, b) => a + b, 0);
  const p = Float32Array.from(w, (x) => x / s);
  probs.push(p);
  gold.push(rnd() < 0.55 ? p.indexOf(Math.max(...p)) : Math.floor(rnd() * K));
}
const flat = new Float32Array(n * K);
probs.forEach((p, i) => flat.set(p, i * K));
const labels = Int32Array.from(gold);
const top = topLabel(flat, labels, K);
const conf32 = Float32Array.from(top.confidence);
const epoch = Int32Array.from({ length: n }, (_, i) => i % 3);

async function calib(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await main(["metrics", ...args]);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "calib-metrics-"));
  const table = new Table({
    confidence: makeVector(conf32),
    correct: vectorFromArray(Array.from(top.correct, (v) => v === 1), new Bool()),
    gold: makeVector(labels),
    epoch: makeVector(epoch),
    split: vectorFromArray(Array.from(epoch, (e) => (e === 2 ? "test" : "validation")), new Utf8()),
    p_target: makeVector(Float32Array.from(top.pTarget)),
    probs: vectorFromArray(probs, new List(new Field("item", new Float32(), true))),
  });
  writeFileSync(join(dir, "q.arrow"), tableToIPC(table, "stream"));
  writeFileSync(join(dir, "q.feather"), tableToIPC(table, "file"));
  writeFileSync(join(dir, "probs.csv"), "p0,p1,p2,p3,label\n" + probs.map((p, i) => [...p, gold[i]].join(",")).join("\n") + "\n");
  writeFileSync(join(dir, "top.csv"), "confidence,correct\n" + Array.from(conf32, (c, i) => `${c},${top.correct[i] ? "true" : "0"}`).join("\n") + "\n");
  writeFileSync(join(dir, "bad.csv"), "confidence,correct\n0.5,1\n1.5,0\n");
  writeFileSync(join(dir, "nocols.csv"), "a,b\n1,2\n");
  // RFC 4180: quoted fields with commas, doubled quotes and line breaks; CRLF rows; blank lines
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(join(dir, "quoted.csv"), `id,"note, free text",confidence,correct,split\r\n` + Array.from(conf32, (c, i) =>
    [`q${i}`, q(i % 5 === 0 ? `says "${i}", then\nmore` : `a, b ${i}`), c, top.correct[i] ? "1" : "false", q(epoch[i] === 2 ? "test, held out" : "validation")].join(",")).join("\r\n") + "\r\n\r\n");
  writeFileSync(join(dir, "ragged.csv"), "confidence,correct\n0.5,1\n0.25,\"0\",x\n");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("Arrow stream, Arrow file and CSV give the library's metrics (JSON)", async () => {
  const m = binnedMetrics(conf32, top.correct);
  for (const f of ["q.arrow", "q.feather", "top.csv", "probs.csv"]) {
    const r = await calib(join(dir, f), "--json", "--bootstrap", "0");
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.n, n);
    // CSV text round-trips float32 values exactly; probability CSV derives the confidences itself.
    const tol = f === "probs.csv" ? 1e-7 : 0;
    assert.ok(Math.abs(j.metrics.ece.estimate - m.ece) <= tol, `${f}: ${j.metrics.ece.estimate} vs ${m.ece}`);
    assert.ok(Math.abs(j.metrics.rmsce.estimate - m.rmsce) <= tol, f);
    assert.equal(j.reliability.length, m.reliability.bin.length, f);
    assert.ok(Math.abs(j.metrics.smece.estimate - smECE(conf32, top.correct).value) <= 1e-6, f);
  }
  const j = JSON.parse((await calib(join(dir, "q.arrow"), "--json", "--bootstrap", "0")).out);
  assert.ok(Math.abs(j.metrics.nll.estimate - nll(Float32Array.from(top.pTarget))) < 1e-12);
  assert.ok(Math.abs(j.probabilityRows.brierMulticlass - brierMulticlass(flat, labels, K)) < 1e-12);
  assert.ok(Math.abs(j.probabilityRows.classwiseCE - classwiseECE(flat, labels, K)) < 1e-12);
  assert.ok(Math.abs(j.probabilityRows.temperature.temperature - fitTemperatureFromProbs(flat, labels, K).temperature) < 1e-12);
});

test("CSV with quoted fields (commas, quotes, line breaks) reads like the plain CSV", async () => {
  const r = await calib(join(dir, "quoted.csv"), "--bins", "15", "--json", "--bootstrap", "0");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const m = binnedMetrics(conf32, top.correct, { bins: 15 });
  assert.equal(j.n, n);
  assert.equal(j.metrics.ece.estimate, m.ece);
  assert.equal(j.metrics.accuracy.estimate, m.accuracy);
  // a --where on a quoted value with a comma
  const keep = Array.from({ length: n }, (_, i) => i).filter((i) => epoch[i] === 2);
  const w = JSON.parse((await calib(join(dir, "quoted.csv"), "--bins", "15", "--json", "--bootstrap", "0", "--where", "split=test, held out")).out);
  assert.equal(w.n, keep.length);
  assert.equal(w.metrics.ece.estimate, binnedMetrics(Float32Array.from(keep, (i) => conf32[i]!), Uint8Array.from(keep, (i) => top.correct[i]!), { bins: 15 }).ece);
  // the text output works on it too
  const t = await calib(join(dir, "quoted.csv"), "--bins", "15", "--bootstrap", "0");
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, new RegExp(`quoted\\.csv: ${n} examples; 15 equal-width bins`));
});

test("--where, --scheme, --norm, --bins, --confidence-col and reproducible --bootstrap", async () => {
  const keep = Array.from({ length: n }, (_, i) => i).filter((i) => epoch[i] === 2);
  const c = Float32Array.from(keep, (i) => conf32[i]!);
  const a = Uint8Array.from(keep, (i) => top.correct[i]!);
  const r = await calib(join(dir, "q.arrow"), "--json", "--where", "split=test", "--where", "epoch=2", "--scheme", "equal-mass", "--bins", "10",
    "--norm", "l2", "--bootstrap", "150", "--seed", "3");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.n, keep.length);
  const b = bootstrapMetrics({ confidence: c, correct: a }, { bins: 10, scheme: "equal-mass", resamples: 150, seed: 3 });
  assert.equal(j.calibrationError.norm, "l2");
  assert.equal(j.calibrationError.estimate, binnedMetrics(c, a, { bins: 10, scheme: "equal-mass" }).rmsce);
  assert.equal(j.calibrationError.lo, b.metrics.rmsce!.lo);
  assert.equal(j.calibrationError.hi, b.metrics.rmsce!.hi);
  const again = JSON.parse((await calib(join(dir, "q.arrow"), "--json", "--where", "split=test", "--where", "epoch=2", "--scheme", "equal-mass",
    "--bins", "10", "--norm", "l2", "--bootstrap", "150", "--seed", "3")).out);
  assert.deepEqual(again, j);
  // Another confidence column: p_target used as "confidence" changes the result.
  const alt = JSON.parse((await calib(join(dir, "q.arrow"), "--json", "--bootstrap", "0", "--confidence-col", "p_target")).out);
  assert.equal(alt.metrics.ece.estimate, binnedMetrics(Float32Array.from(top.pTarget), top.correct).ece);
});

test("readable table by default", async () => {
  const r = await calib(join(dir, "top.csv"), "--bootstrap", "20");
  assert.equal(r.code, 0);
  assert.match(r.out, /ECE \(l1\) \*\s+\d\.\d{4}\s+\[\d\.\d{4}, \d\.\d{4}\]/);
  assert.match(r.out, /smECE \(σ\* = /);
  assert.match(r.out, /reliability \(non-empty bins/);
  const binsShown = r.out.split("\n").filter((l) => /^\d+\s+\[/.test(l)).length;
  assert.equal(binsShown, binnedMetrics(conf32, top.correct).reliability.bin.length);
});

test("bad input: exit code 2 and one line", async () => {
  for (const [args, pattern] of [
    [[join(dir, "missing.arrow")], /cannot read .*missing\.arrow: no such file/],
    [[join(dir, "top.csv"), "--bins", "0"], /--bins must be an integer/],
    [[join(dir, "top.csv"), "--scheme", "quantile"], /--scheme must be one of/],
    [[join(dir, "top.csv"), "--norm", "l3"], /--norm must be one of/],
    [[join(dir, "bad.csv")], /confidence\[1\] = 1\.5 is outside \[0, 1\]/],
    [[join(dir, "nocols.csv")], /neither confidence\/correct nor probability columns/],
    [[join(dir, "ragged.csv")], /ragged\.csv line 3 has 3 fields, the header has 2/],
    [[join(dir, "top.csv"), "--bins", "-3"], /--bins must be an integer in \[1, 1000000\] \(got '-3'\)/],
    [[join(dir, "q.arrow"), "--where", "epoch=9"], /no rows match epoch=9/],
    [[join(dir, "q.arrow"), "--confidence-col", "nope"], /needs columns 'nope' and 'correct'/],
    [[], /missing FILE/],
  ] as const) {
    const r = await calib(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.match(r.err, pattern);
    assert.equal(r.out, "");
  }
});
