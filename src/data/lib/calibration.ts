// calibration.arrow rows (docs/records.md) for the site. A run's own calibration.arrow is used as
// published (source "record"); for a run without one the rows are computed here from its
// questions.arrow and tokens.arrow with the groups of backend/records (the code that writes the
// published files) and backend/metrics' calibrationSummaries (source "loader"), so the numbers
// agree by construction. Files written before `scoring` / `exposure_bucket` existed read as
// letter scoring (next-token rows: `none`) pooled over every person (`all`).
import { utf8 } from "../../../backend/records/arrow.js";
import {
  ALL_EXPOSURES, TOKEN_SCORING, groupRows, questionGroups, tokenGroups, type CalibrationGroup,
} from "../../../backend/records/calibration.js";
import { CALIBRATION_COLUMNS } from "../../../backend/metrics/index.js";
import { concatTables, conform, listRuns, readRecord, tableFromRows, type ColumnSpec, type RunInfo } from "./records.js";
import type { Table, Vector } from "apache-arrow";

export const CALIB_COLUMNS: ColumnSpec[] = [
  ...CALIBRATION_COLUMNS.map((c) => ({ name: c.name, type: c.type })),
  { name: "source", type: "utf8" },
  { name: "resamples", type: "int32" },
];

/** Bootstrap resamples for loader-computed rows: fewer for large n (the interval is then noted as coarser). */
export function resamplesFor(n: number): number {
  return n <= 20_000 ? 1000 : n <= 250_000 ? 200 : 0;
}

/** Computed rows for one run (the groups of backend/records: both default binnings, bucket rows with one). */
export function computeRows(run: RunInfo): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const groups: CalibrationGroup[] = [];
  const q = readRecord(run, "questions.arrow");
  if (q && q.numRows > 0) groups.push(...questionGroups(q));
  const t = readRecord(run, "tokens.arrow");
  if (t && t.numRows > 0) groups.push(...tokenGroups(t));
  for (const g of groups) {
    const resamples = resamplesFor((g.input.confidence as ArrayLike<number>).length);
    try {
      for (const r of groupRows(run.id, [g], { resamples, seed: 0 })) rows.push({ ...r, source: "loader", resamples });
    } catch (err) {
      process.stderr.write(`warning: ${run.id} ${JSON.stringify(g.keys)}: ${(err as Error).message}\n`);
    }
  }
  return rows;
}

/** A published file's columns, with scoring / exposure_bucket filled in for files written before they existed. */
function published(rec: Table, runId: string): Record<string, Vector> {
  const c = conform(rec, CALIB_COLUMNS, runId);
  const def = c.confidence_def!;
  if (!rec.getChild("scoring")) c.scoring = utf8(Array.from({ length: rec.numRows }, (_, i) => (def.get(i) === "token" ? TOKEN_SCORING : "letter")));
  if (!rec.getChild("exposure_bucket")) c.exposure_bucket = utf8(new Array(rec.numRows).fill(ALL_EXPOSURES));
  const src = tableFromRows(Array.from({ length: rec.numRows }, () => ({ source: "record", resamples: null })), CALIB_COLUMNS.slice(-2));
  c.source = src.getChild("source")!;
  c.resamples = src.getChild("resamples")!;
  return c;
}

/** Every run's calibration rows: published calibration.arrow when present, else computed. */
export function calibrationTable(runs = listRuns()): Table {
  const parts: Record<string, Vector>[] = [];
  for (const run of runs) {
    const rec = readRecord(run, "calibration.arrow");
    if (rec && rec.numRows > 0) parts.push(published(rec, run.id));
    else {
      const rows = computeRows(run);
      if (rows.length > 0) parts.push(conform(tableFromRows(rows, CALIB_COLUMNS), CALIB_COLUMNS));
    }
  }
  return concatTables(parts, CALIB_COLUMNS);
}
