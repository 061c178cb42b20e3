// Seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna) seeded through splitmix32.
// Pure 32-bit integer arithmetic (Math.imul), so the stream is identical in Node and in browsers.

import { checkPositiveInteger } from "./validate.js";

export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed`: any safe integer ≥ 0; its low and high 32-bit halves both feed the state. */
  constructor(seed = 0) {
    checkPositiveInteger(seed, "seed", 0);
    let x = (seed >>> 0) ^ Math.imul(Math.floor(seed / 4294967296) >>> 0, 0x9e3779b1);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform integer in [0, 2^32). */
  nextU32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /**
   * One bootstrap resample as multiplicities: counts[i] = how many of n uniform draws (with
   * replacement) picked example i. Index = floor(u · n / 2^32) for a 32-bit u (bias ≤ n / 2^32).
   */
  fillCounts(counts: Uint32Array): void {
    const n = counts.length;
    counts.fill(0);
    const scale = n / 4294967296;
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let t = 0; t < n; t++) {
      const u = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const x = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= x;
      s3 = (s3 << 11) | (s3 >>> 21);
      // u·scale < n ≤ 2^32: truncation is floor; the clamp guards the last ulp for n > 2^21.
      let idx = n < 2147483648 ? (u * scale) | 0 : Math.floor(u * scale);
      if (idx >= n) idx = n - 1;
      counts[idx]!++;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
