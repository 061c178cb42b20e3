// The training progress bar on stderr: step, loss, tokens/s and ETA. On a terminal it redraws
// one line (at most every 200 ms); otherwise it prints a line at every 10% and at the end, so
// that logs of CI jobs stay short. Never writes to stdout.
export interface TrainProgress {
  update(step: number, fields: { loss?: number; tokensPerSecond?: number; note?: string }): void;
  /** a line that must not be overwritten (validation results, warnings) */
  message(text: string): void;
  done(note?: string): void;
}

const WIDTH = 24;

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), rr = String(r).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${rr}` : `${mm}:${rr}`;
}

export function trainProgress(label: string, total: number, first: number, opts: { enabled?: boolean; stream?: NodeJS.WriteStream } = {}): TrainProgress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? true;
  const tty = enabled && Boolean(stream.isTTY);
  const started = performance.now();
  let last = { step: first, loss: NaN, tps: NaN, note: "" };
  let lastDraw = 0;
  let lastDecile = Math.floor((first / Math.max(1, total)) * 10);
  let finished = false;

  const line = (): string => {
    const frac = total > 0 ? Math.min(1, last.step / total) : 1;
    const filled = Math.round(frac * WIDTH);
    const elapsed = (performance.now() - started) / 1000;
    const done = last.step - first;
    const eta = done > 0 ? (elapsed / done) * (total - last.step) : NaN;
    const loss = Number.isFinite(last.loss) ? last.loss.toFixed(4) : "-";
    const tps = Number.isFinite(last.tps) ? `${Math.round(last.tps)} tok/s` : "- tok/s";
    return `${label} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] step ${last.step}/${total} loss ${loss} ${tps} ` +
      `elapsed ${clock(elapsed)} ETA ${clock(eta)}${last.note ? ` ${last.note}` : ""}`;
  };

  return {
    update(step, f) {
      last = { step, loss: f.loss ?? last.loss, tps: f.tokensPerSecond ?? last.tps, note: f.note ?? last.note };
      if (!enabled) return;
      if (tty) {
        const now = performance.now();
        if (now - lastDraw < 200 && step < total) return;
        lastDraw = now;
        stream.write(`\r${line()}\x1b[K`);
      } else {
        const decile = Math.floor((step / Math.max(1, total)) * 10);
        if (decile > lastDecile && step < total) {
          lastDecile = decile;
          stream.write(`${line()}\n`);
        }
      }
    },
    message(text) {
      if (!enabled) return;
      stream.write(tty ? `\r${text}\x1b[K\n` : `${text}\n`);
      lastDraw = 0;
    },
    done(note) {
      if (finished || !enabled) return;
      finished = true;
      if (note) last.note = note;
      stream.write(tty ? `\r${line()}\x1b[K\n` : `${line()}\n`);
    },
  };
}
