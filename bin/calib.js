#!/usr/bin/env node
// The `calib` command. TypeScript sources run through tsx, so no build step is needed.
import { register } from "tsx/esm/api";
register();
const { main } = await import("../backend/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
