// Observable Framework configuration of the analysis site (docs/site.md).
// Built fully offline: scripts/offline-npm-cache.mjs fills Framework's npm cache from node_modules
// before every build / preview (npm's prebuild / predev), DuckDB extensions are not downloaded
// (json: null, parquet: null; our records are Arrow streams) and no Google Fonts stylesheet is linked.
// CALIB_SITE_OUT changes the output directory (tests and the benchmark build into temp dirs);
// CALIB_DATA_DIR (read by the loaders) changes the data root.
export default {
  root: "src",
  output: process.env.CALIB_SITE_OUT ?? "dist",
  title: "Calibration Lab",
  pages: [
    { name: "Findings", path: "/findings" },
    { name: "Reliability", path: "/reliability" },
    { name: "Entropy", path: "/entropy" },
    { name: "Training", path: "/training" },
    { name: "Sweeps", path: "/sweeps" },
    { name: "Speed", path: "/speed" },
    { name: "SQL", path: "/sql" },
    { name: "Runs", path: "/runs" },
  ],
  duckdb: { extensions: { json: null, parquet: null } },
  globalStylesheets: [],
  head: '<link rel="icon" href="data:,">',
  footer: "Calibration Lab — every number on these pages is read from the run records in <code>data/</code>. Intervals are 95% bootstrap intervals unless stated otherwise.",
  search: false,
  toc: true,
  pager: false,
  cleanUrls: true,
};
