// The flash-attention op's CPU path (calib_attention_forward / _backward through the addon's
// attentionForward / attentionBackward) against an independent float64 attention written here: it
// materializes the T×T logits per head, takes the softmax and its analytic gradients
// (dS = P ⊙ (dP − rowsum(P ⊙ dP)), through the soft-cap by 1 − tanh²), and is itself checked against
// central differences. Cases: multi-head, grouped-query, soft-cap, sliding window, all of them together,
// T = 1, float32 and bfloat16 elements; thread-count independence; validation that names the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addon, fromBf16, toBf16 } from "../../backend/engine/index.js";
import { normals, relError, rng } from "../helpers/random.js";

interface Case {
  name: string;
  b: number;
  t: number;
  hq: number;
  hkv: number;
  d: number;
  scale: number;
  softcap?: number;
  window?: number;
}

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dO: Float32Array;
}

interface Raw {
  o: Float32Array | Uint16Array;
  lse: Float32Array;
  dq: Float32Array | Uint16Array;
  dk: Float32Array | Uint16Array;
  dv: Float32Array | Uint16Array;
}
type Binding = (opts: Record<string, unknown>) => Raw;
const forward = (o: Record<string, unknown>) => (addon().attentionForward as Binding)(o);
const backward = (o: Record<string, unknown>) => (addon().attentionBackward as Binding)(o);

const CASES: Case[] = [
  { name: "multi-head (B 2, T 9, H 2, Dh 8)", b: 2, t: 9, hq: 2, hkv: 2, d: 8, scale: 1 / Math.sqrt(8) },
  { name: "grouped-query 6/2 (T 12, Dh 4)", b: 1, t: 12, hq: 6, hkv: 2, d: 4, scale: 0.5 },
  { name: "multi-query 3/1 with soft-cap 1.5", b: 1, t: 10, hq: 3, hkv: 1, d: 6, scale: 0.9, softcap: 1.5 },
  { name: "sliding window 3 (T 11)", b: 2, t: 11, hq: 2, hkv: 1, d: 5, scale: 0.7, window: 3 },
  { name: "GQA 4/2 + soft-cap 2 + window 4", b: 2, t: 13, hq: 4, hkv: 2, d: 4, scale: 0.8, softcap: 2, window: 4 },
  { name: "T = 1", b: 3, t: 1, hq: 2, hkv: 1, d: 3, scale: 1 },
];

function inputs(c: Case, seed: number): Inputs {
  const r = rng(seed);
  const nq = c.b * c.t * c.hq * c.d, nkv = c.b * c.t * c.hkv * c.d;
  // logits of std ≈ 1.5 (scale·|q||k|), so the soft-cap and the softmax are far from linear
  return { q: normals(r, nq, 1.2), k: normals(r, nkv, 1.2), v: normals(r, nkv), dO: normals(r, nq) };
}

// ---- the independent float64 reference
interface Ref {
  o: Float64Array;
  lse: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

function reference(c: Case, x: Inputs): Ref {
  const { b: B, t: T, hq: Hq, hkv: Hkv, d: D } = c;
  const cap = c.softcap ?? 0, W = c.window ?? 0;
  const qi = (b: number, t: number, h: number) => ((b * T + t) * Hq + h) * D;
  const ki = (b: number, t: number, g: number) => ((b * T + t) * Hkv + g) * D;
  const seen = (i: number, j: number) => j <= i && (W === 0 || j > i - W);
  const o = new Float64Array(B * T * Hq * D), lse = new Float64Array(B * Hq * T);
  const dq = new Float64Array(o.length), dk = new Float64Array(B * T * Hkv * D), dv = new Float64Array(dk.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      const S = new Float64Array(T * T), U = new Float64Array(T * T), P = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        let m = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!seen(i, j)) continue;
          let u = 0;
          for (let d = 0; d < D; d++) u += x.q[qi(b, i, h) + d]! * x.k[ki(b, j, g) + d]!;
          U[i * T + j] = u;
          const s = cap > 0 ? cap * Math.tanh((c.scale * u) / cap) : c.scale * u;
          S[i * T + j] = s;
          m = Math.max(m, s);
        }
        let l = 0;
        for (let j = 0; j < T; j++) if (seen(i, j)) l += Math.exp(S[i * T + j]! - m);
        lse[(b * Hq + h) * T + i] = m + Math.log(l);
        for (let j = 0; j < T; j++) if (seen(i, j)) P[i * T + j] = Math.exp(S[i * T + j]! - m) / l;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += P[i * T + j]! * x.v[ki(b, j, g) + d]!;
          o[qi(b, i, h) + d] = acc;
        }
      }
      // backward: dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dU = dS·scale·(1 − tanh²)
      for (let i = 0; i < T; i++) {
        const dP = new Float64Array(T);
        let rowsum = 0;
        for (let j = 0; j < T; j++) {
          if (!seen(i, j)) continue;
          for (let d = 0; d < D; d++) dP[j] += x.dO[qi(b, i, h) + d]! * x.v[ki(b, j, g) + d]!;
          rowsum += P[i * T + j]! * dP[j]!;
        }
        for (let j = 0; j < T; j++) {
          if (!seen(i, j)) continue;
          const p = P[i * T + j]!;
          const th = cap > 0 ? Math.tanh((c.scale * U[i * T + j]!) / cap) : 0;
          const du = p * (dP[j]! - rowsum) * c.scale * (1 - th * th);
          for (let d = 0; d < D; d++) {
            dq[qi(b, i, h) + d] += du * x.k[ki(b, j, g) + d]!;
            dk[ki(b, j, g) + d] += du * x.q[qi(b, i, h) + d]!;
            dv[ki(b, j, g) + d] += p * x.dO[qi(b, i, h) + d]!;
          }
        }
      }
    }
  return { o, lse, dq, dk, dv };
}

// Relative Frobenius error, or — where the exact tensor is 0 (T = 1: softmax over one key has no gradient
// through its logit, so dq = dk = 0) — an absolute bound.
function assertClose(label: string, got: ArrayLike<number>, want: Float64Array, tol: number) {
  if (want.every((x) => x === 0)) {
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]!));
    assert.ok(worst <= 1e-6, `${label}: exact value is 0, got max |x| ${worst}`);
  } else {
    const err = relError(got, want);
    assert.ok(err <= tol, `${label}: relative error ${err}`);
  }
}

function run(c: Case, x: Inputs, dtype: "float32" | "bfloat16", threads = 0) {
  const enc = (a: Float32Array) => (dtype === "bfloat16" ? toBf16(a) : a);
  const opts = {
    b: c.b, t: c.t, hq: c.hq, hkv: c.hkv, headDim: c.d, scale: c.scale, softcap: c.softcap ?? 0,
    window: c.window ?? 0, dtype, threads,
  };
  const fwd = forward({ ...opts, q: enc(x.q), k: enc(x.k), v: enc(x.v) });
  const bwd = backward({ ...opts, q: enc(x.q), k: enc(x.k), v: enc(x.v), o: fwd.o, lse: fwd.lse, dO: enc(x.dO) });
  const dec = (a: Float32Array | Uint16Array) => (a instanceof Uint16Array ? fromBf16(a) : a);
  return { o: dec(fwd.o), lse: fwd.lse, dq: dec(bwd.dq), dk: dec(bwd.dk), dv: dec(bwd.dv), raw: { fwd, bwd } };
}

const roundBf16 = (x: Inputs): Inputs => {
  const r = (a: Float32Array) => fromBf16(toBf16(a));
  return { q: r(x.q), k: r(x.k), v: r(x.v), dO: r(x.dO) };
};

test("the float64 reference's gradients match central differences of Σ dO ⊙ O", () => {
  for (const c of [CASES[4]!, CASES[2]!]) {
    const x = inputs(c, 11);
    const ref = reference(c, x);
    const loss = (y: Inputs) => {
      const o = reference(c, y).o;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i]! * y.dO[i]!;
      return s;
    };
    const h = 1e-5;
    for (const [name, grad] of [["q", ref.dq], ["k", ref.dk], ["v", ref.dv]] as const) {
      const base = x[name];
      for (let idx = 0; idx < base.length; idx += 3) {
        // perturb in float64 through a Float64Array-backed copy of the inputs
        const plus = { ...x, [name]: Float64Array.from(base) } as unknown as Inputs;
        const minus = { ...x, [name]: Float64Array.from(base) } as unknown as Inputs;
        plus[name][idx] = base[idx]! + h;
        minus[name][idx] = base[idx]! - h;
        const fd = (loss(plus) - loss(minus)) / (2 * h);
        assert.ok(Math.abs(fd - grad[idx]!) <= 1e-6 * Math.max(1, Math.abs(fd)), `${c.name}: d${name}[${idx}] ${grad[idx]} vs ${fd}`);
      }
    }
  }
});

for (const [n, c] of CASES.entries()) {
  test(`CPU attention matches the float64 reference: ${c.name}`, () => {
    const x = inputs(c, 100 + n);
    const ref = reference(c, x);
    const out = run(c, x, "float32");
    for (const key of ["o", "lse", "dq", "dk", "dv"] as const) assertClose(`${c.name}: ${key}`, out[key], ref[key], 1e-6);
    // bfloat16 elements: the reference gets the rounded inputs; outputs are rounded once (2^-9 relative)
    const xb = roundBf16(x);
    const refb = reference(c, xb);
    const outb = run(c, x, "bfloat16");
    assertClose(`${c.name} [bf16]: lse`, outb.lse, refb.lse, 1e-6);
    for (const key of ["o", "dq", "dk", "dv"] as const) assertClose(`${c.name} [bf16]: ${key}`, outb[key], refb[key], 4e-3);
  });
}

test("a window of at least T is no window; a window of 1 attends to the token itself", () => {
  const c = CASES[1]!;
  const x = inputs(c, 7);
  const full = run(c, x, "float32"), wide = run({ ...c, window: c.t }, x, "float32");
  assert.deepEqual(wide.o, full.o);
  assert.deepEqual(wide.dk, full.dk);
  const self = run({ ...c, window: 1 }, x, "float32");
  const rep = c.hq / c.hkv;
  for (let t = 0; t < c.t; t++)
    for (let h = 0; h < c.hq; h++)
      for (let d = 0; d < c.d; d++) {
        const o = self.o[(t * c.hq + h) * c.d + d]!, v = x.v[(t * c.hkv + Math.floor(h / rep)) * c.d + d]!;
        assert.ok(Math.abs(o - v) <= 1e-6 * Math.max(1, Math.abs(v)), `o[${t}, ${h}, ${d}] = v[${t}]`);
      }
});

test("results do not depend on the thread count (bitwise)", () => {
  const c = CASES[4]!;
  const x = inputs(c, 3);
  const one = run(c, x, "float32", 1), two = run(c, x, "float32", 2);
  for (const key of ["o", "lse", "dq", "dk", "dv"] as const) assert.deepEqual(two[key], one[key], key);
});

test("bad arguments throw errors that name the field", () => {
  const c = CASES[0]!;
  const x = inputs(c, 1);
  const base = { b: c.b, t: c.t, hq: c.hq, hkv: c.hkv, headDim: c.d, scale: c.scale, q: x.q, k: x.k, v: x.v };
  const throwsWith = (fn: () => unknown, kind: typeof TypeError | typeof RangeError, re: RegExp) =>
    assert.throws(fn, (err: unknown) => err instanceof kind && re.test((err as Error).message));
  throwsWith(() => forward({ ...base, k: x.k.subarray(1) }), TypeError, /k has 287 elements, expected 288/);
  throwsWith(() => forward({ ...base, hq: 3, hkv: 2, q: new Float32Array(c.b * c.t * 3 * c.d) }), RangeError, /hq \(3\) must be a multiple of hkv \(2\)/);
  throwsWith(() => forward({ ...base, scale: 0 }), RangeError, /scale must be a finite number > 0/);
  throwsWith(() => forward({ ...base, scale: undefined }), TypeError, /scale is required/);
  throwsWith(() => forward({ ...base, softcap: -1 }), RangeError, /softcap/);
  throwsWith(() => forward({ ...base, window: -2 }), RangeError, /window = -2 is out of range/);
  throwsWith(() => forward({ ...base, q: toBf16(x.q) }), TypeError, /q must be a Float32Array/);
  throwsWith(() => forward({ ...base, dtype: "float16" }), TypeError, /dtype must be one of/);
  // the CUDA path's limits are checked before any device is looked for (same errors with or without a GPU)
  throwsWith(() => forward({ ...base, device: "cuda" }), TypeError, /dtype: the CUDA attention runs bfloat16 only/);
  const bf = { ...base, dtype: "bfloat16", q: toBf16(x.q), k: toBf16(x.k), v: toBf16(x.v), device: "cuda" };
  const wide = new Uint16Array(c.b * c.t * c.hq * 264).fill(0x3f80); // bf16 ones, head_dim 264
  throwsWith(() => forward({ ...bf, headDim: 264, q: wide, k: wide, v: wide }), RangeError, /head_dim 264 is not supported by the CUDA attention \(at most 256\)/);
  const fwd = forward(base);
  const lse = fwd.lse.slice();
  lse[3] = NaN;
  throwsWith(() => backward({ ...base, o: fwd.o, lse, dO: x.dO }), RangeError, /lse\[3\] is not finite/);
  throwsWith(() => backward({ ...base, o: fwd.o, lse: fwd.lse }), TypeError, /dO is required/);
});
