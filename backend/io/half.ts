// Half-precision number formats ↔ float32, exact where exactness is possible: bfloat16 and float16
// widen to float32 without loss; float32 narrows to bfloat16 by round-to-nearest-even, as PyTorch's
// `.to(torch.bfloat16)` does (a NaN becomes the quiet NaN 0x7fc0). The array forms return the index
// of the first non-finite element (or -1), which file readers turn into errors naming the tensor.
const u32 = new Uint32Array(1);
const f32 = new Float32Array(u32.buffer);

/** float16 bit patterns → float32 bit patterns (exact; subnormals, ±inf and NaN included). */
let F16_TABLE: Int32Array | null = null;
function f16Table(): Int32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Int32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    let man = h & 0x3ff;
    if (exp === 0x1f) t[h] = sign | 0x7f800000 | (man << 13);
    else if (exp !== 0) t[h] = sign | ((exp + 112) << 23) | (man << 13);
    else if (man === 0) t[h] = sign;
    else {
      let e = 113; // a subnormal m·2^-24 becomes normal: shift the mantissa up to its implicit bit
      while ((man & 0x400) === 0) {
        man <<= 1;
        e--;
      }
      t[h] = sign | (e << 23) | ((man & 0x3ff) << 13);
    }
  }
  F16_TABLE = t;
  return t;
}

/** bfloat16 bit patterns → float32 bit patterns (bfloat16 is the top half of a float32). */
let BF16_TABLE: Int32Array | null = null;
function bf16Table(): Int32Array {
  if (!BF16_TABLE) {
    BF16_TABLE = new Int32Array(65536);
    for (let h = 0; h < 65536; h++) BF16_TABLE[h] = h << 16;
  }
  return BF16_TABLE;
}

/** 16-bit patterns → float32 through a table of their float32 bits; returns the index of the first
 * pattern whose exponent bits (`expMask`) are all ones (NaN / ±inf), or -1. */
function widen(src: Uint16Array, dst: Float32Array, table: Int32Array, expMask: number): number {
  const out = new Int32Array(dst.buffer, dst.byteOffset, dst.length);
  let bad = -1;
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    out[i] = table[h]!;
    if ((h & expMask) === expMask && bad < 0) bad = i;
  }
  return bad;
}

/** bfloat16 → float32 (exact). Returns the index of the first NaN / ±inf, or -1. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array): number {
  return widen(src, dst, bf16Table(), 0x7f80);
}

/** float16 → float32 (exact). Returns the index of the first NaN / ±inf, or -1. */
export function f16ToF32(src: Uint16Array, dst: Float32Array): number {
  return widen(src, dst, f16Table(), 0x7c00);
}

/** float32 → bfloat16, rounding to nearest even as PyTorch's `.to(torch.bfloat16)`; NaN stays NaN.
 * Returns the index of the first result that is not finite (a NaN / ±inf input, or an overflow), or -1. */
export function f32ToBf16(src: Float32Array, dst: Uint16Array): number {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  let bad = -1;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const h = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    dst[i] = h;
    if ((h & 0x7f80) === 0x7f80 && bad < 0) bad = i;
  }
  return bad;
}

/** The float32 value of one bfloat16 bit pattern. */
export function bf16Value(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

