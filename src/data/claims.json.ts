// Loader → claims.json: the paper's claims C1–C4, each with the effect measured on the runs in
// data/ (paired bootstrap over shared questions), or "not yet measured" with what is missing.
// Definitions: ./lib/claims.ts.
import { computeClaims } from "./lib/claims.js";

process.stdout.write(JSON.stringify(computeClaims(), null, 1));
