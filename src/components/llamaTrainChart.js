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

/** The rank of one of our rows among ours of the same model, by GPU memory. */
const oursRank = (rows, r) => rows.filter((x) => x.engine === OURS && x.model === r.model && x.gpu_mib < r.gpu_mib).length;

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
      // labels: ours alternately above and to the left of its dot in order of memory (its settings can sit
      // close together), a peer to the right of its dot
      ...[{dy: -12}, {dx: -9, textAnchor: "end"}].map((at, k) => Plot.text(rows.filter((r) => ours(r) && oursRank(rows, r) % 2 === k), {x: GiB, y: "tokens_per_s", fy: "model", text: (r) => `${fmt(r.tokens_per_s / 1e3, 1)}k`, ...at, fontSize: 10, fill: series})),
      Plot.text(rows.filter((r) => !ours(r)), {x: GiB, y: "tokens_per_s", fy: "model", text: (r) => `${fmt(r.tokens_per_s / 1e3, 1)}k`, dx: 9, textAnchor: "start", fontSize: 10, fill: series})
    ],
    caption: "Throughput (training tokens per second, median step) against the GPU memory each process holds (nvidia-smi), one process per dot, same card; up and to the left is better. Dashed: ours at its settings (plain, gradient checkpointing, …)."
  });
}
