// The transformers parity job without PyTorch (scripts/gpu/hf-job.sh: our side scripts/gpu/hf-parity.ts,
// the PyTorch side bench/gpu/hf_parity.py). A work folder shaped as `hf_parity.py make` writes it is
// filled here with tiny Hugging Face folders of test/hf/fixtures.ts; our entry point computes logits,
// losses, the SFT batches, trains (`calib train`), reads the train log and exports (`calib export`); the
// "transformers" side is stood in for by the float64 reference (test/engine/llama-reference.ts) and by a
// replay of the dumped batches through the engine with the run's hyper-parameters — what
// hf_parity.py sft does in PyTorch —, and hf_parity.py report (NumPy only) must find everything within
// its targets. Also: the batches are the trainer's (the replay reproduces its per-step losses), the
// weight-decay set names exactly the matmul weights, hf_parity.py's schedule is ours, and its
// self-check passes. The Python parts are skipped with a note where python3 + NumPy are missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GptModel, type Batch } from "../../backend/engine/index.js";
import { loadHfModel } from "../../backend/hf/index.js";
import { readNpy, writeNpy } from "../../backend/io/npy.js";
import { learningRate } from "../../backend/train/index.js";
import { llamaReference } from "../engine/llama-reference.js";
import { gemmaTokenizerFiles, llama3TokenizerFiles, tempDir, tinyConfig, writeTinyModel, type Dtype, type Family } from "./fixtures.js";
import { referenceConfig, referenceTensors } from "./reference.js";
import { ints, rng } from "../trainer/helpers.js";

const ROOT = join(import.meta.dirname, "..", "..");
const ENTRY = join(ROOT, "scripts", "gpu", "hf-parity.ts");
const PY = join(ROOT, "bench", "gpu", "hf_parity.py");
const python = process.env.PYTHON ?? "python3";
const hasNumpy = spawnSync(python, ["-c", "import numpy"]).status === 0;

function entry(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", ENTRY, ...args], { encoding: "utf8", cwd: ROOT, env: { ...process.env, CALIB_THREADS: "2" } });
  assert.equal(r.status, 0, `hf-parity ${args[0]}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function py(args: string[]) {
  const r = spawnSync(python, [PY, ...args], { encoding: "utf8", cwd: ROOT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8"));

// The cases: the families' switches (llama3 rope, q/k/v biases, soft-caps and an alternating window that
// bites at T = 10), float32 folders and one bfloat16 copy, as `make` writes them.
const CASES: Array<{ name: string; family: Family; dtype: Dtype; config?: Record<string, unknown> }> = [
  { name: "llama", family: "llama", dtype: "F32" },
  { name: "qwen2", family: "qwen2", dtype: "F32" },
  { name: "gemma2", family: "gemma2", dtype: "F32", config: { sliding_window: 3, attn_logit_softcapping: 1.5, final_logit_softcapping: 2.5 } },
  { name: "llama-bf16", family: "llama", dtype: "BF16" },
];
const B = 2, T = 10, EPS = 0.1;
const CHATS = [
  [["user", "hello 0"], ["assistant", "world hello"]],
  [["user", "hello 1"], ["assistant", "hello world"]],
  [["system", "be brief"], ["user", "hello 2"], ["assistant", "world"]],
  [["user", "hello 3"], ["assistant", "hello"], ["user", "and 4?"], ["assistant", "world 4"]],
  [["user", "hi 5"], ["assistant", "hello hello world"]],
  [["user", "hello 6"], ["assistant", "world world"]],
];

test("hf parity job, our side and the report: logits, loss, SFT curve and export against stand-ins for transformers", (t) => {
  const { dir: W, cleanup } = tempDir("parity");
  try {
    // ---- what `hf_parity.py make` writes
    const made: Record<string, unknown> = {};
    const refs = new Map<string, { logits: Float64Array; loss: number }>();
    for (const [i, c] of CASES.entries()) {
      const files = c.family === "gemma2" ? gemmaTokenizerFiles() : llama3TokenizerFiles();
      const m = writeTinyModel(join(W, "models", c.name), c.family, { dtype: c.dtype, seed: 11 + i, files, config: { ...tinyConfig(c.family), ...c.config } });
      const V = m.config.vocab_size as number;
      const rand = rng(40 + i);
      const ids = ints(rand, B * T, V), targets = ints(rand, B * T, V);
      for (let k = 0; k < targets.length; k += 7) targets[k] = -100;
      mkdirSync(join(W, "inputs"), { recursive: true });
      writeNpy(join(W, "inputs", `${c.name}.ids.npy`), ids, [B, T]);
      writeNpy(join(W, "inputs", `${c.name}.targets.npy`), targets, [B, T]);
      // transformers' stand-in: the float64 reference; the model's logits are soft-capped (Gemma 2)
      const ref = referenceConfig(c.family, m.config, T);
      const r = llamaReference(ref.cfg, referenceTensors(m), ids, targets, B, T, { labelSmoothing: Math.fround(EPS), softcap: ref.softcap });
      const z = new Float64Array(B * T * V);
      for (let p = 0; p < B * T; p++) for (let v = 0; v < V; v++) {
        const x = r.logits[p]![v]!;
        z[p * V + v] = ref.softcap > 0 ? ref.softcap * Math.tanh(x / ref.softcap) : x;
      }
      refs.set(c.name, { logits: z, loss: r.lossSum / r.valid });
      made[c.name] = { family: c.family, dtype: c.dtype };
    }
    writeFileSync(join(W, "make.json"), JSON.stringify({ cases: made, sft_case: "llama" }));
    mkdirSync(join(W, "sft"), { recursive: true });
    writeFileSync(join(W, "sft", "chat.jsonl"), CHATS.map((c) => JSON.stringify({ messages: c.map(([role, content]) => ({ role, content })) })).join("\n") + "\n");
    const run = {
      kind: "sft", name: "hf-parity-sft", init: { hf: join(W, "models", "llama") }, data: { jsonl: join(W, "sft", "chat.jsonl") }, seed: 0,
      device: "cpu", threads: 2, batchSize: 2, gradAccum: 2, epochs: 2, logEvery: 1, loss: { labelSmoothing: EPS },
      optim: { lr: 3e-2, minLrRatio: 0.1, warmupSteps: 1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 },
      eval: { batchSize: 2 },
    };
    writeFileSync(join(W, "sft", "run.json"), JSON.stringify(run));

    // ---- our chain, as hf-job.sh runs it
    mkdirSync(join(W, "ours"), { recursive: true });
    for (const c of CASES) {
      const p = join(W, "models", c.name);
      entry(["logits", "--model", p, "--inputs", join(W, "inputs", `${c.name}.ids.npy`), "--targets", join(W, "inputs", `${c.name}.targets.npy`), "--out", join(W, "ours", c.name)]);
      const got = readNpy(join(W, "ours", `${c.name}.logits.npy`));
      assert.deepEqual(got.shape, [B, T, refs.get(c.name)!.logits.length / (B * T)]);
    }
    entry(["sft-batches", "--config", join(W, "sft", "run.json"), "--out", join(W, "sft", "batches")]);
    entry(["calib", "train", "--config", join(W, "sft", "run.json"), "--out", join(W, "sft", "run-out"), "--quiet"]);
    entry(["train-log", "--run", join(W, "sft", "run-out"), "--out", join(W, "ours", "sft_log.json")]);
    entry(["calib", "export", "--checkpoint", join(W, "sft", "run-out", "checkpoint"), "--hf", join(W, "sft", "export"), "--dtype", "float32"]);
    entry(["logits", "--model", join(W, "sft", "run-out", "checkpoint"), "--inputs", join(W, "inputs", "llama.ids.npy"), "--targets", join(W, "inputs", "llama.targets.npy"), "--out", join(W, "ours", "trained")]);

    // ---- the batches: 2 epochs × (3 micro-batches of 2 conversations → steps of 2 + 1)
    const micro = readJson(join(W, "sft", "batches", "micro.json"));
    assert.equal(micro.steps, 4);
    assert.deepEqual(micro.micro.map((m: { step: number }) => m.step), [1, 1, 2, 3, 3, 4]);
    const decayed = Object.entries(micro.decay as Record<string, boolean>).filter(([, d]) => d).map(([n]) => n).sort();
    const matmuls = Object.keys(micro.decay).filter((n) => /_proj\.weight$/.test(n)).sort();
    assert.equal(matmuls.length, 2 * 7, "q, k, v, o, gate, up, down of 2 layers");
    assert.deepEqual(decayed, matmuls, "weight decay on the matmul weights only (not embeddings, norms)");
    // replay: the dumped batches through the engine with the run's hyper-parameters (what hf_parity.py sft does in PyTorch)
    const inputs = readNpy(join(W, "sft", "batches", "inputs.npy")), targets = readNpy(join(W, "sft", "batches", "targets.npy"));
    const [M, Bm, Tm] = inputs.shape as [number, number, number];
    assert.equal(M, micro.micro.length);
    const hf = loadHfModel(join(W, "models", "llama"), { context: Tm });
    const model = GptModel.create(hf.spec.model, { maxBatch: Bm, precision: "float32", threads: 2 });
    const replay = { loss: [] as number[], lr: [] as number[], grad_norm: [] as number[] };
    try {
      model.write("params", hf.weights.params);
      for (let step = 1; step <= micro.steps; step++) {
        const batches: Batch[] = [];
        micro.micro.forEach((m: { step: number; rows: number; t: number }, k: number) => {
          if (m.step !== step) return;
          const x = new Int32Array(m.rows * m.t), y = new Int32Array(m.rows * m.t);
          for (let r = 0; r < m.rows; r++) {
            x.set((inputs.data as Int32Array).subarray((k * Bm + r) * Tm, (k * Bm + r) * Tm + m.t), r * m.t);
            y.set((targets.data as Int32Array).subarray((k * Bm + r) * Tm, (k * Bm + r) * Tm + m.t), r * m.t);
          }
          batches.push({ inputs: x, targets: y, b: m.rows, t: m.t });
        });
        const total = batches.reduce((a, b) => a + b.targets.filter((v) => v !== -100).length, 0);
        model.zeroGrad();
        let sum = 0;
        for (const b of batches) sum += model.forwardBackward(b, { labelSmoothing: EPS }, 1 / total).lossSum;
        const { norm } = model.gradNorm();
        const o = run.optim;
        const lr = learningRate({ lr: o.lr, minLrRatio: o.minLrRatio, warmupSteps: o.warmupSteps, totalSteps: micro.steps }, step);
        model.adamw({ lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, gradScale: Math.min(1, o.gradClip / (norm + 1e-6)), step });
        replay.loss.push(sum / total);
        replay.lr.push(lr);
        replay.grad_norm.push(norm);
      }
    } finally {
      model.free();
    }
    const ours = readJson(join(W, "ours", "sft_log.json"));
    assert.deepEqual(ours.steps, [1, 2, 3, 4]);
    ours.loss.forEach((l: number, i: number) => assert.ok(Math.abs(l - replay.loss[i]!) <= 1e-6 * replay.loss[i]!, `step ${i + 1}: train log ${l}, replay ${replay.loss[i]}`));
    assert.ok(replay.loss[3]! < replay.loss[0]!, `the loss falls (${replay.loss.join(", ")})`);
    t.diagnostic(`SFT losses: ${ours.loss.map((l: number) => l.toFixed(4)).join(", ")}`);
    mkdirSync(join(W, "torch"), { recursive: true });
    writeFileSync(join(W, "torch", "sft.json"), JSON.stringify({ steps: micro.steps, planned_steps: micro.steps, ...replay, device: "engine replay" }));
    // the export's stand-in: our logits of the exported folder (float32: the checkpoint's weights exactly)
    entry(["logits", "--model", join(W, "sft", "export"), "--inputs", join(W, "inputs", "llama.ids.npy"), "--targets", join(W, "inputs", "llama.targets.npy"), "--out", join(W, "sft", "export-ours")]);

    if (!hasNumpy) {
      t.diagnostic(`${python} with NumPy not found: hf_parity.py report / check did not run`);
      return;
    }
    // ---- the reference files hf_parity.py ref would write, then the report
    mkdirSync(join(W, "ref"), { recursive: true });
    for (const [name, r] of refs) {
      const shape = readNpy(join(W, "ours", `${name}.logits.npy`)).shape;
      writeNpy(join(W, "ref", `${name}.f64.npy`), r.logits, shape);
      writeNpy(join(W, "ref", `${name}.f32.npy`), Float32Array.from(r.logits), shape);
      writeFileSync(join(W, "ref", `${name}.json`), JSON.stringify({ loss_f32: r.loss, loss_f64: r.loss, device: "float64 reference" }));
    }
    const exp = readNpy(join(W, "sft", "export-ours.logits.npy"));
    writeNpy(join(W, "ref", "trained.f32.npy"), exp.data as Float32Array, exp.shape);
    writeNpy(join(W, "ref", "trained.f64.npy"), Float64Array.from(exp.data as Float32Array), exp.shape);
    const el = readJson(join(W, "sft", "export-ours.json")).loss;
    writeFileSync(join(W, "ref", "trained.json"), JSON.stringify({ loss_f32: el, loss_f64: el }));
    const out = join(W, "out");
    const rep = py(["report", "--work", W, "--out", out]);
    assert.equal(rep.code, 0, rep.out);
    const res = readJson(join(out, "hf_parity.json"));
    assert.equal(res.logits.length, CASES.length);
    for (const row of res.logits) {
      assert.equal(row.status, "pass", `${row.case}: ${JSON.stringify(row)}`);
      assert.ok(row.err_vs_f64 < 2e-5 && row.loss_diff < 1e-5, `${row.case}: logits ${row.err_vs_f64}, loss ${row.loss_diff}`);
      // the loss our engine reports equals the float64 smoothed loss of the logits it wrote
      assert.ok(row.loss_ours_vs_own_logits < 1e-5, `${row.case}: ${row.loss_ours_vs_own_logits}`);
    }
    assert.equal(res.sft.status, "pass", JSON.stringify(res.sft));
    assert.ok(res.sft.max_rel_diff <= 1e-6 && res.sft.steps === 4);
    assert.equal(res.export.status, "pass", JSON.stringify(res.export));
    assert.equal(res.export.err_vs_f32, 0, "a float32 export holds the checkpoint's weights exactly");
    assert.ok(existsSync(join(out, "sft_curve.csv")));
    assert.match(rep.out, /\(c\) SFT curve .*\n\s+steps 4\/4: max rel diff/);
    t.diagnostic(res.logits.map((r: { case: string; err_vs_f64: number }) => `${r.case} ${r.err_vs_f64.toExponential(2)}`).join("; "));

    // hf_parity.py's learning-rate schedule is the trainer's (its lr column)
    const lrs = spawnSync(python, ["-c", `import json, sys; sys.path.insert(0, ${JSON.stringify(join(ROOT, "bench", "gpu"))}); import hf_parity as h
o = json.load(open(sys.argv[1]))["optim"]
hp = dict(h.HP, lr=o["lr"], min_lr_ratio=o["minLrRatio"], warmup_steps=o["warmupSteps"])
print(json.dumps([h.learning_rate(s, 4, hp) for s in range(1, 5)]))`, join(W, "sft", "run.json")], { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
    assert.equal(lrs.status, 0, lrs.stderr);
    (JSON.parse(lrs.stdout) as number[]).forEach((lr, i) => assert.ok(Math.abs(lr - ours.lr[i]) <= 1e-6 * lr, `lr of step ${i + 1}: python ${lr}, train log ${ours.lr[i]}`));
  } finally {
    cleanup();
  }
});

test("hf_parity.py: its self-check passes, and the PyTorch phases skip with one line where PyTorch is missing", (t) => {
  if (!hasNumpy) {
    t.skip(`${python} with NumPy not found`);
    return;
  }
  const c = py(["check"]);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /hf_parity check: ok/);
  if (spawnSync(python, ["-c", "import torch, transformers"]).status !== 0) {
    const { dir, cleanup } = tempDir("parity-skip");
    try {
      const m = py(["make", "--work", dir]);
      assert.equal(m.code, 3, m.out);
      assert.match(m.out, /^hf_parity make: skipped: .*PyTorch and transformers are needed/m);
    } finally {
      cleanup();
    }
  } else t.diagnostic("PyTorch is installed: make was not run here (it writes GBs)");
});
