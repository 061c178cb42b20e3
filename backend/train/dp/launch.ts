// The launcher of a data-parallel run (config.gpus = N > 1): one process per rank, each running
// the trainer on its rows of every global batch (trainer.ts with options.rank), rank 0 writing
// the records, run.json and the checkpoints. The launcher returns rank 0's result.
//
// Transports: 'nccl' (one rank per GPU, device cuda) is what users ask for; this build finds
// NCCL (ncclStatus) but its collectives are not implemented yet, so it stops with an error that
// says what is missing. 'cpu-test' runs CPU ranks whose collectives pass through a hub in this
// process over a localhost socket (socket.ts) — for tests, on machines without GPUs.
//
// Failure: the first rank that throws (its message), exits or is killed (its exit code or
// signal), loses its connection, or stays away from a collective for collectiveTimeoutMs ends the
// run: the other ranks' collectives fail at once, they get SIGTERM and, after GRACE_MS, SIGKILL.
// Then rank 0's interrupted checkpoint write (if any) is undone (io/atomic.ts recoverDirAtomic: the
// last complete checkpoint stays), run.json is marked failed naming the rank, and the returned
// promise rejects with the same message.
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ncclStatus, resolveDevice } from "../../engine/index.js";
import { recoverDirAtomic } from "../../io/atomic.js";
import { markRunFailed, type TrainLogRow } from "../../records/index.js";
import type { TrainConfig } from "../config.js";
import type { TrainOptions, TrainResult } from "../trainer.js";
import { startHub } from "./socket.js";

export type Transport = "nccl" | "cpu-test";
export const TRANSPORTS: readonly Transport[] = ["nccl", "cpu-test"];

/** What the launcher tells a rank (rank.ts). */
export interface RankStart {
  type: "start";
  rank: number;
  worldSize: number;
  port: number;
  config: TrainConfig;
  options: Pick<TrainOptions, "outDir" | "runId" | "resume" | "progress" | "stopAfterSteps">;
}
export type ToRank = RankStart | { type: "cancel" };
export type FromRank = { type: "row"; row: TrainLogRow } | { type: "done"; result: TrainResult } | { type: "failed"; message: string };

const RANK_MODULE = fileURLToPath(new URL("./rank.ts", import.meta.url));
/** how long ranks get to exit after a failure before SIGKILL */
const GRACE_MS = 2000;

/** The transport a run with config.gpus > 1 uses, or an error saying why it cannot run. */
export function checkParallel(config: TrainConfig, transport: Transport = "nccl"): Transport {
  const n = config.gpus;
  if (!TRANSPORTS.includes(transport)) throw new TypeError(`transport must be one of ${TRANSPORTS.map((t) => `'${t}'`).join(", ")} (got ${String(transport)})`);
  const device = resolveDevice(config.device);
  if (transport === "cpu-test") {
    if (device !== "cpu") throw new TypeError(`gpus: the 'cpu-test' transport runs CPU ranks; device must be 'cpu' (got '${config.device}')`);
    return transport;
  }
  if (device !== "cuda") {
    throw new TypeError(`gpus: ${n} ranks run one per GPU through NCCL and need device 'cuda' (got '${config.device}'); the CPU runs one process (gpus 1)`);
  }
  const st = ncclStatus();
  if (!st.available) throw new Error(`gpus: ${n} ranks need NCCL, which was not found. ${st.message}`);
  const v = `${Math.floor(st.version / 10000)}.${Math.floor(st.version / 100) % 100}.${st.version % 100}`;
  throw new Error(`gpus: NCCL ${v} was found (${st.path}), but data parallelism through NCCL is not implemented in this build yet (docs/parallel.md); train on one GPU (gpus 1)`);
}

interface Failure {
  rank: number;
  message: string;
  /** 2: the rank's own message, 1: its exit, 0: seen from outside (connection, watchdog) */
  weight: number;
}

/** Runs config.gpus ranks (train() calls this for gpus > 1). */
export async function launchRanks(config: TrainConfig, options: TrainOptions): Promise<TrainResult> {
  const n = config.gpus;
  checkParallel(config, options.transport);
  const runJson = join(options.outDir, "run.json");
  let failure: Failure | null = null;
  const children: ChildProcess[] = [];
  const exited: Array<Promise<void>> = [];
  let result: TrainResult | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  /** the signals this launcher sent each rank (an exit by one of them says nothing new about the failure) */
  const sent = new Map<ChildProcess, Set<NodeJS.Signals>>();
  const signal = (c: ChildProcess, s: NodeJS.Signals) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    sent.set(c, (sent.get(c) ?? new Set()).add(s));
    c.kill(s);
  };

  const fail = (f: Failure) => {
    if (failure && (failure.rank !== f.rank || failure.weight >= f.weight)) return;
    const first = failure === null;
    failure = f;
    if (!first) return;
    hub.abort(`rank ${f.rank} failed`);
    for (const c of children) signal(c, "SIGTERM");
    killTimer = setTimeout(() => children.forEach((c) => signal(c, "SIGKILL")), GRACE_MS);
  };

  const hub = await startHub({
    worldSize: n, timeoutMs: options.collectiveTimeoutMs,
    onRankLost: (rank, reason) => fail({ rank, message: reason, weight: 0 }),
  });
  const onAbort = () => children.forEach((c) => c.connected && c.send({ type: "cancel" } satisfies ToRank));
  options.signal?.addEventListener("abort", onAbort);
  try {
    for (let rank = 0; rank < n; rank++) {
      const child = fork(RANK_MODULE, [], {
        execArgv: ["--import", import.meta.resolve("tsx")], serialization: "advanced",
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(child);
      exited.push(new Promise<void>((resolve) => child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        if (signal !== null && sent.get(child)?.has(signal)) {
          // stopped by this launcher after another failure
        } else if (code !== 0 || signal !== null) {
          const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
          fail({ rank, message: `rank ${rank} (pid ${child.pid}) ${how}`, weight: 1 });
        } else if (rank === 0 && result === null && !failure) {
          fail({ rank, message: `rank 0 (pid ${child.pid}) exited without a result`, weight: 1 });
        }
        resolve();
      })));
      child.on("message", (m: FromRank) => {
        if (m.type === "row") options.onRow?.(m.row);
        else if (m.type === "done") {
          if (rank === 0) result = m.result;
        } else fail({ rank, message: `rank ${rank}: ${m.message}`, weight: 2 });
      });
      child.on("error", (err) => fail({ rank, message: `rank ${rank}: ${err.message}`, weight: 1 }));
      const start: RankStart = {
        type: "start", rank, worldSize: n, port: hub.port, config,
        options: { outDir: options.outDir, runId: options.runId, resume: options.resume, stopAfterSteps: options.stopAfterSteps, progress: rank === 0 && (options.progress ?? true) },
      };
      child.send(start);
    }
    options.onRanks?.(children.map((c) => c.pid!));
    if (options.signal?.aborted) onAbort();
    await Promise.all(exited);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    options.signal?.removeEventListener("abort", onAbort);
    await hub.close();
  }
  const f = failure as Failure | null;
  if (f) {
    if (children[0]?.pid !== undefined) recoverDirAtomic(join(options.outDir, "checkpoint"), children[0].pid);
    markRunFailed(runJson, f.message);
    throw new Error(f.message);
  }
  if (!result) throw new Error("rank 0 ended without a result");
  return result;
}
