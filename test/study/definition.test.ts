// Study definitions (backend/study/definition.ts): grid expansion with `where` and overrides,
// run ids, validation through the trainer's schemas, duplicates, the API's sweep configs, and
// the executor's run order.
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
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

test("knowledge-world studies: pretraining seeds in the grid, SFT runs inherit them, evidence and regime", async () => {
  const world = { config: { seed: 3, people: 24, attributes: { birth_city: 6, employer: 6 } }, scoring: ["option", "letter"] };
  const def = {
    kind: "study", name: "w", device: "cpu", evidence: false,
    pretrain: { base: { world, model: { nLayer: 1, nHead: 2, context: 64 }, steps: 5 }, grid: { tokenizer: ["word", "r50k"], "model.dModel": [32], seed: [0, 1] } },
    sft: {
      base: { epochs: 1, world: { scoring: ["option"] } }, inheritSeed: true,
      arms: [{ name: "pairs", grid: { "loss.labelSmoothing": [0, 0.1] } }, { name: "remedy", where: { tokenizer: "r50k" }, grid: { "loss.labelSmoothing": [0.1], "loss.softcap": [30] } }],
    },
  };
  const plan = planStudy(def);
  assert.equal(plan.study.evidence, false);
  assert.equal(planStudy(study()).study.evidence, true, "studies are evidence unless they say otherwise");
  const pt = plan.runs.filter((r) => r.kind === "pretrain");
  assert.deepEqual(pt.map((r) => r.id), ["w-word-d32-s0", "w-word-d32-s1", "w-r50k-d32-s0", "w-r50k-d32-s1"]);
  assert.deepEqual(pt.map((r) => (r.config as { seed: number }).seed), [0, 1, 0, 1]);
  assert.ok(plan.runs.every((r) => r.world));
  const sft = plan.runs.filter((r) => r.kind === "sft");
  // every SFT run has its pretrained model's seed; the id does not repeat it
  for (const r of sft) assert.equal((r.config as { seed: number }).seed, (plan.runs.find((p) => p.id === r.parent)!.config as { seed: number }).seed, r.id);
  assert.deepEqual(sft.filter((r) => r.parent === "w-r50k-d32-s1").map((r) => r.id), ["w-r50k-d32-s1-e0", "w-r50k-d32-s1-e0p1", "w-r50k-d32-s1-e0p1-c30"]);
  assert.equal(sft.length, 4 * 2 + 2);
  const { studyRegime } = await import("../../backend/study/definition.js");
  assert.equal(studyRegime(plan), "world");
  assert.equal(studyRegime(planStudy(study())), "brown");
  // an arm that varies seed contradicts inheritSeed
  assert.throws(() => planStudy({ ...def, sft: { ...def.sft, arms: [{ name: "bad", grid: { seed: [0, 1] } }] } }), /sft\.arms\.bad: varies seed, but sft\.inheritSeed/);
  // the existing study files keep their meaning and ids
  for (const f of ["study-gpu.json", "study-cpu.json", "study-ci.json", "probe-gpu.json"]) {
    const p = planStudy(JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "data", "sweeps", f), "utf8")));
    assert.ok(p.runs.every((r) => !r.world && /^[a-z]+-(byte|r50k|o200k)-d\d+(-|$)/.test(r.id)), f);
  }
});

test("the knowledge-world study files: 3 vocabularies × 3 widths, ε grid, remedies in large-V/d cells of the largest vocabulary, ≥ 3 seeds that vary pretraining and SFT", () => {
  const read = (f: string) => JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "data", "sweeps", f), "utf8"));
  const plan = planStudy(read("world-gpu.json"));
  const pt = plan.runs.filter((r) => r.kind === "pretrain").map((r) => r.config as { tokenizer: string; seed: number; model: { dModel: number }; world: { config: unknown; scoring: string[] } });
  const cells = new Set(pt.map((c) => `${c.tokenizer}/${c.model.dModel}`));
  // issue 18: at least 3 vocabularies × at least 3 widths
  assert.ok(new Set(pt.map((c) => c.tokenizer)).size >= 3 && new Set(pt.map((c) => c.model.dModel)).size >= 3);
  assert.equal(cells.size, new Set(pt.map((c) => c.tokenizer)).size * new Set(pt.map((c) => c.model.dModel)).size, "a full vocabulary × width grid");
  for (const cell of cells) assert.ok(new Set(pt.filter((c) => `${c.tokenizer}/${c.model.dModel}` === cell).map((c) => c.seed)).size >= 3, `${cell}: 3 pretraining seeds`);
  assert.equal(new Set(pt.map((c) => JSON.stringify(c.world.config))).size, 1, "one world: every cell answers the same questions");
  assert.ok(pt.every((c) => c.world.scoring.includes("option") && c.world.scoring.includes("letter")), "base models scored both ways");
  const sft = plan.runs.filter((r) => r.kind === "sft");
  const loss = (r: (typeof sft)[number]) => (r.config as { loss: { labelSmoothing: number; temperature: number; softcap: number | null } }).loss;
  assert.deepEqual([...new Set(sft.map((r) => loss(r).labelSmoothing))].sort(), [0, 0.05, 0.1, 0.2]);
  assert.ok(sft.some((r) => loss(r).temperature === 0.5) && sft.some((r) => loss(r).softcap === 30));
  // the remedies sit in cells of the largest vocabulary whose V/d is above the median cell's
  // (V: word-level ≈ 2k, r50k 50,257, o200k 200,000; the published study: o200k d 256 and 512, V/d 781 and 391)
  const V: Record<string, number> = { word: 2000, byte: 256, r50k: 50257, o200k: 200000 };
  const ratioOf = (cell: string) => { const [t, d] = cell.split("/"); return V[t!]! / Number(d); };
  const cellOfRun = (id: string) => { const c = pt.find((_, i) => plan.runs.filter((r) => r.kind === "pretrain")[i]!.id === id)!; return `${c.tokenizer}/${c.model.dModel}`; };
  const remedyCells = new Set(sft.filter((r) => loss(r).temperature !== 1 || loss(r).softcap !== null).map((r) => cellOfRun(r.parent!)));
  const ratios = [...cells].map(ratioOf).sort((a, b) => a - b);
  const median = ratios[Math.floor(ratios.length / 2)]!;
  const largestV = Math.max(...pt.map((c) => V[c.tokenizer]!));
  assert.ok(remedyCells.size >= 2, "remedies in at least two cells");
  for (const c of remedyCells) {
    assert.equal(V[c.split("/")[0]!], largestV, `${c}: remedies in the largest vocabulary`);
    assert.ok(ratioOf(c) > median, `${c}: V/d ${ratioOf(c).toFixed(0)} above the median cell's ${median.toFixed(0)}`);
  }
  for (const c of remedyCells) {
    const runsIn = sft.filter((r) => cellOfRun(r.parent!) === c && (loss(r).temperature !== 1 || loss(r).softcap !== null));
    assert.ok(new Set(runsIn.map((r) => (r.config as { seed: number }).seed)).size >= 3, `${c}: remedies with 3 seeds`);
  }
  // seeds of ε ∈ {0, 0.1} plain runs vary with the pretrained model
  for (const r of sft) assert.equal((r.config as { seed: number }).seed, (plan.runs.find((p) => p.id === r.parent)!.config as { seed: number }).seed);
  for (const f of ["world-cpu.json", "world-ci.json", "world-probe-gpu.json"]) assert.ok(planStudy(read(f)).runs.every((r) => r.world), f);
  assert.equal(planStudy(read("world-cpu.json")).study.evidence, false);
  assert.equal(planStudy(read("world-ci.json")).study.evidence, false);
});

test("world-gpu.json's estimated publication fits data/'s 60 MB beside everything else committed there", async () => {
  const { spawnSync } = await import("node:child_process");
  const { statSync, existsSync } = await import("node:fs");
  const { estimatePublication } = await import("../../backend/study/estimate.js");
  const root = join(import.meta.dirname, "..", "..");
  const ls = spawnSync("git", ["ls-files", "data"], { cwd: root, encoding: "utf8" });
  assert.equal(ls.status, 0, ls.stderr);
  // what `du` counts (4 KiB blocks), without the world study's own runs when it is already published
  const manifest = join(root, "data", "study", "world.json");
  const own = existsSync(manifest) ? new Set((JSON.parse(readFileSync(manifest, "utf8")) as { runs: { id: string }[] }).runs.map((r) => `data/runs/${r.id}/`)) : new Set<string>();
  let others = 0;
  for (const f of ls.stdout.split("\n").filter(Boolean)) {
    if ([...own].some((p) => f.startsWith(p)) || !existsSync(join(root, f))) continue;
    others += Math.ceil(statSync(join(root, f)).size / 4096) * 4096;
  }
  const est = estimatePublication(planStudy(JSON.parse(readFileSync(join(root, "data", "sweeps", "world-gpu.json"), "utf8")))).bytes;
  assert.ok(others + est < 60e6, `committed ${(others / 1e6).toFixed(1)} MB + world study ${(est / 1e6).toFixed(1)} MB ≥ 60 MB`);
});
