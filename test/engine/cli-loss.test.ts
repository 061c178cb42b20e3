// `calib loss` over .npy files: results equal the float64 reference; bad files exit 2 with one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeNpy, readNpy } from "../../backend/io/npy.js";
import { referenceLoss } from "./reference.js";
import { integers, normals, relError, rng } from "../helpers/random.js";

const calib = (args: string[]) =>
  spawnSync(process.execPath, ["bin/calib.js", ...args], { encoding: "utf8" });

function int64(values: Int32Array): Buffer {
  const big = new BigInt64Array(values.length);
  values.forEach((v, i) => (big[i] = BigInt(v)));
  // encodeNpy writes float32/int32/float64; build an int64 file by hand
  const header = "{'descr': '<i8', 'fortran_order': False, 'shape': (" + values.length + ",), }";
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  const h = header.padEnd(total - 11, " ") + "\n";
  const out = Buffer.alloc(total + big.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out.writeUInt16LE(h.length, 8);
  out.write(h, 10, "latin1");
  out.set(new Uint8Array(big.buffer), total);
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "calib-loss-"));
const r = rng(21);
const N = 23, D = 9, V = 140;
const E = normals(r, N * D), C = normals(r, V * D, 0.5);
const T = integers(r, N, V);
T[5] = -100;
writeFileSync(join(dir, "E.npy"), encodeNpy(E, [N, D]));
writeFileSync(join(dir, "C.npy"), encodeNpy(C, [V, D]));
writeFileSync(join(dir, "T.npy"), int64(T));

test("calib loss writes loss, lse, dE, dC that match the reference", () => {
  const out = join(dir, "out");
  const res = calib(["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "C.npy"), "--targets", join(dir, "T.npy"),
    "--smoothing", "0.1", "--temperature", "0.8", "--softcap", "4", "--grad", "--out", out]);
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /^loss \S+ \(mean, 22\/23 tokens, N=23 D=9 V=140, cpu fused/);
  const ref = referenceLoss(E, C, T, N, D, V, { eps: 0.1, ignoreIndex: -100, temperature: 0.8, softcap: 4, reduction: "mean" });
  const loss = readNpy(join(out, "loss.npy"));
  assert.deepEqual(loss.shape, []);
  assert.ok(Math.abs((loss.data[0] as number) - (ref.loss as number)) < 1e-5 * (ref.loss as number));
  const lse = readNpy(join(out, "lse.npy"));
  assert.deepEqual(lse.shape, [N]);
  assert.ok(Number.isNaN(lse.data[5] as number));
  const dE = readNpy(join(out, "dE.npy")), dC = readNpy(join(out, "dC.npy"));
  assert.deepEqual(dE.shape, [N, D]);
  assert.deepEqual(dC.shape, [V, D]);
  assert.ok(relError(dE.data as Float32Array, ref.dE) < 1e-4);
  assert.ok(relError(dC.data as Float32Array, ref.dC) < 1e-4);
});

test("calib loss --ignore-index -100 / -1: a negative value after a space, as PyTorch users write it", () => {
  const args = (out: string) => ["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "C.npy"), "--targets", join(dir, "T.npy"), "--smoothing", "0.1", "--out", out];
  const res = calib([...args(join(dir, "ii100")), "--ignore-index", "-100"]);
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /\(mean, 22\/23 tokens/);
  const ref = referenceLoss(E, C, T, N, D, V, { eps: 0.1, ignoreIndex: -100, temperature: 1, softcap: 0, reduction: "mean" });
  const loss = readNpy(join(dir, "ii100", "loss.npy")).data[0] as number;
  assert.ok(Math.abs(loss - (ref.loss as number)) < 1e-5 * (ref.loss as number));
  // another ignored value: token 7 marked -1 and ignored with --ignore-index -1 (the -100 at 5 is then out of range)
  const T1 = T.slice(); T1[5] = 3; T1[7] = -1;
  writeFileSync(join(dir, "T1.npy"), encodeNpy(T1, [N]));
  const r1 = calib(["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "C.npy"), "--targets", join(dir, "T1.npy"), "--out", join(dir, "ii1"), "--ignore-index", "-1", "--temperature", "0.5"]);
  assert.equal(r1.status, 0, r1.stderr);
  const ref1 = referenceLoss(E, C, T1, N, D, V, { eps: 0, ignoreIndex: -1, temperature: 0.5, softcap: 0, reduction: "mean" });
  assert.ok(Math.abs((readNpy(join(dir, "ii1", "loss.npy")).data[0] as number) - (ref1.loss as number)) < 1e-5 * (ref1.loss as number));
  // the --x=-1 form keeps working, and a negative value where it is not allowed is named
  assert.equal(calib([...args(join(dir, "ii100b")), "--ignore-index=-100"]).status, 0);
  expectBad([...args(join(dir, "neg")), "--temperature", "-0.5"], /--temperature must be a number > 0 \(got '-0\.5'\)/);
});

test("calib loss --reduction none writes per-token losses", () => {
  const out = join(dir, "none");
  const res = calib(["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "C.npy"), "--targets", join(dir, "T.npy"), "--reduction", "none", "--out", out]);
  assert.equal(res.status, 0, res.stderr);
  const loss = readNpy(join(out, "loss.npy"));
  assert.deepEqual(loss.shape, [N]);
  assert.equal(loss.data[5], 0);
  assert.ok(!existsSync(join(out, "dE.npy")));
});

function expectBad(args: string[], pattern: RegExp) {
  const res = calib(args);
  assert.equal(res.status, 2, `exit code for ${args.join(" ")}: ${res.stderr}`);
  const lines = res.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, got: ${res.stderr}`);
  assert.match(lines[0]!, pattern);
}

test("bad input: exit code 2 and one clear line", () => {
  const base = ["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "C.npy"), "--targets", join(dir, "T.npy"), "--out", join(dir, "x")];
  const full = readFileSync(join(dir, "E.npy"));
  writeFileSync(join(dir, "trunc.npy"), full.subarray(0, full.length - 7));
  writeFileSync(join(dir, "junk.npy"), Buffer.from("this is not numpy"));
  writeFileSync(join(dir, "f64.npy"), encodeNpy(new Float64Array(E), [N, D]));
  writeFileSync(join(dir, "flat.npy"), encodeNpy(E, [N * D]));
  writeFileSync(join(dir, "shorthead.npy"), full.subarray(0, 30));
  const Tbad = T.slice(); Tbad[0] = V + 3;
  writeFileSync(join(dir, "Tbad.npy"), encodeNpy(Tbad, [N]));
  expectBad(["loss", "--e", join(dir, "trunc.npy"), ...base.slice(3)], /truncated data: expected 828 bytes/);
  expectBad(["loss", "--e", join(dir, "junk.npy"), ...base.slice(3)], /not a \.npy file/);
  expectBad(["loss", "--e", join(dir, "shorthead.npy"), ...base.slice(3)], /truncated/);
  expectBad(["loss", "--e", join(dir, "f64.npy"), ...base.slice(3)], /E must be float32, not float64/);
  expectBad(["loss", "--e", join(dir, "flat.npy"), ...base.slice(3)], /E must be 2-D/);
  expectBad(["loss", "--e", join(dir, "missing.npy"), ...base.slice(3)], /cannot read \(ENOENT\)/);
  expectBad([...base.slice(0, 5), "--targets", join(dir, "Tbad.npy"), "--out", join(dir, "x")], /targets\[0\] = 143 is outside/);
  expectBad([...base, "--smoothing", "2"], /--smoothing must be a number in \[0, 1\]/);
  expectBad([...base, "--reduction", "avg"], /--reduction must be one of mean, sum, none/);
  expectBad([...base, "--bogus"], /Unknown option '--bogus'/);
  expectBad(["loss", "--e", join(dir, "E.npy")], /--c is required/);
  writeFileSync(join(dir, "Cwide.npy"), encodeNpy(new Float32Array(V * (D + 1)).fill(0.25), [V, D + 1]));
  expectBad(["loss", "--e", join(dir, "E.npy"), "--c", join(dir, "Cwide.npy"), "--targets", join(dir, "T.npy"), "--out", join(dir, "x")], /E has 9 columns but C has 10/);
  assert.ok(!existsSync(join(dir, "x", "loss.npy")), "no output written on failure");
});
