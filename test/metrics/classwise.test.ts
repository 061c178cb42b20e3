// Classwise (marginal) calibration error and Nixon et al.'s adaptive classwise CE.
import { test } from "node:test";
import assert from "node:assert/strict";
import { adaptiveClasswiseCE, classwiseECE, classwiseECEPerClass } from "../../backend/metrics/index.js";
import { lcg, refBins, type Example } from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

test("hand-computed classwise ECE (2 classes, 2 bins)", () => {
  // class 0: p = .8 .3 .6, hit 1 0 0 → bin0 {.3: 0} gap .3; bin1 {.8: 1, .6: 0} conf .7 freq .5 gap .2
  //          CE_0 = (1·.3 + 2·.2)/3
  // class 1: p = .2 .7 .4, hit 0 1 1 → bin0 {.2: 0, .4: 1} conf .3 freq .5 gap .2; bin1 {.7: 1} gap .3
  //          CE_1 = (2·.2 + 1·.3)/3
  const p = [0.8, 0.2, 0.3, 0.7, 0.6, 0.4];
  const y = [0, 1, 1];
  const per = classwiseECEPerClass(p, y, 2, { bins: 2 });
  close(per[0]!, 0.7 / 3, 1e-15, "CE_0");
  close(per[1]!, 0.7 / 3, 1e-15, "CE_1");
  close(classwiseECE(p, y, 2, { bins: 2 }), 0.7 / 3, 1e-15, "SCE");
  close(classwiseECE(p, y, 2, { bins: 2, norm: "max" }), 0.3, 1e-15, "max");
  close(classwiseECE(p, y, 2, { bins: 2, norm: "l2" }), Math.sqrt((0.09 + 2 * 0.04) / 3), 1e-15, "l2");
});

function rows(n: number, K: number, seed: number) {
  const rnd = lcg(seed);
  const p = new Float32Array(n * K);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = Array.from({ length: K }, () => Math.exp(3 * rnd()));
    const s = w.reduce((a, b) => a + b, 0);
    w.forEach((v, k) => (p[i * K + k] = v / s));
    // Labels drawn from a tempered version of p, so there is signal and miscalibration.
    const u = rnd();
    let acc = 0;
    y[i] = K - 1;
    for (let k = 0; k < K; k++) {
      acc += p[i * K + k]!;
      if (u < acc) {
        y[i] = k;
        break;
      }
    }
  }
  return { p, y };
}

test("random rows: classwise ECE (all norms, both schemes) and adaptive CE equal the reference", () => {
  const n = 600, K = 4;
  const { p, y } = rows(n, K, 21);
  for (const scheme of ["equal-width", "equal-mass"] as const) {
    for (const M of [5, 15]) {
      const per: { l1: number; l2sq: number; max: number }[] = [];
      for (let k = 0; k < K; k++) {
        const xs: Example[] = Array.from({ length: n }, (_, i) => ({ c: p[i * K + k]!, a: y[i] === k ? 1 : 0 }));
        const bins = refBins(xs, M, scheme);
        per.push({
          l1: bins.reduce((s, b) => s + (b.n / n) * Math.abs(b.acc - b.conf), 0),
          l2sq: bins.reduce((s, b) => s + (b.n / n) * (b.acc - b.conf) ** 2, 0),
          max: Math.max(...bins.map((b) => Math.abs(b.acc - b.conf))),
        });
      }
      const what = `${scheme} M=${M}`;
      close(classwiseECE(p, y, K, { bins: M, scheme }), per.reduce((s, c) => s + c.l1, 0) / K, 1e-12, `${what} l1`);
      close(classwiseECE(p, y, K, { bins: M, scheme, norm: "l2" }), Math.sqrt(per.reduce((s, c) => s + c.l2sq, 0) / K), 1e-12, `${what} l2`);
      close(classwiseECE(p, y, K, { bins: M, scheme, norm: "max" }), Math.max(...per.map((c) => c.max)), 1e-12, `${what} max`);
    }
  }
  let sum = 0, cells = 0;
  for (let k = 0; k < K; k++) {
    const xs: Example[] = Array.from({ length: n }, (_, i) => ({ c: p[i * K + k]!, a: y[i] === k ? 1 : 0 }));
    for (const b of refBins(xs, 10, "equal-mass")) {
      sum += Math.abs(b.acc - b.conf);
      cells++;
    }
  }
  close(adaptiveClasswiseCE(p, y, K, { bins: 10 }), sum / cells, 1e-12, "adaptive");
});
