// Loads the native engine (native/build/Release/calib.node) once, with a clear message
// when it has not been built. Everything else in backend/ goes through the typed facade.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface EngineInfo {
  cudaBuilt: boolean;
  cudaDevices: number;
  cudaMessage: string;
  cpuThreads: number;
}

/** What the binding's linearCrossEntropy returns (loss.ts adds the device). */
export interface RawLossResult {
  loss: number | Float32Array;
  lse: Float32Array;
  validCount: number;
  dE?: Float32Array;
  dC?: Float32Array;
  dBias?: Float32Array;
}

// The raw binding; its functions take one options object (see native/src/napi/).
export interface NativeAddon {
  info(): EngineInfo;
  setThreads(n: number): void;
  linearCrossEntropy(options: Record<string, unknown>): RawLossResult;
  [name: string]: unknown;
}

export const addonPath = fileURLToPath(new URL("../../native/build/Release/calib.node", import.meta.url));

let cached: NativeAddon | undefined;

export function addon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    throw new Error(`the engine addon is not built (${addonPath} is missing): run \`npm run build:native\``);
  }
  cached = createRequire(import.meta.url)(addonPath) as NativeAddon;
  return cached;
}

export function engineInfo(): EngineInfo {
  return addon().info();
}

/** Threads the CPU path uses by default (0 = all cores; CALIB_THREADS also sets it). */
export function setThreads(n: number): void {
  addon().setThreads(n);
}

/** NCCL as the engine finds it at run time (native/src/dist/nccl.cc): loaded or not, and why. */
export interface NcclStatus {
  available: boolean;
  /** the library that loaded ('' when none did) */
  path: string;
  /** NCCL's version code (e.g. 22703 for 2.27.3; 0 when none loaded) */
  version: number;
  /** when not available: what was tried */
  message: string;
}

export function ncclStatus(): NcclStatus {
  return (addon().ncclStatus as () => NcclStatus)();
}
