// The built site (Observable Framework output in dist/), served by the API's Express server:
// clean URLs (/reliability → reliability.html, /runs/ → runs/index.html), application/wasm for
// DuckDB-wasm, application/vnd.apache.arrow.stream for .arrow data files, dist/404.html for
// unknown pages. Until dist/ exists (the site is built with `npm run build`; `npm start` builds
// it first when a build script exists), `/` answers with a short page that says so and links
// the API. dist/ is looked for on each request, so a build made while the server runs is picked
// up without a restart.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import express, { type RequestHandler } from "express";

const TYPES: Record<string, string> = {
  ".wasm": "application/wasm",
  ".arrow": "application/vnd.apache.arrow.stream",
  ".parquet": "application/vnd.apache.parquet",
  ".mjs": "text/javascript; charset=utf-8",
};

function placeholder(siteDir: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Calibration Lab</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .25em}</style></head>
<body><h1>Calibration Lab</h1>
<p>The API is running. The analysis site is not built yet: no <code>${siteDir.replace(/[<>&]/g, "")}/index.html</code>.</p>
<p>Build it with <code>npm run build</code> (it is picked up without a restart), or start with <code>npm start</code>, which builds it when a build script exists.</p>
<ul>
<li><a href="/api/health">/api/health</a> — status, engine, queue</li>
<li><a href="/api/runs">/api/runs</a> — the run registry</li>
<li><a href="/api/openapi.json">/api/openapi.json</a> — the API description (docs/api.md)</li>
</ul></body></html>
`;
}

export function siteHandler(siteDir: string): RequestHandler {
  const serve = express.static(siteDir, {
    extensions: ["html"],
    index: ["index.html"],
    dotfiles: "ignore",
    fallthrough: true,
    setHeaders(res, path) {
      for (const [ext, type] of Object.entries(TYPES)) if (path.endsWith(ext)) res.setHeader("Content-Type", type);
      // Framework puts content hashes in the file names under _observablehq/, _npm/, _file/
      if (/\/_(observablehq|npm|file|import)\//.test(path)) res.setHeader("Cache-Control", "public, max-age=31536000, immutable");
    },
  });
  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    if (!existsSync(join(siteDir, "index.html"))) {
      if (req.path === "/" || req.path === "/index.html") {
        res.status(200).type("html").send(placeholder(siteDir));
        return;
      }
      return next();
    }
    serve(req, res, (err?: unknown) => {
      if (err) return next(err);
      const notFound = join(siteDir, "404.html");
      if (existsSync(notFound)) {
        res.status(404).type("html").send(readFileSync(notFound));
        return;
      }
      next();
    });
  };
}
