// The trainer benchmark (data/bench/trainer.arrow, bench/train_cuda.ts) as one chart: training tokens per
// second of each implementation, one panel per model config, ours highlighted; each bar is labelled with
// its throughput and peak memory.
import * as Plot from "npm:@observablehq/plot";
import {fmt} from "./ui.js";

/** rows: trainer.arrow's rows ({config, impl, tokens_per_s, peak_mib, step_ms, …}); configs: panel order. */
export function trainerChart(rows, {width, configs = [...new Set(rows.map((r) => r.config))]} = {}) {
  const impls = [...new Set(rows.map((r) => r.impl))];
  const max = Math.max(...rows.map((r) => r.tokens_per_s));
  const ours = (r) => r.impl === "ours";
  return Plot.plot({
    width, height: 50 + 30 * impls.length * configs.length, marginLeft: 70, marginRight: 110, grid: true,
    x: {label: "training tokens per second →", domain: [0, max * 1.3], tickFormat: "s"},
    y: {label: null, domain: impls},
    fy: {label: null, domain: configs},
    marks: [
      Plot.barX(rows, {x: "tokens_per_s", y: "impl", fy: "config", fill: (r) => (ours(r) ? "var(--theme-foreground-focus)" : "currentColor"),
        fillOpacity: (r) => (ours(r) ? 0.9 : 0.35), tip: true,
        title: (r) => `${r.config}, ${r.impl}: ${fmt(r.tokens_per_s / 1e3, 1)}k tokens/s, step ${fmt(r.step_ms, 1)} ms, peak ${fmt(r.peak_mib / 1024, 1)} GiB`}),
      Plot.text(rows, {x: "tokens_per_s", y: "impl", fy: "config", dx: 4, textAnchor: "start",
        text: (r) => `${fmt(r.tokens_per_s / 1e3, 0)}k/s · ${fmt(r.peak_mib / 1024, 1)} GiB`}),
      Plot.ruleX([0])
    ],
    caption: "Training tokens per second (median step) and peak device memory, each implementation in its own process on the same card."
  });
}
