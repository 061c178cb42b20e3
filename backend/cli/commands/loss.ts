// calib loss: the fused label-smoothed cross-entropy over NumPy files, for cross-checking
// against PyTorch. Writes loss.npy, lse.npy and, with --grad, dE.npy, dC.npy (dBias.npy).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { linearCrossEntropy } from "../../engine/index.js";
import { readNpy, toInt32Targets, writeNpy, type NpyArray } from "../../io/npy.js";
import { num, oneOf, parse } from "../args.js";
import { UsageError } from "../errors.js";

export const summary = "fused linear + label-smoothed cross-entropy over .npy files";

const HELP = `usage: calib loss --e E.npy --c C.npy --targets T.npy --out DIR [options]

  E.npy      N×D float32 token states        C.npy  V×D float32 classifier
  T.npy      N int32 or int64 targets        --bias B.npy  V float32 (optional)

options:
  --smoothing EPS       label smoothing ε in [0, 1]        (default 0)
  --ignore-index I      target value to ignore             (default -100)
  --reduction R         mean | sum | none                  (default mean)
  --temperature T       logits/T, loss×T                   (default 1)
  --softcap C           c·tanh(z/c); omit for none
  --grad                also write dE.npy and dC.npy for an upstream gradient of 1
  --device D            cpu | cuda | auto                  (default cpu)
  --impl I              fused | naive                      (default fused)

example:
  calib loss --e E.npy --c C.npy --targets T.npy --smoothing 0.1 --grad --out out/`;

function matrixOf(a: NpyArray, name: string) {
  if (a.dtype !== "float32") throw new TypeError(`${name} must be float32, not ${a.dtype} (use .astype(np.float32))`);
  if (a.shape.length !== 2) throw new TypeError(`${name} must be 2-D, got shape (${a.shape.join(", ")})`);
  return { data: a.data, rows: a.shape[0]!, cols: a.shape[1]! };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    e: { type: "string" }, c: { type: "string" }, targets: { type: "string" }, bias: { type: "string" },
    out: { type: "string" }, smoothing: { type: "string" }, "ignore-index": { type: "string" },
    reduction: { type: "string" }, temperature: { type: "string" }, softcap: { type: "string" },
    grad: { type: "boolean" }, device: { type: "string" }, impl: { type: "string" }, help: { type: "boolean", short: "h" },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see calib loss --help)`);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  for (const f of ["e", "c", "targets", "out"] as const) {
    if (!values[f]) throw new UsageError(`--${f} is required (see calib loss --help)`);
  }
  const smoothing = num(values.smoothing, "smoothing", 0, (x) => x >= 0 && x <= 1, "a number in [0, 1]");
  const ignoreIndex = num(values["ignore-index"], "ignore-index", -100, Number.isInteger, "an integer");
  const temperature = num(values.temperature, "temperature", 1, (x) => x > 0, "a number > 0");
  const softcap = num(values.softcap, "softcap", 0, (x) => x > 0, "a number > 0");
  const reduction = oneOf(values.reduction, "reduction", ["mean", "sum", "none"] as const, "mean");
  const device = oneOf(values.device, "device", ["cpu", "cuda", "auto"] as const, "cpu");
  const impl = oneOf(values.impl, "impl", ["fused", "naive"] as const, "fused");

  const e = matrixOf(readNpy(values.e!), "E");
  const c = matrixOf(readNpy(values.c!), "C");
  const t = readNpy(values.targets!);
  if (t.shape.length !== 1) throw new TypeError(`targets must be 1-D, got shape (${t.shape.join(", ")})`);
  const targets = toInt32Targets(t, "targets");
  let bias: Float32Array | undefined;
  if (values.bias) {
    const b = readNpy(values.bias);
    if (b.dtype !== "float32" || b.shape.length !== 1) throw new TypeError("bias must be a 1-D float32 array");
    bias = b.data;
  }

  const started = performance.now();
  const result = linearCrossEntropy(e, c, targets, {
    labelSmoothing: smoothing, ignoreIndex, reduction: reduction as "mean", temperature,
    softcap: softcap || null, bias: bias ?? null, grad: values.grad ?? false, device, impl,
  });
  const ms = performance.now() - started;

  const out = values.out!;
  mkdirSync(out, { recursive: true });
  const loss = result.loss as number | Float32Array;
  if (typeof loss === "number") writeNpy(join(out, "loss.npy"), new Float32Array([loss]), []);
  else writeNpy(join(out, "loss.npy"), loss, [loss.length]);
  writeNpy(join(out, "lse.npy"), result.lse, [result.lse.length]);
  if (result.dE && result.dC) {
    writeNpy(join(out, "dE.npy"), result.dE, [e.rows, e.cols]);
    writeNpy(join(out, "dC.npy"), result.dC, [c.rows, c.cols]);
    if (result.dBias) writeNpy(join(out, "dBias.npy"), result.dBias, [c.rows]);
  }
  const shown = typeof loss === "number" ? loss.toPrecision(8) : `${loss.length} per-token values`;
  console.log(
    `loss ${shown} (${reduction}, ${result.validCount}/${e.rows} tokens, N=${e.rows} D=${e.cols} V=${c.rows}, ` +
      `${result.device} ${impl}, ${ms.toFixed(1)} ms) → ${out}`,
  );
  return 0;
}
