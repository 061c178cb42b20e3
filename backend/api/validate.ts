// Validation at the edge: path parameters, query strings and JSON bodies, each failure a 400
// that names the field. Path parameters are checked before they get near the file system: run
// ids match [a-z0-9-] and artifact names [A-Za-z0-9_-].ext, so `..`, encoded slashes and
// absolute paths never reach a path join.
import type { Request } from "express";
import { z } from "zod";
import { FieldError, fromZod } from "../errors.js";
import { RUN_ID_RE } from "../runs/paths.js";
import { HttpError } from "./errors.js";

export const ARTIFACT_NAME_RE = /^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9]{1,16}$/;

export function runIdParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== "string" || !RUN_ID_RE.test(id)) {
    throw new FieldError("id", `${JSON.stringify(id)} is not a run id (lower-case letters, digits and '-', at most 64 characters)`);
  }
  return id;
}

export function artifactParam(req: Request): string {
  const name = req.params.name;
  if (typeof name !== "string" || !ARTIFACT_NAME_RE.test(name)) {
    throw new FieldError("name", `${JSON.stringify(name)} is not an artifact name (like calibration.arrow; no paths)`);
  }
  return name;
}

/** Parses req.query with a zod schema; repeated parameters are an error. */
export function query<T extends z.ZodType>(req: Request, schema: T): z.infer<T> {
  const q = req.query as Record<string, unknown>;
  for (const [k, v] of Object.entries(q)) {
    if (Array.isArray(v)) throw new FieldError(k, "given more than once");
    if (v !== null && typeof v === "object") throw new FieldError(k, "must be a plain value");
  }
  const r = schema.safeParse(q);
  if (!r.success) throw fromZod(r.error);
  return r.data;
}

/** A JSON object body (Content-Type application/json), or a 415/400 naming the problem. */
export function jsonBody(req: Request): Record<string, unknown> {
  if (!req.is("application/json")) {
    throw new HttpError(415, `Content-Type must be application/json (got ${req.get("content-type") ?? "none"})`, "(body)");
  }
  const body = req.body as unknown;
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new FieldError("(body)", "must be a JSON object");
  return body as Record<string, unknown>;
}

/** "a,b" → ["a", "b"], each checked against the choices. */
export const csvEnum = <T extends string>(choices: readonly T[]) =>
  z.string().transform((s, ctx) => {
    const parts = s.split(",").map((p) => p.trim()).filter((p) => p !== "");
    for (const p of parts) {
      if (!(choices as readonly string[]).includes(p)) {
        ctx.addIssue({ code: "custom", message: `'${p}' is not one of ${choices.join(", ")}` });
        return z.NEVER;
      }
    }
    return parts as T[];
  });

export const intParam = (min: number, max: number) =>
  z.string().regex(/^\d{1,9}$/, "must be a non-negative integer").transform(Number).pipe(z.number().int().min(min).max(max));
