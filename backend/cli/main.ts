// Entry point of the `calib` command: dispatches to one module per sub-command.
// Each command module exports `summary` (one line) and `run(argv)` returning an exit code.
import { UsageError, formatError } from "./errors.js";

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

// One line per command; modules are loaded lazily so `calib --help` stays fast.
const COMMANDS: Record<string, () => Promise<Command>> = {
  loss: () => import("./commands/loss.js"),
  metrics: () => import("./commands/metrics.js"),
  data: () => import("./commands/data.js"),
  serve: () => import("./commands/serve.js"),
  runs: () => import("./commands/runs.js"),
  import: () => import("./commands/import.js"),
  train: () => import("./commands/train.js"),
  eval: () => import("./commands/eval.js"),
  export: () => import("./commands/export.js"),
  sweep: () => import("./commands/sweep.js"),
};

function usage(): string {
  return [
    "usage: calib <command> [options]",
    "",
    "commands:",
    ...Object.keys(COMMANDS).map((name) => `  ${name}`),
    "",
    "Run `calib <command> --help` for the options of one command.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`calib: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(", ")}`);
    return 2;
  }
  try {
    const cmd = await load();
    return await cmd.run(rest);
  } catch (err) {
    console.error(`calib ${name}: ${formatError(err)}`);
    return err instanceof UsageError || err instanceof TypeError || err instanceof RangeError ? 2 : 1;
  }
}
