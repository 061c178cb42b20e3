// Loader → study.json: the published studies (data/study/<name>.json manifests, docs/study.md):
// their description, device, executions (wall time, concurrent runs) and every planned run's
// outcome (published, skipped by the deadline, failed), so the Findings page can say what ran;
// plus `capped`: the largest |option-letter logit| in the question records of the runs trained
// with a soft-cap (does the cap bind at all?).
import { dataDir, listRuns, readRecord } from "./lib/records.js";
import { listManifests } from "../../backend/study/publish.js";

const studies = listManifests(dataDir(), (f, err) => process.stderr.write(`warning: ${f}: ${err.message}\n`));
const published = new Set(studies.flatMap((m) => m.runs.filter((r) => r.published).map((r) => r.id)));
let runs = 0, maxAbs = 0;
const caps = new Set<number>();
for (const run of listRuns()) {
  if (published.size > 0 && !published.has(run.id)) continue;
  const cap = ((run.json.config as { loss?: { softcap?: number | null } } | undefined)?.loss?.softcap) ?? null;
  if (cap === null || run.json.kind !== "sft") continue;
  const q = readRecord(run, "questions.arrow");
  const logits = q?.getChild("logits");
  if (!q || !logits) continue;
  runs++;
  caps.add(cap);
  for (let i = 0; i < q.numRows; i++) {
    const v = logits.get(i) as { toArray(): Float32Array } | null;
    if (v) for (const x of v.toArray()) maxAbs = Math.max(maxAbs, Math.abs(x));
  }
}
process.stdout.write(JSON.stringify({ studies, capped: runs > 0 ? { runs, cap: [...caps].join(", "), max_abs_logit: maxAbs } : null }, null, 1));
