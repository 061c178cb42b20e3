// The built site served by the API's Express app: clean URLs, application/wasm, Arrow data
// files, the site's 404 page, the placeholder before a build, and the API still first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createApp } from "../../backend/api/app.js";
import { Registry } from "../../backend/runs/registry.js";
import { http, removeDir, tempDataDir } from "./helpers.js";

test("dist/ is served with clean URLs and the right content types; before a build, a placeholder", async () => {
  const dir = tempDataDir("calib-site-");
  const site = join(dir, "dist");
  const registry = Registry.open(join(dir, "registry.sqlite"));
  const server = createServer(createApp({ registry, executor: null, dataDir: dir, siteDir: site }));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    let r = await http(url, "GET", "/");
    assert.equal(r.status, 200);
    assert.match(r.text, /not built yet/);
    assert.equal((await http(url, "GET", "/reliability")).status, 404);
    mkdirSync(join(site, "runs"), { recursive: true });
    mkdirSync(join(site, "_npm"), { recursive: true });
    writeFileSync(join(site, "index.html"), "<h1>home</h1>");
    writeFileSync(join(site, "reliability.html"), "<h1>reliability</h1>");
    writeFileSync(join(site, "runs", "index.html"), "<h1>runs</h1>");
    writeFileSync(join(site, "404.html"), "<h1>lost</h1>");
    writeFileSync(join(site, "_npm", "duckdb-eh.wasm"), Buffer.from([0, 0x61, 0x73, 0x6d]));
    writeFileSync(join(site, "tokens.arrow"), Buffer.from([0xff, 0xff, 0xff, 0xff]));
    r = await http(url, "GET", "/");
    assert.equal(r.text, "<h1>home</h1>", "a build is picked up without a restart");
    r = await http(url, "GET", "/reliability");
    assert.equal(r.status, 200);
    assert.equal(r.text, "<h1>reliability</h1>");
    assert.match(String(r.headers["content-type"]), /text\/html/);
    assert.equal((await http(url, "GET", "/runs/")).text, "<h1>runs</h1>");
    r = await http(url, "GET", "/_npm/duckdb-eh.wasm");
    assert.equal(r.headers["content-type"], "application/wasm");
    assert.match(String(r.headers["cache-control"]), /immutable/);
    assert.equal((await http(url, "GET", "/tokens.arrow")).headers["content-type"], "application/vnd.apache.arrow.stream");
    r = await http(url, "GET", "/nowhere");
    assert.equal(r.status, 404);
    assert.equal(r.text, "<h1>lost</h1>");
    assert.equal((await http(url, "GET", "/..%2F..%2Fregistry.sqlite")).status, 404);
    r = await http(url, "GET", "/api/health");
    assert.equal(r.json.status, "ok");
    assert.equal((await http(url, "GET", "/api/nothing")).json.error.status, 404, "unknown API paths are JSON 404s, not the site's page");
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    registry.close();
    rmSync(site, { recursive: true, force: true });
    removeDir(dir);
  }
});
