// Errors with a meaning the API maps to a status code and the CLI to an exit code.
//   FieldError (a TypeError)  bad input, names the field        → 400, CLI exit 2
//   NotFoundError             no such run / artifact             → 404, CLI exit 2
//   ConflictError             not possible in the run's state    → 409, CLI exit 1
import type { z } from "zod";

export class FieldError extends TypeError {
  override name = "FieldError";
  constructor(readonly field: string, message: string, readonly status = 400) {
    super(`${field}: ${message}`);
  }
}

export class NotFoundError extends Error {
  override name = "NotFoundError";
  readonly status = 404;
}

export class ConflictError extends Error {
  override name = "ConflictError";
  readonly status = 409;
}

/** A FieldError from zod issues: the first issue's path is the field, every issue is in the message. */
export function fromZod(error: z.ZodError, prefix = ""): FieldError {
  const name = (path: readonly PropertyKey[]) => [prefix, ...path.map(String)].filter((s) => s !== "").join(".") || "(body)";
  const describe = (i: z.core.$ZodIssue): string => {
    if (i.code === "unrecognized_keys") {
      return i.keys.length > 1 ? `unknown fields ${i.keys.map((k) => `'${k}'`).join(", ")}` : "unknown field (not part of the schema)";
    }
    return i.message;
  };
  const issues = error.issues;
  const first = issues[0]!;
  const firstField = first.code === "unrecognized_keys" && first.keys.length === 1 ? name([...first.path, first.keys[0]!]) : name(first.path);
  const fieldOf = (i: z.core.$ZodIssue) => (i.code === "unrecognized_keys" && i.keys.length === 1 ? name([...i.path, i.keys[0]!]) : name(i.path));
  const rest = issues.slice(1, 5).map((i) => `; ${fieldOf(i)}: ${describe(i)}`).join("") + (issues.length > 5 ? `; … ${issues.length - 5} more` : "");
  return new FieldError(firstField, describe(first) + rest);
}
