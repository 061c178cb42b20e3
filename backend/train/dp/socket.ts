// The CPU transport: ranks in separate processes exchange their buffers with a hub in the
// launcher over a localhost TCP socket; the hub combines them (collective.ts `combine`: sums in
// rank order, so results are bit-reproducible) and sends each rank its result. Slow (everything
// passes through one process) and meant for tests of the launcher, the sharded optimizer and the
// checkpoints on machines without GPUs — the real transport is NCCL.
//
// Frames, both ways: a 12-byte header (u32 seq, u8 op, u8 dtype, u16 0, u32 payload bytes, little
// endian) then the payload. A rank opens with HELLO (payload u32 rank), ends with BYE; the hub
// answers every collective with the same op and seq, or with ERROR (payload: the message). A rank
// whose connection closes without BYE is lost: the hub reports it and fails every other rank's
// pending and later collectives. A collective that some ranks reach and others do not within
// timeoutMs fails the same way, naming the ranks that did not arrive.
import { createServer, connect, type Server, type Socket } from "node:net";
import { CollectiveError, combine, type Collective, type CollectiveOp, type Contribution, type Floats } from "./collective.js";

const HEADER = 12;
const OPS: CollectiveOp[] = ["allReduce", "reduceScatter", "allGather", "barrier"];
const HELLO = 10, BYE = 11, ERROR = 255;
const DT_NONE = 0, DT_F32 = 1, DT_F64 = 2;

interface Frame {
  seq: number;
  op: number;
  dtype: number;
  payload: Buffer;
}

function frame(seq: number, op: number, dtype: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(seq, 0);
  h.writeUInt8(op, 4);
  h.writeUInt8(dtype, 5);
  h.writeUInt32LE(payload.byteLength, 8);
  return Buffer.concat([h, payload]);
}

function encode(values: Floats | null): { dtype: number; bytes: Uint8Array } {
  if (values === null) return { dtype: DT_NONE, bytes: new Uint8Array(0) };
  return { dtype: values instanceof Float64Array ? DT_F64 : DT_F32, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function decode(dtype: number, payload: Buffer): Floats | null {
  if (dtype === DT_NONE) return null;
  const copy = new Uint8Array(payload.byteLength); // aligned
  copy.set(payload);
  return dtype === DT_F64 ? new Float64Array(copy.buffer) : new Float32Array(copy.buffer);
}

/** Splits a byte stream into frames. */
function reader(onFrame: (f: Frame) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= HEADER) {
      const len = buf.readUInt32LE(8);
      if (buf.length < HEADER + len) break;
      onFrame({ seq: buf.readUInt32LE(0), op: buf.readUInt8(4), dtype: buf.readUInt8(5), payload: buf.subarray(HEADER, HEADER + len) });
      buf = buf.subarray(HEADER + len);
    }
  };
}

export interface Hub {
  port: number;
  /** fails every rank's pending and later collectives with this reason and closes the connections */
  abort(reason: string): void;
  close(): Promise<void>;
}

export interface HubOptions {
  worldSize: number;
  /** a collective some ranks reach and others not within this time fails (default 30 minutes) */
  timeoutMs?: number;
  /** a rank's connection closed without BYE, or it stayed away from a collective: the run has failed */
  onRankLost(rank: number, reason: string): void;
}

/** Starts the hub on 127.0.0.1 (a free port). */
export async function startHub(o: HubOptions): Promise<Hub> {
  const n = o.worldSize;
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  const sockets: Array<Socket | undefined> = [];
  const finished = new Set<number>();
  let failure: string | null = null;
  let seq = 0;
  let calls: Array<Contribution | undefined> = [];
  let since = 0;

  const fail = (reason: string) => {
    if (failure !== null) return;
    failure = reason;
    const msg = Buffer.from(reason);
    for (const s of sockets) if (s && !s.destroyed) s.end(frame(seq, ERROR, DT_NONE, msg));
  };
  const lost = (rank: number, reason: string) => {
    if (failure !== null) return;
    fail(reason);
    o.onRankLost(rank, reason);
  };

  const onCall = (rank: number, f: Frame) => {
    if (failure !== null) return void sockets[rank]?.end(frame(f.seq, ERROR, DT_NONE, Buffer.from(failure)));
    if (f.seq !== seq || calls[rank]) return lost(rank, `rank ${rank} sent collective #${f.seq} while #${seq} is pending`);
    calls[rank] = { op: OPS[f.op]!, values: decode(f.dtype, f.payload) };
    if (calls.filter(Boolean).length === 1) since = Date.now();
    if (calls.filter(Boolean).length < n) return;
    const done = calls as Contribution[];
    calls = [];
    let results: Array<Floats | null>;
    try {
      results = combine(done);
    } catch (err) {
      return void fail((err as Error).message);
    }
    results.forEach((r, k) => {
      const e = encode(r);
      sockets[k]!.write(frame(seq, f.op, e.dtype, e.bytes));
    });
    seq++;
  };

  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    let rank = -1;
    socket.on("data", reader((f) => {
      if (rank < 0) {
        const r = f.op === HELLO && f.payload.length === 4 ? f.payload.readUInt32LE(0) : -1;
        if (r < 0 || r >= n || sockets[r]) return void socket.destroy();
        rank = r;
        sockets[r] = socket;
        return;
      }
      if (f.op === BYE) return void finished.add(rank);
      if (f.op >= OPS.length) return lost(rank, `rank ${rank} sent an unknown frame (op ${f.op})`);
      onCall(rank, f);
    }));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (rank >= 0 && !finished.has(rank)) lost(rank, `rank ${rank} lost its connection to the launcher`);
    });
  });
  const watchdog = setInterval(() => {
    if (failure !== null || calls.filter(Boolean).length === 0 || Date.now() - since < timeoutMs) return;
    const missing = Array.from({ length: n }, (_, r) => r).filter((r) => !calls[r]);
    lost(missing[0]!, `rank${missing.length > 1 ? "s" : ""} ${missing.join(", ")} did not reach collective #${seq} within ${timeoutMs / 1000} s (the others wait in ${calls.find(Boolean)!.op})`);
  }, Math.min(1000, Math.max(10, timeoutMs / 4)));
  watchdog.unref();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the hub has no TCP port");
  return {
    port: address.port,
    abort: fail,
    close: async () => {
      clearInterval(watchdog);
      for (const s of sockets) s?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Rank `rank`'s collective over the hub at 127.0.0.1:port. */
export async function connectRank(port: number, rank: number, worldSize: number): Promise<Collective> {
  const socket = connect({ port, host: "127.0.0.1" });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let seq = 0;
  let closing = false;
  let failure: string | null = null;
  let pending: { op: number; resolve(v: Floats | null): void; reject(e: Error): void } | null = null;
  const failAll = (reason: string) => {
    if (failure === null) failure = reason;
    const p = pending;
    pending = null;
    p?.reject(new CollectiveError(failure));
  };
  socket.on("data", reader((f) => {
    if (f.op === ERROR) return failAll(`collective failed: ${f.payload.toString("utf8")}`);
    const p = pending;
    if (!p || f.op !== p.op) return failAll(`unexpected answer from the launcher (op ${f.op})`);
    pending = null;
    seq++;
    p.resolve(decode(f.dtype, f.payload));
  }));
  socket.on("error", (err) => failAll(`connection to the launcher failed: ${err.message}`));
  socket.on("close", () => {
    if (!closing) failAll("the launcher closed the connection (another rank failed, or the run was stopped)");
  });
  const hello = Buffer.alloc(4);
  hello.writeUInt32LE(rank, 0);
  socket.write(frame(0, HELLO, DT_NONE, hello));
  const call = (op: CollectiveOp, values: Floats | null) =>
    new Promise<Floats | null>((resolve, reject) => {
      if (failure !== null) return reject(new CollectiveError(failure));
      if (pending) return reject(new CollectiveError(`rank ${rank} called ${op} while its previous collective is pending`));
      const code = OPS.indexOf(op);
      pending = { op: code, resolve, reject };
      const e = encode(values);
      socket.write(frame(seq, code, e.dtype, e.bytes));
    });
  return {
    rank, worldSize,
    allReduce: async (v) => (await call("allReduce", v)) as typeof v,
    reduceScatter: async (v) => (await call("reduceScatter", v)) as typeof v,
    allGather: async (v) => (await call("allGather", v)) as typeof v,
    barrier: async () => void (await call("barrier", null)),
    close: async () => {
      closing = true;
      await new Promise<void>((resolve) => socket.end(frame(seq, BYE, DT_NONE, new Uint8Array(0)), () => resolve()));
    },
  };
}
