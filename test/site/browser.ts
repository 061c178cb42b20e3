// Headless Debian Chromium (playwright-core, never a downloaded browser) for the site tests and
// the site benchmark: every request outside 127.0.0.1 is aborted and recorded, console errors and
// page errors are recorded, and a page counts as ready when Framework has no pending cell
// (<observablehq-loading>) for a moment.
//
// Chromium is optional for a newcomer (README): without it the browser tests skip with one line
// saying how to enable them (browserSkip). CI sets CALIB_REQUIRE_BROWSER=1 (.ci/run), which turns a
// missing browser into a failure instead.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.CALIB_CHROMIUM ?? "/usr/bin/chromium";

/** Set by CI: a missing browser fails the browser tests instead of skipping them. */
export const REQUIRE_BROWSER = process.env.CALIB_REQUIRE_BROWSER === "1";

/** The reason the browser tests skip on this machine (Chromium missing), or false when they run:
 *  Chromium is there, or CALIB_REQUIRE_BROWSER=1 asks that they run anyway (Browser.launch then fails). */
export function browserSkip(): string | false {
  if (existsSync(CHROMIUM) || REQUIRE_BROWSER) return false;
  return `browser tests skipped: ${CHROMIUM} not found — apt-get install chromium to run them (or set CALIB_CHROMIUM to a Chromium binary)`;
}

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions", "--mute-audio",
  "--disable-dev-shm-usage",
];

export function isLocal(url: string): boolean {
  if (url.startsWith("data:") || url.startsWith("blob:") || url === "about:blank") return true;
  try {
    const u = new URL(url);
    return (u.protocol === "http:" || u.protocol === "https:" || u.protocol === "ws:") && u.hostname === "127.0.0.1";
  } catch {
    return false;
  }
}

export interface PageLog {
  consoleErrors: string[];
  pageErrors: string[];
}

export class Browser {
  readonly external: string[] = [];
  readonly requests: string[] = [];
  private constructor(readonly context: BrowserContext, private readonly profile: string) {}

  static available(): boolean {
    return existsSync(CHROMIUM);
  }

  static async launch(): Promise<Browser> {
    if (!existsSync(CHROMIUM)) {
      const why = REQUIRE_BROWSER ? " and CALIB_REQUIRE_BROWSER=1 requires the browser tests" : "";
      throw new Error(`${CHROMIUM} not found${why}: apt-get install -y chromium (or set CALIB_CHROMIUM)`);
    }
    const profile = mkdtempSync(join(tmpdir(), "calib-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 },
      serviceWorkers: "block",
    });
    const b = new Browser(context, profile);
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (isLocal(url)) return route.continue();
      b.external.push(url);
      return route.abort();
    });
    // Also sees requests of workers (DuckDB's worker fetches its .wasm).
    context.on("request", (r) => b.requests.push(r.url()));
    return b;
  }

  /** Opens a page with console / error logging attached. */
  async open(url: string): Promise<{ page: Page; log: PageLog }> {
    const page = await this.context.newPage();
    const log: PageLog = { consoleErrors: [], pageErrors: [] };
    page.on("console", (m) => {
      if (m.type() === "error") log.consoleErrors.push(`${m.text()} @ ${m.location().url}`);
    });
    page.on("pageerror", (e) => log.pageErrors.push(String(e.stack ?? e)));
    await page.goto(url, { waitUntil: "load" });
    return { page, log };
  }

  async close(): Promise<void> {
    await this.context.close();
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/** Waits until no cell is pending (and none became pending again within `settleMs`). */
export async function waitReady(page: Page, timeoutMs = 60_000, settleMs = 400): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quietSince = 0;
  while (Date.now() < deadline) {
    const pending = await page.evaluate(() => document.querySelectorAll("observablehq-loading").length);
    if (pending === 0) {
      if (quietSince === 0) quietSince = Date.now();
      if (Date.now() - quietSince >= settleMs) return;
    } else quietSince = 0;
    await page.waitForTimeout(50);
  }
  throw new Error(`page ${page.url()} still has pending cells after ${timeoutMs} ms`);
}

/** Text of the error cells on the page (Framework marks them .observablehq--error). */
export function errorCells(page: Page): Promise<string[]> {
  return page.$$eval(".observablehq--error", (els) => els.map((e) => (e.textContent ?? "").trim()));
}
