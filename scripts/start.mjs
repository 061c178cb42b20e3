// npm start: the API, the job executor and the built site from one Express server on
// http://127.0.0.1:3000 (PORT and HOST change it; CALIB_TOKEN protects the POST endpoints).
// The site is (re)built first when it is missing or when pages, loaders, the metrics library or
// the data changed since the last build (scripts/site-build.mjs --if-needed); a failed build
// stops here. CALIB_SITE_DIR serves another folder as it is, without building.
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSite } from "./site-build.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (!process.env.CALIB_SITE_DIR) {
  try {
    const { built, seconds } = await buildSite({ ifNeeded: true, out: join(root, "dist") });
    if (built) console.error(`start: built the site in ${seconds.toFixed(1)} s`);
  } catch (err) {
    console.error(`start: the site build failed: ${err instanceof Error ? err.message : String(err)}`);
    console.error("start: fix it, or run the API alone with `calib serve`");
    process.exit(1);
  }
}

const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../backend/server.ts");
await main();
