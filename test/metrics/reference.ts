// Independent float64 reference implementations used by the metric tests. Written for clarity,
// not speed: per-example objects, explicit bins, O(n²) ranks, direct kernel sums. They share no
// code with backend/metrics.

export interface Example {
  c: number;
  a: number;
}

export function examples(conf: ArrayLike<number>, correct: ArrayLike<number | boolean>): Example[] {
  return Array.from({ length: conf.length }, (_, i) => ({ c: Number(conf[i]), a: correct[i] ? 1 : 0 }));
}

/** Bin of every example by the documented definitions (equal-mass through explicit rank ranges). */
export function refBinIndex(xs: Example[], M: number, scheme: "equal-width" | "equal-mass"): number[] {
  const n = xs.length;
  if (scheme === "equal-width") {
    return xs.map(({ c }) => {
      // The bin b with b ≤ c·M < b + 1, the last bin closed.
      for (let b = 0; b < M; b++) if (c * M < b + 1) return b;
      return M - 1;
    });
  }
  return xs.map(({ c }) => {
    let r = 0;
    for (const y of xs) if (y.c < c) r++;
    for (let b = 0; b < M; b++) {
      if (Math.floor((b * n) / M) <= r && r < Math.floor(((b + 1) * n) / M)) return b;
    }
    throw new Error("rank outside every bin");
  });
}

export interface RefBin {
  b: number;
  members: Example[];
  n: number;
  conf: number;
  acc: number;
}

export function refBins(xs: Example[], M: number, scheme: "equal-width" | "equal-mass"): RefBin[] {
  const idx = refBinIndex(xs, M, scheme);
  const out: RefBin[] = [];
  for (let b = 0; b < M; b++) {
    const members = xs.filter((_, i) => idx[i] === b);
    if (members.length === 0) continue;
    const n = members.length;
    out.push({
      b, members, n,
      conf: members.reduce((s, x) => s + x.c, 0) / n,
      acc: members.reduce((s, x) => s + x.a, 0) / n,
    });
  }
  return out;
}

export function refCE(xs: Example[], M: number, scheme: "equal-width" | "equal-mass", norm: "l1" | "l2" | "max"): number {
  const bins = refBins(xs, M, scheme);
  const n = xs.length;
  if (norm === "max") return Math.max(...bins.map((b) => Math.abs(b.acc - b.conf)));
  if (norm === "l1") return bins.reduce((s, b) => s + (b.n / n) * Math.abs(b.acc - b.conf), 0);
  return Math.sqrt(bins.reduce((s, b) => s + (b.n / n) * (b.acc - b.conf) ** 2, 0));
}

/** Top-label ECE, M equal-width bins (half-open, the last closed): Σ_b |Σ correct − Σ confidence| / n in float64. */
export function refEce(conf: ArrayLike<number>, correct: ArrayLike<number | boolean>, M = 15): number {
  const sc = new Float64Array(M), sa = new Float64Array(M);
  for (let i = 0; i < conf.length; i++) {
    const c = Number(conf[i]);
    const b = Math.min(M - 1, Math.floor(c * M));
    sc[b]! += c;
    sa[b]! += correct[i] ? 1 : 0;
  }
  let s = 0;
  for (let b = 0; b < M; b++) s += Math.abs(sa[b]! - sc[b]!);
  return s / conf.length;
}

export function refACE(xs: Example[], M: number, scheme: "equal-width" | "equal-mass"): number {
  const bins = refBins(xs, M, scheme);
  return bins.reduce((s, b) => s + Math.abs(b.acc - b.conf), 0) / bins.length;
}

export function refDebiasedL2(xs: Example[], M: number, scheme: "equal-width" | "equal-mass"): number {
  const bins = refBins(xs, M, scheme);
  let s = 0;
  for (const b of bins) {
    if (b.n < 2) continue;
    s += (b.n / xs.length) * ((b.acc - b.conf) ** 2 - (b.acc * (1 - b.acc)) / (b.n - 1));
  }
  return Math.sqrt(Math.max(0, s));
}

/** Wilson bounds as the roots of (p̂ − p)² = z² p (1 − p) / n (quadratic formula). */
export function refWilson(k: number, n: number, z: number): [number, number] {
  const ph = k / n;
  const A = 1 + (z * z) / n;
  const B = -(2 * ph + (z * z) / n);
  const C = ph * ph;
  const disc = Math.sqrt(Math.max(0, B * B - 4 * A * C));
  return [Math.max(0, (-B - disc) / (2 * A)), Math.min(1, (-B + disc) / (2 * A))];
}

export function refBrierTop(xs: Example[]): number {
  return xs.reduce((s, x) => s + (x.c - x.a) ** 2, 0) / xs.length;
}

/** Deterministic float64 random numbers for the tests (a different generator than the library's). */
export function lcg(seed: number): () => number {
  let s = BigInt(seed) & 0xffffffffffffffffn;
  return () => {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return Number(s >> 11n) / 2 ** 53;
  };
}

/** Confidences in [0, 1] with the given share of exact ties, exact 0s and exact 1s; correctness ~ Bernoulli(skew(c)). */
export function randomTopLabel(n: number, seed: number, opts: { ties?: boolean; skew?: (c: number) => number; float32?: boolean } = {}) {
  const rnd = lcg(seed);
  const conf = opts.float32 === false ? new Float64Array(n) : new Float32Array(n);
  const correct = new Uint8Array(n);
  const skew = opts.skew ?? ((c: number) => Math.min(1, Math.max(0, c * 0.8 + 0.1)));
  for (let i = 0; i < n; i++) {
    const u = rnd();
    let c: number;
    if (opts.ties && u < 0.1) c = 1;
    else if (opts.ties && u < 0.13) c = 0;
    else if (opts.ties && u < 0.4) c = Math.round(rnd() * 20) / 20;
    else c = rnd() ** 0.5;
    conf[i] = c;
    correct[i] = rnd() < skew(conf[i]!) ? 1 : 0;
  }
  return { conf, correct };
}

/** smECE_σ by direct kernel sums (fully reflected Gaussian, images k = −4..4) and Simpson's rule on T points. */
export function refSmECESigma(xs: Example[], sigma: number, T = 8001): number {
  const phi = (x: number) => Math.exp(-(x * x) / (2 * sigma * sigma));
  const K = (t: number, c: number) => {
    let s = 0;
    for (let k = -4; k <= 4; k++) s += phi(t - c - 2 * k) + phi(t + c - 2 * k);
    return s;
  };
  let num = 0;
  let den = 0;
  const h = 1 / (T - 1);
  for (let j = 0; j < T; j++) {
    const t = j * h;
    let r = 0;
    let d = 0;
    for (const x of xs) {
      const k = K(t, x.c);
      r += k * (x.c - x.a);
      d += k;
    }
    const w = j === 0 || j === T - 1 ? 1 : j % 2 === 1 ? 4 : 2;
    num += w * Math.abs(r);
    den += w * d;
  }
  return num / den;
}

/** relplot's bandwidth search applied to a smECE_σ function. */
export function refSigmaSearch(f: (s: number) => number, eps = 1e-3, refine = 10): number {
  const check = (s: number) => s < eps || s < f(s);
  if (check(1)) return 1;
  let start = 1;
  let end = 0;
  for (let i = 0; i < refine; i++) {
    const mid = (start + end) / 2;
    if (check(mid)) end = mid;
    else start = mid;
  }
  return start;
}

/** Mean NLL of softmax(z/T) with labels, straightforward float64. */
export function refNllLogits(z: ArrayLike<number>, y: ArrayLike<number>, K: number, T: number): number {
  const n = y.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: K }, (_, k) => Number(z[i * K + k]) / T);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((acc, v) => acc + Math.exp(v - m), 0));
    s += lse - row[Number(y[i])]!;
  }
  return s / n;
}
