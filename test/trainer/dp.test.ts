// Data parallelism on the CPU through the launcher (backend/train/dp/launch.ts): N rank processes
// with the test transport (a localhost socket through the launcher), a tiny GPT pretrained for 20
// steps. N = 2 and 3 give the per-step losses of one process on the same global batch within
// 1e-5 relative (not bit for bit: the ranks' gradients and loss sums are added in another order;
// the parameters then differ by float32 rounding, which the losses carry on); a checkpoint written by
// 2 ranks resumes on 1 and on 2 (on 2: bit for bit the uninterrupted run, so every rank's AdamW
// shard is in it); a killed or hung rank ends the run, marked failed naming the rank, and the last
// complete checkpoint stays loadable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TrainLogRow } from "../../backend/records/index.js";
import { loadCheckpoint, train, type TrainConfigInput } from "../../backend/train/index.js";
import { tempDir } from "./helpers.js";

const CONFIG: TrainConfigInput = {
  kind: "pretrain", tokenizer: "byte", seed: 3, threads: 1,
  model: { nLayer: 1, nHead: 2, dModel: 16, context: 64 },
  batchSize: 6, gradAccum: 2, steps: 20, logEvery: 1, evalEvery: 10, evalWindows: 2,
  optim: { lr: 3e-3, warmupSteps: 3 }, loss: { labelSmoothing: 0.1 },
  eval: { maxTokens: 0, tasks: [], maxQuestions: 0, batchSize: 2 },
};
const quiet = { progress: false, runId: "r" } as const;
const trainRows = (log: TrainLogRow[]) => log.filter((r) => r.split === "train");

function closeLosses(a: TrainLogRow[], b: TrainLogRow[], tol: number, what: string): number {
  assert.equal(a.length, b.length, `${what}: rows`);
  let worst = 0;
  a.forEach((r, i) => {
    assert.equal(r.step, b[i]!.step);
    const rel = Math.abs(r.loss - b[i]!.loss) / Math.abs(r.loss);
    worst = Math.max(worst, rel);
    assert.ok(rel <= tol, `${what}: step ${r.step} loss ${b[i]!.loss} vs ${r.loss} (relative ${rel})`);
  });
  return worst;
}

test("N = 2 and N = 3 CPU ranks: the per-step losses of one process within 1e-5; run.json records the ranks", async (t) => {
  const dirs = [tempDir("dp"), tempDir("dp"), tempDir("dp")];
  try {
    const one = await train(CONFIG, { outDir: dirs[0]!.dir, ...quiet });
    const ref = trainRows(one.log);
    assert.equal(ref.length, 20);
    for (const n of [2, 3]) {
      const r = await train({ ...CONFIG, gpus: n }, { outDir: dirs[n - 1]!.dir, transport: "cpu-test", ...quiet });
      assert.equal(r.completed, true);
      assert.equal(r.steps, 20);
      const rows = trainRows(r.log);
      // step 1 runs on the same parameters: only the loss sum's order differs (float64)
      assert.ok(Math.abs(rows[0]!.loss - ref[0]!.loss) <= 1e-12 * ref[0]!.loss, `step 1: ${rows[0]!.loss} vs ${ref[0]!.loss}`);
      t.diagnostic(`N = ${n}: largest relative loss difference over 20 steps ${closeLosses(ref, rows, 1e-5, `N = ${n}`).toExponential(2)}`);
      assert.ok(Math.abs(rows[19]!.grad_norm - ref[19]!.grad_norm) <= 1e-4 * ref[19]!.grad_norm);
      // the validation rows (rank 0 evaluates) and the written log
      assert.equal(r.log.filter((x) => x.split === "validation").length, 2);
      const run = JSON.parse(readFileSync(join(dirs[n - 1]!.dir, "run.json"), "utf8"));
      assert.equal(run.status, "succeeded");
      assert.equal(run.config.gpus, n);
      assert.deepEqual(run.parallel, { world_size: n, transport: "cpu-test" });
      // the checkpoint is one ordinary checkpoint: its weights are those of the one-process run within float32 rounding
      const a = loadCheckpoint(join(dirs[0]!.dir, "checkpoint"), { optimizer: true }), b = loadCheckpoint(join(dirs[n - 1]!.dir, "checkpoint"), { optimizer: true });
      let d = 0;
      for (let i = 0; i < a.params.length; i++) d = Math.max(d, Math.abs(a.params[i]! - b.params[i]!));
      assert.ok(d > 0 && d < 1e-4, `max |Δparam| ${d}`);
      assert.equal(b.state!.step, 20);
    }
  } finally {
    dirs.forEach((d) => d.cleanup());
  }
});

test("a checkpoint of 2 ranks resumes on 2 (bit for bit the uninterrupted run) and on 1 (the same losses within 1e-5)", async () => {
  const whole = tempDir("dp"), parts = tempDir("dp"), single = tempDir("dp");
  try {
    const full = await train({ ...CONFIG, gpus: 2 }, { outDir: whole.dir, transport: "cpu-test", ...quiet });
    const stop = await train({ ...CONFIG, gpus: 2 }, { outDir: parts.dir, transport: "cpu-test", stopAfterSteps: 10, ...quiet });
    assert.equal(stop.completed, false);
    assert.equal(stop.steps, 10);
    await train({ ...CONFIG, gpus: 2 }, { outDir: parts.dir, transport: "cpu-test", resume: true, ...quiet });
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      assert.ok(readFileSync(join(whole.dir, "checkpoint", f)).equals(readFileSync(join(parts.dir, "checkpoint", f))), `${f} differs`);
    }
    // the same 10-step checkpoint continued by one process
    await train({ ...CONFIG, gpus: 2 }, { outDir: single.dir, transport: "cpu-test", stopAfterSteps: 10, ...quiet });
    const rest = await train(CONFIG, { outDir: single.dir, resume: true, ...quiet });
    assert.equal(rest.steps, 20);
    const a = trainRows(full.log), b = trainRows(rest.log);
    // the first 10 rows are the 2-rank run's, read back from train_log.arrow (float32)
    assert.deepEqual(b.slice(0, 10).map((r) => r.loss), a.slice(0, 10).map((r) => Math.fround(r.loss)));
    closeLosses(a, b, 1e-5, "resumed on 1");
  } finally {
    whole.cleanup();
    parts.cleanup();
    single.cleanup();
  }
});

/** Runs 2 ranks for long, calls act(pids) after step 6; returns the error, the seconds from act to the end, and the directory. */
async function failing(act: (pids: number[]) => void, extra: { collectiveTimeoutMs?: number } = {}) {
  const d = tempDir("dp");
  let pids: number[] = [];
  let acted = 0;
  const err = await train({ ...CONFIG, steps: 100000, evalEvery: 0, checkpointEvery: 3, gpus: 2 }, {
    outDir: d.dir, transport: "cpu-test", ...quiet, ...extra,
    onRanks: (p) => (pids = p),
    onRow: (row) => {
      if (row.step === 6 && acted === 0) {
        acted = performance.now();
        act(pids);
      }
    },
  }).then(() => null, (e: Error) => e);
  return { err, seconds: (performance.now() - acted) / 1000, dir: d, pids };
}

function assertFailed(dir: string, rank: number, pattern: RegExp): void {
  const run = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
  assert.equal(run.status, "failed");
  assert.match(run.error, new RegExp(`^rank ${rank} `));
  assert.match(run.error, pattern);
  // the last complete checkpoint loads; no temporary or half-moved checkpoint folder is left
  const ck = loadCheckpoint(join(dir, "checkpoint"), { optimizer: true });
  assert.ok(ck.state!.step >= 3 && ck.state!.step % 3 === 0, `checkpoint at step ${ck.state!.step}`);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(".checkpoint")), []);
}

test("killing a rank ends the run within seconds, marked failed naming the rank; the last checkpoint stays", async () => {
  const { err, seconds, dir, pids } = await failing((p) => process.kill(p[1]!, "SIGKILL"));
  try {
    assert.ok(err, "the run failed");
    assert.match(err.message, /^rank 1 \(pid \d+\) was killed by SIGKILL$/);
    assert.ok(seconds < 20, `ended ${seconds.toFixed(1)} s after the kill`);
    assertFailed(dir.dir, 1, /SIGKILL/);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `rank process ${pid} is gone`);
  } finally {
    dir.cleanup();
  }
});

test("a rank that stops answering (SIGSTOP) ends the run after the collective timeout, naming it", async () => {
  const { err, dir, pids } = await failing((p) => process.kill(p[1]!, "SIGSTOP"), { collectiveTimeoutMs: 1500 });
  try {
    assert.ok(err, "the run failed");
    assert.match(err.message, /^rank 1 did not reach collective #\d+ within 1\.5 s/);
    assertFailed(dir.dir, 1, /did not reach/);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `rank process ${pid} is gone`);
  } finally {
    dir.cleanup();
  }
});

test("configurations that cannot run several ranks say why", async () => {
  const d = tempDir("dp");
  try {
    await assert.rejects(train({ ...CONFIG, gpus: 2 }, { outDir: d.dir, ...quiet }), /gpus: 2 ranks run one per GPU through NCCL and need device 'cuda' \(got 'cpu'\)/);
    await assert.rejects(train({ ...CONFIG, gpus: 7 }, { outDir: d.dir, transport: "cpu-test", ...quiet }), /gpus: 7 ranks need batchSize ≥ 7/);
    await assert.rejects(train({ ...CONFIG, gpus: 0 }, { outDir: d.dir, ...quiet }), /gpus/);
    assert.equal(existsSync(join(d.dir, "checkpoint")), false);
  } finally {
    d.cleanup();
  }
});
