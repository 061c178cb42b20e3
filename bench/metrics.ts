// npm run bench -- metrics [--n 10000000] [--boot-n 100000] [--resamples 1000] [--reps 3]
// Calibration metrics speed (backend/metrics). Prints tables of median wall times (and the CPU
// time of this process, which other load on a shared machine inflates less) with ratios against
// baselines measured in the same run:
//   1. 15-bin ECE + reliability data over n examples (target < 1 s for n = 10M), baseline = one
//      plain summing pass over the same confidences (the memory-bandwidth floor of any one-pass metric);
//   2. 1000-resample bootstrap over 100k examples (target < 5 s), baseline = the same number of
//      full-data metric evaluations without resampling;
//   3. other metrics for reference.
import { cpus } from "node:os";
import {
  binnedMetrics, bootstrapMetrics, calibrationSummaries, ece, fitTemperature, pairedBootstrap, riskCoverage, smECE,
} from "../backend/metrics/index.js";
import { formatTable } from "../backend/term/table.js";

function data(n: number, seed: number): { conf: Float32Array; correct: Uint8Array; pTarget: Float32Array } {
  // xorshift32: cheap, deterministic. Confidence skewed towards 1 like an LM's, with exact 1.0s.
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const conf = new Float32Array(n);
  const correct = new Uint8Array(n);
  const pTarget = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = u();
    const c = r < 0.05 ? 1 : Math.sqrt(u());
    conf[i] = c;
    correct[i] = u() < c * 0.9 ? 1 : 0;
    pTarget[i] = correct[i] ? c : (1 - c) * u();
  }
  return { conf, correct, pTarget };
}

/** Median wall time and median CPU time of this process (the CPU time is robust to other load on a shared machine). */
function time(reps: number, fn: () => unknown): { ms: number; cpu: number; sink: unknown } {
  let sink: unknown = fn(); // warm-up (JIT)
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    sink = fn();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { ms: med(ms), cpu: med(cpu), sink };
}

const table = (rows: string[][]): string => formatTable(rows[0]!, rows.slice(1));

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer`);
    return v;
  };
  const n = arg("n", 10_000_000);
  const bootN = arg("boot-n", 100_000);
  const R = arg("resamples", 1000);
  const reps = arg("reps", 3);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores; Node ${process.version}; median of ${reps} after a warm-up`);

  process.stderr.write(`  generating ${n.toLocaleString("en-US")} examples…\n`);
  const big = data(n, 1);
  const base1 = time(reps, () => {
    let s = 0;
    const c = big.conf;
    for (let i = 0; i < c.length; i++) s += c[i]!;
    return s;
  });
  const rows1: string[][] = [["case", "n", "wall", "cpu", "ns/example", "× baseline", "target"]];
  const add1 = (name: string, t: { ms: number; cpu: number }, target?: number) =>
    rows1.push([name, n.toLocaleString("en-US"), fmt(t.ms), fmt(t.cpu), ((t.ms * 1e6) / n).toFixed(2), `${(t.ms / base1.ms).toFixed(1)}×`,
      target === undefined ? "" : `${t.ms < target ? "✓" : "✗"} < ${fmt(target)}`]);
  add1("baseline: one summing pass over confidence", base1);
  process.stderr.write("  binned metrics…\n");
  const ew = time(reps, () => binnedMetrics(big.conf, big.correct, { bins: 15 }));
  add1("15-bin ECE + RMS/MCE/ACE/debiased + reliability (equal-width)", ew, 1000);
  add1("ece() alone, 15 equal-width bins", time(reps, () => ece(big.conf, big.correct)));
  add1("10-bin equal-mass, everything + reliability", time(reps, () => binnedMetrics(big.conf, big.correct, { bins: 10, scheme: "equal-mass" })));
  console.log(`\n1. Binned metrics over ${n.toLocaleString("en-US")} examples (Float32Array confidence, Uint8Array correct)\n`);
  console.log(table(rows1));
  const m = ew.sink as ReturnType<typeof binnedMetrics>;
  console.log(`   (ECE ${m.ece.toFixed(5)}, ${m.reliability.count.length} non-empty bins)`);

  process.stderr.write("  bootstrap…\n");
  const small = data(bootN, 2);
  const other = data(bootN, 3);
  const rows2: string[][] = [["case", "n", "resamples", "wall", "cpu", "µs/resample", "× baseline", "target"]];
  const bootReps = Math.max(1, Math.min(reps, 3));
  const base2 = time(bootReps, () => {
    let s = 0;
    for (let r = 0; r < R; r++) s += binnedMetrics(small.conf, small.correct).ece;
    return s;
  });
  const add2 = (name: string, t: { ms: number; cpu: number }, target?: number) =>
    rows2.push([name, bootN.toLocaleString("en-US"), String(R), fmt(t.ms), fmt(t.cpu), ((t.ms * 1000) / R).toFixed(0), `${(t.ms / base2.ms).toFixed(2)}×`,
      target === undefined ? "" : `${t.ms < target ? "✓" : "✗"} < ${fmt(target)}`]);
  add2(`baseline: ${R} full-data binnedMetrics (no resampling)`, base2);
  add2("bootstrap, 15 equal-width (all metrics + NLL)", time(bootReps, () =>
    bootstrapMetrics({ confidence: small.conf, correct: small.correct, pTarget: small.pTarget }, { resamples: R })), 5000);
  add2("bootstrap, 10 equal-mass (bins re-derived per resample)", time(bootReps, () =>
    bootstrapMetrics({ confidence: small.conf, correct: small.correct, pTarget: small.pTarget }, { resamples: R, bins: 10, scheme: "equal-mass" })));
  add2("paired bootstrap, 15 equal-width, two runs", time(bootReps, () =>
    pairedBootstrap({ confidence: small.conf, correct: small.correct }, { confidence: other.conf, correct: other.correct }, { resamples: R })));
  console.log(`\n2. Percentile bootstrap (${R} resamples, seed 0) over ${bootN.toLocaleString("en-US")} examples\n`);
  console.log(table(rows2));

  process.stderr.write("  other metrics…\n");
  const rows3: string[][] = [["case", "size", "time"]];
  const n3 = Math.min(n, 1_000_000);
  const mid = n3 === n ? big : data(n3, 4);
  rows3.push(["smECE (automatic σ, 11 bandwidths)", `n = ${n3.toLocaleString("en-US")}`, fmt(time(bootReps, () => smECE(mid.conf, mid.correct)).ms)]);
  rows3.push(["risk–coverage + AURC", `n = ${n3.toLocaleString("en-US")}`, fmt(time(bootReps, () => riskCoverage(mid.conf, mid.correct)).ms)]);
  const K = 4;
  const z = new Float32Array(bootN * K);
  const y = new Int32Array(bootN);
  for (let i = 0; i < bootN; i++) {
    y[i] = i % K;
    for (let k = 0; k < K; k++) z[i * K + k] = Math.sin(i * 7 + k * 13) * 3 + (k === y[i] ? 1.5 : 0);
  }
  rows3.push(["temperature scaling fit", `${bootN.toLocaleString("en-US")} × ${K}`, fmt(time(bootReps, () => fitTemperature(z, y, K)).ms)]);
  rows3.push(["calibrationSummaries (15 ew + 10 em rows, 1000 resamples each, smECE)", `n = ${bootN.toLocaleString("en-US")}`,
    fmt(time(1, () => calibrationSummaries({ confidence: small.conf, correct: small.correct, pTarget: small.pTarget })).ms)]);
  console.log(`\n3. Other metrics\n`);
  console.log(table(rows3));
}
