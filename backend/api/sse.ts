// GET /api/runs/:id/events: Server-Sent Events of one run.
//   event: state     the run as it is now (first message; no id, so it never moves Last-Event-ID)
//   event: status    {status, error?}            ┐
//   event: progress  {phase, step, loss, eta_s…} │ persisted registry events, id = their sequence
//   event: row       a train_log row              │ number: a client reconnecting with
//   event: log       {message}                    ┘ Last-Event-ID (or ?after=N) gets what it missed
//   event: end       the run is finished: {status}; the server closes the stream
// Events come from the registry (any process may execute the run): pushed at once when this
// process records them, otherwise picked up by a 500 ms poll. A comment line every 15 s keeps
// proxies from closing an idle stream.
import type { Request, Response } from "express";
import type { Registry, RunEvent, RunRecord } from "../runs/registry.js";
import { TERMINAL } from "../runs/registry.js";
import { FieldError } from "../errors.js";

export const SSE_POLL_MS = 500;
export const SSE_HEARTBEAT_MS = 15000;

function frame(e: { id?: number; event: string; data: unknown }): string {
  const data = JSON.stringify(e.data).replace(/\n/g, "\\n");
  return `${e.id !== undefined ? `id: ${e.id}\n` : ""}event: ${e.event}\ndata: ${data}\n\n`;
}

function startAfter(req: Request): number {
  const header = req.get("last-event-id");
  const q = req.query.after;
  const raw = header ?? (typeof q === "string" ? q : undefined);
  if (raw === undefined || raw === "") return 0;
  if (!/^\d{1,12}$/.test(raw)) throw new FieldError(header !== undefined ? "Last-Event-ID" : "after", `must be a non-negative integer (got '${raw}')`);
  return Number(raw);
}

export function streamEvents(req: Request, res: Response, registry: Registry, run: RunRecord, publicRun: (r: RunRecord) => unknown): void {
  let after = startAfter(req);
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
  res.setHeader("Cache-Control", "no-cache, no-transform");
  res.setHeader("Connection", "keep-alive");
  res.setHeader("X-Accel-Buffering", "no");
  res.flushHeaders();
  res.write(`retry: 2000\n\n`);
  res.write(frame({ event: "state", data: publicRun(run) }));
  let closed = false;
  let scheduled = false;
  const id = run.id;

  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(poll);
    clearInterval(heartbeat);
    registry.changes.off("change", onChange);
    res.end();
  };

  const pump = () => {
    scheduled = false;
    if (closed) return;
    let events: RunEvent[];
    try {
      events = registry.events(id, after, 1000);
    } catch {
      close();
      return;
    }
    for (const e of events) {
      res.write(frame({ id: e.seq, event: e.type, data: { ...(e.data as object), time: e.time } }));
      after = e.seq;
    }
    if (events.length === 1000) {
      schedule();
      return;
    }
    const now = registry.get(id);
    if (!now || (TERMINAL.has(now.status) && now.event_seq <= after)) {
      res.write(frame({ event: "end", data: { status: now?.status ?? "unknown", run: now ? publicRun(now) : null } }));
      close();
    }
  };
  const schedule = () => {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(pump);
  };
  const onChange = (changed: string) => {
    if (changed === id) schedule();
  };
  registry.changes.on("change", onChange);
  const poll = setInterval(schedule, SSE_POLL_MS);
  const heartbeat = setInterval(() => res.write(`: keep-alive ${new Date().toISOString()}\n\n`), SSE_HEARTBEAT_MS);
  req.on("close", close);
  res.on("error", close);
  schedule();
}
