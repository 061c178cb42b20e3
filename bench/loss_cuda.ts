// npm run bench -- loss --device cuda [options]
// The CUDA fused linear + label-smoothed cross-entropy against its peers, in one job on one
// card. The measurements run in bench/gpu/lce_bench.py (PyTorch on the same tensors: ours
// through the engine's C API on device pointers, PyTorch eager / torch.compile, Liger, CCE
// with ε emulated; fp32 PyTorch as the accuracy reference; the cuBLAS GEMM floors). This
// script starts it (or reads its JSON with --json), optionally times ours through the
// TypeScript device API as well (--api), writes data/bench/kernels.arrow (+ _meta.json) for
// the site's Speed page, and prints the tables.
//
// Options:
//   --json FILE        use a finished run's JSON instead of running the harness
//   --lib FILE         engine shared library for the harness (default .device/libcalib.so,
//                      built by scripts/gpu/bundle.sh)
//   --python CMD       Python with torch (default python3); PYTHONPATH should reach the peers
//   --quick            headline shape, flat inputs, PyTorch eager only
//   --api              also time ours through linearCrossEntropyDevice (4096, 2048, 50257)
//   --out FILE         Arrow output (default data/bench/kernels.arrow); --no-write to skip
//   other --flags are passed to the harness (--shapes, --iters, --budget-s, --peers, ...)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Float64, Int32, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { writeFileAtomic } from "../backend/io/atomic.js";
import { formatTable } from "../backend/term/table.js";

interface Row {
  impl: string; n: number; d: number; v: number; regime: string; pass: string; workspace_bytes: number;
  time_ms: number; times_ms: number[]; extra_bytes: number; card: string; note: string;
  loss_rel_err: number | null; de_rel_err: number | null; dc_rel_err: number | null;
}
interface Floor { n: number; d: number; v: number; gemm_ms: number; tflops: number; floor6_ms: number; floor8_ms: number }
/** Headline comparisons timed round-robin (one call of each per round): the same clock and power state for all. */
interface Interleaved { n: number; d: number; v: number; regime: string; rounds: number; ms: Record<string, number> }
interface Results {
  meta: {
    card: string; torch?: string; triton?: string; eps: number; started: string; floors: Floor[];
    regimes?: { n: number; d: number; v: number; regime: string; p_target_median: number }[];
    skipped: string[]; errors: string[]; api?: unknown;
    interleaved?: Interleaved[];
  };
  rows: Row[];
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1 << 20;

function parse(argv: string[]) {
  const flags = new Map<string, string | true>();
  const pass: string[] = [];
  const own = new Set(["json", "lib", "python", "out", "device"]);
  const bools = new Set(["quick", "api", "no-write"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new TypeError(`unexpected argument '${a}'`);
    const key = a.slice(2);
    if (bools.has(key)) {
      flags.set(key, true);
      if (key === "quick") pass.push(a);
    } else {
      const value = argv[++i];
      if (value === undefined) throw new TypeError(`--${key} needs a value`);
      if (own.has(key)) flags.set(key, value);
      else pass.push(a, value);
    }
  }
  return { flags, pass };
}

function runHarness(flags: Map<string, string | true>, pass: string[]): Results {
  const lib = (flags.get("lib") as string | undefined) ?? join(ROOT, ".device", "libcalib.so");
  if (!existsSync(lib)) throw new Error(`engine library ${lib} is missing: build it with scripts/gpu/bundle.sh (or pass --lib)`);
  const out = join(mkdtempSync(join(tmpdir(), "calib-bench-")), "results.json");
  const python = (flags.get("python") as string | undefined) ?? "python3";
  const r = spawnSync(python, [join(ROOT, "bench", "gpu", "lce_bench.py"), "--lib", lib, "--out", out, ...pass], {
    stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  if (r.status !== 0 || !existsSync(out)) throw new Error(`the GPU harness failed (exit ${r.status})`);
  return JSON.parse(readFileSync(out, "utf8")) as Results;
}

// Ours through the TypeScript device API: same kernels, plus the binding's overhead.
async function apiTiming(): Promise<Record<string, number | string>> {
  const eng = await import("../backend/engine/index.js");
  const [N, D, V] = [4096, 2048, 50257];
  let s = 0x9e3779b9 >>> 0;
  const normalBits = (n: number, scale: number) => {
    const out = new Uint16Array(n), f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) {
        s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
        acc += s / 4294967296;
      }
      f[0] = (acc - 2) * Math.sqrt(3) * scale;
      out[i] = u[0]! >>> 16;
    }
    return out;
  };
  const sc = D ** -0.25;
  const E = eng.DeviceArray.from(normalBits(N * D, sc)), C = eng.DeviceArray.from(normalBits(V * D, sc));
  const t = new Int32Array(N);
  for (let i = 0; i < N; i++) t[i] = (i * 7919) % V;
  const T = eng.DeviceArray.from(t);
  const e = eng.deviceMatrix(E, N, D), c = eng.deviceMatrix(C, V, D);
  const out = { loss: eng.DeviceArray.alloc("float32", 1), lse: eng.DeviceArray.alloc("float32", N),
    dE: eng.DeviceArray.alloc("float32", N * D), dC: eng.DeviceArray.alloc("float32", V * D) };
  const time = (grad: boolean) => {
    const ms: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      eng.linearCrossEntropyDevice(e, c, T, { labelSmoothing: 0.1, grad, out, checkFinite: false });
      ms.push(performance.now() - t0);
    }
    ms.shift();
    return ms.sort((a, b) => a - b)[ms.length >> 1]!;
  };
  const res = { shape: `${N},${D},${V}`, fwd_ms: time(false), fwdbwd_ms: time(true), loss: out.loss.toFloat32()[0]! };
  for (const a of [E, C, T, ...Object.values(out)]) a.free();
  return res;
}

function toArrow(res: Results): Uint8Array {
  const floor = (r: Row) => res.meta.floors.find((f) => f.n === r.n && f.d === r.d && f.v === r.v);
  const pmed = (r: Row) => res.meta.regimes?.find((g) => g.n === r.n && g.d === r.d && g.v === r.v && g.regime === r.regime)?.p_target_median ?? null;
  const R = res.rows;
  const f64 = (xs: (number | null)[]) => vectorFromArray(xs, new Float64());
  const table = new Table({
    impl: vectorFromArray(R.map((r) => r.impl), new Utf8()),
    n: vectorFromArray(R.map((r) => r.n), new Int32()),
    d: vectorFromArray(R.map((r) => r.d), new Int32()),
    v: vectorFromArray(R.map((r) => r.v), new Int32()),
    regime: vectorFromArray(R.map((r) => r.regime), new Utf8()),
    pass: vectorFromArray(R.map((r) => r.pass), new Utf8()),
    workspace_bytes: f64(R.map((r) => r.workspace_bytes)),
    time_ms: f64(R.map((r) => r.time_ms)),
    extra_bytes: f64(R.map((r) => r.extra_bytes)),
    loss_rel_err: f64(R.map((r) => r.loss_rel_err)),
    de_rel_err: f64(R.map((r) => r.de_rel_err)),
    dc_rel_err: f64(R.map((r) => r.dc_rel_err)),
    floor6_ms: f64(R.map((r) => floor(r)?.floor6_ms ?? null)),
    floor8_ms: f64(R.map((r) => floor(r)?.floor8_ms ?? null)),
    gemm_tflops: f64(R.map((r) => floor(r)?.tflops ?? null)),
    p_target_median: f64(R.map(pmed)),
    card: vectorFromArray(R.map((r) => r.card), new Utf8()),
    note: vectorFromArray(R.map((r) => r.note), new Utf8()),
    measured_at: vectorFromArray(R.map(() => res.meta.started), new Utf8()),
  });
  return tableToIPC(table, "stream");
}

const fmt = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));
const sci = (x: number | null | undefined) => (x === null || x === undefined ? "—" : x.toExponential(1));

function printTables(res: Results): void {
  const m = res.meta;
  console.log(`\nFused linear + label-smoothed CE, ε=${m.eps}, on ${m.card} (torch ${m.torch ?? "?"}, triton ${m.triton ?? "?"})`);
  const shapes = [...new Set(res.rows.map((r) => `${r.n},${r.d},${r.v}`))];
  for (const sh of shapes) {
    const [n, d, v] = sh.split(",").map(Number) as [number, number, number];
    const f = m.floors.find((x) => x.n === n && x.d === d && x.v === v);
    console.log(`\n(N, D, V) = (${n}, ${d}, ${v})   cuBLAS bf16 GEMM ${fmt(f?.gemm_ms)} ms (${fmt(f?.tflops, 0)} TFLOP/s): 6NDV floor ${fmt(f?.floor6_ms, 1)} ms, 8NDV floor ${fmt(f?.floor8_ms, 1)} ms`);
    console.log(formatTable(
      ["impl", "pass", "regime", "workspace", "ms", "×8NDV", "extra MiB", "loss err", "dE err", "dC err", "note"],
      res.rows.filter((x) => x.n === n && x.d === d && x.v === v).map((r) => [
        r.impl, r.pass, r.regime, r.workspace_bytes ? `${(r.workspace_bytes / MiB).toFixed(0)} MiB` : "-", fmt(r.time_ms),
        r.pass === "fwd+bwd" && f ? fmt(r.time_ms / f.floor8_ms) : "-", fmt(r.extra_bytes / MiB, 1), sci(r.loss_rel_err), sci(r.de_rel_err), sci(r.dc_rel_err), r.note,
      ]),
      { align: ["left", "left", "left", "right", "right", "right", "right", "right", "right", "right", "left"], rule: false },
    ));
  }
  const curve = res.rows.filter((r) => (r.impl === "ours" || r.impl === "ours_ws") && r.pass === "fwd+bwd" && r.regime === "flat" && r.n === res.rows[0]?.n && r.d === res.rows[0]?.d && r.v === res.rows[0]?.v);
  if (curve.length) {
    console.log("\nTime–memory curve (ours, fwd+bwd, flat, headline shape):");
    console.log(formatTable(["workspaceBytes", "extra MiB", "ms", "mode"],
      curve.sort((a, b) => a.extra_bytes - b.extra_bytes).map((r) => [String(r.workspace_bytes), fmt(r.extra_bytes / MiB, 1), fmt(r.time_ms), r.note]),
      { align: ["right", "right", "right", "left"], rule: false }));
  }
  for (const it of m.interleaved ?? []) {
    const floor8 = it.ms.floor8;
    console.log(`\nInterleaved, (${it.n}, ${it.d}, ${it.v}) ${it.regime}, fwd+bwd: ${it.rounds} rounds, one call of each per round (same clock state)`);
    console.log(formatTable(["impl", "ms", "×8NDV"], Object.entries(it.ms).map(([k, v]) => [k, fmt(v), floor8 ? fmt(v / floor8) : "-"]), { rule: false }));
  }
  if (m.skipped.length) console.log(`\nskipped: ${m.skipped.join("; ")}`);
  if (m.errors.length) console.log(`errors: ${m.errors.join("; ")}`);
  if (m.api) console.log(`TypeScript device API timing: ${JSON.stringify(m.api)}`);
}

export async function main(argv: string[]): Promise<void> {
  const { flags, pass } = parse(argv);
  let res: Results;
  if (flags.has("json")) {
    res = JSON.parse(readFileSync(flags.get("json") as string, "utf8")) as Results;
  } else {
    const { cudaAvailable, engineInfo } = await import("../backend/engine/index.js");
    if (!cudaAvailable()) throw new Error(`the CUDA benchmark needs a GPU: ${engineInfo().cudaMessage}`);
    res = runHarness(flags, pass);
  }
  if (flags.get("api")) res.meta.api = await apiTiming();
  if (!flags.get("no-write")) {
    const out = (flags.get("out") as string | undefined) ?? join(ROOT, "data", "bench", "kernels.arrow");
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, toArrow(res));
    writeFileAtomic(out.replace(/\.arrow$/, "") + "_meta.json", JSON.stringify(res.meta, null, 1) + "\n");
    console.error(`wrote ${out} (${res.rows.length} rows)`);
  }
  printTables(res);
}
