// The fused linear + label-smoothed cross-entropy: one entry point for every device and
// implementation (in the spirit of Cut Cross-Entropy's `linear_cross_entropy(..., impl=)`).
import { addon, type RawLossResult } from "./addon.js";
import { resolveDevice, type Device } from "./device.js";
import { matrixDtype, type Matrix } from "./tensor.js";

export type Reduction = "mean" | "sum" | "none";

export interface LinearCrossEntropyOptions {
  /** ε ∈ [0, 1]: the target is (1−ε)·onehot + ε/V over all V entries (PyTorch's `label_smoothing`). */
  labelSmoothing?: number;
  /** Tokens with this target contribute nothing (default -100). */
  ignoreIndex?: number;
  /** 'mean' over non-ignored tokens (NaN when there are none, as in PyTorch), 'sum', or 'none'. */
  reduction?: Reduction;
  /** Logits are divided by T and the loss multiplied by T (the paper's training temperature). */
  temperature?: number;
  /** Soft-capping c·tanh(z/c) after the temperature; null/0 for none. */
  softcap?: number | null;
  /** Optional bias (V), added to the logits before temperature and softcap. */
  bias?: Float32Array | null;
  /** Return dE, dC (and dBias) for the upstream gradient `gradOutput`. */
  grad?: boolean;
  /** Upstream gradient: a number for mean/sum (default 1), one per token for 'none'. */
  gradOutput?: number | Float32Array;
  device?: Device;
  /** 'fused' never stores the N×V logits; 'naive' materializes them (baseline, CPU only). */
  impl?: "fused" | "naive";
  /** CUDA: bytes the kernel may use to keep logit tiles (0 = fully streamed). */
  workspaceBytes?: number;
  /** CPU threads for this call (0 = engine default). */
  threads?: number;
  /** CUDA: make accumulation order reproducible. */
  deterministic?: boolean;
  /** Scan E, C and bias for NaN/Inf first (default true). */
  checkFinite?: boolean;
}

export interface LinearCrossEntropyResult<L extends number | Float32Array = number | Float32Array> extends RawLossResult {
  /** Reduced loss, or per-token losses (0 for ignored tokens) with reduction 'none'. */
  loss: L;
  /** Per-token logsumexp of the final logits softcap(z/T); NaN for ignored tokens. */
  lse: Float32Array;
  /** Tokens whose target is not ignoreIndex. */
  validCount: number;
  device: "cpu" | "cuda";
}

const KNOWN = new Set([
  "labelSmoothing", "ignoreIndex", "reduction", "temperature", "softcap", "bias", "grad", "gradOutput",
  "device", "impl", "workspaceBytes", "threads", "deterministic", "checkFinite",
]);

/**
 * Loss (and optionally gradients) of CE_ε(softcap((E·Cᵀ + b)/T)) · T without storing N×V logits.
 * E is N×D (token states), C is V×D (classifier rows), targets has N int32 entries.
 * Float32Array inputs run in fp32; Uint16Array inputs are bfloat16 (fp32 accumulation).
 * Gradients are float32 whatever the input dtype. Bad input throws TypeError/RangeError.
 */
export function linearCrossEntropy(
  e: Matrix, c: Matrix, targets: Int32Array,
  options: LinearCrossEntropyOptions & { reduction: "none" },
): LinearCrossEntropyResult<Float32Array>;
export function linearCrossEntropy(
  e: Matrix, c: Matrix, targets: Int32Array,
  options?: LinearCrossEntropyOptions & { reduction?: "mean" | "sum" },
): LinearCrossEntropyResult<number>;
export function linearCrossEntropy(
  e: Matrix, c: Matrix, targets: Int32Array, options: LinearCrossEntropyOptions = {},
): LinearCrossEntropyResult {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown option '${key}'`);
  }
  const dtype = matrixDtype(e, "E");
  if (matrixDtype(c, "C") !== dtype) throw new TypeError(`E and C must have the same dtype (E is ${dtype})`);
  if (e.cols !== c.cols) throw new TypeError(`E has ${e.cols} columns but C has ${c.cols}: both must be D`);
  if (!(targets instanceof Int32Array)) throw new TypeError("targets must be an Int32Array");
  if (targets.length !== e.rows) throw new TypeError(`targets has ${targets.length} entries, E has ${e.rows} rows`);
  const device = resolveDevice(options.device ?? "cpu");
  const out = addon().linearCrossEntropy({
    e: e.data, c: c.data, targets, n: e.rows, d: e.cols, v: c.rows, dtype,
    bias: options.bias ?? undefined,
    labelSmoothing: options.labelSmoothing ?? 0,
    ignoreIndex: options.ignoreIndex ?? -100,
    reduction: options.reduction ?? "mean",
    temperature: options.temperature ?? 1,
    softcap: options.softcap ?? 0,
    grad: options.grad ?? false,
    gradOutput: options.gradOutput,
    device,
    impl: options.impl ?? "fused",
    workspaceBytes: options.workspaceBytes ?? 0,
    threads: options.threads ?? 0,
    deterministic: options.deterministic ?? false,
    checkFinite: options.checkFinite ?? true,
  });
  return { ...out, device };
}
