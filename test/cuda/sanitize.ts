// Exercises every CUDA kernel path once on small inputs, for compute-sanitizer (memcheck)
// on the GPU machine: scripts/gpu/job.sh runs it bundled. No assertions — the sanitizer's
// report is the result. Not a *.test.ts file, so `npm test` does not pick it up.
import { linearCrossEntropy, toBf16, DeviceArray, deviceMatrix, linearCrossEntropyDevice, cudaAvailable } from "../../backend/engine/index.js";
import { integers, normals, rng } from "../helpers/random.js";

if (!cudaAvailable()) {
  console.log("no CUDA device: nothing to sanitize");
  process.exit(0);
}
const r = rng(9);
const cases = [
  { N: 37, D: 19, V: 301, opts: { labelSmoothing: 0.1 } },
  { N: 300, D: 64, V: 1000, opts: { labelSmoothing: 0.1, workspaceBytes: 65536 } },
  { N: 1100, D: 32, V: 500, opts: { labelSmoothing: 0.1, workspaceBytes: 500 * 4 * 1024 } },
  { N: 200, D: 40, V: 777, opts: { labelSmoothing: 0.2, softcap: 5, temperature: 0.7 } },
  { N: 1, D: 8, V: 1, opts: { labelSmoothing: 0.1 } },
  { N: 260, D: 44, V: 600, opts: { labelSmoothing: 0.1, workspaceBytes: 1 << 30 } },  // packed chunks (D multiple of 8, no softcap)
  { N: 130, D: 42, V: 900, opts: { labelSmoothing: 0.1, softcap: 4, workspaceBytes: 1 << 30 } },  // fp32 chunks through the slab
];
for (const c of cases) {
  const E = normals(r, c.N * c.D), C = normals(r, c.V * c.D, 1 / Math.sqrt(c.D));
  const t = integers(r, c.N, c.V);
  if (c.N > 3) t[2] = -100;
  const bias = normals(r, c.V, 0.3);
  for (const bf16 of [false, true]) {
    const e = { data: bf16 ? toBf16(E) : E, rows: c.N, cols: c.D }, cm = { data: bf16 ? toBf16(C) : C, rows: c.V, cols: c.D };
    linearCrossEntropy(e, cm, t, { ...c.opts, bias, grad: true, device: "cuda" });
    const ed = DeviceArray.from(e.data), cd = DeviceArray.from(cm.data), td = DeviceArray.from(t), bd = DeviceArray.from(bias);
    // the fused kernels with and without tile skipping; bf16 also through cuBLAS, with the case's
    // workspace and with a small one (row and column blocks): logit_tma_kernel where D is a multiple
    // of 8, the slab kernels (in place) where it is not (D = 19, 42)
    const small = { impl: "cublas", workspaceBytes: 128 * 512 * 4 };
    const runs: Array<Record<string, unknown>> = [{ impl: "fused", tileSkipping: false }, { impl: "fused", tileSkipping: true }];
    if (bf16) runs.push({ impl: "cublas" }, small);
    for (const extra of runs) {
      const res = linearCrossEntropyDevice(deviceMatrix(ed, c.N, c.D), deviceMatrix(cd, c.V, c.D), td,
        { ...c.opts, bias: bd, grad: true, reduction: "sum", ...extra });
      for (const a of [res.loss, res.lse, res.dE, res.dC, res.dBias]) a?.free();
    }
    for (const a of [ed, cd, td, bd]) a.free();
  }
}
console.log(`sanitize: ${cases.length * 8} CUDA calls done`);
