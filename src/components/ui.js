// Small helpers shared by the pages: number formatting with intervals, URL-encoded page state,
// "no data yet" notes, and the reliability diagram. Metrics themselves come from
// ./calibration.js (backend/metrics bundled by scripts/bundle-metrics.mjs), never from here.
import * as Plot from "npm:@observablehq/plot";
import {html} from "npm:htl";

export const CONFIDENCE_LABELS = {
  renormalized: "renormalized: softmax over the 4 option letters (max = confidence)",
  vocab: "vocab: full-vocabulary probability of the predicted letter",
  norm: "norm: length-normalized option likelihoods (lm-eval acc_norm)",
  token: "token: max next-token probability over the whole vocabulary"
};

/** A number with `digits` decimals; "–" for null / NaN. */
export function fmt(x, digits = 3) {
  return x == null || !Number.isFinite(+x) ? "–" : (+x).toFixed(digits);
}

/** "0.123 [0.100, 0.150]" (the interval omitted when missing). */
export function fmtCI(est, lo, hi, digits = 3) {
  const e = fmt(est, digits);
  return lo == null || hi == null || !Number.isFinite(+lo) || !Number.isFinite(+hi) ? e : `${e} [${fmt(lo, digits)}, ${fmt(hi, digits)}]`;
}

/** Signed difference with interval: "+0.012 [−0.004, +0.030]". */
export function fmtDiff(est, lo, hi, digits = 3) {
  const s = (x) => (x == null || !Number.isFinite(+x) ? "–" : `${+x >= 0 ? "+" : "−"}${Math.abs(+x).toFixed(digits)}`);
  return lo == null || hi == null ? s(est) : `${s(est)} [${s(lo)}, ${s(hi)}]`;
}

export function fmtInt(x) {
  return x == null || !Number.isFinite(+x) ? "–" : Math.round(+x).toLocaleString("en-US");
}

/** Page state in the query string: get(name, default) reads it, set({...}) rewrites it in place. */
export function urlState() {
  const params = new URLSearchParams(location.search);
  return {
    get(name, dflt) {
      const v = params.get(name);
      if (v == null) return dflt;
      if (typeof dflt === "number") return Number.isFinite(+v) ? +v : dflt;
      if (typeof dflt === "boolean") return v === "1" || v === "true";
      return v;
    },
    set(values) {
      const p = new URLSearchParams(location.search);
      for (const [k, v] of Object.entries(values)) {
        if (v == null || v === "") p.delete(k);
        else p.set(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
      }
      const q = p.toString();
      history.replaceState(history.state, "", `${location.pathname}${q ? `?${q}` : ""}${location.hash}`);
    }
  };
}

/** The note shown where a page has nothing to show yet. */
export function noData(what, how = defaultHow) {
  return html`<div class="note" data-empty="1"><p><strong>${what}</strong></p>${how}</div>`;
}

const defaultHow = html`<p>Runs appear here once their records are in <code>data/runs/&lt;id&gt;/</code>
(<code>run.json</code>, <code>train_log.arrow</code>, <code>tokens.arrow</code>, <code>questions.arrow</code>,
<code>calibration.arrow</code>; see <code>docs/records.md</code>). To make one on the CPU in a minute:</p>
<pre>npm run calib -- train --config pretrain.json --out data/runs/pt-byte   # {"kind": "pretrain", "steps": 300, ...}
npm run calib -- train --config sft.json --out data/runs/sft-byte-ls0    # {"kind": "sft", "init": "data/runs/pt-byte/checkpoint"}
npm run build                                                             # or npm start (rebuilds when data/ changed)</pre>`;

/**
 * Reliability diagram of one or more series. rows: {series, lo, hi, confidence, accuracy,
 * wilsonLo, wilsonHi, count}; one bar per non-empty bin (accuracy), the Wilson interval as a rule,
 * the mean confidence as a tick, the diagonal; a count histogram under it.
 */
export function reliabilityChart(rows, {width, caption, series = false, height = 300} = {}) {
  const diag = Plot.line([[0, 0], [1, 1]], {stroke: "currentColor", strokeOpacity: 0.35, strokeDasharray: "4,3"});
  const color = series ? {legend: true} : undefined;
  const main = Plot.plot({
    width, height, marginLeft: 48, grid: true, color,
    x: {domain: [0, 1], label: "confidence →"},
    y: {domain: [0, 1], label: "↑ accuracy"},
    marks: [
      diag,
      series ? Plot.line(rows, {x: "confidence", y: "accuracy", stroke: "series", z: "series"}) : null,
      series
        ? Plot.dot(rows, {x: "confidence", y: "accuracy", fill: "series", r: 3, tip: true, title: (d) => `${d.series}\nbin [${fmt(d.lo)}, ${fmt(d.hi)}): n = ${fmtInt(d.count)}\nmean confidence ${fmt(d.confidence)}, accuracy ${fmt(d.accuracy)} (Wilson 95% ${fmt(d.wilsonLo)}–${fmt(d.wilsonHi)})`})
        : Plot.rectY(rows, {x1: "lo", x2: "hi", y: "accuracy", fill: "var(--theme-foreground-focus)", fillOpacity: 0.35, insetLeft: 0.5, insetRight: 0.5}),
      Plot.ruleX(rows, {x: (d) => (series ? d.confidence : (d.lo + d.hi) / 2), y1: "wilsonLo", y2: "wilsonHi", stroke: series ? "series" : "currentColor", strokeWidth: 1.5}),
      series ? null : Plot.ruleY(rows, {x1: "lo", x2: "hi", y: "confidence", stroke: "var(--theme-red, #d33)", strokeWidth: 2}),
      series ? null : Plot.tip(rows, Plot.pointerX({
        x: (d) => (d.lo + d.hi) / 2, y: "accuracy",
        title: (d) => `bin [${fmt(d.lo)}, ${fmt(d.hi)})\nn = ${fmtInt(d.count)}\nmean confidence ${fmt(d.confidence)}\naccuracy ${fmt(d.accuracy)} (Wilson 95% ${fmt(d.wilsonLo)}–${fmt(d.wilsonHi)})`
      }))
    ]
  });
  const hist = Plot.plot({
    width, height: 110, marginLeft: 48,
    x: {domain: [0, 1], label: null, axis: null},
    y: {label: "↑ examples", grid: true, tickFormat: "s"},
    color,
    marks: [
      series ? Plot.line(rows, {x: "confidence", y: "count", stroke: "series", z: "series"}) : null,
      series
        ? Plot.dot(rows, {x: "confidence", y: "count", fill: "series", r: 2.5})
        : Plot.rectY(rows, {x1: "lo", x2: "hi", y: "count", fill: "currentColor", fillOpacity: 0.4, insetLeft: 0.5, insetRight: 0.5}),
      Plot.ruleY([0])
    ]
  });
  return html`<figure class="reliability" data-bins=${rows.length}>${main}${hist}<figcaption>${caption}</figcaption></figure>`;
}

/** Rows for reliabilityChart from backend/metrics' Reliability object. */
export function reliabilityRows(rel, seriesName) {
  return rel.count.map((count, i) => ({
    series: seriesName, lo: rel.lo[i], hi: rel.hi[i], confidence: rel.confidence[i], accuracy: rel.accuracy[i],
    wilsonLo: rel.wilsonLo[i], wilsonHi: rel.wilsonHi[i], count
  }));
}

/** Distinct values of a column of an array of objects, sorted. */
export function distinct(rows, key) {
  return [...new Set(rows.map((d) => d[key]).filter((v) => v != null))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A short label of a run: id plus its settings (ε, V, d). */
export function runLabel(r) {
  if (!r) return "";
  const bits = [];
  if (r.tokenizer) bits.push(`${r.tokenizer}`);
  if (r.d_model != null) bits.push(`d=${r.d_model}`);
  if (r.label_smoothing != null) bits.push(`ε=${r.label_smoothing}`);
  if (r.temperature != null && r.temperature !== 1) bits.push(`T=${r.temperature}`);
  if (r.softcap != null) bits.push(`cap=${r.softcap}`);
  if (r.seed != null) bits.push(`seed ${r.seed}`);
  return bits.length ? `${r.run_id} (${bits.join(", ")})` : r.run_id;
}
