// Temperature scaling (Guo et al., 2017): p_T = softmax(z / T), T > 0 fitted to minimize the NLL.
//
// Method. With β = 1/T, NLL(β) = (1/n) Σ_i [logsumexp_k(β z_ik) − β z_{i,y_i}] is convex in β
// (log-sum-exp of functions linear in β), with NLL'(β) = mean(E_p[z] − z_y) and
// NLL''(β) = mean(Var_p[z]) ≥ 0. The fit is a safeguarded Newton iteration on NLL'(β) = 0 inside
// the bracket [1/maxT, 1/minT] (bisection in log β whenever a Newton step leaves the bracket), so it
// converges to the global minimum on the bracket, or to the bound when the minimum lies outside.
// Finally the NLL at the fitted T is compared with the NLL at T = 1 (when 1 is inside the bracket)
// and T = 1 is returned if it is not worse: the fit never raises the NLL on its fit set.
// Inputs. Logits, or log-probabilities (softmax is invariant to a per-row shift, so log p works
// the same: fitTemperatureFromProbs takes log p itself). -Infinity entries (probability 0) are allowed
// except at the true label; NaN and +Infinity are rejected.

import { logitMatrix, logitRows, probabilityRows, checkPositive, checkPositiveInteger, type FloatArray, type FloatInput, type LabelInput } from "./validate.js";

export interface TemperatureOptions {
  /** Smallest temperature considered (default 0.01). */
  minTemperature?: number;
  /** Largest temperature considered (default 100). */
  maxTemperature?: number;
  /** Stop when the bracket on β is this small relative to β (default 1e-10). */
  tolerance?: number;
  maxIterations?: number;
}

export interface TemperatureFit {
  temperature: number;
  /** NLL at the fitted temperature. */
  nll: number;
  /** NLL at T = 1. */
  nllAtOne: number;
  iterations: number;
  /** True when the minimum lies on (or beyond) a bound of [minTemperature, maxTemperature]. */
  atBound: boolean;
}

interface Eval {
  f: number;
  d: number;
  h: number;
}

/** NLL(β) and its first two derivatives at β (one pass over the rows). */
function evaluate(z: FloatArray, y: Int32Array, n: number, K: number, beta: number, derivatives: boolean): Eval {
  let f = 0, d = 0, h = 0;
  for (let i = 0; i < n; i++) {
    const base = i * K;
    let zmax = -Infinity;
    for (let k = 0; k < K; k++) {
      const v = z[base + k]!;
      if (v > zmax) zmax = v;
    }
    // Shifted logits u = z − zmax ≤ 0; -Infinity entries have p = 0 and are skipped.
    let s = 0;
    let m1 = 0;
    for (let k = 0; k < K; k++) {
      const v = z[base + k]!;
      if (v === -Infinity) continue;
      const u = v - zmax;
      const e = Math.exp(beta * u);
      s += e;
      m1 += e * u;
    }
    const uy = z[base + y[i]!]! - zmax;
    f += Math.log(s) - beta * uy;
    if (derivatives) {
      const mean = m1 / s;
      let v2 = 0;
      for (let k = 0; k < K; k++) {
        const v = z[base + k]!;
        if (v === -Infinity) continue;
        const u = v - zmax;
        const du = u - mean;
        v2 += Math.exp(beta * u) * du * du;
      }
      d += mean - uy;
      h += v2 / s;
    }
  }
  return { f: f / n, d: d / n, h: h / n };
}

/** Mean NLL of softmax(z / T) over flat n×K logits (or log-probabilities). */
export function nllFromLogits(logits: FloatInput, labels: LabelInput, classes: number, temperature = 1): number {
  const T = checkPositive(temperature, "temperature");
  const { logits: z, labels: y, n, classes: K } = logitRows(logits, labels, classes);
  return evaluate(z, y, n, K, 1 / T, false).f;
}

/** NLL at each temperature (for NLL-vs-T curves and sliders). */
export function temperatureCurve(logits: FloatInput, labels: LabelInput, classes: number, temperatures: ArrayLike<number>): Float64Array {
  const { logits: z, labels: y, n, classes: K } = logitRows(logits, labels, classes);
  const out = new Float64Array(temperatures.length);
  for (let t = 0; t < temperatures.length; t++) {
    const T = checkPositive(temperatures[t], `temperatures[${t}]`);
    out[t] = evaluate(z, y, n, K, 1 / T, false).f;
  }
  return out;
}

/** softmax(z / T) of each row, as flat n×K probabilities. */
export function softmaxRows(logits: FloatInput, classes: number, temperature = 1): Float64Array {
  const T = checkPositive(temperature, "temperature");
  const { logits: z, n, classes: K } = logitMatrix(logits, classes);
  const beta = 1 / T;
  const out = new Float64Array(z.length);
  for (let i = 0; i < n; i++) {
    const base = i * K;
    let zmax = -Infinity;
    for (let k = 0; k < K; k++) zmax = Math.max(zmax, z[base + k]!);
    let s = 0;
    for (let k = 0; k < K; k++) {
      const v = z[base + k]!;
      const e = v === -Infinity ? 0 : Math.exp(beta * (v - zmax));
      out[base + k] = e;
      s += e;
    }
    for (let k = 0; k < K; k++) out[base + k]! /= s;
  }
  return out;
}

/** Fits T > 0 minimizing the NLL of softmax(z / T); never returns a T with a higher NLL than T = 1. */
export function fitTemperature(logits: FloatInput, labels: LabelInput, classes: number, opts: TemperatureOptions = {}): TemperatureFit {
  const minT = checkPositive(opts.minTemperature ?? 0.01, "minTemperature");
  const maxT = checkPositive(opts.maxTemperature ?? 100, "maxTemperature");
  if (!(minT < maxT)) throw new RangeError(`minTemperature (${minT}) must be < maxTemperature (${maxT})`);
  const tol = checkPositive(opts.tolerance ?? 1e-10, "tolerance");
  const maxIter = checkPositiveInteger(opts.maxIterations ?? 100, "maxIterations", 1, 10_000);
  const { logits: z, labels: y, n, classes: K } = logitRows(logits, labels, classes);
  return fitUnchecked(z, y, n, K, minT, maxT, tol, maxIter);
}

/** Temperature scaling from probability rows: fits on log p (p = 0 → -Infinity). */
export function fitTemperatureFromProbs(probs: FloatInput, labels: LabelInput, classes: number, opts: TemperatureOptions = {}): TemperatureFit {
  const r = probabilityRows(probs, labels, classes);
  const logp = new Float64Array(r.probs.length);
  for (let i = 0; i < logp.length; i++) logp[i] = Math.log(r.probs[i]!);
  return fitTemperature(logp, r.labels, r.classes, opts);
}

function fitUnchecked(z: FloatArray, y: Int32Array, n: number, K: number, minT: number, maxT: number, tol: number, maxIter: number): TemperatureFit {
  let a = 1 / maxT; // β bracket [a, b]
  let b = 1 / minT;
  const one = evaluate(z, y, n, K, 1, false).f;
  let iterations = 0;
  let beta: number;
  let atBound = false;
  const lo = evaluate(z, y, n, K, a, true);
  const hi = evaluate(z, y, n, K, b, true);
  iterations += 2;
  if (lo.d >= 0) {
    beta = a;
    atBound = true;
  } else if (hi.d <= 0) {
    beta = b;
    atBound = true;
  } else {
    beta = Math.min(Math.max(1, a), b);
    while (iterations < maxIter) {
      const e = evaluate(z, y, n, K, beta, true);
      iterations++;
      if (e.d === 0) break;
      if (e.d < 0) a = beta;
      else b = beta;
      if (b - a <= tol * beta) break;
      let next = e.h > 0 ? beta - e.d / e.h : NaN;
      if (!(next > a && next < b)) next = Math.sqrt(a * b);
      // A Newton step that barely moves means convergence; keep it only if it stays in the bracket.
      if (Math.abs(next - beta) <= tol * beta) {
        beta = next;
        break;
      }
      beta = next;
    }
  }
  let nllFit = evaluate(z, y, n, K, beta, false).f;
  let temperature = 1 / beta;
  if (minT <= 1 && 1 <= maxT && !(nllFit < one)) {
    temperature = 1;
    nllFit = one;
    atBound = false;
  }
  return { temperature, nll: nllFit, nllAtOne: one, iterations, atBound };
}
