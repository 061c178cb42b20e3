// Errors the CLI reports as "bad input" (exit code 2, one line) rather than as a crash.
export class UsageError extends Error {
  override name = "UsageError";
}

export function formatError(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0] ?? err.name;
  return String(err);
}
