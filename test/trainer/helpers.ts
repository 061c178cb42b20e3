// Shared helpers of the trainer tests: a seeded generator and small numeric utilities.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** mulberry32: deterministic uniform numbers in [0, 1) (shared with the other tests). */
export { rng } from "../helpers/random.js";

export function normal(rand: () => number): number {
  const u = 1 - rand(), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function ints(rand: () => number, n: number, hi: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * hi));
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `calib-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/** A CLI run given bad input: exit code 2 and exactly one line on stderr, matching `pattern`. */
export function assertBadInput(r: { code: number | null; stderr: string }, what: string, pattern: RegExp): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}, ${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
}
