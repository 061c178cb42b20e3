// The progress bar of every long piece of work (data preparation, evaluation, training, the CLI's
// bootstrap), always on stderr so that stdout stays clean for --json:
//   label [#######.....]  58% 290/500 docs loss 2.3456 elapsed 00:12 ETA 00:09
// On a terminal it redraws one line (at most every 100 ms); otherwise it prints a line when the
// work is done and, with `logEvery`, at every such fraction of it, so that logs are not flooded.
export interface Progress {
  /** advance by n units (default 1) */
  tick(n?: number): void;
  /** set the position (units done) and, optionally, the status text after the count */
  update(done: number, status?: string): void;
  /** a line that must not be overwritten (validation results, warnings) */
  message(text: string): void;
  /** finish: print the final line (with `note` appended) */
  done(note?: string): void;
}

export interface ProgressOptions {
  /** false: print nothing (tests, --quiet) */
  enabled?: boolean;
  /** unit shown after the counts, e.g. "docs" */
  unit?: string;
  /** how the position reads (default `${done}/${total} ${unit}`), e.g. (s, t) => `step ${s}/${t}` */
  count?: (done: number, total: number) => string;
  /** the position the work starts from (a resumed run): the ETA counts from here */
  start?: number;
  /** off a terminal, also print a line at every this fraction of the work (e.g. 0.1); default only at the end */
  logEvery?: number;
  stream?: NodeJS.WriteStream;
}

const WIDTH = 24;
const REDRAW_MS = 100;

/** mm:ss or h:mm:ss; "--:--" when unknown. */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), rr = String(r).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${rr}` : `${mm}:${rr}`;
}

export function progressBar(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? true;
  const tty = enabled && Boolean(stream.isTTY);
  const unit = opts.unit ? ` ${opts.unit}` : "";
  const count = opts.count ?? ((d: number, t: number) => `${d}/${t}${unit}`);
  const start = opts.start ?? 0;
  const every = opts.logEvery ?? 1;
  const started = performance.now();
  let position = start;
  let status = "";
  let note = "";
  let lastDraw = 0;
  let lastLogged = Math.floor(start / Math.max(1, total) / every);
  let finished = false;

  const line = (): string => {
    const frac = total > 0 ? Math.min(1, position / total) : 1;
    const filled = Math.round(frac * WIDTH);
    const elapsed = (performance.now() - started) / 1000;
    const done = position - start;
    const eta = done > 0 ? (elapsed / done) * Math.max(0, total - position) : NaN;
    return `${label} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${count(position, total)}` +
      `${status ? ` ${status}` : ""} elapsed ${clock(elapsed)} ETA ${clock(eta)}${note ? ` ${note}` : ""}`;
  };

  const show = () => {
    if (!enabled || finished) return;
    if (tty) {
      const now = performance.now();
      if (now - lastDraw < REDRAW_MS && position < total) return;
      lastDraw = now;
      stream.write(`\r${line()}\x1b[K`);
    } else if (every < 1) {
      const step = Math.floor(position / Math.max(1, total) / every);
      if (step > lastLogged && position < total) {
        lastLogged = step;
        stream.write(`${line()}\n`);
      }
    }
  };

  return {
    tick(n = 1) {
      position += n;
      show();
    },
    update(done, text) {
      position = done;
      if (text !== undefined) status = text;
      show();
    },
    message(text) {
      if (!enabled) return;
      stream.write(tty ? `\r${text}\x1b[K\n` : `${text}\n`);
      lastDraw = 0;
    },
    done(text) {
      if (finished || !enabled) return;
      finished = true;
      if (text) note = text;
      stream.write(tty ? `\r${line()}\x1b[K\n` : `${line()}\n`);
    },
  };
}
