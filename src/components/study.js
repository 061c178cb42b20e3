// What the pages say about a published study (claims.json / study.json entries): which regime it
// is (a knowledge world whose base models know the answers, or the Brown corpus whose base models
// cannot answer), whether its numbers are evidence, the scorings of its questions, and the pooling
// of calibration rows over runs (accuracy and confidence weighted by each row's n).
import {html} from "npm:htl";
import {fmtDiff} from "./ui.js";

const REGIME = {
  world: "Knowledge world — base models that know the answers",
  brown: "Brown corpus — base models that cannot answer"
};

/** "Knowledge world — base models that know the answers (world, GPU)" and the like, for selectors. */
export function studyLabel(s) {
  const tags = [s.name ?? "all runs", s.device ? (/cuda|nvidia|h100|h200|gpu/i.test(s.device) ? "GPU" : "CPU") : null, s.evidence ? null : "not evidence"].filter(Boolean);
  return `${REGIME[s.regime] ?? s.regime} (${tags.join(", ")})`;
}

export function scoringLabel(s) {
  return s === "option" ? "option scoring (each option's text as the continuation)" : s === "letter" ? "letter scoring (the answer letter A–D)" : s;
}

/** One sentence on what the chosen study is and how it relates to the others. */
export function regimeNote(s, all) {
  const other = all.filter((x) => x !== s && x.regime !== s.regime);
  if (s.regime === "world") {
    return html`<strong>Regime: base models that know the answers.</strong> Small GPTs pretrained on a synthetic world of fictional people answer questions about people they only read about, before any fine-tuning — the premise of the paper's claims.${other.length ? html` The Brown-corpus study (${other.map((x) => x.name).join(", ")}), whose base models cannot answer, is the second regime: choose it above.` : ""}`;
  }
  return html`<strong>Regime: base models that cannot answer.</strong> GPTs pretrained on the Brown corpus are at chance on its questions before fine-tuning (they put the mass on one letter), so the paper's premise — a capable, calibrated base model — does not hold here; this regime is kept as documented evidence of what happens then.${other.length ? html` The knowledge-world study (${other.map((x) => x.name).join(", ")}) tests the claims on base models that know the answers: choose it above.` : html` The knowledge-world study, which tests the claims on base models that know the answers, is not published yet (docs/study.md says how to run it).`}`;
}

/** C1's caveat when accuracy falls through SFT (knowledge worlds: SFT can erase what the base models knew), else "". */
export function accuracyCaveat(c) {
  const a = c.id === "C1" ? c.secondary.find((s) => s.label.startsWith("Δ accuracy")) : null;
  return a && a.hi < -0.05 ? `But accuracy changes by ${fmtDiff(a.estimate, a.lo, a.hi)}: this over-confidence comes from knowledge lost in SFT, not from sharper confidence at kept accuracy.` : "";
}

/** The banner of a study whose numbers are not evidence (CPU / CI forms). */
export function notEvidence(s) {
  return html`<div class="not-evidence" id="not-evidence"><strong>Not evidence.</strong> Study <code>${s.name}</code> is a small form of the pipeline (tiny models, few steps, run on ${s.device ?? "this machine"}): its numbers only show that every stage runs. The study to read is its GPU form (docs/study.md).</div>`;
}

/** Calibration rows pooled per `keys`: accuracy and mean confidence weighted by n, ECE as the n-weighted mean of the rows' ECEs. */
export function poolRows(rows, keys) {
  const groups = new Map();
  for (const d of rows) {
    const k = JSON.stringify(keys.map((x) => d[x]));
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(d);
  }
  return [...groups.values()].map((v) => {
    const n = v.reduce((a, d) => a + d.n, 0);
    const w = (f) => v.reduce((a, d) => a + d[f] * d.n, 0) / n;
    return {...Object.fromEntries(keys.map((x) => [x, v[0][x]])), n, runs: new Set(v.map((d) => d.run_id)).size, accuracy: w("accuracy"), mean_confidence: w("mean_confidence"), ece: w("ece")};
  });
}

const TOKENIZERS = ["word", "byte", "r50k", "cl100k", "o200k"];

/** Order of labels that name a cell ("ΔECE in o200k V=200000 · d=128", "gain in word V=1659 · d=512 (V/d 3)"):
 *  by tokenizer (word and byte first, then by V), then d_model; labels without a cell keep their place after those with one. */
export function cellSort(a, b) {
  const key = (s) => {
    const m = /(\w+) V=\d+ · d=(\d+)/.exec(s);
    return m ? [TOKENIZERS.indexOf(m[1]), +m[2]] : [Infinity, 0];
  };
  const [ta, da] = key(a), [tb, db] = key(b);
  return ta - tb || da - db;
}

/** Order of exposure buckets ("1", "2-3", "4-7", …; "all" first). */
export function bucketSort(a, b) {
  const lo = (x) => (x === "all" ? -1 : parseInt(x, 10));
  return lo(a) - lo(b);
}
