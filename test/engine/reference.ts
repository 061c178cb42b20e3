// An independent float64 implementation of the label-smoothed linear cross-entropy, written
// from the definition (it materializes every logit), for checking the engine.
export interface RefOptions {
  eps: number;
  ignoreIndex: number;
  temperature: number;
  softcap: number; // 0 = none
  bias?: ArrayLike<number>;
  reduction: "mean" | "sum" | "none";
  gradOutput?: number | ArrayLike<number>;
}

export interface RefResult {
  loss: number | Float64Array;
  lse: Float64Array; // NaN for ignored tokens
  dE: Float64Array;
  dC: Float64Array;
  dBias: Float64Array;
  valid: number;
}

export function referenceLoss(
  E: ArrayLike<number>, C: ArrayLike<number>, targets: ArrayLike<number>,
  N: number, D: number, V: number, o: RefOptions,
): RefResult {
  const lse = new Float64Array(N).fill(NaN);
  const losses = new Float64Array(N);
  const dE = new Float64Array(N * D), dC = new Float64Array(V * D), dBias = new Float64Array(V);
  const validRows: number[] = [];
  for (let i = 0; i < N; i++) if (targets[i] !== o.ignoreIndex) validRows.push(i);
  const valid = validRows.length;
  const s = new Float64Array(V), kappa = new Float64Array(V);
  for (const i of validRows) {
    for (let v = 0; v < V; v++) {
      let z = o.bias ? o.bias[v]! : 0;
      for (let k = 0; k < D; k++) z += E[i * D + k]! * C[v * D + k]!;
      const u = z / o.temperature;
      if (o.softcap > 0) {
        const t = Math.tanh(u / o.softcap);
        s[v] = o.softcap * t;
        kappa[v] = 1 - t * t;
      } else {
        s[v] = u;
        kappa[v] = 1;
      }
    }
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, s[v]!);
    let l = 0, sum = 0;
    for (let v = 0; v < V; v++) {
      l += Math.exp(s[v]! - m);
      sum += s[v]!;
    }
    const L = m + Math.log(l);
    const y = targets[i]!;
    lse[i] = L;
    losses[i] = o.temperature * (L - (1 - o.eps) * s[y]! - (o.eps / V) * sum);
    // gradient weight of this token
    let g: number;
    if (o.reduction === "none") g = o.gradOutput === undefined ? 1 : (o.gradOutput as ArrayLike<number>)[i]!;
    else g = o.gradOutput === undefined ? 1 : (o.gradOutput as number);
    if (o.reduction === "mean") g /= valid;
    for (let v = 0; v < V; v++) {
      const q = o.eps / V + (v === y ? 1 - o.eps : 0);
      const G = g * (Math.exp(s[v]! - L) - q) * kappa[v]!;
      dBias[v] += G;
      for (let k = 0; k < D; k++) {
        dE[i * D + k] += G * C[v * D + k]!;
        dC[v * D + k] += G * E[i * D + k]!;
      }
    }
  }
  let loss: number | Float64Array;
  if (o.reduction === "none") loss = losses;
  else {
    let total = 0;
    for (const i of validRows) total += losses[i]!;
    loss = o.reduction === "mean" ? (valid > 0 ? total / valid : NaN) : total;
  }
  return { loss, lse, dE, dC, dBias, valid };
}
