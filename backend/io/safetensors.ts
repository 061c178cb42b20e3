// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {string: string}}, then the tensor bytes (little-endian, row-major,
// offsets relative to the end of the header). We write F32 (and F64 for reference models;
// BF16 for Hugging Face exports), the header padded with spaces to a multiple of 8 so that the
// data is aligned, tensors in the order given. The readers check everything before they trust
// an offset: decodeSafetensors takes a whole (small) file; SafetensorsReader reads only the
// header of a large one and then each tensor by offset, converting F32/F16/BF16 to float32.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { writeFileAtomic } from "./atomic.js";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "./half.js";

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
  for (const t of tensors) {
    const want = t.dtype === "F32" ? Float32Array : Float64Array;
    if (!(t.data instanceof want)) throw new TypeError(`tensor '${t.name}': dtype ${t.dtype} needs a ${want.name}`);
  }
  const { json, dataBytes } = headerBytes(tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, count: t.data.length })), metadata);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
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

/** One tensor of a safetensors header: its dtype as written (any safetensors dtype), its shape,
 * and [begin, end) as byte offsets into the data section. */
export interface SafeEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafeHeader {
  metadata: Record<string, string>;
  /** in the header's order */
  entries: Map<string, SafeEntry>;
  /** file offset of the data section (8 + header length) */
  dataStart: number;
}

/** Bytes per element of every safetensors dtype (the header is checked against these). */
export const DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
});

/** Reads the 8-byte length prefix; `fail` names the file. */
function headerLength(prefix: Uint8Array, fileSize: number, fail: (msg: string) => never): number {
  if (fileSize < 8 || prefix.length < 8) fail(`file is ${fileSize} bytes, too short for a safetensors header`);
  const hlen = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  if (hlen < 2 || hlen > MAX_HEADER || hlen > fileSize - 8) fail(`header length ${hlen} does not fit the ${fileSize}-byte file (truncated or not safetensors)`);
  return hlen;
}

/** Parses and checks a header (the JSON bytes) against a data section of `dataBytes` bytes. */
function parseHeader(json: Uint8Array, dataBytes: number, fail: (msg: string) => never): SafeHeader {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString("utf8"));
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("header is not a JSON object");
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafeEntry>();
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
    const bytes = typeof e.dtype === "string" ? DTYPE_BYTES[e.dtype] : undefined;
    if (bytes === undefined) fail(`tensor '${name}' has an unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has an invalid shape`);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      fail(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataBytes) fail(`tensor '${name}' ends at byte ${end} but the data section has ${dataBytes} bytes (truncated file)`);
    if (end - begin !== numel(shape) * bytes!) fail(`tensor '${name}': ${end - begin} bytes do not match shape [${shape}] of ${String(e.dtype)}`);
    entries.set(name, { name, dtype: e.dtype as string, shape, begin, end });
  }
  const spans = [...entries.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.begin < spans[i - 1]!.end) fail(`tensors '${spans[i - 1]!.name}' and '${spans[i]!.name}' overlap`);
  }
  return { metadata, entries, dataStart: 0 };
}

/** Parses safetensors bytes; every problem is a CheckpointError naming `where`. */
export function decodeSafetensors(bytes: Uint8Array, where = "safetensors"): SafeFile {
  const fail = (msg: string): never => {
    throw new CheckpointError(`${where}: ${msg}`);
  };
  const hlen = headerLength(bytes, bytes.length, fail);
  const data = bytes.subarray(8 + hlen);
  const { metadata, entries } = parseHeader(bytes.subarray(8, 8 + hlen), data.length, fail);
  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end } of entries.values()) {
    if (dtype !== "F32" && dtype !== "F64") fail(`tensor '${name}' has dtype ${dtype}; only F32 and F64 are supported`);
    const copy = data.slice(begin, end);
    const count = numel(shape);
    const arr = dtype === "F32" ? new Float32Array(copy.buffer, copy.byteOffset, count) : new Float64Array(copy.buffer, copy.byteOffset, count);
    tensors.set(name, { name, dtype: dtype as SafeDtype, shape, data: arr });
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

// ---------------------------------------------------------------------------------------------
// Large files (Hugging Face checkpoints of several GB): the header is read on its own and each
// tensor is read by offset in chunks and converted to float32, so that no file is ever held in
// memory whole. BF16 and F16 convert to float32 exactly; F32 is copied.

/** The float dtypes the reader converts to float32. */
export type FloatDtype = "F32" | "F16" | "BF16";
export const FLOAT_DTYPES: readonly FloatDtype[] = Object.freeze(["F32", "F16", "BF16"] as const);

const CHUNK_BYTES = 8 << 20;

/** The index of the first NaN / ±inf of a float32 array, or -1 (on the bits: one integer test each). */
function firstNonFinite(x: Float32Array): number {
  const bits = new Int32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  return -1;
}

/** Reads the header of a safetensors file (and nothing else); CheckpointError names the path. */
export class SafetensorsReader {
  readonly path: string;
  readonly size: number;
  readonly header: SafeHeader;
  private fd: number | null;

  private constructor(path: string, fd: number, size: number, header: SafeHeader) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.header = header;
  }

  static open(path: string): SafetensorsReader {
    const fail = (msg: string): never => {
      throw new CheckpointError(`${path}: ${msg}`);
    };
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      return fail(`cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      const size = fstatSync(fd).size;
      const prefix = new Uint8Array(8);
      if (size >= 8) readFully(fd, prefix, 0, path);
      const hlen = headerLength(prefix, size, fail);
      const json = new Uint8Array(hlen);
      readFully(fd, json, 8, path);
      const header = parseHeader(json, size - 8 - hlen, fail);
      header.dataStart = 8 + hlen;
      return new SafetensorsReader(path, fd, size, header);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  entry(name: string): SafeEntry | undefined {
    return this.header.entries.get(name);
  }

  /**
   * Converts tensor `name` (F32, F16 or BF16) into `dst` (its element count) as float32.
   * With `finite`, a NaN or ±inf is an error naming the tensor and the element.
   */
  readFloat32(name: string, dst: Float32Array, opts: { finite?: boolean } = {}): void {
    const e = this.header.entries.get(name);
    if (!e) throw new CheckpointError(`${this.path}: has no tensor '${name}'`);
    if (!(FLOAT_DTYPES as readonly string[]).includes(e.dtype)) {
      throw new CheckpointError(`${this.path}: tensor '${name}' has dtype ${e.dtype}; only ${FLOAT_DTYPES.join(", ")} can be read`);
    }
    const count = numel(e.shape);
    if (dst.length !== count) throw new TypeError(`${this.path}: tensor '${name}' has ${count} elements, the destination ${dst.length}`);
    if (this.fd === null) throw new Error(`${this.path}: reader is closed`);
    const bytes = DTYPE_BYTES[e.dtype]!;
    const perChunk = Math.floor(CHUNK_BYTES / bytes);
    const buf = new Uint8Array(Math.min(count, perChunk) * bytes);
    for (let start = 0; start < count; start += perChunk) {
      const n = Math.min(perChunk, count - start);
      const part = buf.subarray(0, n * bytes);
      readFully(this.fd, part, this.header.dataStart + e.begin + start * bytes, this.path, name);
      const out = dst.subarray(start, start + n);
      let bad: number;
      if (e.dtype === "F32") {
        new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(part);
        bad = opts.finite ? firstNonFinite(out) : -1;
      } else if (e.dtype === "BF16") bad = bf16ToF32(new Uint16Array(part.buffer, 0, n), out);
      else bad = f16ToF32(new Uint16Array(part.buffer, 0, n), out);
      if (opts.finite && bad >= 0) throw new CheckpointError(`${this.path}: tensor '${name}' contains ${out[bad]} at element ${start + bad}`);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function readFully(fd: number, dst: Uint8Array, position: number, path: string, tensor?: string): void {
  let off = 0;
  while (off < dst.length) {
    const n = readSync(fd, dst, off, dst.length - off, position + off);
    if (n === 0) {
      const what = tensor ? `tensor '${tensor}'` : "the header";
      throw new CheckpointError(`${path}: file ends inside ${what} (truncated file)`);
    }
    off += n;
  }
}

/** A tensor to write from float32 values, stored as F32 or BF16 (rounded to nearest even). */
export interface StreamTensor {
  name: string;
  shape: number[];
  dtype: "F32" | "BF16";
  data: Float32Array;
}

/** The safetensors header bytes (padded with spaces to a multiple of 8) for tensors in order. */
function headerBytes(tensors: readonly { name: string; shape: number[]; dtype: string; count: number }[], metadata: Record<string, string>): { json: Buffer; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new TypeError(`duplicate tensor name '${t.name}'`);
    if (t.name === "__metadata__") throw new TypeError("'__metadata__' is not a tensor name");
    seen.add(t.name);
    if (numel(t.shape) !== t.count) throw new TypeError(`tensor '${t.name}': shape [${t.shape}] does not hold ${t.count} values`);
    const bytes = t.count * DTYPE_BYTES[t.dtype]!;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  return { json: Buffer.from(json, "utf8"), dataBytes: offset };
}

/** Bytes of the data section that `tensors` take (what an index's total_size counts). */
export function safetensorsDataBytes(tensors: readonly StreamTensor[]): number {
  return tensors.reduce((a, t) => a + t.data.length * DTYPE_BYTES[t.dtype]!, 0);
}

/**
 * Writes tensors to `path` in chunks (no copy of the whole file in memory) and fsyncs it. Not
 * atomic by itself: write into a temporary directory or path and rename. Non-finite values are an
 * error naming the tensor (also values that overflow bfloat16). Returns the file's size.
 */
export function writeSafetensorsStream(path: string, tensors: readonly StreamTensor[], metadata: Record<string, string> = {}): number {
  if (!littleEndian) throw new Error("safetensors writing needs a little-endian machine");
  const { json, dataBytes } = headerBytes(tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, count: t.data.length })), metadata);
  const fd = openSync(path, "w");
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length), 0);
    writeAll(fd, prefix);
    writeAll(fd, json);
    const perChunk = CHUNK_BYTES >> 2;
    const half = new Uint16Array(perChunk);
    for (const t of tensors) {
      for (let start = 0; start < t.data.length; start += perChunk) {
        const part = t.data.subarray(start, Math.min(t.data.length, start + perChunk));
        const out = half.subarray(0, part.length);
        const bad = t.dtype === "F32" ? firstNonFinite(part) : f32ToBf16(part, out);
        if (bad >= 0) {
          const v = part[bad]!;
          throw new CheckpointError(`${path}: tensor '${t.name}' ${Number.isFinite(v) ? `element ${start + bad} = ${v} overflows bfloat16` : `contains ${v} at element ${start + bad}`}`);
        }
        const bytes = t.dtype === "F32" ? new Uint8Array(part.buffer, part.byteOffset, part.byteLength) : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
        writeAll(fd, bytes);
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return 8 + json.length + dataBytes;
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}
