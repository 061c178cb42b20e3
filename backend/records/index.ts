// Run records: Arrow IPC stream writers for train_log.arrow, tokens.arrow, questions.arrow and
// calibration.arrow (schemas in docs/records.md) and run.json. Every file is written atomically.
export { writeArrowStream, readArrowStream, makeTable, utf8, bool, int32, float32, float64, float32List, float32Lists, float32Nullable, int32Nullable, float64Nullable } from "./arrow.js";
export { writeTrainLog, readTrainLog, trainLogTable, TRAIN_LOG_COLUMNS, type TrainLogRow } from "./train-log.js";
export { writeTokens, tokensTable, TOP_K, type TokenRecords } from "./tokens.js";
export { writeQuestions, questionsTable, questionScorings, SCORINGS, type QuestionRow, type Scoring } from "./questions.js";
export { markRunFailed, writeRunJson, type RunJson, type RunKind, type RunStatus } from "./run.js";
export {
  writeCalibration, writeRunCalibration, calibrationTable, questionCalibration, tokenCalibration, questionGroups, tokenGroups, groupRows, bucketOrder,
  CALIBRATION_DEFAULTS, TOKEN_TASK, TOKEN_SCORING, TASK_ALL, ALL_EXPOSURES,
  type CalibrationGroup, type CalibrationRow, type CalibrationSettings, type ConfidenceDef, type GroupKeys,
} from "./calibration.js";
