// calib sweep FILE: a study (data/sweeps/*.json) or an API sweep config, planned, trained with
// concurrent worker processes, and published into data/runs (backend/study, docs/study.md).
import { UsageError } from "../errors.js";

export const summary = "run a study or sweep file end to end (pretrain grid × SFT arms) and publish its records";

export async function run(argv: string[]): Promise<number> {
  const { runSweep, SweepUsageError } = await import("../../study/main.js");
  try {
    return await runSweep(argv);
  } catch (err) {
    if (err instanceof SweepUsageError) throw new UsageError(err.message);
    throw err;
  }
}
