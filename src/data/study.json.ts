// Loader → study.json: the published studies (data/study/<name>.json manifests, docs/study.md):
// their description, regime ("world": a knowledge world whose base models know the answers;
// "brown": the Brown corpus, base models that cannot answer), whether their numbers are evidence
// (false for the CPU / CI forms), device, executions (wall time, concurrent runs) and every planned
// run's outcome (published, skipped by the deadline, failed), so the Findings page can say what
// ran; plus, per study, `capped`: the largest |option-letter logit| in the letter-scored question
// records of the runs trained with a soft-cap (does the cap bind at all?). Option-scored records
// hold summed log-likelihoods, not logits, so they do not count.
import { dataDir, listRuns, readRecord } from "./lib/records.js";
import { listManifests } from "../../backend/study/publish.js";
import { questionScorings } from "../../backend/records/questions.js";

const manifests = listManifests(dataDir(), (f, err) => process.stderr.write(`warning: ${f}: ${err.message}\n`));
const runs = new Map(listRuns().map((r) => [r.id, r]));

function capped(ids: Set<string>): { runs: number; cap: string; max_abs_logit: number } | null {
  let n = 0, maxAbs = 0;
  const caps = new Set<number>();
  for (const id of ids) {
    const run = runs.get(id);
    const cap = ((run?.json.config as { loss?: { softcap?: number | null } } | undefined)?.loss?.softcap) ?? null;
    if (!run || cap === null || run.json.kind !== "sft") continue;
    const q = readRecord(run, "questions.arrow");
    const logits = q?.getChild("logits");
    if (!q || !logits) continue;
    const sc = questionScorings(q);
    let seen = false;
    for (let i = 0; i < q.numRows; i++) {
      if (sc[i] !== "letter") continue;
      const v = logits.get(i) as { toArray(): Float32Array } | null;
      if (v) for (const x of v.toArray()) maxAbs = Math.max(maxAbs, Math.abs(x));
      seen = true;
    }
    if (!seen) continue;
    n++;
    caps.add(cap);
  }
  return n > 0 ? { runs: n, cap: [...caps].join(", "), max_abs_logit: maxAbs } : null;
}

const studies = manifests.map((m) => {
  const ids = new Set(m.runs.filter((r) => r.published).map((r) => r.id));
  const world = [...ids].some((id) => (runs.get(id)?.json.config as { world?: unknown } | undefined)?.world !== undefined);
  return { ...m, regime: m.regime ?? (world ? "world" : "brown"), evidence: m.evidence ?? true, capped: capped(ids) };
});
// the knowledge-world study first (as claims.json orders them)
const rank = (s: { regime: string; evidence: boolean }) => (s.regime === "world" ? 0 : 2) + (s.evidence ? 0 : 1);
studies.sort((a, b) => rank(a) - rank(b));
process.stdout.write(JSON.stringify({ studies }, null, 1));
