// The one grid expander, for API sweeps (schema.ts, submit.ts) and studies (backend/study):
// a grid maps dotted config paths ("loss.labelSmoothing") to lists of values; its points are the
// cartesian product in key order, last key fastest, each applied to a copy of a base config.
import { z } from "zod";
import { FieldError } from "../errors.js";

/** Grid keys: dotted config paths like loss.labelSmoothing. */
export const GridPath = z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, "grid keys are dotted config paths like loss.labelSmoothing");
export const GridValue = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export const GridSchema = z.record(GridPath, z.array(GridValue).min(1).max(1000)).default({});

export type Grid = Record<string, readonly unknown[]>;

/** The value at a dotted path (undefined when a step is missing or not an object). */
export function getPath(source: unknown, path: string): unknown {
  let o = source;
  for (const k of path.split(".")) {
    if (o === null || typeof o !== "object") return undefined;
    o = (o as Record<string, unknown>)[k];
  }
  return o;
}

/** Sets a dotted path, creating missing objects; `field` names the setting in the error. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown, field: string): void {
  const keys = path.split(".");
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (next === undefined) o[k] = {};
    else if (next === null || typeof next !== "object" || Array.isArray(next)) throw new FieldError(field, `'${k}' is not an object in the base config`);
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

/** The points of a grid (each: path → value); more than `max` points is an error on `field`. */
export function gridPoints(grid: Grid, o: { max: number; field: string }): Array<Record<string, unknown>> {
  let points: Array<Record<string, unknown>> = [{}];
  for (const [path, values] of Object.entries(grid)) {
    const next: Array<Record<string, unknown>> = [];
    for (const p of points) for (const v of values) next.push({ ...p, [path]: v });
    points = next;
    if (points.length > o.max) throw new FieldError(o.field, `expands to more than ${o.max} runs`);
  }
  return points;
}

export interface GridPoint {
  /** the varied values, by path */
  point: Record<string, unknown>;
  config: Record<string, unknown>;
}

/** Each grid point applied to a copy of `base`; errors name `<field>.<path>`. */
export function expandGrid(base: Record<string, unknown>, grid: Grid, o: { max: number; field: string }): GridPoint[] {
  return gridPoints(grid, o).map((point) => {
    const config = structuredClone(base);
    for (const [path, v] of Object.entries(point)) setPath(config, path, v, `${o.field}.${path}`);
    return { point, config };
  });
}

/** "dModel=64 labelSmoothing=0.1" for run names. */
export function describePoint(point: Record<string, unknown>): string {
  return Object.entries(point).map(([k, v]) => `${k.split(".").pop()}=${String(v)}`).join(" ");
}
