// The CUDA fused linear + label-smoothed cross-entropy against the independent float64
// reference (test/engine/reference.ts) and against the CPU path, on the CPU tests' edge
// cases, both dtypes, every gradient mode (streamed with one or many blocks, chunked),
// tile skipping and the device-memory API. Without a GPU only the fallback tests run;
// on the GPU machine scripts/gpu/job.sh runs this file (bundled).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  linearCrossEntropy, toBf16, fromBf16, engineInfo, resolveDevice, DeviceArray, deviceMatrix,
  linearCrossEntropyDevice, cudaAvailable, cudaStats, type Matrix, type LinearCrossEntropyResult,
} from "../../backend/engine/index.js";
import { referenceLoss, type RefOptions, type RefResult } from "../engine/reference.js";
import { integers, normals, relError, rng } from "../helpers/random.js";
import { CASES as CPU_CASES, makeInputs, type Case } from "../engine/cases.js";

const GPU = cudaAvailable();
const needGpu = GPU ? false : engineInfo().cudaMessage;
// Hopper: the cuBLAS path's logits stay in registers (logit_tma_kernel) when D is a multiple of 8;
// with D not a multiple of 8 (and off Hopper) cuBLAS writes them into an fp32 slab.
const HOPPER = /\(sm_9\d/.test(engineInfo().cudaMessage);

type Dtype = "float32" | "bfloat16";
const TOL = {
  float32: { loss: 1e-5, grad: 1e-4 },
  bfloat16: { loss: 1e-3, grad: 5e-3 },
};

// The CPU tests' edge cases, plus shapes that cross the CUDA tiles (128 rows × 256 / 128 columns).
const CASES: Case[] = [
  ...CPU_CASES,
  { name: "several CUDA tiles, D a multiple of 8", N: 300, D: 96, V: 1100, eps: 0.1, bias: true, ignoreFraction: 0.1 },
  { name: "several CUDA tiles, ragged", N: 257, D: 72, V: 777, eps: 0.1, temperature: 1.3 },
];

type Inputs = ReturnType<typeof makeInputs>;

function reference(c: Case, inp: Inputs, dtype: Dtype): RefResult {
  const E32 = dtype === "bfloat16" ? fromBf16(toBf16(inp.E)) : inp.E;
  const C32 = dtype === "bfloat16" ? fromBf16(toBf16(inp.C)) : inp.C;
  const opts: RefOptions = {
    eps: c.eps, ignoreIndex: inp.ignoreIndex, temperature: c.temperature ?? 1, softcap: c.softcap ?? 0,
    bias: inp.bias, reduction: c.reduction ?? "mean", gradOutput: inp.gradOutput,
  };
  return referenceLoss(E32, C32, inp.targets, c.N, c.D, c.V, opts);
}

function matrices(c: Case, inp: Inputs, dtype: Dtype): { e: Matrix; cm: Matrix } {
  return {
    e: { data: dtype === "bfloat16" ? toBf16(inp.E) : inp.E, rows: c.N, cols: c.D },
    cm: { data: dtype === "bfloat16" ? toBf16(inp.C) : inp.C, rows: c.V, cols: c.D },
  };
}

/** A result of either path, host or device (the device call reports no device field). */
type Out = Omit<LinearCrossEntropyResult, "device">;

function runHost(c: Case, inp: Inputs, dtype: Dtype, device: "cpu" | "cuda", workspaceBytes = 0): Out {
  const { e, cm } = matrices(c, inp, dtype);
  return linearCrossEntropy(e, cm, inp.targets, {
    labelSmoothing: c.eps, temperature: c.temperature ?? 1, softcap: c.softcap ?? null,
    bias: inp.bias ?? null, reduction: (c.reduction ?? "mean") as "mean", grad: true, gradOutput: inp.gradOutput,
    ignoreIndex: inp.ignoreIndex, device, workspaceBytes,
  });
}

type Extra = { workspaceBytes?: number; tileSkipping?: boolean | number; impl?: "auto" | "fused" | "cublas" };

function runDevice(c: Case, inp: Inputs, dtype: Dtype, extra: Extra = {}): Out {
  const { e, cm } = matrices(c, inp, dtype);
  const owned: DeviceArray[] = [];
  const up = (a: Float32Array | Uint16Array | Int32Array) => {
    const d = DeviceArray.from(a);
    owned.push(d);
    return d;
  };
  try {
    const ed = deviceMatrix(up(e.data), c.N, c.D), cd = deviceMatrix(up(cm.data), c.V, c.D);
    const t = up(inp.targets);
    const bias = inp.bias ? up(inp.bias) : null;
    const go = inp.gradOutput instanceof Float32Array ? up(inp.gradOutput) : inp.gradOutput;
    const r = linearCrossEntropyDevice(ed, cd, t, {
      labelSmoothing: c.eps, temperature: c.temperature ?? 1, softcap: c.softcap ?? null, bias,
      reduction: c.reduction ?? "mean", grad: true, gradOutput: go, ignoreIndex: inp.ignoreIndex, ...extra,
    });
    for (const a of [r.loss, r.lse, r.dE, r.dC, r.dBias]) if (a) owned.push(a);
    const loss = r.loss.toFloat32();
    const out: Out = {
      loss: (c.reduction ?? "mean") === "none" ? loss : loss[0]!,
      lse: r.lse!.toFloat32(), validCount: r.validCount, dE: r.dE!.toFloat32(), dC: r.dC!.toFloat32(),
    };
    if (r.dBias) out.dBias = r.dBias.toFloat32();
    return out;
  } finally {
    for (const a of owned) a.free();
  }
}

function compare(label: string, out: Out, ref: RefResult, tol: { loss: number; grad: number }, withBias: boolean): void {
  assert.equal(out.validCount, ref.valid, `${label}: valid count`);
  if (out.loss instanceof Float32Array) {
    const re = relError(out.loss, ref.loss as Float64Array);
    assert.ok(re <= tol.loss || (ref.loss as Float64Array).every((x) => x === 0), `${label}: per-token loss rel ${re}`);
  } else {
    const rel = Math.abs(out.loss - (ref.loss as number)) / Math.max(1, Math.abs(ref.loss as number));
    assert.ok(rel <= tol.loss, `${label}: loss ${out.loss} vs ${ref.loss} (rel ${rel})`);
  }
  for (let i = 0; i < ref.lse.length; i++) {
    if (Number.isNaN(ref.lse[i])) assert.ok(Number.isNaN(out.lse[i]), `${label}: lse[${i}] of an ignored token is NaN`);
    else assert.ok(Math.abs(out.lse[i]! - ref.lse[i]!) <= tol.loss * Math.max(1, Math.abs(ref.lse[i]!)), `${label}: lse[${i}] ${out.lse[i]} vs ${ref.lse[i]}`);
  }
  // Where the exact gradient is 0 (V = 1): an absolute bound. bf16 gradient tiles round
  // w·(p − (1−ε)) to 8 bits, so what should cancel leaves up to 2^-9 of w·|C| behind.
  const zeroTol = tol.grad > 1e-4 ? 2 ** -8 : 1e-6;
  const gradOk = (a: Float32Array, b: Float64Array) => (b.every((x) => x === 0) ? a.every((x) => Math.abs(x) < zeroTol) : relError(a, b) <= tol.grad);
  assert.ok(gradOk(out.dE!, ref.dE), `${label}: dE relative error ${relError(out.dE!, ref.dE)}`);
  assert.ok(gradOk(out.dC!, ref.dC), `${label}: dC relative error ${relError(out.dC!, ref.dC)}`);
  if (withBias) assert.ok(out.dBias && gradOk(out.dBias, ref.dBias), `${label}: dBias relative error ${out.dBias && relError(out.dBias, ref.dBias)}`);
}

// ---------------------------------------------------------------------------------------
// Without a GPU (CI): clear messages and the CPU fallback.

test("without a usable GPU the engine says why, and device 'auto' falls back to the CPU", { skip: GPU ? "a GPU is present" : false }, () => {
  const info = engineInfo();
  assert.equal(info.cudaDevices, 0);
  assert.ok(info.cudaMessage.length > 10, info.cudaMessage);
  assert.equal(resolveDevice("auto"), "cpu");
  const e = { data: new Float32Array([1, 2]), rows: 1, cols: 2 };
  const c = { data: new Float32Array([1, 0, 0, 1]), rows: 2, cols: 2 };
  assert.throws(() => linearCrossEntropy(e, c, new Int32Array([1]), { device: "cuda" }), /not available/);
  assert.equal(linearCrossEntropy(e, c, new Int32Array([1]), { device: "auto" }).device, "cpu");
  assert.throws(() => DeviceArray.alloc("float32", 4), /CUDA is not available/);
});

test("the device API rejects bad arguments with TypeError/RangeError naming the field", () => {
  const fake = { data: {}, rows: 1, cols: 1 } as never;
  assert.throws(() => linearCrossEntropyDevice(fake, fake, {} as never), (err: Error) => err instanceof TypeError && /E must be a DeviceMatrix/.test(err.message));
  assert.throws(() => DeviceArray.alloc("float64" as never, 4), TypeError);
  assert.throws(() => DeviceArray.alloc("float32", -1), RangeError);
});

// ---------------------------------------------------------------------------------------
// On the GPU.

for (const [k, c] of CASES.entries()) {
  test(`CUDA matches the float64 reference: ${c.name}`, { skip: needGpu }, () => {
    const inp = makeInputs(c, 2000 + k);
    for (const dtype of ["float32", "bfloat16"] as const) {
      const ref = reference(c, inp, dtype);
      compare(`${c.name} [host arrays, ${dtype}]`, runHost(c, inp, dtype, "cuda"), ref, TOL[dtype], !!inp.bias);
      compare(`${c.name} [device arrays, ${dtype}]`, runDevice(c, inp, dtype), ref, TOL[dtype], !!inp.bias);
      if (dtype === "bfloat16") {
        // both GEMM engines, whatever 'auto' picked above
        compare(`${c.name} [fused kernels]`, runDevice(c, inp, dtype, { impl: "fused" }), ref, TOL[dtype], !!inp.bias);
        assert.notEqual(cudaStats().lastGemm, "cublas");
        compare(`${c.name} [cuBLAS]`, runDevice(c, inp, dtype, { impl: "cublas" }), ref, TOL[dtype], !!inp.bias);
        if (inp.targets.some((t) => t !== inp.ignoreIndex)) assert.equal(cudaStats().lastGemm, "cublas");
      }
    }
  });
}

test("CUDA and CPU paths agree on the same fp32 inputs", { skip: needGpu }, () => {
  for (const k of [2, 8, 11, 16]) {
    const c = CASES[k]!;
    const inp = makeInputs(c, 3000 + k);
    const cpu = runHost(c, inp, "float32", "cpu");
    const gpu = runHost(c, inp, "float32", "cuda");
    if (typeof cpu.loss === "number") assert.ok(Math.abs((gpu.loss as number) - cpu.loss) <= 1e-5 * Math.max(1, Math.abs(cpu.loss)), c.name);
    else assert.ok(relError(gpu.loss as Float32Array, cpu.loss) <= 1e-5, c.name);
    assert.ok(relError(gpu.dE!, cpu.dE!) <= 1e-4, `${c.name}: dE ${relError(gpu.dE!, cpu.dE!)}`);
    assert.ok(relError(gpu.dC!, cpu.dC!) <= 1e-4, `${c.name}: dC ${relError(gpu.dC!, cpu.dC!)}`);
  }
});

test("every gradient mode of the fused kernels gives the same result: default, many small blocks, chunked workspace", { skip: needGpu }, () => {
  // > 1024 valid rows, so that a 1024-row chunk budget gives two chunks
  const c: Case = { name: "modes", N: 1300, D: 40, V: 600, eps: 0.1, bias: true, ignoreFraction: 0.1 };
  const cap: Case = { ...c, name: "modes with softcap", softcap: 4, temperature: 0.8 };
  for (const cs of [c, cap]) {
    const inp = makeInputs(cs, 77);
    for (const dtype of ["float32", "bfloat16"] as const) {
      const ref = reference(cs, inp, dtype);
      const vp = Math.ceil(cs.V / 8) * 8;
      for (const [ws, mode, rows] of [[0, "streamed", 0], [65536, "streamed", 128], [vp * 4 * 1024, "chunked", 1024]] as const) {
        const out = runDevice(cs, inp, dtype, { workspaceBytes: ws, impl: "fused" });
        const st = cudaStats();
        assert.equal(st.lastMode, mode, `${cs.name} ${dtype} ws=${ws}`);
        if (rows) assert.equal(st.lastBlockRows, rows, `${cs.name} ${dtype} ws=${ws}: block rows`);
        compare(`${cs.name} [${dtype}, workspaceBytes ${ws}]`, out, ref, TOL[dtype], true);
      }
    }
  }
});

test("every plan of the cuBLAS path gives the same result: whole rows, vocabulary blocks, row and vocabulary blocks, row chunks", { skip: needGpu }, () => {
  // N = 1300 rows (10% ignored), V = 600 (padded to 768 in the slab): the workspace picks the plan;
  // D = 42 (not a multiple of 8) takes the fp32 slab, D = 40 the logits in registers on Hopper.
  const c: Case = { name: "cuBLAS plans", N: 1300, D: 40, V: 600, eps: 0.1, bias: true, ignoreFraction: 0.1 };
  const cap: Case = { ...c, name: "cuBLAS plans with softcap", softcap: 4, temperature: 0.8 };
  // fp32 slab (the plan off Hopper or with D not a multiple of 8)
  const slabPlans = [
    [0, "chunked", 1300, 600],            // the default 48 MiB slab holds every row
    [1300 * 4 * 512, "streamed", 1300, 512],  // all rows × 512 columns: two vocabulary blocks
    [256 * 1024, "streamed", 128, 512],   // 128 rows × 512 columns: 11 × 2 blocks
    [1024 * 768 * 4, "chunked", 1024, 600],   // two row chunks
  ] as const;
  // logits in registers (Hopper, D = 40): streamed blocks of bf16 G, twice the columns per byte;
  // chunked with packed bf16 logits (no softcap) or the fp32 slab (softcap)
  const regPlans = [
    [0, "chunked", 1300, 600],
    [1300 * 4 * 512, "streamed", 1300, 768],  // all rows × all (padded) columns: one block
    [256 * 1024, "streamed", 256, 512],   // 256 rows × 512 columns: 6 × 2 blocks
  ] as const;
  const runs = [...slabPlans.map((pl) => [...pl, "slab"] as const), ...(HOPPER ? regPlans.map((pl) => [...pl, "registers"] as const) : [])];
  for (const base of [c, cap]) {
    const inputs = { slab: { ...base, D: 42 }, registers: base };
    const refs = new Map<Case, [Inputs, RefResult]>();
    for (const cs of Object.values(inputs)) {
      const inp = makeInputs(cs, 78);
      refs.set(cs, [inp, reference(cs, inp, "bfloat16")]);
    }
    for (const [ws, mode, rows, cols, logits] of runs) {
      const cs = inputs[logits];
      const [inp, ref] = refs.get(cs)!;
      const out = runDevice(cs, inp, "bfloat16", { workspaceBytes: ws, impl: "cublas" });
      const st = cudaStats();
      const label = `${cs.name} D=${cs.D} ws=${ws} (${logits})`;
      assert.equal(st.lastGemm, "cublas", label);
      // the statistics pass: vocabulary splits of the logit kernel, 0 through the slab (chunks with a softcap keep fp32 logits)
      if (mode === "streamed") assert.equal(st.lastSplits > 0, logits === "registers", `${label}: splits ${st.lastSplits}`);
      assert.equal(st.lastMode, mode, label);
      assert.equal(st.lastBlockRows, rows, `${label}: rows`);
      assert.equal(st.lastBlockCols, cols, `${label}: columns`);
      compare(`${label} [cuBLAS]`, out, ref, TOL.bfloat16, true);
    }
  }
});

test("cuBLAS path: logits in registers (Hopper) match the fused kernels and the reference; the fp32 slab (D not a multiple of 8) the reference", { skip: needGpu }, () => {
  // D a multiple of 8 lets the copy engine read E and C: a streamed call runs logit_tma_kernel
  // for the statistics (vocabulary splits > 0) and for the bf16 gradient blocks; the fused kernels
  // (impl 'fused') compute the same bf16 products with another fp32 accumulation order. The same
  // case with D + 1 takes the fp32 slab. A 512-byte workspace keeps these small shapes out of
  // chunked mode and gives several row and vocabulary blocks.
  const cases: Case[] = [
    { name: "N=1", N: 1, D: 8, V: 50, eps: 0.1 },
    { name: "tiles of rows and columns, ragged V, bias, ignored", N: 300, D: 96, V: 1100, eps: 0.1, bias: true, ignoreFraction: 0.1 },
    { name: "K past one 64-deep step, temperature", N: 140, D: 200, V: 513, eps: 0.05, temperature: 0.7 },
    { name: "softcap (dense smoothing term)", N: 90, D: 16, V: 300, eps: 0.1, softcap: 3, scale: 2 },
    { name: "logits of magnitude 1e4", N: 24, D: 16, V: 190, eps: 0.1, scale: 1e4 },
    { name: "logits of magnitude 1e4, 30% ignored (their G must be 0, not inf · 0)", N: 40, D: 16, V: 190, eps: 0.1, scale: 1e4, ignoreFraction: 0.3 },
    { name: "eps=0, reduction none", N: 70, D: 24, V: 260, eps: 0, reduction: "none", gradOutput: "per-token", ignoreFraction: 0.3 },
  ];
  for (const [k, c] of cases.entries()) {
    const inp = makeInputs(c, 4100 + k);
    const ref = reference(c, inp, "bfloat16");
    const regs = runDevice(c, inp, "bfloat16", { impl: "cublas", workspaceBytes: 512 });
    assert.equal(cudaStats().lastMode, "streamed", c.name);
    if (HOPPER) assert.ok(cudaStats().lastSplits > 0, `${c.name}: logits in registers`);
    compare(`${c.name} [logits in registers]`, regs, ref, TOL.bfloat16, !!inp.bias);
    const fused = runDevice(c, inp, "bfloat16", { impl: "fused" });
    assert.equal(cudaStats().lastGemm, HOPPER ? "wgmma" : "mma.sync", `${c.name}: fused kernels`);
    // Same bf16 products, fp32 accumulation in another order: far below the bf16 tolerance.
    for (let i = 0; i < c.N; i++)
      if (!Number.isNaN(fused.lse[i]!)) assert.ok(Math.abs(regs.lse[i]! - fused.lse[i]!) <= 1e-5 * Math.max(1, Math.abs(fused.lse[i]!)), `${c.name}: lse[${i}] ${regs.lse[i]} vs ${fused.lse[i]}`);
    if (typeof fused.loss === "number") assert.ok(Math.abs((regs.loss as number) - fused.loss) <= 1e-5 * Math.max(1, Math.abs(fused.loss)), c.name);
    else assert.ok(relError(regs.loss as Float32Array, fused.loss) <= 1e-5, c.name);
    // A logit of magnitude S summed in another order moves by about S·2^-24·√D; p and the bf16 gradient
    // weights move with it (measured on an H100: 5.4e-3 at S = 1e4, D = 16), hence the bound's second term.
    const orderTol = 2e-3 + 4 * (c.scale ?? 1) * 2 ** -24 * Math.sqrt(c.D);
    assert.ok(relError(regs.dE!, fused.dE!) <= orderTol, `${c.name}: dE ${relError(regs.dE!, fused.dE!)} (bound ${orderTol})`);
    // D + 1: not a multiple of 8, so cuBLAS writes the logits into the fp32 slab
    const odd: Case = { ...c, name: `${c.name}, D + 1`, D: c.D + 1 };
    const oinp = makeInputs(odd, 4150 + k);
    const slab = runDevice(odd, oinp, "bfloat16", { impl: "cublas", workspaceBytes: 512 });
    assert.equal(cudaStats().lastSplits, 0, `${odd.name}: slab plan`);
    compare(`${odd.name} [fp32 slab]`, slab, reference(odd, oinp, "bfloat16"), TOL.bfloat16, !!oinp.bias);
  }
});

test("cuBLAS path, chunked mode with packed bf16 logits (Hopper): two chunks match the fused kernels' chunks and the reference", { skip: needGpu }, () => {
  // A 3 MiB workspace holds 1920 packed rows of V = 600 (768 bf16 + 3 tile maxima per row; off Hopper
  // 1024 fp32 rows of 768) — and 1280 fp32 rows of the fused kernels' chunks (V rounded up to 8 = 600
  // floats a row: 1310 rows, cut to a multiple of 128): 2500 rows take two chunks either way.
  const c: Case = { name: "packed chunks", N: 2500, D: 40, V: 600, eps: 0.1, bias: true, ignoreFraction: 0.1, temperature: 0.8 };
  const peaked: Case = { ...c, name: "packed chunks, logits of magnitude 30", scale: 30 };
  const ws = 1024 * 768 * 4;
  for (const [k, cs] of [c, peaked].entries()) {
    const inp = makeInputs(cs, 4200 + k);
    const ref = reference(cs, inp, "bfloat16");
    const packed = runDevice(cs, inp, "bfloat16", { impl: "cublas", workspaceBytes: ws });
    const st = cudaStats();
    assert.equal(st.lastMode, "chunked", cs.name);
    if (HOPPER) assert.equal(st.lastBlockRows, 1920, `${cs.name}: packed rows per chunk`);
    compare(`${cs.name} [packed]`, packed, ref, TOL.bfloat16, true);
    const fp32 = runDevice(cs, inp, "bfloat16", { impl: "fused", workspaceBytes: ws });
    assert.deepEqual([cudaStats().lastMode, cudaStats().lastBlockRows], ["chunked", 1280], `${cs.name}: fp32 rows per chunk`);
    compare(`${cs.name} [fused, fp32 chunks]`, fp32, ref, TOL.bfloat16, true);
    // The statistics come from the same fp32 logits: lse agrees closely; G differs by the packing.
    for (let i = 0; i < cs.N; i++)
      if (!Number.isNaN(fp32.lse[i]!)) assert.ok(Math.abs(packed.lse[i]! - fp32.lse[i]!) <= 1e-5 * Math.max(1, Math.abs(fp32.lse[i]!)), `${cs.name}: lse[${i}]`);
  }
});

test("impl 'cublas' refuses fp32 inputs and tile skipping with a TypeError", { skip: needGpu }, () => {
  const c = CASES[16]!;
  const inp = makeInputs(c, 5);
  assert.throws(() => runDevice(c, inp, "float32", { impl: "cublas" }), (err: Error) => err instanceof TypeError && /needs bfloat16/.test(err.message));
  assert.throws(() => runDevice(c, inp, "bfloat16", { impl: "cublas", tileSkipping: true }),
    (err: Error) => err instanceof TypeError && /tile skipping runs in the fused kernels/.test(err.message));
});

test("tile skipping keeps the smoothing term exact and skips tiles far from the targets", { skip: needGpu }, () => {
  // Peaked rows: E_i = 8·C_{y_i}/|C_{y_i}|² + noise, so p(target) ≈ 1 and every other
  // probability is far below 2^-12; tiles without a target are skipped.
  const N = 256, D = 64, V = 2048;
  const r = rng(5);
  const C = normals(r, V * D, 1 / Math.sqrt(D));
  const targets = integers(r, N, 256);  // targets in the first tile: most tiles hold none
  const E = normals(r, N * D, 0.05);
  for (let i = 0; i < N; i++) {
    let n2 = 0;
    for (let k = 0; k < D; k++) n2 += C[targets[i]! * D + k]! ** 2;
    for (let k = 0; k < D; k++) E[i * D + k]! += (30 * C[targets[i]! * D + k]!) / n2;
  }
  const c: Case = { name: "peaked", N, D, V, eps: 0.1 };
  const inp = { E, C, targets, bias: undefined, gradOutput: undefined, ignoreIndex: -100 };
  for (const dtype of ["float32", "bfloat16"] as const) {
    const ref = reference(c, inp, dtype);
    const dense = runDevice(c, inp, dtype, { impl: "fused" });
    assert.equal(cudaStats().lastTilesSkipped, 0);
    // bf16: the automatic threshold (2^-12); fp32's automatic one (2^-28) keeps every tile of
    // these inputs (non-target probabilities reach ~1e-7), so an explicit 1e-5 there.
    const sparse = runDevice(c, inp, dtype, { tileSkipping: dtype === "bfloat16" ? true : 1e-5 });
    const st = cudaStats();
    assert.ok(st.lastTilesSkipped > 0 && st.lastTilesSkipped < st.lastTiles, `${dtype}: skipped ${st.lastTilesSkipped} of ${st.lastTiles}`);
    compare(`peaked, skipping [${dtype}]`, sparse, ref, TOL[dtype], false);
    // A threshold nothing falls under reproduces the dense result bit for bit.
    const none = runDevice(c, inp, dtype, { tileSkipping: 1e-38 });
    assert.equal(cudaStats().lastTilesSkipped, 0);
    assert.deepEqual(none.dE, dense.dE);
    assert.deepEqual(none.dC, dense.dC);
  }
});

test("results are bitwise reproducible (no floating-point atomics)", { skip: needGpu }, () => {
  const c = CASES[16]!;
  const inp = makeInputs(c, 99);
  for (const dtype of ["float32", "bfloat16"] as const) {
    const a = runDevice(c, inp, dtype), b = runDevice(c, inp, dtype);
    assert.equal(a.loss, b.loss);
    assert.deepEqual(a.dE, b.dE);
    assert.deepEqual(a.dC, b.dC);
    assert.deepEqual(a.dBias, b.dBias);
    // host arrays run the same kernels on the same rows and weights
    const h = runHost(c, inp, dtype, "cuda");
    assert.deepEqual(h.dE, a.dE);
    assert.deepEqual(h.dC, a.dC);
  }
});

test("device API: outputs into given buffers, per-token gradOutput, ignored tokens, N=0", { skip: needGpu }, () => {
  const c: Case = { name: "none", N: 70, D: 40, V: 300, eps: 0.1, reduction: "none", gradOutput: "per-token", ignoreFraction: 0.3 };
  const inp = makeInputs(c, 5);
  const ref = reference(c, inp, "float32");
  const E = DeviceArray.from(inp.E), C = DeviceArray.from(inp.C), T = DeviceArray.from(inp.targets);
  const G = DeviceArray.from(inp.gradOutput as Float32Array);
  const out = {
    loss: DeviceArray.alloc("float32", c.N), lse: DeviceArray.alloc("float32", c.N),
    dE: DeviceArray.alloc("float32", c.N * c.D), dC: DeviceArray.alloc("float32", c.V * c.D),
  };
  try {
    const r = linearCrossEntropyDevice(deviceMatrix(E, c.N, c.D), deviceMatrix(C, c.V, c.D), T, {
      labelSmoothing: 0.1, reduction: "none", grad: true, gradOutput: G, out,
    });
    assert.equal(r.loss, out.loss);
    assert.equal(r.dE, out.dE);
    const loss = out.loss.toFloat32();
    for (let i = 0; i < c.N; i++) if (inp.targets[i] === -100) assert.equal(loss[i], 0);
    compare("device none", { loss, lse: out.lse.toFloat32(), validCount: r.validCount, dE: out.dE.toFloat32(), dC: out.dC.toFloat32() }, ref, TOL.float32, false);
    assert.throws(() => linearCrossEntropyDevice(deviceMatrix(E, c.N, c.D), deviceMatrix(C, c.V, c.D), T, { reduction: "none", grad: true, gradOutput: 1 }), TypeError);
    assert.throws(() => linearCrossEntropyDevice(deviceMatrix(E, c.N, c.D), deviceMatrix(C, c.V, c.D), T, { out: { loss: DeviceArray.alloc("float32", 2) } }), /out.loss/);
  } finally {
    for (const a of [E, C, T, G, ...Object.values(out)]) a.free();
  }
  // all ignored and N = 0
  const e0 = DeviceArray.alloc("float32", 0), t0 = DeviceArray.alloc("int32", 0);
  const c1 = DeviceArray.from(normals(rng(1), 4 * 3));
  const e2 = DeviceArray.from(normals(rng(2), 5 * 3)), t2 = DeviceArray.from(new Int32Array(5).fill(-100));
  try {
    const empty = linearCrossEntropyDevice(deviceMatrix(e0, 0, 3), deviceMatrix(c1, 4, 3), t0, { grad: true });
    assert.ok(Number.isNaN(empty.loss.toFloat32()[0]));
    assert.equal(empty.validCount, 0);
    assert.ok(empty.dC!.toFloat32().every((x) => x === 0));
    const ign = linearCrossEntropyDevice(deviceMatrix(e2, 5, 3), deviceMatrix(c1, 4, 3), t2, { grad: true, labelSmoothing: 0.1 });
    assert.ok(Number.isNaN(ign.loss.toFloat32()[0]));
    assert.ok(ign.dE!.toFloat32().every((x) => x === 0) && ign.dC!.toFloat32().every((x) => x === 0));
    assert.ok(ign.lse!.toFloat32().every((x) => Number.isNaN(x)));
    const sum = linearCrossEntropyDevice(deviceMatrix(e2, 5, 3), deviceMatrix(c1, 4, 3), t2, { reduction: "sum" });
    assert.equal(sum.loss.toFloat32()[0], 0);
    for (const x of [empty, ign, sum]) for (const a of [x.loss, x.lse, x.dE, x.dC]) a?.free();
  } finally {
    for (const a of [e0, t0, c1, e2, t2]) a.free();
  }
});

test("device API: bad targets and NaN inputs in GPU memory raise RangeError", { skip: needGpu }, () => {
  const N = 10, D = 8, V = 20;
  const r = rng(3);
  const Eh = normals(r, N * D), Ch = normals(r, V * D);
  const Th = integers(r, N, V);
  Th[3] = 999;
  const E = DeviceArray.from(Eh), C = DeviceArray.from(Ch), T = DeviceArray.from(Th);
  try {
    assert.throws(() => linearCrossEntropyDevice(deviceMatrix(E, N, D), deviceMatrix(C, V, D), T),
      (err: Error) => err instanceof RangeError && /targets\[3\] = 999/.test(err.message));
    T.upload(new Int32Array([1]), 3);
    Eh[2 * D + 5] = NaN;
    E.upload(Eh);
    assert.throws(() => linearCrossEntropyDevice(deviceMatrix(E, N, D), deviceMatrix(C, V, D), T),
      (err: Error) => err instanceof RangeError && /E contains NaN or Inf at row 2, column 5/.test(err.message));
    // with the scan off the call goes through (garbage in, garbage out, but no crash)
    const res = linearCrossEntropyDevice(deviceMatrix(E, N, D), deviceMatrix(C, V, D), T, { checkFinite: false });
    res.loss.free();
    res.lse?.free();
  } finally {
    for (const a of [E, C, T]) a.free();
  }
});
