// calib metrics FILE: calibration metrics of per-example predictions stored as Arrow IPC (stream or
// file format, e.g. a run's questions.arrow or tokens.arrow) or CSV. Three steps, a file each:
// metrics/read.ts (the file's columns), metrics/compute.ts (backend/metrics, the same code the site
// and the loaders use), metrics/print.ts (tables or JSON).
import type { Norm, Scheme } from "../../metrics/index.js";
import { num, oneOf, parse } from "../args.js";
import { UsageError } from "../errors.js";
import type { MetricsOptions } from "./metrics/compute.js";

export const summary = "calibration metrics (ECE, RMS-CE, smECE, Brier, NLL, reliability bins, bootstrap CIs) of a predictions file";

const HELP = `usage: calib metrics FILE [options]

FILE is Arrow IPC (stream or file format) or CSV with a header row (RFC 4180 quoting). Columns used:
  confidence, correct   top-label confidence in [0, 1] and correctness (bool or 0/1)   (required unless probs)
  p_target              probability of the true label → NLL                           (optional)
  entropy               predictive entropy in nats → mean entropy                      (optional)
  probs + gold|label    probability rows → multiclass Brier, NLL, entropy, classwise CE, temperature
                        (Arrow: a list<float> column "probs"; CSV: columns p0..p{K-1} or prob_*)
  logits                Arrow list<float> column: temperature scaling is fitted on it (else on log probs)
When confidence/correct are absent they are derived from the probability rows (argmax, first on ties).

options:
  --bins M               number of bins                                   (default 15)
  --scheme S             equal-width | equal-mass                         (default equal-width)
  --norm N               l1 (ECE) | l2 (RMS-CE) | max (MCE): the headline and classwise norm (default l1)
  --bootstrap R          percentile-bootstrap resamples, 0 for none       (default 1000)
  --seed S               bootstrap seed                                   (default 0)
  --level L              interval coverage                                (default 0.95)
  --confidence-col NAME  confidence column (e.g. confidence_norm)         (default confidence)
  --correct-col NAME     correctness column (e.g. correct_norm)           (default correct)
  --where COL=VALUE      keep rows where COL equals VALUE (repeatable; e.g. --where epoch=3 --where split=test)
  --json                 print JSON instead of tables

examples:
  calib metrics data/runs/ls-0.1/questions.arrow --where epoch=3 --where task=pos
  calib metrics preds.csv --bins 10 --scheme equal-mass --norm l2 --json`;

let epipeHandled = false;

function options(argv: string[]): { file: string; json: boolean; o: MetricsOptions } | null {
  const { values, positionals } = parse(argv, {
    bins: { type: "string" }, scheme: { type: "string" }, norm: { type: "string" }, bootstrap: { type: "string" },
    seed: { type: "string" }, level: { type: "string" }, "confidence-col": { type: "string" }, "correct-col": { type: "string" },
    where: { type: "string", multiple: true }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
  });
  if (values.help) return null;
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "missing FILE (see calib metrics --help)" : `unexpected argument '${positionals[1]}'`);
  }
  const o: MetricsOptions = {
    bins: num(values.bins, "bins", 15, (x) => Number.isInteger(x) && x >= 1 && x <= 1_000_000, "an integer in [1, 1000000]"),
    scheme: oneOf(values.scheme, "scheme", ["equal-width", "equal-mass"] as const, "equal-width") satisfies Scheme,
    norm: oneOf(values.norm, "norm", ["l1", "l2", "max"] as const, "l1") satisfies Norm,
    resamples: num(values.bootstrap, "bootstrap", 1000, (x) => Number.isInteger(x) && x >= 0 && x <= 10_000_000, "an integer ≥ 0"),
    seed: num(values.seed, "seed", 0, (x) => Number.isSafeInteger(x) && x >= 0, "an integer ≥ 0"),
    level: num(values.level, "level", 0.95, (x) => x > 0 && x < 1, "a number in (0, 1)"),
    where: values.where ?? [],
    ...(values["confidence-col"] !== undefined ? { confidenceCol: values["confidence-col"] } : {}),
    ...(values["correct-col"] !== undefined ? { correctCol: values["correct-col"] } : {}),
  };
  return { file: positionals[0]!, json: values.json ?? false, o };
}

export async function run(argv: string[]): Promise<number> {
  // `calib metrics … | head` closes the pipe early: stop quietly instead of a stack trace.
  if (!epipeHandled) {
    epipeHandled = true;
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
  }
  const args = options(argv);
  if (!args) return (console.log(HELP), 0);
  const { file, o } = args;
  const [{ readPredictions }, { computeMetrics, readInputs }, { printJson, printText }] = await Promise.all([
    import("./metrics/read.js"), import("./metrics/compute.js"), import("./metrics/print.js"),
  ]);
  const cols = await readPredictions(file);
  if (cols.rows === 0) throw new RangeError(`${file} has no rows`);
  const report = computeMetrics(readInputs(cols, file, o), o);
  (args.json ? printJson : printText)(file, report, o);
  return 0;
}
