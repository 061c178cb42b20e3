// Loader → bench.json: every benchmark table in <data>/bench/*.arrow with its <name>_meta.json, as
// {file, modified, metadata, meta, columns, rows}: kernels.arrow (bench/loss_cuda.ts, the loss against
// its peers) and trainer.arrow (bench/train_cuda.ts, the training step against PyTorch). The Speed
// page reads the columns it recognizes (time, memory, implementation, shape, device) and shows the rest as is.
// llama_train.arrow has its own loader (llama_train.arrow.ts) and is left out here.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tableFromIPC } from "apache-arrow";
import { dataDir } from "./lib/records.js";

const dir = join(dataDir(), "bench");
const OWN_LOADER = new Set(["llama_train.arrow"]);
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".arrow") && !OWN_LOADER.has(f)).sort() : [];
const plain = (v: unknown): unknown => {
  if (typeof v === "bigint") return Number(v);
  if (v && typeof v === "object" && typeof (v as { toArray?: unknown }).toArray === "function") return Array.from((v as { toArray(): ArrayLike<unknown> }).toArray(), plain);
  if (typeof v === "number" && !Number.isFinite(v)) return null;
  return v;
};
const out = [];
for (const file of files) {
  const path = join(dir, file);
  try {
    const t = tableFromIPC(readFileSync(path));
    const columns = t.schema.fields.map((f) => ({ name: f.name, type: String(f.type) }));
    const rows = t.toArray().map((r) => Object.fromEntries(columns.map((c) => [c.name, plain((r as Record<string, unknown>)[c.name])])));
    // <name>_meta.json beside <name>.arrow: card, versions, date, skipped peers, errors (and the loss's floors).
    const metaFile = path.replace(/\.arrow$/, "") + "_meta.json";
    let meta: unknown = null;
    try {
      meta = existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, "utf8")) : null;
    } catch (err) {
      process.stderr.write(`warning: cannot read ${metaFile}: ${(err as Error).message}\n`);
    }
    out.push({ file, modified: statSync(path).mtime.toISOString(), metadata: Object.fromEntries(t.schema.metadata), meta, columns, rows });
  } catch (err) {
    process.stderr.write(`warning: cannot read ${path}: ${(err as Error).message}\n`);
  }
}
process.stdout.write(JSON.stringify(out));
