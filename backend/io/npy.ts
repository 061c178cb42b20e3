// NumPy .npy files (format versions 1–3), the exchange format for cross-checking the engine
// against PyTorch. Little-endian, C order; float32, float64, int32, int64, uint16.
// Every malformed or truncated file raises a TypeError that says what is wrong.
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic.js";

export type NpyArray =
  | { dtype: "float32"; shape: number[]; data: Float32Array }
  | { dtype: "float64"; shape: number[]; data: Float64Array }
  | { dtype: "int32"; shape: number[]; data: Int32Array }
  | { dtype: "int64"; shape: number[]; data: BigInt64Array }
  | { dtype: "uint16"; shape: number[]; data: Uint16Array };

const DESCR: Record<string, { dtype: NpyArray["dtype"]; bytes: number }> = {
  "<f4": { dtype: "float32", bytes: 4 },
  "<f8": { dtype: "float64", bytes: 8 },
  "<i4": { dtype: "int32", bytes: 4 },
  "<i8": { dtype: "int64", bytes: 8 },
  "<u2": { dtype: "uint16", bytes: 2 },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function parseNpy(buf: Uint8Array, name = "array"): NpyArray {
  const fail = (msg: string): never => {
    throw new TypeError(`${name}: ${msg}`);
  };
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) fail("not a .npy file (bad magic bytes)");
  const major = buf[6]!;
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : buf.length >= 12 ? view.getUint32(8, true) : fail("truncated header");
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) fail("truncated header");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(buf.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? fail("header has no 'descr'");
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] ?? fail("header has no 'fortran_order'");
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail("header has no 'shape'");
  if (fortran === "True") fail("Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  const kind = DESCR[descr] ?? fail(`dtype '${descr}' is not supported (use float32, int32 or int64, little-endian)`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : fail(`bad shape entry '${s}'`)));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const need = count * kind.bytes;
  if (buf.length - offset < need) fail(`truncated data: expected ${need} bytes for shape (${shape.join(", ")}), found ${buf.length - offset}`);
  if (buf.length - offset > need) fail(`${buf.length - offset - need} unexpected bytes after the data`);
  // Copy so the typed array is aligned and owns its memory.
  const bytes = new Uint8Array(need); // (Buffer#slice would share the pool's memory)
  bytes.set(buf.subarray(offset, offset + need));
  switch (kind.dtype) {
    case "float32": return { dtype: "float32", shape, data: new Float32Array(bytes.buffer) };
    case "float64": return { dtype: "float64", shape, data: new Float64Array(bytes.buffer) };
    case "int32": return { dtype: "int32", shape, data: new Int32Array(bytes.buffer) };
    case "int64": return { dtype: "int64", shape, data: new BigInt64Array(bytes.buffer) };
    case "uint16": return { dtype: "uint16", shape, data: new Uint16Array(bytes.buffer) };
  }
}

export function readNpy(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new TypeError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseNpy(buf, path);
}

export function encodeNpy(data: Float32Array | Int32Array | Float64Array, shape: number[]): Buffer {
  const descr = data instanceof Float32Array ? "<f4" : data instanceof Int32Array ? "<i4" : "<f8";
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`shape (${shape.join(", ")}) does not hold ${data.length} elements`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so that magic + length + header + newline is a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  const out = Buffer.alloc(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, "latin1");
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

export function writeNpy(path: string, data: Float32Array | Int32Array | Float64Array, shape: number[]): void {
  writeFileAtomic(path, encodeNpy(data, shape));
}

/** Targets as int32: int64 values must fit. */
export function toInt32Targets(a: NpyArray, name: string): Int32Array {
  if (a.dtype === "int32") return a.data;
  if (a.dtype === "int64") {
    const out = new Int32Array(a.data.length);
    for (let i = 0; i < a.data.length; i++) {
      const v = a.data[i]!;
      if (v < -2147483648n || v > 2147483647n) throw new RangeError(`${name}[${i}] = ${v} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  }
  throw new TypeError(`${name} must hold int32 or int64 targets, not ${a.dtype}`);
}
