// Loader → claims.json: the paper's claims C1–C4 for every published study (the knowledge-world
// study first, then the Brown study: base models that cannot answer), per scoring of its
// questions and, for knowledge worlds, per exposure bucket — each effect measured on the runs'
// records (paired bootstrap over shared questions and seeds), or "not yet measured" with what is
// missing. Definitions: ./lib/claims.ts.
import { computeStudyClaims } from "./lib/claims.js";

process.stdout.write(JSON.stringify(computeStudyClaims(), null, 1));
