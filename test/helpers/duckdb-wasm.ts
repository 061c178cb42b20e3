// DuckDB-wasm 1.29 (the site's SQL engine) in Node, blocking API: a connection for tests that check
// what the browser would compute. No network: the wasm and worker files come from node_modules.
import { createRequire } from "node:module";

export interface WasmConnection {
  query(sql: string): { toArray(): Array<{ toJSON(): Record<string, unknown> }> };
  insertArrowFromIPCStream(bytes: Uint8Array, options: { name: string }): void;
}

export async function connectDuckDBWasm(): Promise<WasmConnection> {
  const require = createRequire(import.meta.url);
  const duckdb = require("@duckdb/duckdb-wasm/blocking");
  const bundles = {
    mvp: { mainModule: require.resolve("@duckdb/duckdb-wasm/dist/duckdb-mvp.wasm"), mainWorker: require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-mvp.worker.cjs") },
    eh: { mainModule: require.resolve("@duckdb/duckdb-wasm/dist/duckdb-eh.wasm"), mainWorker: require.resolve("@duckdb/duckdb-wasm/dist/duckdb-node-eh.worker.cjs") },
  };
  const db = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
  await db.instantiate(() => {});
  return db.connect() as WasmConnection;
}
