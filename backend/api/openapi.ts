// The OpenAPI 3.1 description served at /api/openapi.json. Request body schemas come from the
// same zod schemas that validate the requests (z.toJSONSchema), so the document cannot drift
// from what the server accepts.
import { z } from "zod";
import { RUN_KINDS, RUN_STATUSES } from "../runs/registry.js";
import { RunConfigSchema } from "../runs/schema.js";
import { JsonImportBody } from "./routes/imports.js";

const schema = (s: z.ZodType, io: "input" | "output" = "input") => {
  const { $schema: _s, ...rest } = z.toJSONSchema(s, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (s: unknown) => ({ "application/json": { schema: s } });
const error = (description: string) => ({ description, content: json(ref("Error")) });
const idParam = { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,63}$" } };

export function openApiDocument(o: { version: string; authRequired: boolean }): Record<string, unknown> {
  const secured = [{ bearer: [] }];
  const mutating = (op: Record<string, unknown>) => ({
    ...op,
    security: secured,
    description: `${(op.description as string | undefined) ?? ""}${op.description ? " " : ""}Needs \`Authorization: Bearer <CALIB_TOKEN>\` when the server has a token${o.authRequired ? " (this one does)" : ""}.`,
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "Calibration Lab API",
      version: o.version,
      description: "Runs (pretrain, sft, eval, sweep, import), their live events and their Arrow records. Errors are JSON: {error: {status, code, message, field}}.",
    },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "CALIB_TOKEN, required for POST endpoints when set" } },
      schemas: {
        RunConfig: schema(RunConfigSchema),
        ImportJson: schema(JsonImportBody),
        Run: {
          type: "object",
          required: ["id", "name", "kind", "status", "device", "config", "created_at", "metrics", "artifacts"],
          properties: {
            id: { type: "string" }, name: { type: "string" }, kind: { enum: [...RUN_KINDS] }, status: { enum: [...RUN_STATUSES] },
            device: { enum: ["cpu", "cuda", "io", "none"], description: "lane: cpu/cuda for training and eval, io for imports, none for sweeps" },
            config: { type: "object" }, created_at: { type: "string", format: "date-time" },
            started_at: { type: ["string", "null"], format: "date-time" }, finished_at: { type: ["string", "null"], format: "date-time" },
            metrics: { type: "object", additionalProperties: { type: ["number", "string", "null"] } },
            artifacts: { type: "array", items: { type: "string" }, description: "complete record files, downloadable" },
            progress: { type: ["object", "null"], description: "latest progress: phase, step, loss, fraction, eta_s…" },
            error: { type: ["string", "null"] }, parent_id: { type: ["string", "null"] }, depends_on: { type: "array", items: { type: "string" } },
            source: { enum: ["api", "cli"] }, cancel_requested: { type: "boolean" }, event_seq: { type: "integer" },
          },
        },
        Error: {
          type: "object",
          properties: {
            error: {
              type: "object", required: ["status", "code", "message"],
              properties: { status: { type: "integer" }, code: { type: "string" }, message: { type: "string" }, field: { type: "string", description: "the offending field, path parameter or (body)" } },
            },
          },
        },
      },
    },
    paths: {
      "/api/health": { get: { summary: "Liveness, engine devices, lanes, queue", responses: { 200: { description: "ok", content: json({ type: "object" }) } } } },
      "/api/openapi.json": { get: { summary: "This document", responses: { 200: { description: "OpenAPI 3.1", content: json({ type: "object" }) } } } },
      "/api/runs": {
        get: {
          summary: "List runs, newest first",
          parameters: [
            { name: "status", in: "query", schema: { type: "string" }, description: `comma-separated: ${RUN_STATUSES.join(", ")}` },
            { name: "kind", in: "query", schema: { type: "string" }, description: `comma-separated: ${RUN_KINDS.join(", ")}` },
            { name: "parent", in: "query", schema: { type: "string" }, description: "children of a sweep" },
            { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
            { name: "offset", in: "query", schema: { type: "integer", minimum: 0, default: 0 } },
          ],
          responses: {
            200: { description: "runs", content: json({ type: "object", properties: { runs: { type: "array", items: ref("Run") }, total: { type: "integer" }, limit: { type: "integer" }, offset: { type: "integer" } } }) },
            400: error("bad query parameter"),
          },
        },
        post: mutating({
          summary: "Submit a run (queued; one run per device at a time)",
          description: "The body is a run configuration, the same JSON that `calib train --config` reads. sft.init, eval.checkpoint and eval.model take run:<id>; local paths (Hugging Face folders, JSONL files) are accepted from the CLI only.",
          requestBody: { required: true, content: json(ref("RunConfig")) },
          responses: {
            201: { description: "queued", headers: { Location: { schema: { type: "string" } } }, content: json(ref("Run")) },
            400: error("invalid configuration (the field is named)"), 401: error("missing or wrong bearer token"), 413: error("body too large"), 415: error("not JSON"),
          },
        }),
      },
      "/api/runs/{id}": { get: { summary: "One run", parameters: [idParam], responses: { 200: { description: "the run", content: json(ref("Run")) }, 400: error("malformed id"), 404: error("no such run") } } },
      "/api/runs/{id}/events": {
        get: {
          summary: "Server-Sent Events of a run: state, status, progress, row, log, end",
          description: "Reconnect with Last-Event-ID (or ?after=N) to receive only what was missed. The stream ends after `end`.",
          parameters: [idParam, { name: "after", in: "query", schema: { type: "integer", minimum: 0 } }],
          responses: { 200: { description: "event stream", content: { "text/event-stream": { schema: { type: "string" } } } }, 404: error("no such run") },
        },
      },
      "/api/runs/{id}/cancel": {
        post: mutating({
          summary: "Cancel a queued or running run (a sweep cancels its children)",
          parameters: [idParam],
          responses: { 200: { description: "the run after the cancel", content: json(ref("Run")) }, 404: error("no such run"), 409: error("already finished") },
        }),
      },
      "/api/runs/{id}/artifacts": {
        get: {
          summary: "The run's complete record files",
          parameters: [idParam],
          responses: { 200: { description: "artifacts", content: json({ type: "object", properties: { artifacts: { type: "array", items: { type: "object", properties: { name: { type: "string" }, bytes: { type: ["integer", "null"] }, content_type: { type: "string" }, url: { type: "string" } } } } } }) } },
        },
      },
      "/api/runs/{id}/artifacts/{name}": {
        get: {
          summary: "Download a record (Arrow IPC stream, run.json, job.log)",
          parameters: [idParam, { name: "name", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}\\.[A-Za-z0-9]{1,16}$" } }],
          responses: {
            200: {
              description: "the file (supports Range requests)",
              content: {
                "application/vnd.apache.arrow.stream": { schema: { type: "string", format: "binary" } },
                "application/json": { schema: { type: "object" } },
                "text/plain": { schema: { type: "string" } },
              },
            },
            400: error("malformed name (paths are refused)"), 404: error("no such run or artifact"),
          },
        },
      },
      "/api/imports/lm-eval": {
        post: mutating({
          summary: "Import lm-evaluation-harness --log_samples files (multiple-choice tasks)",
          description: "Raw upload of one samples_<task>_<timestamp>.jsonl (query: name, filename, task), or JSON {name, files:[{filename, text, task?}]} for several tasks.",
          parameters: [
            { name: "name", in: "query", schema: { type: "string" }, description: "run name (raw uploads)" },
            { name: "filename", in: "query", schema: { type: "string" }, description: "samples_<task>_<timestamp>.jsonl (gives the task)" },
            { name: "task", in: "query", schema: { type: "string" }, description: "the task, when the file name does not carry it" },
          ],
          requestBody: { required: true, content: { "application/x-ndjson": { schema: { type: "string" } }, ...json(ref("ImportJson")) } },
          responses: {
            202: { description: "validated and queued", content: json({ type: "object", properties: { run: ref("Run"), tasks: { type: "array", items: { type: "object" } } } }) },
            400: error("not a harness samples file, truncated, or bad fields (file and line named)"), 401: error("missing or wrong bearer token"),
            413: error("upload too large"), 415: error("unsupported Content-Type"),
          },
        }),
      },
    },
  };
}
