// Every error leaves the API as JSON: {"error": {"status", "code", "message", "field"?}}.
// Bad input names the field (FieldError, TypeError/RangeError from the layers below, body
// parser failures); unknown errors are 500 with a generic message (details go to the log).
import type { ErrorRequestHandler, RequestHandler } from "express";
import { ConflictError, FieldError, NotFoundError } from "../errors.js";

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly field?: string, readonly code?: string) {
    super(message);
  }
}

export interface ErrorBody {
  error: { status: number; code: string; message: string; field?: string };
}

const CODES: Record<number, string> = {
  400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
  413: "payload_too_large", 415: "unsupported_media_type", 500: "internal_error", 503: "unavailable",
};

export function errorBody(status: number, message: string, field?: string, code?: string): ErrorBody {
  return { error: { status, code: code ?? CODES[status] ?? "error", message, ...(field ? { field } : {}) } };
}

function classify(err: unknown): { status: number; message: string; field?: string; code?: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message, ...(err.field ? { field: err.field } : {}), ...(err.code ? { code: err.code } : {}) };
  if (err instanceof FieldError) return { status: err.status, message: err.message, field: err.field };
  if (err instanceof NotFoundError) return { status: 404, message: err.message };
  if (err instanceof ConflictError) return { status: 409, message: err.message };
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string; limit?: number; expose?: boolean };
  switch (e.type) {
    case "entity.parse.failed":
      return { status: 400, message: `malformed JSON body: ${e.message}`, field: "(body)", code: "malformed_json" };
    case "entity.too.large":
      return { status: 413, message: `the request body is larger than the limit of ${e.limit} bytes`, field: "(body)" };
    case "encoding.unsupported":
    case "charset.unsupported":
      return { status: 415, message: e.message ?? "unsupported encoding", field: "(body)" };
    case "request.aborted":
      return { status: 400, message: "the request was aborted", field: "(body)" };
    case "request.size.invalid":
      return { status: 400, message: "the request body does not match its Content-Length", field: "(body)" };
  }
  if (err instanceof URIError) return { status: 400, message: `malformed URL: ${err.message}`, field: "(path)" };
  if (err instanceof TypeError || err instanceof RangeError) return { status: 400, message: err.message };
  const status = e.status ?? e.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) return { status, message: e.message ?? "bad request" };
  return { status: 500, message: "internal server error" };
}

export function errorHandler(log: (m: string) => void): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const c = classify(err);
    if (c.status >= 500) log(`${req.method} ${req.originalUrl}: ${(err as Error)?.stack ?? String(err)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(c.status).json(errorBody(c.status, c.message, c.field, c.code));
  };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json(errorBody(404, `no endpoint ${req.method} ${req.path}`, "(path)"));
};
