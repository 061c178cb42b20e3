// The Llama family's training-step benchmark (data/bench/llama_train.arrow, bench/llama_train.ts) as one
// chart: training tokens per second against the GPU memory the process holds, one dot per benchmark, one
// panel per model (stacked, sharing the axes); ours in the focus colour, its settings joined by a dashed
// line; each dot labelled with its tokens/s (thousands).
import * as Plot from "npm:@observablehq/plot";
import {fmt} from "./ui.js";

const OURS = "calib";
const GiB = (r) => r.gpu_mib / 1024;
/** The legend's entry of a row: ours by setting (the layer count left out, it differs per model), a peer by engine. */
const series = (r) => (r.engine === OURS ? r.label.replace(/\d+ layers checkpointed/, "checkpointed") : r.engine);

/** The vertical offset (px) of the label of one of our rows: ours of a model stacked 11 px apart in order of tokens/s
 *  (the fastest on top), centred on the dots, so that settings that sit close together stay readable. */
const labelDy = (rows, r) => {
  const mine = rows.filter((x) => x.engine === OURS && x.model === r.model);
  const above = mine.filter((x) => x.tokens_per_s > r.tokens_per_s).length;
  return (above - (mine.length - 1) / 2) * 11;
};

/** x of a label of ours: the GPU memory of the leanest of ours of the same model (the labels stand left of them all). */
const oursLeft = (rows) => (r) => Math.min(...rows.filter((x) => x.engine === OURS && x.model === r.model).map(GiB));

/** rows: llama_train.arrow's rows ({engine, label, model, tokens_per_s, gpu_mib, step_ms, max_allocated_gib, …});
 *  models: panel order. */
export function llamaTrainChart(rows, {width, models = [...new Set(rows.map((r) => r.model))]} = {}) {
  const ours = (r) => r.engine === OURS;
  const names = [...new Set([...rows.filter(ours), ...rows.filter((r) => !ours(r))].map(series))];
  const nOurs = new Set(rows.filter(ours).map(series)).size;
  const focus = ["#3b5bdb", "#74a0f2", "#1c3aa9", "#a5c0f7"];
  const others = ["#666666", "#e8590c", "#2b8a3e", "#9c36b5", "#c2255c"];
  const range = names.map((n, i) => (i < nOurs ? focus[i % focus.length] : others[(i - nOurs) % others.length]));
  const maxMem = Math.max(...rows.map(GiB)), maxTok = Math.max(...rows.map((r) => r.tokens_per_s));
  return Plot.plot({
    width, height: 60 + 230 * models.length, marginLeft: 60, marginRight: 90, marginTop: 30, grid: true, inset: 12,
    x: {label: "GPU memory of the process (GiB) →", domain: [0, maxMem * 1.1]},
    y: {label: "↑ training tokens per second", domain: [0, maxTok * 1.1], tickFormat: "s"},
    fy: {label: null, domain: models},
    color: {domain: names, range},
    symbol: {legend: true, domain: names, range: ["circle", "diamond", "square", "triangle", "star", "cross", "wye", "hexagon"].slice(0, names.length)},
    marks: [
      Plot.frame({strokeOpacity: 0.15}),
      Plot.line(rows.filter(ours).sort((a, b) => a.gpu_mib - b.gpu_mib), {x: GiB, y: "tokens_per_s", fy: "model", z: "model", stroke: range[0], strokeOpacity: 0.6, strokeDasharray: "3,3"}),
      Plot.dot(rows, {x: GiB, y: "tokens_per_s", fy: "model", symbol: series, stroke: series, fill: series, fillOpacity: (r) => (ours(r) ? 0.9 : 0.25), r: 5.5, strokeWidth: 1.5, tip: true,
        title: (r) => `${r.model}, ${r.label}\n${fmt(r.tokens_per_s / 1e3, 1)}k tokens/s, step ${fmt(r.step_ms, 1)} ms\nGPU ${fmt(GiB(r), 1)} GiB` +
          (r.max_allocated_gib != null ? ` (torch max allocated ${fmt(r.max_allocated_gib, 1)} GiB)` : "")}),
      // labels: ours left of the leftmost of ours, stacked by tokens/s (labelDy), a peer to the right of its dot
      ...[...new Set(rows.filter(ours).map((r) => labelDy(rows, r)))].map((dy) => Plot.text(rows.filter((r) => ours(r) && labelDy(rows, r) === dy), {x: oursLeft(rows), y: "tokens_per_s", fy: "model", text: (r) => `${fmt(r.tokens_per_s / 1e3, 1)}k`, dx: -10, dy, textAnchor: "end", fontSize: 10, fill: series})),
      Plot.text(rows.filter((r) => !ours(r)), {x: GiB, y: "tokens_per_s", fy: "model", text: (r) => `${fmt(r.tokens_per_s / 1e3, 1)}k`, dx: 9, textAnchor: "start", fontSize: 10, fill: series})
    ],
    caption: "Throughput (training tokens per second, median step) against the GPU memory each process holds (nvidia-smi), one process per dot, same card; up and to the left is better. Dashed: ours at its settings (plain, gradient checkpointing, …)."
  });
}
