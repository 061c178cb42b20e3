// A small progress bar for long data work, always on stderr (stdout stays clean for --json).
// On a terminal it redraws one line (at most every 100 ms); otherwise it prints one line when
// the work is done, so logs are not flooded.
export interface Progress {
  /** advance by n units (default 1) */
  tick(n?: number): void;
  /** finish: print the final line */
  done(note?: string): void;
}

export interface ProgressOptions {
  /** false: print nothing (tests, --quiet) */
  enabled?: boolean;
  /** unit shown after the counts, e.g. "docs" */
  unit?: string;
  stream?: NodeJS.WriteStream;
}

const WIDTH = 28;

export function progressBar(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? true;
  const tty = enabled && Boolean(stream.isTTY);
  const unit = opts.unit ? ` ${opts.unit}` : "";
  const started = performance.now();
  let count = 0;
  let lastDraw = 0;
  let finished = false;

  const line = (): string => {
    const frac = total > 0 ? Math.min(1, count / total) : 1;
    const filled = Math.round(frac * WIDTH);
    const secs = (performance.now() - started) / 1000;
    return `${label} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${count}/${total}${unit} ${secs.toFixed(1)}s`;
  };

  return {
    tick(n = 1) {
      count += n;
      if (!tty) return;
      const now = performance.now();
      if (now - lastDraw < 100 && count < total) return;
      lastDraw = now;
      stream.write(`\r${line()}\x1b[K`);
    },
    done(note?: string) {
      if (finished || !enabled) return;
      finished = true;
      const text = line() + (note ? ` ${note}` : "");
      stream.write(tty ? `\r${text}\x1b[K\n` : `${text}\n`);
    },
  };
}
