// One rank of a data-parallel run, a process forked by the launcher (launch.ts) through tsx: it
// connects to the launcher's hub, runs the trainer on its rows (options.rank), and reports rank
// 0's train_log rows, its result, or what it threw. It exits when the launcher goes away.
import { train } from "../trainer.js";
import type { FromRank, ToRank } from "./launch.js";
import { connectRank } from "./socket.js";

if (!process.send) {
  console.error("backend/train/dp/rank.ts is started by the data-parallel launcher (calib train --gpus N), not by hand");
  process.exit(2);
}

const send = (m: FromRank) =>
  new Promise<void>((resolve) => {
    if (!process.connected) process.exit(1);
    process.send!(m, undefined, {}, () => resolve());
  });

const controller = new AbortController();
let started = false;
process.on("disconnect", () => process.exit(1));
process.on("message", (m: ToRank) => {
  if (m.type === "cancel") return void controller.abort();
  if (started) return;
  started = true;
  void (async () => {
    try {
      const collective = await connectRank(m.port, m.rank, m.worldSize);
      const result = await train(m.config, {
        ...m.options, signal: controller.signal, rank: { collective, transport: "cpu-test" },
        ...(m.rank === 0 ? { onRow: (row) => void send({ type: "row", row }) } : {}),
      });
      await collective.close();
      await send({ type: "done", result });
      process.exit(0);
    } catch (err) {
      if (err instanceof Error && err.stack) process.stderr.write(`rank ${m.rank}: ${err.stack}\n`);
      await send({ type: "failed", message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    }
  })();
});
