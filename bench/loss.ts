// npm run bench -- loss [--shapes N,D,V;N,D,V] [--reps 3] [--threads T]
// Fused (streamed) vs naive (materialized logits) linear + label-smoothed cross-entropy on the
// CPU: median time and peak memory, forward and forward+backward. Each measurement runs in a
// fresh child process so that its peak RSS (VmHWM) belongs to that measurement alone.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { formatTable } from "../backend/term/table.js";

interface Job { N: number; D: number; V: number; impl: "fused" | "naive"; grad: boolean; reps: number; threads: number }
interface Measure { ms: number[]; extraBytes: number; workspaceBytes: number; loss: number }

const SELF = fileURLToPath(import.meta.url);

function status(key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function child(job: Job): Promise<Measure> {
  const { linearCrossEntropy } = await import("../backend/engine/index.js");
  const { normals, integers, rng } = await import("../test/helpers/random.js");
  const r = rng(1);
  const e = { data: normals(r, job.N * job.D), rows: job.N, cols: job.D };
  const c = { data: normals(r, job.V * job.D, 1 / Math.sqrt(job.D)), rows: job.V, cols: job.D };
  const t = integers(r, job.N, job.V);
  const base = status("VmRSS");
  const ms: number[] = [];
  let loss = NaN;
  let extra = NaN;
  for (let i = 0; i < job.reps; i++) {
    const t0 = performance.now();
    const out = linearCrossEntropy(e, c, t, { labelSmoothing: 0.1, grad: job.grad, impl: job.impl, threads: job.threads });
    ms.push(performance.now() - t0);
    loss = out.loss;
    // the peak of the first call alone: in later calls the previous call's dE/dC are still alive
    // (garbage collection is not immediate), which would count one extra set of outputs
    if (i === 0) extra = status("VmHWM") - base;
  }
  // dE and dC are results every implementation must return: the workspace is what is left.
  const outputs = job.grad ? 4 * (job.N * job.D + job.V * job.D) : 0;
  return { ms, extraBytes: extra, workspaceBytes: Math.max(0, extra - outputs), loss };
}

function run(job: Job): Measure {
  const res = spawnSync(process.execPath, ["--import", "tsx", SELF], {
    env: { ...process.env, CALIB_BENCH_CHILD: JSON.stringify(job) }, encoding: "utf8", maxBuffer: 1 << 20,
  });
  if (res.status !== 0) throw new Error(`benchmark child failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split("\n").pop()!) as Measure;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes("--device") && arg("device") === "cuda") {
    const cuda = await import("./loss_cuda.js" as string).catch(() => null);
    if (!cuda) throw new Error("the CUDA benchmark is not available in this checkout");
    return cuda.main(argv);
  }
  const shapes = (arg("shapes") ?? "2048,256,50257;512,512,200019").split(";").map((s) => s.split(",").map(Number) as [number, number, number]);
  const reps = Number(arg("reps") ?? 3);
  const threads = Number(arg("threads") ?? 0);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, threads ${threads || "default"}; ε = 0.1, float32, median of ${reps}`);
  console.log("extra = peak RSS above inputs; workspace = extra minus the dE/dC outputs every implementation returns\n");
  const rows: string[][] = [["N", "D", "V", "pass", "naive ms", "fused ms", "speed-up", "naive extra MiB", "fused extra MiB", "naive workspace MiB", "fused workspace MiB", "workspace ratio"]];
  for (const [N, D, V] of shapes) {
    for (const grad of [false, true]) {
      process.stderr.write(`  measuring N=${N} D=${D} V=${V} ${grad ? "fwd+bwd" : "fwd"}…\n`);
      const naive = run({ N, D, V, impl: "naive", grad, reps, threads });
      const fused = run({ N, D, V, impl: "fused", grad, reps, threads });
      if (Math.abs(naive.loss - fused.loss) > 1e-4 * Math.abs(naive.loss)) throw new Error(`loss mismatch ${naive.loss} vs ${fused.loss}`);
      const tn = median(naive.ms), tf = median(fused.ms);
      rows.push([String(N), String(D), String(V), grad ? "fwd+bwd" : "fwd", tn.toFixed(0), tf.toFixed(0), `${(tn / tf).toFixed(2)}×`,
        mib(naive.extraBytes), mib(fused.extraBytes), mib(naive.workspaceBytes), mib(fused.workspaceBytes),
        `${((100 * fused.workspaceBytes) / naive.workspaceBytes).toFixed(1)}%`]);
    }
  }
  console.log(formatTable(rows[0]!, rows.slice(1), { align: rows[0]!.map(() => "right") }));
}

if (process.env.CALIB_BENCH_CHILD) {
  const result = await child(JSON.parse(process.env.CALIB_BENCH_CHILD) as Job);
  console.log(JSON.stringify(result));
}
