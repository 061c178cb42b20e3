// npm start: the API, the job executor and the built site from one Express server on
// http://127.0.0.1:3000 (PORT and HOST change it; CALIB_TOKEN protects the POST endpoints).
// When dist/ has no index.html and package.json has a "build" script, the site is built first
// (`npm run build`); a failed build stops here. Without a build script the API is served with a
// placeholder page. Rebuild the site with `npm run build`; the running server picks it up.
import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const site = process.env.CALIB_SITE_DIR || join(root, "dist");

if (!existsSync(join(site, "index.html"))) {
  if (pkg.scripts && pkg.scripts.build) {
    console.error(`start: ${site} has no index.html; building the site (npm run build)…`);
    const npm = process.env.npm_execpath;
    const r = npm
      ? spawnSync(process.execPath, [npm, "run", "build"], { cwd: root, stdio: "inherit" })
      : spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
    if (r.status !== 0) {
      console.error("start: the site build failed (see above); fix it or run the API alone with `calib serve`");
      process.exit(r.status ?? 1);
    }
  } else {
    console.error("start: the site is not built and package.json has no build script yet; serving the API with a placeholder page");
  }
}

const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../backend/server.ts");
await main();
