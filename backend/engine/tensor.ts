// Host-side matrices handed to the engine: row-major, float32 or bfloat16 bits.
import { bf16ToF32, f32ToBf16 } from "../io/half.js";

export type Dtype = "float32" | "bfloat16";

export interface Matrix {
  /** Float32Array for float32, Uint16Array holding bfloat16 bit patterns for bfloat16. */
  data: Float32Array | Uint16Array;
  rows: number;
  cols: number;
}

export function matrix(data: Float32Array | Uint16Array, rows: number, cols: number): Matrix {
  return { data, rows, cols };
}

/** Checks shape and element kind, returning the dtype; throws TypeError naming the matrix. */
export function matrixDtype(m: Matrix, name: string): Dtype {
  if (m === null || typeof m !== "object") throw new TypeError(`${name} must be a matrix {data, rows, cols}`);
  const { data, rows, cols } = m;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new TypeError(`${name}.rows must be a non-negative integer`);
  if (!Number.isSafeInteger(cols) || cols < 1) throw new TypeError(`${name}.cols must be a positive integer`);
  let dtype: Dtype;
  if (data instanceof Float32Array) dtype = "float32";
  else if (data instanceof Uint16Array) dtype = "bfloat16";
  else throw new TypeError(`${name}.data must be a Float32Array (float32) or Uint16Array (bfloat16)`);
  if (data.length !== rows * cols) {
    throw new TypeError(`${name}.data has ${data.length} elements, expected ${rows}×${cols} = ${rows * cols}`);
  }
  return dtype;
}

/** float32 → bfloat16 bits, round to nearest even (as PyTorch). */
export function toBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  f32ToBf16(src, out);
  return out;
}

/** bfloat16 bits → float32 (exact). */
export function fromBf16(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  bf16ToF32(src, out);
  return out;
}
