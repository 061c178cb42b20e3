// Loader → train_log.arrow: the train_log.arrow records of every run, concatenated (one row per
// logged optimizer step: training rows with the smoothed loss, validation rows with the plain NLL).
import { concatRecord, TRAIN_LOG_COLUMNS, writeStream } from "./lib/records.js";

writeStream(concatRecord("train_log.arrow", TRAIN_LOG_COLUMNS));
