// Fills Observable Framework's npm cache (src/.observablehq/cache/_npm) from node_modules, so that
// `observable build` and `observable preview` never ask registry.npmjs.org or cdn.jsdelivr.net.
// Framework resolves every `npm:X` import (and every implicit global: d3, Plot, Arrow, html, sql /
// DuckDBClient, FileAttachment's parsers) by (1) taking the version from the newest
// `_npm/X@<version>` directory and (2) reading `_npm/X@<version>/_esm.js`; it downloads only when
// these are missing. We build each `_esm.js` with esbuild from the installed package, with the
// other bundled packages kept external (one shared d3 / apache-arrow instance).
// Recipe and rationale: docs/site.md ("Building offline"). Depends on
// Framework internals, so @observablehq/framework is pinned exactly (1.13.4).
//
// A page that uses a library not listed here fails the build loudly (fetch failed), never silently.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { build } from "esbuild";

const cache = "src/.observablehq/cache/_npm"; // <root>/.observablehq/cache/_npm
const BUNDLED = ["d3", "@observablehq/plot", "htl", "isoformat", "apache-arrow", "d3-dsv", "@duckdb/duckdb-wasm"];
const FILES = {
  "@duckdb/duckdb-wasm": ["dist/duckdb-mvp.wasm", "dist/duckdb-eh.wasm", "dist/duckdb-browser-mvp.worker.js", "dist/duckdb-browser-eh.worker.js"],
};
// The client bundle only looks up these packages' *versions*: an empty directory is enough.
const VERSION_ONLY = [
  "lodash", "arquero", "echarts", "leaflet", "mapbox-gl", "react", "react-dom", "topojson-client",
  "@observablehq/sample-datasets", "parquet-wasm",
];

const version = (name) => JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
const pinned = /DUCKDB_WASM_VERSION = "([^"]+)"/.exec(readFileSync("node_modules/@observablehq/framework/dist/duckdb.js", "utf8"))?.[1];
if (version("@duckdb/duckdb-wasm") !== pinned) {
  throw new Error(`@duckdb/duckdb-wasm ${version("@duckdb/duckdb-wasm")} is installed but Framework pins ${pinned}: npm install --save-exact @duckdb/duckdb-wasm@${pinned}`);
}
const esm = (name) => `/_npm/${name}@${version(name)}/_esm.js`;
// Packages re-exported with `export * from` must be bundled in, not kept external: esbuild turns an
// external `export *` into a runtime copy, so the names would be missing from the bundle's exports
// (d3.csvFormat was undefined with d3-dsv external).
const INLINE = { d3: ["d3-dsv"] };
const externals = (self) => ({
  name: "npm-cache-externals", // import "d3" inside Plot -> "../../d3@7.9.2/_esm.js"
  setup: (b) => b.onResolve({ filter: /^[@\w]/ }, ({ path, kind }) => {
    if (kind === "entry-point" || path === self || !BUNDLED.includes(path) || (INLINE[self] ?? []).includes(path)) return undefined;
    return { path: posix.relative(posix.dirname(esm(self)), esm(path)).replace(/^(?!\.)/, "./"), external: true };
  }),
});
const hasDefault = (name) =>
  build({ stdin: { contents: `export {default} from "${name}";`, resolveDir: "." }, bundle: true, write: false, platform: "browser", format: "esm", logLevel: "silent" })
    .then((r) => !r.warnings.some((w) => /default/.test(w.text)), () => false);

const t0 = performance.now();
let built = 0;
for (const name of BUNDLED) {
  const out = join(cache, esm(name).slice(5));
  // Rebuild only when the installed package is newer than the cached bundle.
  const fresh = existsSync(out) && statSync(out).mtimeMs >= Math.max(statSync(`node_modules/${name}/package.json`).mtimeMs, statSync(new URL(import.meta.url)).mtimeMs) &&
    (FILES[name] ?? []).every((sub) => existsSync(join(cache, `${name}@${version(name)}`, sub)));
  if (fresh) continue;
  const contents = `export * from "${name}";\n${(await hasDefault(name)) ? `export {default} from "${name}";` : ""}`;
  await build({
    stdin: { contents, resolveDir: "." }, bundle: true, format: "esm", platform: "browser", target: "es2022", minify: true,
    define: { "process.env.NODE_ENV": '"production"' }, outfile: out, plugins: [externals(name)], logLevel: "warning",
  });
  for (const sub of FILES[name] ?? []) {
    const dest = join(cache, `${name}@${version(name)}`, sub);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(`node_modules/${name}/${sub}`, dest);
  }
  built++;
}
for (const name of VERSION_ONLY) {
  const parent = dirname(join(cache, name));
  const base = name.split("/").pop();
  if (existsSync(parent) && readdirSync(parent).some((e) => e.startsWith(`${base}@`))) continue;
  mkdirSync(join(cache, `${name}@${existsSync(`node_modules/${name}/package.json`) ? version(name) : "0.0.0-offline"}`), { recursive: true });
}
console.error(`offline npm cache: ${built} of ${BUNDLED.length} packages bundled into ${cache} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
