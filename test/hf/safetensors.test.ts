// The half-precision conversions of the large-file safetensors reader and writer, exhaustively:
// every bfloat16 and float16 bit pattern against its value computed from sign, exponent and
// mantissa; float32 → bfloat16 rounding against a nearest-even search; the header-only reader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "../../backend/io/half.js";
import { SafetensorsReader } from "../../backend/io/safetensors.js";
import { CheckpointError } from "../../backend/io/safetensors.js";
import { bf16Math, f16Math, randomTensor, safetensorsBytes, withTemp } from "./fixtures.js";
import { rng } from "../helpers/random.js";

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);
/** bf16Math with the all-ones exponent: ±inf and NaN */
const bf16Full = (h: number) => (((h >> 7) & 0xff) === 0xff ? ((h & 0x7f) ? Number.NaN : h & 0x8000 ? -Infinity : Infinity) : bf16Math(h));

test("bfloat16 → float32: all 65,536 patterns exact; the first NaN / inf is reported", () => {
  const out = new Float32Array(65536);
  const bad = bf16ToF32(ALL, out);
  assert.equal(bad, 0x7f80, "+inf is the first non-finite pattern");
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 7) & 0xff;
    if (e === 0xff) {
      assert.ok(!Number.isFinite(out[h]!));
      assert.equal(Number.isNaN(out[h]!), (h & 0x7f) !== 0);
    } else if (!Object.is(out[h], bf16Math(h)) && !(out[h] === 0 && bf16Math(h) === 0)) assert.fail(`0x${h.toString(16)}: ${out[h]} ≠ ${bf16Math(h)}`);
  }
  assert.ok(Object.is(out[0x8000], -0));
  assert.equal(bf16ToF32(ALL.subarray(0, 100), out.subarray(0, 100)), -1);
});

test("float16 → float32: all 65,536 patterns exact, subnormals included", () => {
  const out = new Float32Array(65536);
  assert.equal(f16ToF32(ALL, out), 0x7c00);
  for (let h = 0; h < 65536; h++) {
    if (((h >> 10) & 0x1f) === 0x1f) {
      assert.equal(out[h], (h & 0x3ff) ? Number.NaN : h & 0x8000 ? -Infinity : Infinity);
      continue;
    }
    if (out[h] !== f16Math(h)) assert.fail(`0x${h.toString(16)}: ${out[h]} ≠ ${f16Math(h)}`);
  }
  assert.equal(out[1], 2 ** -24, "the smallest subnormal");
  assert.equal(out[0x3ff], 1023 * 2 ** -24, "the largest subnormal");
  assert.equal(out[0x7bff], 65504, "the largest half");
});

test("float32 → bfloat16: nearest, ties to even (both signs); NaN stays NaN; overflow and inf reported", () => {
  const r = rng(3);
  const n = 200000;
  const bits = Uint32Array.from({ length: n }, (_, i) => {
    if (i % 4 === 0) return ((Math.floor(r() * 65536) << 16) | 0x8000) >>> 0; // exact ties
    return Math.floor(r() * 2 ** 32) >>> 0;
  });
  const x = new Float32Array(bits.buffer);
  const out = new Uint16Array(n);
  f32ToBf16(x, out);
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const got = bf16Full(out[i]!);
    if (Number.isNaN(v)) {
      assert.equal(out[i], 0x7fc0);
      continue;
    }
    const lo = bits[i]! >>> 16, hi = lo + 1;
    // distances to the two neighbours (the all-ones exponent read as 2^128, so that IEEE's
    // overflow rule — at least max + ½ulp rounds to inf — falls out of the same comparison)
    const da = Math.abs(v - bf16Math(lo)), db = Math.abs(v - bf16Math(hi));
    const want = bf16Full(da < db ? lo : db < da ? hi : (lo & 1) === 0 ? lo : hi);
    if (!Object.is(got, want) && !(got === 0 && want === 0)) assert.fail(`${v} (0x${bits[i]!.toString(16)}) → ${got}, expected ${want}`);
  }
  const special = Float32Array.of(1 + 2 ** -8, -(1 + 2 ** -8), -(1 + 3 * 2 ** -8), 3.4e38, -Infinity);
  const s = new Uint16Array(5);
  assert.equal(f32ToBf16(special, s), 3, "3.4e38 overflows to inf");
  assert.deepEqual(Array.from(s.subarray(0, 3), bf16Math), [1, -1, -(1 + 2 ** -6)]);
  assert.deepEqual([s[3], s[4]], [0x7f80, 0xff80]);
});

test("SafetensorsReader reads the header only, converts by tensor, and names file and tensor on errors", () => {
  withTemp("reader", (dir) => {
    const r = rng(1);
    const a = randomTensor("a", [3, 5], "BF16", r), b = randomTensor("b.c", [7], "F16", r), c = randomTensor("d", [2, 2], "F32", r);
    const path = join(dir, "x.safetensors");
    writeFileSync(path, safetensorsBytes([a, b, c], { format: "pt", note: "hi" }));
    const f = SafetensorsReader.open(path);
    try {
      assert.deepEqual(f.header.metadata, { format: "pt", note: "hi" });
      assert.deepEqual([...f.header.entries.keys()], ["a", "b.c", "d"]);
      for (const t of [a, b, c]) {
        const out = new Float32Array(t.values.length);
        f.readFloat32(t.name, out, { finite: true });
        assert.deepEqual(Array.from(out), Array.from(t.values), t.name);
      }
      assert.throws(() => f.readFloat32("zz", new Float32Array(1)), (e: unknown) => e instanceof CheckpointError && e.message === `${path}: has no tensor 'zz'`);
      assert.throws(() => f.readFloat32("a", new Float32Array(2)), TypeError);
    } finally {
      f.close();
    }
    const inf = randomTensor("w", [4], "F16", r);
    new Uint16Array(inf.bytes.buffer)[2] = 0xfc00;
    writeFileSync(path, safetensorsBytes([inf]));
    const g = SafetensorsReader.open(path);
    try {
      assert.throws(() => g.readFloat32("w", new Float32Array(4), { finite: true }), (e: unknown) => e instanceof CheckpointError && e.message === `${path}: tensor 'w' contains -Infinity at element 2`);
    } finally {
      g.close();
    }
    assert.throws(() => SafetensorsReader.open(join(dir, "none.safetensors")), /none\.safetensors: cannot open \(ENOENT\)/);
  });
});
