// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {string: string}}, then the tensor bytes (little-endian, row-major,
// offsets relative to the end of the header). We write F32 (and F64 for reference models),
// the header padded with spaces to a multiple of 8 so that the data is aligned, tensors in
// the order given. The reader checks everything before it trusts an offset.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";

export type SafeDtype = "F32" | "F64";

export interface SafeTensor {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  data: Float32Array | Float64Array;
}

export interface SafeFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensor>;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, F64: 8 };
const MAX_HEADER = 100 * 1024 * 1024;

/** A checkpoint file that cannot be read: the message names the file and the problem. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serializes tensors (in order) and metadata into safetensors bytes. */
export function encodeSafetensors(tensors: readonly SafeTensor[], metadata: Record<string, string> = {}): Uint8Array {
  if (!littleEndian) throw new Error("safetensors writing needs a little-endian machine");
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new TypeError(`duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    if (t.name === "__metadata__") throw new TypeError("'__metadata__' is not a tensor name");
    const want = t.dtype === "F32" ? Float32Array : Float64Array;
    if (!(t.data instanceof want)) throw new TypeError(`tensor '${t.name}': dtype ${t.dtype} needs a ${want.name}`);
    if (numel(t.shape) !== t.data.length) throw new TypeError(`tensor '${t.name}': shape [${t.shape}] does not hold ${t.data.length} values`);
    const bytes = t.data.length * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8;
  json += " ".repeat(pad);
  const hbytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + hbytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let pos = 8 + hbytes.length;
  for (const t of tensors) {
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, pos);
    pos += src.length;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: readonly SafeTensor[], metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Parses safetensors bytes; every problem is a CheckpointError naming `where`. */
export function decodeSafetensors(bytes: Uint8Array, where = "safetensors"): SafeFile {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${where}: ${msg}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (hlen < 2 || hlen > MAX_HEADER || hlen > bytes.length - 8) fail(`header length ${hlen} does not fit the ${bytes.length}-byte file (truncated or not safetensors)`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, hlen).toString("utf8"));
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("header is not a JSON object");
  const data = bytes.subarray(8 + hlen);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensor>();
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object") fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== "object") fail(`tensor '${name}' has no description`);
    if (e.dtype !== "F32" && e.dtype !== "F64") fail(`tensor '${name}' has dtype ${String(e.dtype)}; only F32 and F64 are supported`);
    const dtype = e.dtype as SafeDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has an invalid shape`);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      fail(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = off as [number, number];
    if (end > data.length) fail(`tensor '${name}' ends at byte ${end} but the data section has ${data.length} bytes (truncated file)`);
    const count = numel(shape);
    if (end - begin !== count * BYTES[dtype]) fail(`tensor '${name}': ${end - begin} bytes do not match shape [${shape}] of ${dtype}`);
    spans.push([begin, end, name]);
    const copy = data.slice(begin, end);
    const arr = dtype === "F32" ? new Float32Array(copy.buffer, copy.byteOffset, count) : new Float64Array(copy.buffer, copy.byteOffset, count);
    tensors.set(name, { name, dtype, shape, data: arr });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) fail(`tensors '${spans[i - 1]![2]}' and '${spans[i]![2]}' overlap`);
  }
  return { metadata, tensors };
}

export function readSafetensors(path: string): SafeFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new CheckpointError(`${path}: cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const bytes = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, bytes, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return decodeSafetensors(bytes.subarray(0, off), path);
  } finally {
    closeSync(fd);
  }
}
