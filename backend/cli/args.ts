// Option parsing shared by the commands: node's parseArgs in strict mode, with numeric
// options checked here so that a typo becomes one clear line and exit code 2.
import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { UsageError } from "./errors.js";

export function parse<const T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function num(value: unknown, flag: string, fallback: number, check?: (x: number) => boolean, rule?: string): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(x) || (check && !check(x))) {
    throw new UsageError(`--${flag} must be ${rule ?? "a number"} (got '${String(value)}')`);
  }
  return x;
}

export function oneOf<T extends string>(value: unknown, flag: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${flag} must be one of ${choices.join(", ")} (got '${String(value)}')`);
}
