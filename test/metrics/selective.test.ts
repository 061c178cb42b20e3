// Risk–coverage curve and AURC: hand values, tie handling against an exhaustive average over tie
// orders, distinct-confidence reference, eAURC.
import { test } from "node:test";
import assert from "node:assert/strict";
import { aurc, riskCoverage } from "../../backend/metrics/index.js";
import { lcg } from "./reference.js";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

/** AURC of one fixed acceptance order (correct flags in acceptance order). */
function aurcOfOrder(a: number[]): number {
  let err = 0, s = 0;
  a.forEach((x, k) => {
    err += 1 - x;
    s += err / (k + 1);
  });
  return s / a.length;
}

/** Average AURC over every order that sorts by decreasing confidence (all permutations inside ties). */
function aurcAllTieOrders(c: number[], a: number[]): number {
  const groups = new Map<number, number[]>();
  c.forEach((v, i) => groups.set(v, [...(groups.get(v) ?? []), a[i]!]));
  const keys = [...groups.keys()].sort((x, y) => y - x);
  const perms = (xs: number[]): number[][] =>
    xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
  let orders: number[][] = [[]];
  for (const k of keys) orders = orders.flatMap((o) => perms(groups.get(k)!).map((p) => [...o, ...p]));
  return orders.reduce((s, o) => s + aurcOfOrder(o), 0) / orders.length;
}

test("hand: risk–coverage with a tie", () => {
  // 0.9✓ | 0.8✓ 0.8✗ (tie) | 0.3✗: risks 0, 0.5/2, 1/3, 2/4 (expected over the tie order).
  const r = riskCoverage([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0]);
  close(r.aurc, (0 + 0.25 + 1 / 3 + 0.5) / 4, 1e-15, "aurc");
  assert.deepEqual(Array.from(r.coverage), [0.25, 0.75, 1]);
  assert.deepEqual(Array.from(r.risk), [0, 1 / 3, 0.5]);
  assert.deepEqual(Array.from(r.threshold), [0.9, 0.8, 0.3]);
  // Best ranking accepts both correct first: (1/3 + 2/4)/4.
  close(r.eaurc, r.aurc - (1 / 3 + 0.5) / 4, 1e-15, "eaurc");
  close(r.selectiveAccuracyArea, 1 - r.aurc, 0, "area");
});

test("ties: AURC equals the average over every tie order", () => {
  const rnd = lcg(4);
  for (let trial = 0; trial < 20; trial++) {
    const n = 7;
    const c = Array.from({ length: n }, () => Math.round(rnd() * 3) / 3);
    const a = Array.from({ length: n }, () => (rnd() < 0.6 ? 1 : 0));
    close(aurc(c, a), aurcAllTieOrders(c, a), 1e-12, `trial ${trial}`);
  }
});

test("distinct confidences: AURC equals the direct sort, a perfect ranking has eAURC 0", () => {
  const rnd = lcg(8);
  const n = 2000;
  const c = Float64Array.from({ length: n }, () => rnd());
  const a = Uint8Array.from(c, (v) => (rnd() < v ? 1 : 0));
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => c[j]! - c[i]!);
  close(aurc(c, a), aurcOfOrder(order.map((i) => a[i]!)), 1e-12, "aurc");
  // Confidence that puts every correct example first.
  const perfect = Float64Array.from(a, (v, i) => (v ? 0.5 + i / (4 * n) : i / (4 * n)));
  close(riskCoverage(perfect, a).eaurc, 0, 1e-12, "perfect ranking");
  // Order does not matter.
  close(aurc(c.slice().reverse(), a.slice().reverse()), aurc(c, a), 1e-14, "order");
});
