// Study definitions (backend/study/definition.ts): grid expansion with `where` and overrides,
// run ids, validation through the trainer's schemas, duplicates, the API's sweep configs, and
// the executor's run order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planStudy } from "../../backend/study/definition.js";
import { scheduleOrder } from "../../backend/study/execute.js";
import { restrictPlan } from "../../backend/study/main.js";

const study = (over: Record<string, unknown> = {}) => ({
  kind: "study", name: "t", device: "cpu",
  pretrain: {
    base: { model: { nLayer: 1, nHead: 2, context: 64 }, steps: 5 },
    grid: { tokenizer: ["byte", "o200k"], "model.dModel": [32, 64] },
    overrides: [{ where: { tokenizer: "byte" }, set: { "model.context": 96, steps: 7 } }],
  },
  sft: {
    base: { tasks: ["pos"], epochs: 1 },
    arms: [
      { name: "pairs", grid: { "loss.labelSmoothing": [0, 0.1], seed: [0, 1] } },
      { name: "remedy", where: { tokenizer: "o200k", "model.dModel": [32] }, grid: { "loss.temperature": [1, 0.5], "loss.softcap": [null, 30], "loss.labelSmoothing": [0, 0.1], seed: [0] } },
    ],
  },
  ...over,
});

test("a study expands to one pretrain per grid point and the SFT arms that match it", () => {
  const plan = planStudy(study());
  const pt = plan.runs.filter((r) => r.kind === "pretrain");
  assert.deepEqual(pt.map((r) => r.id), ["t-byte-d32", "t-byte-d64", "t-o200k-d32", "t-o200k-d64"]);
  // overrides apply where they match, after the grid
  const byte32 = pt[0]!.config as { model: { context: number; dModel: number }; steps: number; device: string };
  assert.equal(byte32.model.context, 96);
  assert.equal(byte32.steps, 7);
  assert.equal((pt[2]!.config as { model: { context: number } }).model.context, 64);
  assert.equal(byte32.device, "cpu");
  // pairs: 4 per model; remedy only on o200k d32: 2 × 2 × 2 × 1 = 8 points, 2 of which equal pairs runs (T 1, no cap, seed 0)
  const sft = plan.runs.filter((r) => r.kind === "sft");
  assert.equal(sft.filter((r) => r.arm === "pairs").length, 16);
  assert.equal(sft.filter((r) => r.arm === "remedy").length, 6);
  assert.equal(sft.length, 22);
  assert.ok(sft.every((r) => (r.config as { init: string }).init === `${r.parent}/checkpoint`));
  const ids = sft.filter((r) => r.parent === "t-o200k-d32").map((r) => r.id).sort();
  assert.ok(ids.includes("t-o200k-d32-e0p1-t0p5-c30-s0"), ids.join(" "));
  assert.ok(ids.includes("t-o200k-d32-e0-s1"));
  assert.ok(ids.includes("t-o200k-d32-e0-c30-s0"));
  assert.equal(new Set(plan.runs.map((r) => r.id)).size, plan.runs.length);
  const t05 = sft.find((r) => r.id === "t-o200k-d32-e0p1-t0p5-c30-s0")!.config as { loss: { temperature: number; softcap: number; labelSmoothing: number } };
  assert.deepEqual(t05.loss, { labelSmoothing: 0.1, temperature: 0.5, softcap: 30 });
});

test("bad studies are rejected with the field named, before anything runs", () => {
  assert.throws(() => planStudy(study({ name: "Bad Name" })), /name/);
  assert.throws(() => planStudy(study({ pretrain: { base: { model: { nHead: 3 } }, grid: { "model.dModel": [32] } } })), /nHead must divide dModel/);
  assert.throws(() => planStudy(study({ pretrain: { base: {}, grid: { tokenizer: ["klingon"] } } })), /pretrain point 0 \(tokenizer=klingon\)/);
  assert.throws(() => planStudy(study({ sft: { base: { epochs: 0 }, arms: [{ name: "a", grid: {} }] } })), /sft arm a .*epochs/);
  assert.throws(() => planStudy(study({ sft: { base: { bogus: 1 }, arms: [{ name: "a", grid: {} }] } })), /bogus/);
  assert.throws(() => planStudy(study({ extra: 1 })), /extra/);
  assert.throws(() => planStudy([]), TypeError);
  // the same id from two arms with different configs
  assert.throws(() => planStudy(study({ sft: { base: {}, arms: [{ name: "a", grid: { seed: [0] } }, { name: "b", grid: { seed: [0] }, set: { epochs: 2 } }] } })), /produced twice/);
});

test("the API's sweep config is a study with one SFT arm", () => {
  const plan = planStudy({ kind: "sweep", name: "My Sweep", pretrain: { base: { steps: 3 }, grid: { "model.dModel": [64, 128] } }, sft: { base: { epochs: 1 }, grid: { "loss.labelSmoothing": [0, 0.1] } } });
  assert.equal(plan.study.name, "my-sweep");
  assert.deepEqual(plan.runs.filter((r) => r.kind === "pretrain").map((r) => r.id), ["my-sweep-byte-d64", "my-sweep-byte-d128"]);
  assert.equal(plan.runs.filter((r) => r.kind === "sft").length, 4);
});

test("run order: pretrains first (largest first), then SFT by seed rank; --only keeps the parents", () => {
  const plan = planStudy(study());
  const order = scheduleOrder(plan);
  const firstSft = order.findIndex((r) => r.kind === "sft");
  assert.equal(firstSft, 4);
  assert.ok(order.slice(0, 4).every((r) => r.kind === "pretrain"));
  assert.ok(order[0]!.id.startsWith("t-o200k"), "the o200k models (largest head) start first");
  const seeds = order.slice(4).map((r) => (r.config as { seed: number }).seed);
  assert.deepEqual(seeds, [...seeds].sort((a, b) => a - b));
  const only = restrictPlan(plan, /^t-byte-d32-e0p1/);
  assert.deepEqual(only.runs.map((r) => r.id).sort(), ["t-byte-d32", "t-byte-d32-e0p1-s0", "t-byte-d32-e0p1-s1"]);
});
