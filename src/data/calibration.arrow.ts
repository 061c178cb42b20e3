// Loader → calibration.arrow: one row per run × epoch × split × task × confidence definition ×
// bin scheme (docs/records.md), from each run's calibration.arrow, or computed from its
// questions/tokens records with backend/metrics when the run has none (column `source`).
import { calibrationTable } from "./lib/calibration.js";
import { writeStream } from "./lib/records.js";

writeStream(calibrationTable());
