// calib serve: the API, the job executor and the built site on one port (like `npm start`,
// without building the site).
import { num, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "serve the API (runs, events, records, imports), the job executor and the built site";

const HELP = `usage: calib serve [options]

  --port N         port (default $PORT or 3000; 0 = any free port)
  --host H         address (default $HOST or 127.0.0.1; anything else exposes the API to the network)
  --data-dir DIR   registry and run records (default $CALIB_DATA_DIR or data/)
  --site DIR       built site to serve (default dist/; see npm run build)
  --no-executor    do not run jobs (read-only browsing; submissions stay queued)

environment: CALIB_TOKEN (bearer token required by POST endpoints), CALIB_MAX_BODY_BYTES,
CALIB_MAX_UPLOAD_BYTES, CALIB_THREADS. API reference: docs/api.md, /api/openapi.json.

prints "listening on http://HOST:PORT" on stdout; Ctrl-C stops it (running jobs are marked failed).`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    port: { type: "string" }, host: { type: "string" }, "data-dir": { type: "string" }, site: { type: "string" },
    "no-executor": { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return (console.log(HELP), 0);
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib serve --help)`);
  if (values["data-dir"] !== undefined) process.env.CALIB_DATA_DIR = values["data-dir"];
  const { main, optionsFromEnv } = await import("../../server.js");
  const o = optionsFromEnv();
  if (values.port !== undefined) o.port = num(values.port, "port", 3000, (x) => Number.isInteger(x) && x >= 0 && x <= 65535, "an integer in [0, 65535]");
  if (values.host !== undefined) o.host = values.host;
  if (values.site !== undefined) o.siteDir = values.site;
  if (values["no-executor"]) o.executor = false;
  await main(o);
  await new Promise<never>(() => {}); // until a signal stops the process
  return 0;
}
