// The SQLite run registry: lanes and queue order, dependencies, first-writer-wins transitions,
// events, crash recovery, and four processes claiming from one registry at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Registry, newRunId, processAlive, processTag } from "../../backend/runs/registry.js";
import { RUN_ID_RE } from "../../backend/runs/paths.js";
import { removeDir, ROOT, tempDataDir } from "./helpers.js";

function withRegistry(f: (r: Registry, dir: string) => void | Promise<void>) {
  return async () => {
    const dir = tempDataDir("calib-reg-");
    const r = Registry.open(join(dir, "registry.sqlite"));
    try {
      await f(r, dir);
    } finally {
      r.close();
      removeDir(dir);
    }
  };
}

const mk = (r: Registry, device: "cpu" | "cuda" | "io" = "cpu", extra: Partial<Parameters<Registry["create"]>[0]> = {}) =>
  r.create({ name: "x", kind: "pretrain", device, config: { a: 1 }, source: "api", ...extra });

test("run ids are sortable and valid", () => {
  const a = newRunId(new Date("2026-01-02T03:04:05Z"));
  assert.match(a, /^20260102-030405-[0-9a-f]{6}$/);
  assert.ok(RUN_ID_RE.test(a));
});

test("one running run per lane, oldest first; lanes are independent", withRegistry((r) => {
  const a = mk(r), b = mk(r), c = mk(r, "io");
  const tag = processTag();
  assert.equal(r.claimNext("cpu", tag)?.id, a.id);
  assert.equal(r.claimNext("cpu", tag), undefined, "cpu lane busy");
  assert.equal(r.claimNext("io", tag)?.id, c.id, "io lane is separate");
  assert.ok(r.finish(a.id, "succeeded", { metrics: { loss: 1.5, bad: Number.NaN }, artifacts: ["run.json"] }));
  assert.equal(r.finish(a.id, "failed", { error: "late" }), false, "first writer wins");
  const done = r.get(a.id)!;
  assert.equal(done.status, "succeeded");
  assert.deepEqual(done.metrics, { loss: 1.5, bad: null });
  assert.equal(r.claimNext("cpu", tag)?.id, b.id);
  assert.deepEqual(r.list({ status: "running" }).map((x) => x.id).sort(), [b.id, c.id].sort());
  assert.equal(r.count({ status: ["running", "succeeded"] }), 3);
  assert.equal(r.list({ kind: "pretrain", order: "asc" })[0]!.id, a.id);
}));

test("dependencies: a run waits for its dependency and fails when it fails", withRegistry((r) => {
  const tag = processTag();
  const base = mk(r);
  const child = mk(r, "cpu", { dependsOn: [base.id] });
  const other = mk(r);
  assert.equal(r.claimNext("cpu", tag)?.id, base.id);
  r.finish(base.id, "failed", { error: "boom" });
  // child is skipped (its dependency failed → child fails), the next runnable run starts
  assert.equal(r.claimNext("cpu", tag)?.id, other.id);
  const c = r.get(child.id)!;
  assert.equal(c.status, "failed");
  assert.match(c.error!, new RegExp(`depends on run ${base.id}, which failed`));
  const waiting = mk(r, "cpu", { dependsOn: [other.id] });
  r.finish(other.id, "succeeded");
  assert.equal(r.claimNext("cpu", tag)?.id, waiting.id);
}));

test("events have per-run sequence numbers and survive reopening", withRegistry((r, dir) => {
  const a = mk(r);
  const s1 = r.appendEvent(a.id, "log", { message: "one" });
  const s2 = r.appendEvent(a.id, "progress", { step: 3, loss: Infinity });
  assert.equal(s2, s1 + 1);
  const again = Registry.open(join(dir, "registry.sqlite"));
  try {
    const ev = again.events(a.id, s1 - 1);
    assert.deepEqual(ev.map((e) => e.type), ["log", "progress"]);
    assert.deepEqual(ev[1]!.data, { step: 3, loss: null });
    assert.equal(again.events(a.id, s2).length, 0);
  } finally {
    again.close();
  }
  assert.throws(() => r.appendEvent("nope", "log", {}), /no run 'nope'/);
}));

test("recover: runs of dead owners fail, queued runs of dead owners are re-queued, live owners are left alone", withRegistry((r) => {
  const dead = "999999999:1";
  assert.equal(processAlive(dead), false);
  assert.equal(processAlive(processTag()), true);
  const a = mk(r);
  r.claimNext("cpu", dead);
  const b = mk(r, "io");
  r.claimNext("io", processTag());
  const q = mk(r, "cuda", { owner: dead });
  const rec = r.recover();
  assert.deepEqual(rec.failed, [a.id]);
  assert.deepEqual(rec.requeued, [q.id]);
  assert.equal(r.get(a.id)!.status, "failed");
  assert.match(r.get(a.id)!.error!, /pid 999999999\) stopped while it was running/);
  assert.equal(r.get(b.id)!.status, "running");
  assert.equal(r.get(q.id)!.owner, null);
}));

test("four processes claiming from one registry: every run exactly once, in queue order", withRegistry(async (r, dir) => {
  const ids = Array.from({ length: 40 }, () => mk(r).id);
  const path = join(dir, "registry.sqlite");
  const outs = await Promise.all(Array.from({ length: 4 }, () => new Promise<string[]>((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/api/fixtures/claimer.ts"), path], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (c: Buffer) => (out += c));
    p.stderr.on("data", (c: Buffer) => (err += c));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!) as string[]) : reject(new Error(err))));
  })));
  const all = outs.flat();
  assert.equal(all.length, 40, "no run lost or claimed twice");
  assert.deepEqual([...all].sort(), [...ids].sort());
  // started_at follows queue order (one cpu run at a time across the processes)
  const started = ids.map((id) => r.get(id)!);
  for (const s of started) assert.equal(s.status, "succeeded");
  const order = [...started].sort((x, y) => x.started_at!.localeCompare(y.started_at!) || 0).map((x) => x.id);
  assert.deepEqual(order, ids);
}));
