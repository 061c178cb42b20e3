// The one-way flow of docs/architecture.md: every relative import of a backend/ file points to a
// folder on the right of its own in the "layers:" line of that document (or inside its own folder).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..", "..");
const BACKEND = join(ROOT, "backend");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : f.endsWith(".ts") ? [p] : [];
  });
}

/** backend/runs/x.ts → "runs"; backend/server.ts → "server". */
const layerOf = (file: string) => relative(BACKEND, file).split("/")[0]!.replace(/\.(ts|js)$/, "");

test("backend/ imports follow the layers of docs/architecture.md", () => {
  const line = /^layers: (.+)$/m.exec(readFileSync(join(ROOT, "docs", "architecture.md"), "utf8"))?.[1];
  assert.ok(line, "docs/architecture.md has a 'layers:' line");
  const rank = new Map<string, number>();
  line.split(">").forEach((group, i) => group.split(",").forEach((name) => rank.set(name.trim(), i)));
  const folders = new Set(readdirSync(BACKEND).map((f) => f.replace(/\.ts$/, "")));
  assert.deepEqual([...folders].filter((f) => !rank.has(f)), [], "every backend folder is in the layers line");
  const wrong: string[] = [];
  for (const file of files(BACKEND)) {
    const from = layerOf(file);
    for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import\()\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(BACKEND + "/")) continue;
      const to = layerOf(target);
      if (to !== from && !(rank.get(to)! > rank.get(from)!)) wrong.push(`${relative(ROOT, file)} → ${m[1]} (${from} → ${to})`);
    }
  }
  assert.deepEqual(wrong, [], "imports against the flow");
});
