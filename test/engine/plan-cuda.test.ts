// The CUDA loss's planner, on the CPU: which engine, mode and logit storage each kind of input gets
// (the plans that only some inputs reach — the fp32 slab off Hopper, for D not a multiple of 8, for
// misaligned inputs and for softcapped chunks — are chosen by those inputs, never by a switch), the
// block sizes by the documented rules, and the workspace bound checked against every valid count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planLinearCrossEntropyCuda, type CudaLossPlanOptions } from "../../backend/engine/index.js";

const H100 = { sms: 132, ccMajor: 9 };
const A100 = { sms: 108, ccMajor: 8 };
const MiB = 1 << 20;
const bf16 = (extra: Partial<CudaLossPlanOptions> = {}): CudaLossPlanOptions =>
  ({ dtype: "bfloat16", grad: true, labelSmoothing: 0.1, device: H100, ...extra });
const pad256 = (v: number) => Math.ceil(v / 256) * 256;

test("bf16 on Hopper: logits in registers, bf16 gradient blocks of all rows × a 56 MiB slab's columns", () => {
  const N = 8192, D = 2304, V = 256000;
  const p = planLinearCrossEntropyCuda(N, D, V, bf16());
  assert.equal(p.engine, "cublas");
  assert.equal(p.mode, "streamed");
  assert.equal(p.logits, "registers");
  assert.equal(p.blockRows, N);
  // bf16 G: 2 bytes an element, columns in whole 256-wide tiles
  assert.equal(p.blockCols, Math.floor((56 * MiB) / (2 * N) / 256) * 256);
  assert.equal(p.blockCols, 3584);
  assert.ok(p.scratchBytes < 64 * MiB, `scratch ${p.scratchBytes}`);
  // the statistics pass: the fewest splits minimizing waves × tiles per CTA over 132 SMs
  const cost = (s: number) => Math.ceil((N / 128) * s / 132) * Math.ceil(V / 256 / s);
  let best = 1;
  for (let s = 2; s <= 64; s++) if (cost(s) < cost(best)) best = s;
  assert.equal(p.splits, best);
  const forward = planLinearCrossEntropyCuda(N, D, V, bf16({ grad: false }));
  assert.equal(forward.mode, "forward");
  assert.equal(forward.logits, "registers");
});

test("the fp32 slab: off Hopper, with D not a multiple of 8, and with misaligned inputs", () => {
  const N = 4096, V = 50257;
  const cases: [string, number, Partial<CudaLossPlanOptions>][] = [
    ["A100", 1024, { device: A100 }],
    ["D = 1000 + 4", 1004, {}],
    ["misaligned E and C", 1024, { aligned: false }],
  ];
  for (const [label, D, extra] of cases) {
    const p = planLinearCrossEntropyCuda(N, D, V, bf16(extra));
    assert.equal(p.engine, "cublas", label);
    assert.equal(p.logits, "slab", label);
    assert.equal(p.splits, 0, label);
    assert.equal(p.blockRows, N, label);
    assert.equal(p.blockCols, Math.min(pad256(V), Math.floor((56 * MiB) / (4 * N) / 256) * 256), label);  // fp32 logits
  }
  const ok = planLinearCrossEntropyCuda(N, 1024, V, bf16());
  assert.equal(ok.logits, "registers");
});

test("chunked mode: packed bf16 logits without a softcap, an fp32 slab with one", () => {
  const N = 8192, D = 2304, V = 256000, ws = 1 << 30;
  const packed = planLinearCrossEntropyCuda(N, D, V, bf16({ workspaceBytes: ws }));
  assert.equal(packed.mode, "chunked");
  assert.equal(packed.logits, "packed");
  const rowBytes = pad256(V) * 2 + Math.ceil(V / 256) * 4;  // bf16 (s − tile max) + an fp32 maximum per tile
  assert.equal(packed.blockRows, Math.floor(Math.floor(ws / rowBytes) / 128) * 128);
  assert.equal(packed.blockRows, 2048);
  const capped = planLinearCrossEntropyCuda(N, D, V, bf16({ workspaceBytes: ws, softcap: 30 }));
  assert.equal(capped.mode, "chunked");
  assert.equal(capped.logits, "slab");
  assert.equal(capped.blockRows, Math.floor(Math.floor(ws / (pad256(V) * 4)) / 128) * 128);
  assert.equal(capped.blockRows, 1024);
  // below min(1024, N)·V·4 bytes the workspace is a streamed slab
  const small = planLinearCrossEntropyCuda(N, D, V, bf16({ workspaceBytes: 1024 * pad256(V) * 4 - 1 }));
  assert.equal(small.mode, "streamed");
});

test("the fused kernels: fp32 inputs, tile skipping, mostly ignored tokens, impl 'fused'", () => {
  const N = 3000, D = 512, V = 32000;
  const f32 = planLinearCrossEntropyCuda(N, D, V, bf16({ dtype: "float32" }));
  assert.deepEqual([f32.engine, f32.gemm], ["fused", "mma.sync"]);
  const skip = planLinearCrossEntropyCuda(N, D, V, bf16({ tileSkipping: true }));
  assert.deepEqual([skip.engine, skip.gemm], ["fused", "wgmma"]);
  assert.equal(planLinearCrossEntropyCuda(N, D, V, bf16({ tileSkipping: true, device: A100 })).gemm, "mma.sync");
  // auto takes cuBLAS only when at least a third of the tokens are valid (it computes ignored rows)
  assert.equal(planLinearCrossEntropyCuda(N, D, V, bf16({ validCount: 1000 })).engine, "cublas");
  assert.equal(planLinearCrossEntropyCuda(N, D, V, bf16({ validCount: 999 })).engine, "fused");
  assert.equal(planLinearCrossEntropyCuda(N, D, V, bf16({ device: { ...H100, blasAvailable: false } })).engine, "fused");
  assert.equal(planLinearCrossEntropyCuda(N, D, V, bf16({ impl: "fused" })).engine, "fused");
  // streamed block of the fused kernels: ~32 MiB of bf16 G, whole 128-row and 256-column tiles
  const fused = planLinearCrossEntropyCuda(N, D, V, bf16({ impl: "fused" }));
  assert.equal(fused.mode, "streamed");
  assert.equal(fused.blockRows % 128, 0);
  assert.equal(fused.blockCols % 256, 0);
  assert.ok(fused.blockRows * fused.blockCols * 2 <= 32 * MiB);
  // with a workspace of ≥ min(1024, rows)·V·4 bytes: chunks of whole rows
  const chunk = planLinearCrossEntropyCuda(N, D, V, bf16({ impl: "fused", workspaceBytes: 1024 * 32000 * 4 }));
  assert.deepEqual([chunk.mode, chunk.blockRows, chunk.blockCols], ["chunked", 1024, 32000]);
});

test("options the inputs cannot take are refused, naming the option", () => {
  assert.throws(() => planLinearCrossEntropyCuda(8, 16, 32, bf16({ dtype: "float32", impl: "cublas" })),
    (e: Error) => e instanceof TypeError && /impl 'cublas' needs bfloat16/.test(e.message));
  assert.throws(() => planLinearCrossEntropyCuda(8, 16, 32, bf16({ impl: "cublas", tileSkipping: true })),
    (e: Error) => e instanceof TypeError && /tile skipping runs in the fused kernels/.test(e.message));
  assert.throws(() => planLinearCrossEntropyCuda(8, 16, 32, bf16({ impl: "cublas", device: { ...H100, blasAvailable: false } })),
    (e: Error) => /impl 'cublas': cuBLAS could not be loaded/.test(e.message));
  assert.throws(() => planLinearCrossEntropyCuda(8, 16, 32, bf16({ validCount: 9 })),
    (e: Error) => e instanceof RangeError && /validCount must be in \[0, N = 8\]/.test(e.message));
});

test("the workspace bound holds every valid count and is reached by one", () => {
  // Small shapes where the plan changes with the count: the fused kernels' splits grow as rows shrink,
  // and the engine switches at a third of the tokens. Every count from 0 to N, checked one by one.
  const shapes: [number, number, number, Partial<CudaLossPlanOptions>][] = [
    [700, 64, 5000, { dtype: "float32" }],
    [700, 64, 5000, {}],
    [700, 64, 5000, { workspaceBytes: 256 * 5000 * 4 }],
    [300, 40, 3000, { tileSkipping: true, bias: true, gradBias: true }],
  ];
  for (const [N, D, V, extra] of shapes) {
    const bound = planLinearCrossEntropyCuda(N, D, V, bf16(extra)).workspaceBound;
    let most = 0;
    for (let count = 0; count <= N; count++) {
      const p = planLinearCrossEntropyCuda(N, D, V, bf16({ ...extra, validCount: count }));
      assert.equal(p.workspaceBound, bound);
      assert.ok(p.scratchBytes <= bound, `count ${count}: ${p.scratchBytes} > ${bound}`);
      most = Math.max(most, p.scratchBytes);
    }
    assert.equal(most, bound, `N=${N} D=${D} V=${V} ${JSON.stringify(extra)}`);
  }
});
