// Shared by the API tests: the real server as a child process on an ephemeral port with a
// temporary data directory, raw HTTP requests (node:http, so paths like /api/runs/.. are sent
// as written, not normalized), an SSE reader, and tiny CPU run configurations.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SERVER = join(ROOT, "backend", "server.ts");
export const CLI = join(ROOT, "bin", "calib.js");

export function tempDataDir(prefix = "calib-api-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestServer {
  url: string;
  port: number;
  proc: ChildProcess;
  dataDir: string;
  stderr(): string;
  /** SIGTERM and wait */
  stop(): Promise<void>;
  /** SIGKILL (no cleanup at all) and wait */
  kill(): Promise<void>;
}

export async function startTestServer(o: { dataDir?: string; env?: Record<string, string> } = {}): Promise<TestServer> {
  const dataDir = o.dataDir ?? tempDataDir();
  const proc = spawn(process.execPath, ["--import", "tsx", SERVER], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", CALIB_DATA_DIR: dataDir, CALIB_SITE_DIR: join(dataDir, "no-site"), ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${err}`)), 30000);
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
  return {
    url, port: Number(new URL(url).port), proc, dataDir, stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: any;
}

/** One HTTP request with the path sent verbatim. */
export function http(base: string, method: string, path: string, o: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...(o.body !== undefined ? { "content-length": String(Buffer.byteLength(o.body)) } : {}), ...o.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        const text = body.toString("utf8");
        let json: unknown = undefined;
        if (String(res.headers["content-type"] ?? "").includes("json")) {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, text, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

export const postJson = (base: string, path: string, value: unknown, headers: Record<string, string> = {}) =>
  http(base, "POST", path, { body: JSON.stringify(value), headers: { "content-type": "application/json", ...headers } });

export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/** Reads a run's event stream until the server closes it (after `end`); resolves to every event. */
export function followEvents(base: string, id: string, headers: Record<string, string> = {}, timeoutMs = 120000): Promise<SseEvent[]> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no end event within ${timeoutMs} ms; got ${events.map((e) => e.event).join(",")}`));
    }, timeoutMs);
    const req = request({ host: u.hostname, port: u.port, path: `/api/runs/${id}/events`, headers: { accept: "text/event-stream", ...headers } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`events: HTTP ${res.statusCode}`));
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e: Partial<SseEvent> & { dataText?: string } = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const k = line.indexOf(":");
            const field = k < 0 ? line : line.slice(0, k);
            const value = k < 0 ? "" : line.slice(k + 1).replace(/^ /, "");
            if (field === "event") e.event = value;
            else if (field === "id") e.id = value;
            else if (field === "data") e.dataText = (e.dataText ? `${e.dataText}\n` : "") + value;
          }
          if (e.event) events.push({ event: e.event, ...(e.id !== undefined ? { id: e.id } : {}), data: e.dataText ? JSON.parse(e.dataText) : null });
        }
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve(events);
      });
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

export async function waitFor<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 60000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** 200 bootstrap resamples for the calibration records of the test runs (1000 by default). */
export const TEST_CALIBRATION = { resamples: 200, seed: 0 };

/** A tiny byte-level GPT: a pretrain of a few steps (seconds on one core). */
export function tinyPretrain(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "pretrain", name: "tiny pretrain", steps: 12, batchSize: 4, evalEvery: 0, evalWindows: 2, logEvery: 3, threads: 1,
    model: { nLayer: 1, nHead: 2, dModel: 32, context: 256 }, optim: { warmupSteps: 2, lr: 3e-3 },
    eval: { maxTokens: 512, maxQuestions: 24, tasks: ["pos"] }, calibration: TEST_CALIBRATION,
    ...over,
  };
}

export function tinySft(init: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "sft", name: "tiny sft", init, tasks: ["pos"], maxExamples: 32, epochs: 2, batchSize: 8, logEvery: 1, threads: 1,
    loss: { labelSmoothing: 0.1 }, optim: { warmupSteps: 1 },
    eval: { maxTokens: 512, maxQuestions: 24, tasks: ["pos"] }, calibration: TEST_CALIBRATION,
    ...over,
  };
}

export function tinyEval(checkpoint: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { kind: "eval", name: "tiny eval", checkpoint, threads: 1, eval: { maxTokens: 512, maxQuestions: 24, tasks: ["pos"] }, calibration: TEST_CALIBRATION, ...over };
}
