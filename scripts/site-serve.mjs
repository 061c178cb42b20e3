// A static server for the built site, without the API (for tests, the benchmark, and looking at a
// build without `npm start`): clean URLs (/sql → sql.html, /x/ → x/index.html), application/wasm for
// DuckDB's .wasm, no directory listings, nothing outside the site directory. /api/* answers
// 204 No Content: there is no API here, and the Runs page then shows its build-time snapshot.
// `npm start` serves dist/ through Express together with /api instead (scripts/start.mjs, backend/api/site.ts).
//
//   node scripts/site-serve.mjs [--dir dist] [--port 3000] [--host 127.0.0.1]
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const MIME = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".json": "application/json", ".wasm": "application/wasm", ".arrow": "application/vnd.apache.arrow.stream",
  ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
  ".csv": "text/csv; charset=utf-8", ".map": "application/json",
};

/** The file a clean URL path maps to inside `root`, or null. */
export function resolveSitePath(root, urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath.split("?")[0].split("#")[0]);
  } catch {
    return null;
  }
  const base = resolve(root);
  const full = normalize(join(base, p));
  if (full !== base && !full.startsWith(base + sep)) return null;
  const candidates = p.endsWith("/") ? [join(full, "index.html")] : [full, `${full}.html`, join(full, "index.html")];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

/** Starts the server; resolves to {server, url}. Port 0 picks a free port. */
export function serveSite({ dir = "dist", port = 0, host = "127.0.0.1" } = {}) {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url.startsWith("/api/")) {
      // 204 No Content: "no API here" without a failed request (which browsers log as a console error).
      res.writeHead(204, { "x-calib-api": "none" }).end();
      return;
    }
    const file = resolveSitePath(root, url);
    if (!file) {
      const notFound = join(root, "404.html");
      res.writeHead(404, { "content-type": MIME[".html"] });
      if (existsSync(notFound) && req.method === "GET") createReadStream(notFound).pipe(res);
      else res.end("not found");
      return;
    }
    const type = MIME[extname(file)] ?? "application/octet-stream";
    // Framework content-hashes everything under /_npm, /_file, /_import, /_observablehq.
    const cache = /^\/_(npm|file|import|observablehq)\//.test(url) ? "public, max-age=31536000, immutable" : "no-cache";
    res.writeHead(200, { "content-type": type, "content-length": statSync(file).size, "cache-control": cache });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => {
      const a = server.address();
      res({ server, url: `http://${host}:${typeof a === "object" && a ? a.port : port}` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
  const dir = opt("dir", "dist");
  if (!existsSync(join(dir, "index.html"))) {
    console.error(`site-serve: ${dir}/index.html not found; run npm run build first`);
    process.exit(2);
  }
  const { url } = await serveSite({ dir, port: Number(opt("port", "3000")), host: opt("host", "127.0.0.1") });
  console.error(`serving ${resolve(dir)} at ${url} (no API; Ctrl-C stops)`);
}
