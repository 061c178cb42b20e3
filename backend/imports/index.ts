// Imports of evaluation logs from other tools into runs of kind `import`. Today: the
// lm-evaluation-harness `--log_samples` files (lmeval.ts) and the import job with its config
// (job.ts). The files are validated before any registry entry exists (bad input → FieldError
// naming the file and line; backend/runs/submit.ts registers the run); the run keeps them under
// data/runs/<id>/.upload/ until its job (lane `io`) has written questions.arrow and
// calibration.arrow. Nothing here knows of the registry: runs depend on imports, not back.
export {
  parseSamples, parseSamplesFiles, parseSamplesPath, taskFromFilename, checkDistinctTasks, SamplesParser, type ParsedSamples, type SamplesFile,
} from "./lmeval.js";
export { runLmEvalImport, UPLOAD_DIR, type ImportConfig } from "./job.js";
