// calib metrics, printing: the report as JSON (--json) or as two tables (metrics with their
// bootstrap intervals, then the reliability bins).
import { BOOTSTRAP_METRICS } from "../../../metrics/index.js";
import { formatTable } from "../../../term/table.js";
import type { MetricsOptions, MetricsReport } from "./compute.js";

const f = (x: number | null | undefined, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits));

function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) return null;
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
    return v;
  }));
}

export function printJson(file: string, r: MetricsReport, o: MetricsOptions): void {
  const metrics: Record<string, unknown> = {};
  for (const k of BOOTSTRAP_METRICS) {
    if (Number.isNaN(r.point[k]!)) continue;
    const ci = r.boot?.metrics[k];
    metrics[k] = { estimate: r.point[k], lo: ci?.lo ?? null, hi: ci?.hi ?? null, se: ci?.se ?? null };
  }
  metrics.smece = { estimate: r.smece.value, sigma: r.smece.sigma };
  metrics.aurc = { estimate: r.riskCoverage.aurc };
  metrics.eaurc = { estimate: r.riskCoverage.eaurc };
  const rel = r.binned.reliability;
  console.log(JSON.stringify(jsonSafe({
    file, n: r.n, bins: o.bins, scheme: o.scheme, norm: o.norm, resamples: o.resamples, seed: o.seed, level: o.level, where: o.where,
    calibrationError: { norm: o.norm, ...(metrics[r.headlineKey] as object) },
    metrics,
    probabilityRows: r.rows,
    reliability: rel.bin.map((b, i) => ({
      bin: b, lo: rel.lo[i], hi: rel.hi[i], count: rel.count[i], confidence: rel.confidence[i], accuracy: rel.accuracy[i],
      wilsonLo: rel.wilsonLo[i], wilsonHi: rel.wilsonHi[i],
    })),
  }), null, 2));
}

function metricRows(r: MetricsReport, o: MetricsOptions): string[][] {
  const ciOf = (k: (typeof BOOTSTRAP_METRICS)[number]) => {
    const c = r.boot?.metrics[k];
    return c ? `[${f(c.lo)}, ${f(c.hi)}]` : "";
  };
  const lines: string[][] = [];
  const row = (label: string, k: (typeof BOOTSTRAP_METRICS)[number]) => {
    if (!Number.isNaN(r.point[k]!)) lines.push([label, f(r.point[k]), ciOf(k)]);
  };
  const star = (k: MetricsReport["headlineKey"]) => (r.headlineKey === k ? " *" : "");
  row("accuracy", "accuracy");
  row("mean confidence", "meanConfidence");
  row(`ECE (l1)${star("ece")}`, "ece");
  row(`RMS-CE (l2)${star("rmsce")}`, "rmsce");
  row(`MCE (max)${star("mce")}`, "mce");
  row("ACE (equal bin weight)", "ace");
  row("debiased L2 (Kumar)", "debiasedL2");
  lines.push([`smECE (σ* = ${r.smece.sigma.toFixed(4)})`, f(r.smece.value), ""]);
  row("Brier (top-label)", "brier");
  row("NLL", "nll");
  row("mean entropy (nats)", "meanEntropy");
  lines.push(["AURC", f(r.riskCoverage.aurc), ""], ["eAURC", f(r.riskCoverage.eaurc), ""]);
  if (r.rows) {
    const t = r.rows.temperature;
    lines.push(
      [`Brier (multiclass, K = ${r.rows.classes})`, f(r.rows.brierMulticlass), ""],
      [`classwise CE (${o.norm})`, f(r.rows.classwiseCE), ""],
      ["adaptive classwise CE (Nixon)", f(r.rows.adaptiveClasswiseCE), ""],
      [`temperature T* (${t.source})`, f(t.temperature), `NLL ${f(t.nllAtOne)} → ${f(t.nll)}`],
    );
  }
  return lines;
}

function reliabilityRows(r: MetricsReport): string[][] {
  const rel = r.binned.reliability;
  return rel.bin.map((b, i) => [
    String(b), `[${f(rel.lo[i], 3)}, ${f(rel.hi[i], 3)}${rel.hi[i] === 1 ? "]" : ")"}`, String(rel.count[i]), f(rel.confidence[i]),
    f(rel.accuracy[i]), f(rel.accuracy[i]! - rel.confidence[i]!), `[${f(rel.wilsonLo[i], 3)}, ${f(rel.wilsonHi[i], 3)}]`,
  ]);
}

export function printText(file: string, r: MetricsReport, o: MetricsOptions): void {
  const where = o.where.length ? `, where ${o.where.join(" and ")}` : "";
  console.log(`${file}: ${r.n.toLocaleString("en-US")} examples${where}; ${o.bins} ${o.scheme} bins` +
    (o.resamples > 0 ? `; ${o.resamples} bootstrap resamples (seed ${o.seed}, percentile)` : "") + `; * = --norm ${o.norm}\n`);
  console.log(formatTable(["metric", "value", o.resamples > 0 ? `${Math.round(o.level * 100)}% CI` : ""], metricRows(r, o)));
  console.log(`\nreliability (non-empty bins; gap = accuracy − confidence)\n`);
  console.log(formatTable(["bin", "range", "count", "confidence", "accuracy", "gap", "Wilson 95%"], reliabilityRows(r)));
}
