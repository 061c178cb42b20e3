// Loader → tokens.arrow: the tokens.arrow records of every run, concatenated (docs/records.md;
// one row per evaluated token, subsampled when published).
import { concatRecord, TOKENS_COLUMNS, writeStream } from "./lib/records.js";

writeStream(concatRecord("tokens.arrow", TOKENS_COLUMNS));
