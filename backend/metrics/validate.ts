// Input types and validation shared by every metric. Pure TypeScript (no Node imports): the site
// bundles this module for the browser. Bad input throws TypeError (wrong kind of value) or
// RangeError (right kind, bad value) with a message that names the field.

/** Per-example real values (confidences, probabilities, logits). */
export type FloatArray = Float32Array | Float64Array;
/** What the metrics accept where a float array is expected (plain arrays are copied to Float64Array). */
export type FloatInput = FloatArray | ArrayLike<number>;
/** Per-example correctness: 0/1 numbers or booleans. A Uint8Array of 0/1 is used without a copy. */
export type CorrectInput = Uint8Array | Int8Array | Uint8ClampedArray | Int32Array | ArrayLike<number | boolean>;
/** Per-example class labels (integers in [0, classes)). */
export type LabelInput = Int32Array | Uint32Array | Int16Array | Uint16Array | Uint8Array | ArrayLike<number>;

export type Scheme = "equal-width" | "equal-mass";
export type Norm = "l1" | "l2" | "max";
export const SCHEMES: readonly Scheme[] = ["equal-width", "equal-mass"];
export const NORMS: readonly Norm[] = ["l1", "l2", "max"];

/** Largest accepted bin count (keeps the integer arithmetic of equal-mass binning exact). */
export const MAX_BINS = 1_000_000;

function isArrayLike(x: unknown): x is ArrayLike<unknown> {
  return (
    x !== null &&
    typeof x === "object" &&
    typeof (x as { length?: unknown }).length === "number" &&
    Number.isInteger((x as { length: number }).length) &&
    (x as { length: number }).length >= 0
  );
}

function describe(v: unknown): string {
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  return typeof v === "object" ? (v === null ? "null" : (v.constructor?.name ?? "object")) : typeof v;
}

function floatArray(x: unknown, field: string): FloatArray {
  if (x instanceof Float32Array || x instanceof Float64Array) return x;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array)) {
    return Float64Array.from(x as unknown as ArrayLike<number>);
  }
  if (Array.isArray(x) || isArrayLike(x)) {
    const a = x as ArrayLike<unknown>;
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (typeof v !== "number") throw new TypeError(`${field}[${i}] must be a number, got ${describe(v)}`);
      out[i] = v;
    }
    return out;
  }
  throw new TypeError(`${field} must be a Float32Array, Float64Array or array of numbers, got ${describe(x)}`);
}

/** Checks that a length equals the expected one (when given) and is > 0. */
export function checkLength(length: number, field: string, expected?: number, expectedField?: string): void {
  if (expected !== undefined && length !== expected) {
    throw new RangeError(`${field} has length ${length} but ${expectedField ?? "the input"} has length ${expected}`);
  }
  if (length === 0) throw new RangeError(`${field} is empty: metrics need at least one example`);
}

/** Confidences (or any probabilities): finite, in [0, 1], non-empty. */
export function probabilityArray(x: unknown, field: string, expected?: number, expectedField?: string): FloatArray {
  const a = floatArray(x, field);
  checkLength(a.length, field, expected, expectedField);
  const n = a.length;
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (!(v >= 0 && v <= 1)) {
      if (Number.isNaN(v)) throw new RangeError(`${field}[${i}] is NaN`);
      throw new RangeError(`${field}[${i}] = ${v} is outside [0, 1]`);
    }
  }
  return a;
}

/** Finite real values (entropies, losses), non-empty. */
export function finiteArray(x: unknown, field: string, expected?: number, expectedField?: string): FloatArray {
  const a = floatArray(x, field);
  checkLength(a.length, field, expected, expectedField);
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!Number.isFinite(v)) throw new RangeError(`${field}[${i}] = ${describe(v)} is not finite`);
  }
  return a;
}

/** 0/1 correctness as a Uint8Array (no copy when it already is one). */
export function correctArray(x: unknown, field: string, expected?: number, expectedField?: string): Uint8Array {
  if (!isArrayLike(x) || typeof x === "string") {
    throw new TypeError(`${field} must be a Uint8Array or an array of 0/1 or booleans, got ${describe(x)}`);
  }
  checkLength(x.length, field, expected, expectedField);
  const n = x.length;
  if (x instanceof Uint8Array) {
    for (let i = 0; i < n; i++) {
      if (x[i]! > 1) throw new RangeError(`${field}[${i}] = ${x[i]} must be 0 or 1`);
    }
    return x;
  }
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = (x as ArrayLike<unknown>)[i];
    if (v === true || v === 1) out[i] = 1;
    else if (v === false || v === 0) out[i] = 0;
    else throw new RangeError(`${field}[${i}] = ${describe(v)} must be 0, 1, true or false`);
  }
  return out;
}

/** Integer class labels in [0, classes) as an Int32Array (no copy when it already is one). */
export function labelArray(x: unknown, classes: number, field: string, expected?: number, expectedField?: string): Int32Array {
  if (!isArrayLike(x) || typeof x === "string") throw new TypeError(`${field} must be an Int32Array or an array of integers, got ${describe(x)}`);
  checkLength(x.length, field, expected, expectedField);
  const a = x instanceof Int32Array ? x : Int32Array.from({ length: x.length }, (_, i) => {
    const v = (x as ArrayLike<unknown>)[i];
    if (typeof v !== "number" || !Number.isInteger(v)) throw new TypeError(`${field}[${i}] = ${describe(v)} must be an integer`);
    return v;
  });
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v < 0 || v >= classes) throw new RangeError(`${field}[${i}] = ${v} is outside [0, ${classes})`);
  }
  return a;
}

export function checkClasses(classes: unknown, field = "classes"): number {
  if (typeof classes !== "number") throw new TypeError(`${field} must be a number, got ${describe(classes)}`);
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`${field} must be an integer >= 2, got ${describe(classes)}`);
  return classes;
}

/** Flat n×K probability rows: each entry in [0, 1], each row summing to 1 within `tolerance` (default 1e-3). */
export function probabilityMatrix(
  probs: unknown, classes: unknown, opts: { field?: string; tolerance?: number } = {},
): { probs: FloatArray; n: number; classes: number } {
  const field = opts.field ?? "probs";
  const K = checkClasses(classes);
  const p = floatArray(probs, field);
  if (p.length % K !== 0) throw new RangeError(`${field} has length ${p.length}, not a multiple of classes = ${K}`);
  const n = p.length / K;
  checkLength(n, `${field} (rows)`);
  const tol = opts.tolerance ?? 1e-3;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const base = i * K;
    for (let k = 0; k < K; k++) {
      const v = p[base + k]!;
      if (!(v >= 0 && v <= 1)) {
        if (Number.isNaN(v)) throw new RangeError(`${field}[${i}, ${k}] is NaN`);
        throw new RangeError(`${field}[${i}, ${k}] = ${v} is outside [0, 1]`);
      }
      s += v;
    }
    if (Math.abs(s - 1) > tol) throw new RangeError(`${field} row ${i} sums to ${s}, not 1 (tolerance ${tol})`);
  }
  return { probs: p, n, classes: K };
}

/** Probability rows (see probabilityMatrix) with one label per row. */
export function probabilityRows(
  probs: unknown, labels: unknown, classes: unknown, opts: { field?: string; tolerance?: number } = {},
): { probs: FloatArray; labels: Int32Array; n: number; classes: number } {
  const m = probabilityMatrix(probs, classes, opts);
  const y = labelArray(labels, m.classes, "labels", m.n, `${opts.field ?? "probs"} (rows)`);
  return { ...m, labels: y };
}

/** Flat n×K logits (or log-probabilities): no NaN or +Infinity; -Infinity (probability 0) is allowed. */
export function logitMatrix(logits: unknown, classes: unknown, field = "logits"): { logits: FloatArray; n: number; classes: number } {
  const K = checkClasses(classes);
  const z = floatArray(logits, field);
  if (z.length % K !== 0) throw new RangeError(`${field} has length ${z.length}, not a multiple of classes = ${K}`);
  const n = z.length / K;
  checkLength(n, `${field} (rows)`);
  for (let i = 0; i < z.length; i++) {
    const v = z[i]!;
    if (Number.isNaN(v) || v === Infinity) throw new RangeError(`${field}[${Math.floor(i / K)}, ${i % K}] = ${describe(v)} (NaN and +Infinity are not allowed)`);
  }
  for (let i = 0; i < n; i++) {
    let finite = false;
    for (let k = 0; k < K && !finite; k++) finite = z[i * K + k] !== -Infinity;
    if (!finite) throw new RangeError(`${field} row ${i} is all -Infinity`);
  }
  return { logits: z, n, classes: K };
}

/** Logit rows (see logitMatrix) with one label per row; the true label's logit must be finite. */
export function logitRows(
  logits: unknown, labels: unknown, classes: unknown, field = "logits",
): { logits: FloatArray; labels: Int32Array; n: number; classes: number } {
  const m = logitMatrix(logits, classes, field);
  const y = labelArray(labels, m.classes, "labels", m.n, `${field} (rows)`);
  for (let i = 0; i < m.n; i++) {
    if (m.logits[i * m.classes + y[i]!] === -Infinity) {
      throw new RangeError(`${field}[${i}, ${y[i]}] is -Infinity at the true label: the NLL is infinite`);
    }
  }
  return { ...m, labels: y };
}

export function checkBins(bins: unknown, field = "bins"): number {
  if (typeof bins !== "number") throw new TypeError(`${field} must be a number, got ${describe(bins)}`);
  if (!Number.isInteger(bins) || bins < 1 || bins > MAX_BINS) {
    throw new RangeError(`${field} must be an integer in [1, ${MAX_BINS}], got ${describe(bins)}`);
  }
  return bins;
}

export function checkScheme(scheme: unknown, field = "scheme"): Scheme {
  if (typeof scheme !== "string") throw new TypeError(`${field} must be a string, got ${describe(scheme)}`);
  if (!(SCHEMES as readonly string[]).includes(scheme)) throw new RangeError(`${field} must be one of ${SCHEMES.join(", ")}, got ${describe(scheme)}`);
  return scheme as Scheme;
}

export function checkNorm(norm: unknown, field = "norm"): Norm {
  if (typeof norm !== "string") throw new TypeError(`${field} must be a string, got ${describe(norm)}`);
  if (!(NORMS as readonly string[]).includes(norm)) throw new RangeError(`${field} must be one of ${NORMS.join(", ")}, got ${describe(norm)}`);
  return norm as Norm;
}

/** A confidence level strictly inside (0, 1), e.g. 0.95. */
export function checkLevel(level: unknown, field = "level"): number {
  if (typeof level !== "number") throw new TypeError(`${field} must be a number, got ${describe(level)}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`${field} must be in (0, 1), got ${describe(level)}`);
  return level;
}

export function checkPositiveInteger(x: unknown, field: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof x !== "number") throw new TypeError(`${field} must be a number, got ${describe(x)}`);
  if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`${field} must be an integer in [${min}, ${max}], got ${describe(x)}`);
  return x;
}

export function checkPositive(x: unknown, field: string): number {
  if (typeof x !== "number") throw new TypeError(`${field} must be a number, got ${describe(x)}`);
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`${field} must be a finite number > 0, got ${describe(x)}`);
  return x;
}
