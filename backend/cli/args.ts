// Option parsing shared by the commands: node's parseArgs in strict mode, with numeric
// options checked here so that a typo becomes one clear line and exit code 2.
//
// A value that starts with a dash is taken by parseArgs only in the `--x=-1` form; a negative
// number after a space (`--ignore-index -100`, `--x -1.5e-3`, the way PyTorch users write it) is
// joined to its option here first, for every string-valued option. Other dash-led words after an
// option that needs a value stay an error ("ambiguous"), and nothing after `--` is touched.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;

/** A negative decimal number as Number() reads it: -1, -0.5, -.5, -1e-3, -Infinity. */
const NEGATIVE_NUMBER = /^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^-Infinity$/;

/** argv with `--opt -1` (and `-o -1`) rewritten as `--opt=-1` for the string-valued options. */
export function joinNegativeValues(argv: readonly string[], options: ParseArgsOptionsConfig): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== "string") continue;
    takesValue.set(`--${name}`, name);
    if (o.short) takesValue.set(`-${o.short}`, name);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = takesValue.get(arg);
    const next = argv[i + 1];
    if (name !== undefined && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export function parse<const T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals: true });
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

/** num() for an option without a default: undefined when absent. */
export function optionalNum(value: unknown, flag: string, check?: (x: number) => boolean, rule?: string): number | undefined {
  return value === undefined ? undefined : num(value, flag, 0, check, rule);
}

export function oneOf<T extends string>(value: unknown, flag: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${flag} must be one of ${choices.join(", ")} (got '${String(value)}')`);
}
