// SFT batches as the engine takes them: rows cut to the longest example of the batch.
import type { Batch } from "../engine/index.js";
import type { SftBatch } from "../data/index.js";

/** Rows of an SFT batch cut to its longest example (right padding never reaches a supervised position). */
export function trimSftBatch(b: SftBatch): Batch {
  const T = b.contextLength;
  let len = 1;
  for (let r = 0; r < b.rows; r++) {
    for (let t = T - 1; t >= len; t--) {
      if (b.segments[r * T + t] !== -1) {
        len = t + 1;
        break;
      }
    }
  }
  if (len === T) return { inputs: b.inputs, targets: b.targets, b: b.rows, t: T };
  const inputs = new Int32Array(b.rows * len), targets = new Int32Array(b.rows * len);
  for (let r = 0; r < b.rows; r++) {
    inputs.set(b.inputs.subarray(r * T, r * T + len), r * len);
    targets.set(b.targets.subarray(r * T, r * T + len), r * len);
  }
  return { inputs, targets, b: b.rows, t: len };
}
