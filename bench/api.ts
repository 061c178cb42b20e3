// npm run bench -- api [--requests N] [--concurrency 1,16,64] [--questions N]
// Latency percentiles of the real API server (a child process on 127.0.0.1, temporary data
// directory, job executor off so that submissions stay queued): health (the baseline), list,
// show, run submission, and artifact downloads of a small and a large Arrow record (an lm-eval
// import of N questions made with the CLI path beforehand). Each row: requests, p50 / p90 / p99
// / max latency, throughput, and p50 relative to /api/health at the same concurrency.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatTable } from "../backend/term/table.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Endpoint {
  name: string;
  method: "GET" | "POST";
  path: string;
  body?: string;
  /** expected status */
  status: number;
}

function parseArgs(argv: string[]): { requests: number; concurrency: number[]; questions: number } {
  const o = { requests: 400, concurrency: [1, 16, 64], questions: 20000 };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === "--requests") o.requests = Number(v);
    else if (k === "--concurrency") o.concurrency = String(v).split(",").map(Number);
    else if (k === "--questions") o.questions = Number(v);
    else throw new Error(`unknown option ${k} (--requests N, --concurrency a,b,c, --questions N)`);
    i++;
  }
  if (!(o.requests > 0) || o.concurrency.some((c) => !(c > 0)) || !(o.questions > 0)) throw new RangeError("options must be positive");
  return o;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function once(agent: Agent, port: number, e: Endpoint): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: e.method, path: e.path, agent, headers: e.body ? { "content-type": "application/json", "content-length": Buffer.byteLength(e.body) } : {} }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => {
        if (res.statusCode !== e.status) reject(new Error(`${e.name}: HTTP ${res.statusCode}`));
        else resolve({ ms: performance.now() - t0, bytes });
      });
    });
    req.on("error", reject);
    if (e.body) req.write(e.body);
    req.end();
  });
}

async function measure(port: number, e: Endpoint, requests: number, concurrency: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let next = 0, bytes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++;
      const r = await once(agent, port, e);
      lat.push(r.ms);
      bytes += r.bytes;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { n: lat.length, p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: lat[lat.length - 1]!, rps: lat.length / wall, mbps: bytes / wall / 1e6 };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const dataDir = mkdtempSync(join(tmpdir(), "calib-bench-api-"));
  process.env.CALIB_DATA_DIR = dataDir;
  try {
    // records to download: an lm-eval import made through the CLI path (same registry)
    const { Registry, processTag } = await import("../backend/runs/registry.js");
    const { submitLmEvalImport } = await import("../backend/runs/submit.js");
    const { executeLocally } = await import("../backend/runs/local.js");
    const { harnessFile, randomSamples } = await import("../test/api/lmeval-samples.js");
    const { writeFileSync } = await import("node:fs");
    const file = join(dataDir, "samples_bench_2024-01-01T00-00-00.0.jsonl");
    writeFileSync(file, harnessFile(randomSamples(o.questions, 1)));
    const registry = Registry.open(join(dataDir, "registry.sqlite"));
    const t0 = performance.now();
    const { run } = await submitLmEvalImport(registry, [{ path: file, filename: "samples_bench_2024-01-01T00-00-00.0.jsonl" }], {
      name: "bench", source: "cli", dataDir, owner: processTag(), calibration: { resamples: 200, seed: 0 },
    });
    const done = await executeLocally(registry, run.id, { dataDir, progress: false });
    if (done.status !== "succeeded") throw new Error(`import failed: ${done.error}`);
    const importS = (performance.now() - t0) / 1000;
    registry.close();
    const size = (n: string) => statSync(join(dataDir, "runs", run.id, n)).size;
    const server = spawn(process.execPath, ["--import", "tsx", join(ROOT, "backend/server.ts")], {
      cwd: ROOT, env: { ...process.env, PORT: "0", CALIB_NO_EXECUTOR: "1", CALIB_SITE_DIR: join(dataDir, "none") }, stdio: ["ignore", "pipe", "inherit"],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      server.stdout!.on("data", (c: Buffer) => {
        out += c;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      server.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    });
    try {
      const config = JSON.stringify({ kind: "pretrain", steps: 10, model: { nLayer: 1, nHead: 2, dModel: 32, context: 64 } });
      const endpoints: Endpoint[] = [
        { name: "GET /api/health", method: "GET", path: "/api/health", status: 200 },
        { name: "GET /api/runs", method: "GET", path: "/api/runs?limit=50", status: 200 },
        { name: "GET /api/runs/:id", method: "GET", path: `/api/runs/${run.id}`, status: 200 },
        { name: "POST /api/runs", method: "POST", path: "/api/runs", body: config, status: 201 },
        { name: `artifact calibration.arrow (${(size("calibration.arrow") / 1024).toFixed(0)} KiB)`, method: "GET", path: `/api/runs/${run.id}/artifacts/calibration.arrow`, status: 200 },
        { name: `artifact questions.arrow (${(size("questions.arrow") / 1024).toFixed(0)} KiB)`, method: "GET", path: `/api/runs/${run.id}/artifacts/questions.arrow`, status: 200 },
      ];
      console.log(`API latency: ${o.requests} requests per row; server pid ${server.pid} on 127.0.0.1:${port}; records from an lm-eval import of ${o.questions} questions (${importS.toFixed(1)} s)`);
      const header = ["endpoint", "conc", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "MB/s", "p50 / health"];
      const rows: string[][] = [];
      for (const c of o.concurrency) {
        await measure(port, endpoints[0]!, Math.min(50, o.requests), c); // warm-up
        let base = NaN;
        for (const e of endpoints) {
          const m = await measure(port, e, o.requests, c);
          if (e === endpoints[0]) base = m.p50;
          rows.push([e.name, String(c), String(m.n), m.p50.toFixed(2), m.p90.toFixed(2), m.p99.toFixed(2), m.max.toFixed(1), m.rps.toFixed(0), m.mbps.toFixed(1), (m.p50 / base).toFixed(2)]);
        }
      }
      console.log(formatTable(header, rows, { style: "markdown" }));
    } finally {
      server.kill("SIGTERM");
      await new Promise((r) => server.once("exit", r));
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
