// The CUDA engine's device memory API: typed device arrays (allocate, upload, download,
// free) and the fused linear + label-smoothed cross-entropy on device pointers, so that a
// trainer keeps E, C, targets and gradients on the GPU with no host round trip per call.
// Host arrays keep working through linearCrossEntropy(..., { device: 'cuda' }).
import { addon, engineInfo } from "./addon.js";
import type { Reduction } from "./loss.js";

export type DeviceDtype = "float32" | "bfloat16" | "int32";
type HostArray = Float32Array | Uint16Array | Int32Array;

const BYTES: Record<DeviceDtype, number> = { float32: 4, bfloat16: 2, int32: 4 };

interface CudaBinding {
  cudaMalloc(bytes: number): bigint;
  cudaFree(ptr: bigint): void;
  cudaUpload(ptr: bigint, src: HostArray, byteOffset?: number): void;
  cudaDownload(ptr: bigint, dst: HostArray, byteOffset?: number): void;
  cudaCopy(dst: bigint, src: bigint, bytes: number): void;
  cudaMemset(ptr: bigint, value: number, bytes: number): void;
  cudaSynchronize(): void;
  cudaMemInfo(): { free: number; total: number };
  cudaStats(): CudaStats;
  cudaReleaseScratch(): void;
  linearCrossEntropyDevice(options: Record<string, unknown>): { validCount: number };
}

export interface CudaStats {
  /** Device scratch the engine keeps between calls (bytes). */
  scratchCapacityBytes: number;
  /** Largest scratch one call has needed. */
  scratchPeakBytes: number;
  /** Scratch the last loss call used: the op's extra memory beyond inputs and outputs. */
  lastScratchBytes: number;
  /** 'forward' (no gradients), 'streamed' (logits recomputed) or 'chunked' (workspace). */
  lastMode: "forward" | "streamed" | "chunked";
  lastSplits: number;
  lastBlockRows: number;
  lastBlockCols: number;
  lastTiles: number;
  lastTilesSkipped: number;
  /** Tensor-core path of the last call: 'wgmma' (bf16 on Hopper) or 'mma.sync'. */
  lastGemm: "wgmma" | "mma.sync" | "cublas";
}

function cuda(): CudaBinding {
  return addon() as unknown as CudaBinding;
}

/** True when the engine was built with CUDA and sees a usable GPU. */
export function cudaAvailable(): boolean {
  const info = engineInfo();
  return info.cudaBuilt && info.cudaDevices > 0;
}

function requireCuda(): void {
  const info = engineInfo();
  if (!info.cudaBuilt || info.cudaDevices === 0) throw new Error(`CUDA is not available: ${info.cudaMessage}`);
}

// Frees device memory of arrays that were garbage-collected without free().
const leaked = new FinalizationRegistry<bigint>((ptr) => {
  try {
    cuda().cudaFree(ptr);
  } catch {
    // the process may be shutting down
  }
});

function dtypeOf(data: HostArray): DeviceDtype {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Uint16Array) return "bfloat16";
  if (data instanceof Int32Array) return "int32";
  throw new TypeError("data must be a Float32Array (float32), Uint16Array (bfloat16 bits) or Int32Array (int32)");
}

/** A 1-D array in GPU memory. Free it with free() (a finalizer frees forgotten ones). */
export class DeviceArray {
  readonly dtype: DeviceDtype;
  readonly length: number;
  #ptr: bigint | null;

  private constructor(dtype: DeviceDtype, length: number, ptr: bigint) {
    this.dtype = dtype;
    this.length = length;
    this.#ptr = ptr;
    leaked.register(this, ptr, this);
  }

  /** Uninitialized device memory for `length` elements. */
  static alloc(dtype: DeviceDtype, length: number): DeviceArray {
    if (!(dtype in BYTES)) throw new TypeError(`dtype must be 'float32', 'bfloat16' or 'int32' (got ${String(dtype)})`);
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer (got ${length})`);
    requireCuda();
    // a zero-length array still gets a (tiny) allocation: the engine rejects null buffers
    return new DeviceArray(dtype, length, cuda().cudaMalloc(Math.max(1, length) * BYTES[dtype]));
  }

  /** A device copy of a host array (Uint16Array means bfloat16 bits). */
  static from(data: HostArray): DeviceArray {
    const out = DeviceArray.alloc(dtypeOf(data), data.length);
    out.upload(data);
    return out;
  }

  /** Zero-filled device memory. */
  static zeros(dtype: DeviceDtype, length: number): DeviceArray {
    const out = DeviceArray.alloc(dtype, length);
    out.fillZero();
    return out;
  }

  get bytes(): number {
    return this.length * BYTES[this.dtype];
  }

  get freed(): boolean {
    return this.#ptr === null;
  }

  /** The raw device address (for the binding). */
  get ptr(): bigint {
    if (this.#ptr === null) throw new Error("this DeviceArray has been freed");
    return this.#ptr;
  }

  /** Copies `data` into the array starting at element `offset`. */
  upload(data: HostArray, offset = 0): void {
    if (dtypeOf(data) !== this.dtype) throw new TypeError(`cannot upload ${dtypeOf(data)} data into a ${this.dtype} array`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.length)
      throw new RangeError(`upload of ${data.length} elements at ${offset} exceeds the array (${this.length})`);
    cuda().cudaUpload(this.ptr, data, offset * BYTES[this.dtype]);
  }

  /** Copies the array (or `count` elements from `offset`) to a new host array. */
  download(offset = 0, count = this.length - offset): HostArray {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || offset < 0 || count < 0 || offset + count > this.length)
      throw new RangeError(`download range [${offset}, ${offset + count}) exceeds the array (${this.length})`);
    const out = this.dtype === "float32" ? new Float32Array(count) : this.dtype === "bfloat16" ? new Uint16Array(count) : new Int32Array(count);
    cuda().cudaDownload(this.ptr, out, offset * BYTES[this.dtype]);
    return out;
  }

  /** download() typed as Float32Array (float32 arrays only). */
  toFloat32(): Float32Array {
    if (this.dtype !== "float32") throw new TypeError(`toFloat32 needs a float32 array (this one is ${this.dtype})`);
    return this.download() as Float32Array;
  }

  fillZero(): void {
    cuda().cudaMemset(this.ptr, 0, this.bytes);
  }

  /** Copies all of `src` (same dtype, not longer) into this array. */
  copyFrom(src: DeviceArray): void {
    if (src.dtype !== this.dtype || src.length > this.length) throw new TypeError("copyFrom needs the same dtype and a source that fits");
    cuda().cudaCopy(this.ptr, src.ptr, src.bytes);
  }

  free(): void {
    if (this.#ptr === null) return;
    const p = this.#ptr;
    this.#ptr = null;
    leaked.unregister(this);
    cuda().cudaFree(p);
  }
}

/** A row-major matrix in device memory. */
export interface DeviceMatrix {
  data: DeviceArray;
  rows: number;
  cols: number;
}

export function deviceMatrix(data: DeviceArray, rows: number, cols: number): DeviceMatrix {
  return { data, rows, cols };
}

export interface DeviceLossOptions {
  labelSmoothing?: number;
  ignoreIndex?: number;
  reduction?: Reduction;
  temperature?: number;
  softcap?: number | null;
  /** Bias (V float32) in device memory. */
  bias?: DeviceArray | null;
  /** Compute dE, dC (and dBias). */
  grad?: boolean;
  /** Upstream gradient: a number for mean/sum (default 1), a device float32 array of N for 'none'. */
  gradOutput?: number | DeviceArray;
  /** Bytes for the logits kept at once. cuBLAS path: the slab (0 = 56 MiB, all rows × a vocabulary block of bf16
   *  gradients on Hopper, of fp32 logits elsewhere; logits computed twice); ≥ min(1024, N)·V·4 (V rounded up to 256)
   *  keeps whole rows, logits computed once (on Hopper packed to 2 bytes, so twice the rows per chunk).
   *  Fused kernels: the gradient block (0 = 32 MiB); ≥ min(1024, valid tokens)·V·4 switches to chunks. */
  workspaceBytes?: number;
  deterministic?: boolean;
  /** Scan E, C, bias and gradOutput for NaN/Inf on the device first (default true). */
  checkFinite?: boolean;
  /** Gradient tile skipping (CCE-style, exact smoothing term): false (default), true (auto threshold) or a threshold.
   *  Runs in the fused kernels. */
  tileSkipping?: boolean | number;
  /** Which GEMMs: 'auto' (default: cuBLAS for bf16 when it loads, no tile skipping and ≥ 1/3 of the tokens are
   *  valid; else the fused kernels), 'fused' (tensor-core kernels, logits only on chip), 'cublas' (bf16 only:
   *  cuBLAS GEMMs through an fp32 logit slab of workspaceBytes, 56 MiB by default). */
  impl?: "auto" | "fused" | "cublas";
  /** Also return the per-token logsumexp (default true). */
  lse?: boolean;
  /** Preallocated outputs to write into (the trainer reuses them across steps). */
  out?: Partial<DeviceLossOutputs>;
}

export interface DeviceLossOutputs {
  /** float32: 1 element (mean/sum) or N (none; 0 for ignored tokens). */
  loss: DeviceArray;
  /** float32 N: logsumexp of the final logits; NaN for ignored tokens. */
  lse: DeviceArray;
  dE: DeviceArray;
  dC: DeviceArray;
  dBias: DeviceArray;
}

export interface DeviceLossResult {
  loss: DeviceArray;
  lse: DeviceArray | null;
  dE?: DeviceArray;
  dC?: DeviceArray;
  dBias?: DeviceArray;
  validCount: number;
}

const KNOWN = new Set([
  "labelSmoothing", "ignoreIndex", "reduction", "temperature", "softcap", "bias", "grad", "gradOutput",
  "workspaceBytes", "deterministic", "checkFinite", "tileSkipping", "impl", "lse", "out",
]);

function checkMatrix(m: DeviceMatrix, name: string): void {
  if (m === null || typeof m !== "object" || !(m.data instanceof DeviceArray)) throw new TypeError(`${name} must be a DeviceMatrix {data: DeviceArray, rows, cols}`);
  if (!Number.isSafeInteger(m.rows) || m.rows < 0) throw new TypeError(`${name}.rows must be a non-negative integer`);
  if (!Number.isSafeInteger(m.cols) || m.cols < 1) throw new TypeError(`${name}.cols must be a positive integer`);
  if (m.data.dtype === "int32") throw new TypeError(`${name} must be float32 or bfloat16`);
  if (m.data.length !== m.rows * m.cols) throw new TypeError(`${name}.data has ${m.data.length} elements, expected ${m.rows}×${m.cols}`);
}

function output(given: DeviceArray | undefined, name: string, dtype: DeviceDtype, length: number): DeviceArray {
  if (given === undefined) return DeviceArray.alloc(dtype, length);
  if (!(given instanceof DeviceArray)) throw new TypeError(`out.${name} must be a DeviceArray`);
  if (given.dtype !== dtype || given.length !== length) throw new TypeError(`out.${name} must be ${dtype}[${length}] (got ${given.dtype}[${given.length}])`);
  return given;
}

/**
 * CE_ε(softcap((E·Cᵀ + b)/T))·T with E, C, targets (and bias, gradients) in GPU memory.
 * Same semantics as linearCrossEntropy; outputs are device arrays (allocated unless given
 * in `out`). Gradients are float32 whatever the input dtype.
 */
export function linearCrossEntropyDevice(
  e: DeviceMatrix, c: DeviceMatrix, targets: DeviceArray, options: DeviceLossOptions = {},
): DeviceLossResult {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) throw new TypeError(`unknown option '${key}'`);
  checkMatrix(e, "E");
  checkMatrix(c, "C");
  if (e.data.dtype !== c.data.dtype) throw new TypeError(`E and C must have the same dtype (E is ${e.data.dtype})`);
  if (e.cols !== c.cols) throw new TypeError(`E has ${e.cols} columns but C has ${c.cols}: both must be D`);
  if (!(targets instanceof DeviceArray) || targets.dtype !== "int32") throw new TypeError("targets must be an int32 DeviceArray");
  if (targets.length !== e.rows) throw new TypeError(`targets has ${targets.length} entries, E has ${e.rows} rows`);
  const N = e.rows, D = e.cols, V = c.rows;
  const reduction = options.reduction ?? "mean";
  if (options.bias != null && (!(options.bias instanceof DeviceArray) || options.bias.dtype !== "float32" || options.bias.length !== V))
    throw new TypeError(`bias must be a float32 DeviceArray of length V = ${V}`);
  let gradOutput: number | bigint | undefined;
  if (options.gradOutput !== undefined) {
    if (reduction === "none") {
      const g = options.gradOutput;
      if (!(g instanceof DeviceArray) || g.dtype !== "float32" || g.length !== N)
        throw new TypeError(`gradOutput must be a float32 DeviceArray of length N = ${N} for reduction 'none'`);
      gradOutput = g.ptr;
    } else {
      if (typeof options.gradOutput !== "number") throw new TypeError("gradOutput must be a number for reduction 'mean' or 'sum'");
      if (!Number.isFinite(options.gradOutput)) throw new RangeError("gradOutput must be finite");
      gradOutput = options.gradOutput;
    }
  }
  let skip = 0;
  const ts = options.tileSkipping ?? false;
  if (ts === true) skip = -1;
  else if (typeof ts === "number") {
    if (!(ts >= 0) || !Number.isFinite(ts)) throw new RangeError("tileSkipping must be a boolean or a threshold ≥ 0");
    skip = ts;
  } else if (ts !== false) throw new TypeError("tileSkipping must be a boolean or a threshold");
  const grad = options.grad ?? false;
  const out = options.out ?? {};
  const allocated: DeviceArray[] = [];
  const take = (given: DeviceArray | undefined, name: string, dtype: DeviceDtype, length: number) => {
    const a = output(given, name, dtype, length);
    if (a !== given) allocated.push(a);
    return a;
  };
  try {
    const loss = take(out.loss, "loss", "float32", reduction === "none" ? N : 1);
    const lse = options.lse === false ? null : take(out.lse, "lse", "float32", N);
    const dE = grad ? take(out.dE, "dE", "float32", N * D) : undefined;
    const dC = grad ? take(out.dC, "dC", "float32", V * D) : undefined;
    const dBias = grad && options.bias ? take(out.dBias, "dBias", "float32", V) : undefined;
    const res = cuda().linearCrossEntropyDevice({
      n: N, d: D, v: V, dtype: e.data.dtype,
      e: e.data.ptr, c: c.data.ptr, targets: targets.ptr, bias: options.bias?.ptr,
      labelSmoothing: options.labelSmoothing ?? 0,
      ignoreIndex: options.ignoreIndex ?? -100,
      reduction,
      temperature: options.temperature ?? 1,
      softcap: options.softcap ?? 0,
      workspaceBytes: options.workspaceBytes ?? 0,
      deterministic: options.deterministic ?? false,
      checkFinite: options.checkFinite ?? true,
      skipThreshold: skip,
      impl: options.impl ?? "auto",
      gradOutput,
      loss: loss.ptr, lse: lse?.ptr, gradE: dE?.ptr, gradC: dC?.ptr, gradBias: dBias?.ptr,
    });
    const result: DeviceLossResult = { loss, lse, validCount: res.validCount };
    if (dE) result.dE = dE;
    if (dC) result.dC = dC;
    if (dBias) result.dBias = dBias;
    return result;
  } catch (err) {
    for (const a of allocated) a.free();
    throw err;
  }
}

export function cudaSynchronize(): void {
  requireCuda();
  cuda().cudaSynchronize();
}

/** Free and total bytes of the current GPU. */
export function cudaMemoryInfo(): { free: number; total: number } {
  requireCuda();
  return cuda().cudaMemInfo();
}

/** Scratch use and the plan of the last CUDA loss call. */
export function cudaStats(): CudaStats {
  requireCuda();
  return cuda().cudaStats();
}

/** Frees the scratch the engine keeps between calls. */
export function cudaReleaseScratch(): void {
  requireCuda();
  cuda().cudaReleaseScratch();
}

/** The GPU a plan is made for: its streaming multiprocessors, compute capability major version
 *  (9 = Hopper) and whether cuBLAS loads there. */
export interface CudaDeviceDesc {
  sms: number;
  ccMajor: number;
  blasAvailable?: boolean;
}

export interface CudaLossPlan {
  /** 'fused': our tensor-core kernels; 'cublas': the logit kernel (Hopper) or an fp32 slab, and cuBLAS. */
  engine: "fused" | "cublas";
  /** 'forward' (no gradients), 'streamed' (logits computed twice) or 'chunked' (once, kept in the workspace). */
  mode: "forward" | "streamed" | "chunked";
  /** cuBLAS engine: 'registers' (Hopper logit kernel), 'packed' (chunks of packed bf16 logits) or 'slab' (fp32,
   *  written by cuBLAS); fused kernels: always 'registers'. */
  logits: "registers" | "packed" | "slab";
  gemm: "wgmma" | "mma.sync" | "cublas";
  splits: number;
  gradSplits: number;
  blockRows: number;
  blockCols: number;
  /** Device scratch of the call with this many valid tokens. */
  scratchBytes: number;
  /** The most scratch any count of valid tokens needs (what a caller-provided workspace must hold). */
  workspaceBound: number;
}

export interface CudaLossPlanOptions extends Omit<DeviceLossOptions, "bias" | "gradOutput" | "out" | "lse"> {
  dtype: "float32" | "bfloat16";
  /** A bias is given (and, with grad, its gradient wanted when gradBias). */
  bias?: boolean;
  gradBias?: boolean;
  /** Tokens whose target is not ignoreIndex (default: all N). */
  validCount?: number;
  /** E and C start on 16-byte boundaries (default true). */
  aligned?: boolean;
  device: CudaDeviceDesc;
}

/**
 * The plan the CUDA loss would run for E (n × d) and C (v × d) on the described GPU: pure arithmetic,
 * available in every build (no GPU needed), and exactly what linearCrossEntropyDevice executes.
 */
export function planLinearCrossEntropyCuda(n: number, d: number, v: number, options: CudaLossPlanOptions): CudaLossPlan {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  const { tileSkipping, ...rest } = options;
  let skip = 0;
  if (tileSkipping === true) skip = -1;
  else if (typeof tileSkipping === "number") skip = tileSkipping;
  return (addon().lossPlanCuda as (o: Record<string, unknown>) => CudaLossPlan)({
    ...rest, n, d, v, skipThreshold: skip, softcap: options.softcap ?? 0,
  });
}
