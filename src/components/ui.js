// Small helpers shared by the pages: number formatting with intervals, URL-encoded page state,
// "no data yet" notes, and the reliability diagram. Metrics themselves come from
// ./calibration.js (backend/metrics bundled by scripts/bundle-metrics.mjs), never from here.
import * as Plot from "npm:@observablehq/plot";
import {html} from "npm:htl";
import * as d3 from "npm:d3";

export const CONFIDENCE_LABELS = {
  renormalized: "renormalized: softmax over the 4 option letters (max = confidence)",
  vocab: "vocab: full-vocabulary probability of the predicted letter",
  norm: "norm: length-normalized option likelihoods (lm-eval acc_norm)",
  token: "token: max next-token probability over the whole vocabulary"
};

/** The confidence definition in words, for a question scoring (option scoring: the options' continuation log-likelihoods). */
export function confidenceLabel(def, scoring) {
  if (scoring === "option" && def === "renormalized") return "renormalized: softmax over the 4 options' summed continuation log-likelihoods (max = confidence)";
  if (scoring === "option" && def === "vocab") return "vocab: probability of generating the predicted option's whole text";
  return CONFIDENCE_LABELS[def] ?? def;
}

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
<code>calibration.arrow</code>; see <code>docs/records.md</code>). To make two on the CPU in a few minutes, write
<code>pretrain.json</code> = <code>{"kind": "pretrain", "steps": 300}</code> and
<code>sft.json</code> = <code>{"kind": "sft", "init": "data/runs/pt-byte/checkpoint"}</code> (fields: <code>docs/trainer.md</code>), then:</p>
<pre>npm run calib -- train --config pretrain.json --out data/runs/pt-byte
npm run calib -- train --config sft.json --out data/runs/sft-byte
npm run build   # a running npm start serves the new build at once</pre>`;

/**
 * Reliability diagram. rows: {series, lo, hi, confidence, accuracy, wilsonLo, wilsonHi, count},
 * one per non-empty bin. Equal-width bins (one series) are drawn as bars over the bin with a red
 * segment at the bin's mean confidence; equal-mass bins and several series as points at (mean
 * confidence, accuracy). Every point or bar has its 95% Wilson interval; bins with fewer than
 * `minCount` examples are drawn faded. `confidences` ([{name, values}], one per series) feed the
 * histogram under the diagram (40 equal-width bins of the raw confidences).
 */
export function reliabilityChart(rows, {width, caption, series = false, scheme = "equal-width", confidences = [], height = 300, minCount = 10, zoom = false} = {}) {
  const bars = !series && scheme === "equal-width";
  // zoom: the same square range on both axes (the diagonal stays at 45°), around the drawn points
  let domain = [0, 1];
  if (zoom && rows.length) {
    const vals = rows.flatMap((d) => [d.confidence, d.accuracy, d.wilsonLo, d.wilsonHi, ...(bars ? [d.lo, d.hi] : [])]);
    const lo = Math.max(0, d3.min(vals) - 0.02), hi = Math.min(1, d3.max(vals) + 0.02);
    domain = hi - lo < 0.05 ? [Math.max(0, (lo + hi) / 2 - 0.025), Math.min(1, (lo + hi) / 2 + 0.025)] : [lo, hi];
  }
  const faded = (d) => (d.count < minCount ? 0.35 : 1);
  const tip = (d) => `${series ? `${d.series}\n` : ""}bin [${fmt(d.lo)}, ${fmt(d.hi)}${d.hi === 1 ? "]" : ")"}: n = ${fmtInt(d.count)}\nmean confidence ${fmt(d.confidence)}\naccuracy ${fmt(d.accuracy)} (Wilson 95% ${fmt(d.wilsonLo)}–${fmt(d.wilsonHi)})`;
  const color = series ? {legend: true} : undefined;
  const main = Plot.plot({
    width, height, marginLeft: 48, grid: true, color, clip: zoom,
    x: {domain, label: `confidence${zoom ? " (zoomed)" : ""} →`},
    y: {domain, label: "↑ accuracy"},
    marks: [
      Plot.line([[0, 0], [1, 1]], {stroke: "currentColor", strokeOpacity: 0.35, strokeDasharray: "4,3"}),
      bars ? Plot.rectY(rows, {x1: "lo", x2: "hi", y: "accuracy", fill: "var(--theme-foreground-focus)", fillOpacity: (d) => 0.35 * faded(d), insetLeft: 0.5, insetRight: 0.5}) : null,
      bars ? Plot.ruleY(rows, {x1: "lo", x2: "hi", y: "confidence", stroke: "var(--theme-red, #d33)", strokeWidth: 2, strokeOpacity: faded}) : null,
      bars ? null : Plot.line(rows, {x: "confidence", y: "accuracy", stroke: series ? "series" : "var(--theme-foreground-focus)", z: series ? "series" : null}),
      Plot.ruleX(rows, {x: (d) => (bars ? (d.lo + d.hi) / 2 : d.confidence), y1: "wilsonLo", y2: "wilsonHi", stroke: series ? "series" : "currentColor", strokeWidth: 1.5, strokeOpacity: faded}),
      bars ? null : Plot.dot(rows, {x: "confidence", y: "accuracy", fill: series ? "series" : "var(--theme-foreground-focus)", r: 3.5, fillOpacity: faded}),
      Plot.tip(rows, Plot.pointer({x: (d) => (bars ? (d.lo + d.hi) / 2 : d.confidence), y: "accuracy", title: tip}))
    ]
  });
  const hist = confidences.flatMap(({name, values}) => Array.from(values, (v) => ({v, series: name})));
  const step = (domain[1] - domain[0]) / 40;
  const lower = Plot.plot({
    width, height: 100, marginLeft: 48, clip: zoom,
    x: {domain, label: null, axis: null},
    y: {label: "↑ examples", grid: true, tickFormat: "s", ticks: 3},
    color,
    marks: [
      series
        ? Plot.lineY(hist, Plot.binX({y: "count"}, {x: "v", stroke: "series", thresholds: d3.range(domain[0], domain[1] + step / 2, step), curve: "step"}))
        : Plot.rectY(hist, Plot.binX({y: "count"}, {x: "v", fill: "currentColor", fillOpacity: 0.4, thresholds: d3.range(domain[0], domain[1] + step / 2, step), insetLeft: 0.5, insetRight: 0.5})),
      Plot.ruleY([0])
    ]
  });
  return html`<figure class="reliability" data-bins=${rows.length}>${main}${confidences.length ? lower : ""}<figcaption>${caption}</figcaption></figure>`;
}

/** A collapsible table of the bins (n, mean confidence, accuracy, Wilson interval, gap) with CSV export. */
export function binTable(rows, {name = "bins"} = {}) {
  const out = rows.map((d) => ({
    ...(d.series ? {series: d.series} : {}), bin: `[${fmt(d.lo)}, ${fmt(d.hi)}${d.hi === 1 ? "]" : ")"}`, n: d.count,
    "mean confidence": d.confidence, accuracy: d.accuracy, "Wilson lo": d.wilsonLo, "Wilson hi": d.wilsonHi, "accuracy − confidence": d.accuracy - d.confidence
  }));
  const csv = [Object.keys(out[0] ?? {}).join(","), ...out.map((r) => Object.values(r).map((v) => (typeof v === "number" ? +v.toFixed(6) : JSON.stringify(v))).join(","))].join("\n");
  return html`<details class="bins"><summary>Per-bin table (${rows.length} non-empty bins) · <a download=${`${name}.csv`} href=${URL.createObjectURL(new Blob([csv], {type: "text/csv"}))}>CSV</a></summary>
    <table><thead><tr>${Object.keys(out[0] ?? {}).map((k) => html`<th>${k}</th>`)}</tr></thead>
    <tbody>${out.map((r) => html`<tr class=${r.n < 10 ? "small-bin" : ""}>${Object.values(r).map((v) => html`<td class="num">${typeof v === "number" ? (Number.isInteger(v) ? fmtInt(v) : fmt(v, 4)) : v}</td>`)}</tr>`)}</tbody></table></details>`;
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
