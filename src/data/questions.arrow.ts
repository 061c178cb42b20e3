// Loader → questions.arrow: the questions.arrow records of every run, concatenated (one row per
// run × checkpoint epoch × multiple-choice question; ids are stable across runs for pairing).
import { concatRecord, QUESTIONS_COLUMNS, writeStream } from "./lib/records.js";

writeStream(concatRecord("questions.arrow", QUESTIONS_COLUMNS));
