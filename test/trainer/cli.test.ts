// The CLI: `calib train --config FILE` and `calib eval --checkpoint DIR` end to end on a tiny
// model, and bad input → exit code 2 with one line naming the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertBadInput, tempDir } from "./helpers.js";

const CALIB = join(import.meta.dirname, "..", "..", "bin", "calib.js");

function calib(args: string[]) {
  const r = spawnSync(process.execPath, [CALIB, ...args], { encoding: "utf8", env: { ...process.env, CALIB_THREADS: "2" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("calib train (pretrain, --json) then calib eval write the records and a checkpoint", () => {
  const { dir, cleanup } = tempDir("cli");
  try {
    const config = join(dir, "pt.json");
    writeFileSync(config, JSON.stringify({
      kind: "pretrain", tokenizer: "byte", model: { nLayer: 1, nHead: 2, dModel: 16, context: 32 }, batchSize: 4, steps: 6,
      logEvery: 2, evalEvery: 3, evalWindows: 2, optim: { warmupSteps: 2 }, eval: { maxTokens: 128, tasks: [] },
    }));
    const out = join(dir, "run");
    const r = calib(["train", "--config", config, "--out", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.steps, 6);
    assert.equal(res.completed, true);
    assert.match(r.stderr, /step 6\/6 loss \d+\.\d+ \d+ tok\/s .*ETA/, "the progress bar is on stderr");
    for (const f of ["run.json", "train_log.arrow", "tokens.arrow", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors"]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.equal(JSON.parse(readFileSync(join(out, "run.json"), "utf8")).status, "succeeded");

    const ev = join(dir, "eval");
    const e = calib(["eval", "--checkpoint", join(out, "checkpoint"), "--out", ev, "--tasks", "none", "--max-tokens", "64", "--json", "--quiet"]);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(JSON.parse(e.stdout).artifacts, ["tokens.arrow"]);
    assert.equal(e.stderr, "");
    assert.equal(JSON.parse(readFileSync(join(ev, "run.json"), "utf8")).kind, "eval");
  } finally {
    cleanup();
  }
});

test("bad input: exit code 2 and one line naming the problem", () => {
  const { dir, cleanup } = tempDir("cli");
  try {
    const write = (name: string, body: string) => {
      writeFileSync(join(dir, name), body);
      return join(dir, name);
    };
    const cases: Array<[string[], RegExp]> = [
      [["train"], /--config is required/],
      [["train", "--config", join(dir, "none.json")], /no such file/],
      [["train", "--config", write("a.json", "{oops")], /not valid JSON/],
      [["train", "--config", write("b.json", '{"kind":"finetune"}')], /kind must be 'pretrain' or 'sft'/],
      [["train", "--config", write("c.json", '{"kind":"pretrain","stepz":3}')], /Unrecognized key.*stepz/],
      [["train", "--config", write("d.json", '{"kind":"pretrain","loss":{"labelSmoothing":1.5}}')], /loss\.labelSmoothing/],
      [["train", "--config", write("e.json", '{"kind":"sft"}')], /init/],
      [["train", "--config", write("f.json", '{"kind":"sft","init":"/nonexistent/ckpt"}')], /checkpoint \/nonexistent\/ckpt: no such directory/],
      [["train", "--config", write("g.json", '{"kind":"pretrain"}'), "--threads", "1.5"], /--threads must be an integer ≥ 0/],
      [["train", "--config", write("g.json", '{"kind":"pretrain"}'), "--out", join(dir, "o"), "--gpus", "0"], /--gpus must be an integer ≥ 1/],
      [["train", "--config", write("g.json", '{"kind":"pretrain"}'), "--out", join(dir, "o"), "--gpus", "2"], /gpus: 2 ranks run one per GPU through NCCL and need device 'cuda'/],
      [["train", "--config", write("h.json", '{"kind":"pretrain","batchSize":2}'), "--out", join(dir, "o"), "--gpus", "3"], /gpus: 3 ranks need batchSize ≥ 3/],
      [["train", "--config", write("g.json", '{"kind":"pretrain"}'), "--out", join(dir, "o"), "--gpus", "2", "--transport", "mpi"], /--transport must be nccl or cpu-test/],
      [["eval"], /--checkpoint is required/],
      [["eval", "--checkpoint", dir], /config\.json \(ENOENT\)/],
      [["eval", "--checkpoint", dir, "--tasks", "poetry"], /unknown task 'poetry'/],
    ];
    for (const [args, pattern] of cases) assertBadInput(calib(args), args.join(" "), pattern);
  } finally {
    cleanup();
  }
});
