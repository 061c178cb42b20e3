// Host-side matrices handed to the engine: row-major, float32 or bfloat16 bits.
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

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest even (as PyTorch). */
export function toBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    const u = u32[0]!;
    if ((u & 0x7fffffff) > 0x7f800000) out[i] = (u >>> 16) | 0x40;
    else out[i] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** bfloat16 bits → float32 (exact). */
export function fromBf16(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}
