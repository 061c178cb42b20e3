// Builds the engine addon (native/build/Release/calib.node).
//  1. CUDA: when nvcc is found and CALIB_CUDA is not "0", compiles every src/**/*.cu into
//     build-cuda/libcalib_cuda.a (kept outside build/, which node-gyp wipes). The CUDA
//     runtime is linked statically, so the addon still loads where there is no GPU/driver.
//     CALIB_CUDA=1 makes a CUDA failure fatal; otherwise the build falls back to CPU only.
//  2. node-gyp builds the addon offline against the local Node headers.
// Usage: node native/scripts/build.mjs [--force]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const native = join(dirname(fileURLToPath(import.meta.url)), "..");
const force = process.argv.includes("--force");
const want = process.env.CALIB_CUDA; // "0" off, "1" required, unset: when nvcc exists
const log = (msg) => console.log(`[calib build] ${msg}`);

function files(dir, ext) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (ext.some((e) => name.endsWith(e))) out.push(p);
  }
  return out;
}

function findNvcc() {
  const candidates = [process.env.NVCC, "nvcc", "/usr/local/cuda/bin/nvcc"].filter(Boolean);
  for (const c of candidates) {
    const r = spawnSync(c, ["--version"], { encoding: "utf8" });
    if (r.status === 0) return c;
  }
  return null;
}

function cudaLibDir(nvcc) {
  const which = nvcc.includes("/") ? nvcc : execFileSync("sh", ["-c", `command -v ${nvcc}`], { encoding: "utf8" }).trim();
  const guesses = [process.env.CUDA_HOME && join(process.env.CUDA_HOME, "lib64"), "/usr/local/cuda/lib64"];
  try {
    guesses.unshift(join(dirname(realpathSync(which)), "..", "lib64"));
  } catch {}
  return guesses.filter(Boolean).find((d) => existsSync(join(d, "libcudart_static.a"))) ?? null;
}

// Compiles the .cu files into a static library; returns the CUDA lib dir or null.
function buildCuda() {
  if (want === "0") {
    log("CUDA disabled (CALIB_CUDA=0): CPU engine only");
    return null;
  }
  const nvcc = findNvcc();
  const cu = files(join(native, "src"), [".cu"]);
  const problem = !nvcc ? "nvcc not found" : cu.length === 0 ? "no CUDA sources" : null;
  const libDir = nvcc ? cudaLibDir(nvcc) : null;
  const why = problem ?? (libDir ? null : "libcudart_static.a not found next to nvcc");
  if (why) {
    if (want === "1") throw new Error(`CALIB_CUDA=1 but ${why}`);
    log(`${why}: CPU engine only`);
    return null;
  }
  const out = join(native, "build-cuda");
  mkdirSync(out, { recursive: true });
  const headers = files(join(native, "src"), [".h", ".cuh"]).concat(files(join(native, "include"), [".h"]));
  const newestHeader = Math.max(...headers.map((h) => statSync(h).mtimeMs));
  const archs = (process.env.CALIB_CUDA_ARCH ?? "90a").split(",").map((a) => a.trim());
  const gencode = archs.flatMap((a) => ["-gencode", `arch=compute_${a},code=sm_${a}`]);
  const objects = [];
  for (const src of cu) {
    const obj = join(out, relative(join(native, "src"), src).replaceAll("/", "__").replace(/\.cu$/, ".o"));
    objects.push(obj);
    const fresh = existsSync(obj) && statSync(obj).mtimeMs > Math.max(statSync(src).mtimeMs, newestHeader);
    if (fresh && !force) continue;
    log(`nvcc ${relative(native, src)} (sm_${archs.join(", sm_")})`);
    const r = spawnSync(
      nvcc,
      ["-std=c++17", "-O3", "--use_fast_math", "-lineinfo", "-Xcompiler", "-fPIC", "-Iinclude", "-Isrc",
        "-DCALIB_WITH_CUDA=1", ...gencode, "-c", src, "-o", obj],
      { cwd: native, stdio: "inherit" },
    );
    if (r.status !== 0) {
      rmSync(obj, { force: true });
      if (want === "1") throw new Error(`nvcc failed on ${basename(src)}`);
      log(`nvcc failed on ${basename(src)}: building the CPU engine only (set CALIB_CUDA=1 to make this fatal)`);
      return null;
    }
  }
  const lib = join(out, "libcalib_cuda.a");
  rmSync(lib, { force: true });
  execFileSync("ar", ["rcs", lib, ...objects]);
  return libDir;
}

function nodeGyp(cudaLib) {
  const require = createRequire(import.meta.url);
  const gyp = require.resolve("node-gyp/bin/node-gyp.js");
  const args = [gyp, "rebuild", "--jobs", "max"];
  const nodedir = process.env.npm_config_nodedir || (existsSync("/usr/include/node/node.h") ? "/usr" : null);
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  const env = { ...process.env, CALIB_GYP_CUDA: cudaLib ? "1" : "0", CALIB_GYP_CUDA_LIB: cudaLib ?? "" };
  const r = spawnSync(process.execPath, args, { cwd: native, stdio: "inherit", env });
  if (r.status !== 0) throw new Error("node-gyp failed (see the compiler output above)");
}

// Several processes may build at once (parallel helpers, npm install + a test): take a
// directory lock, released on exit; a lock whose owner died is taken over.
function lock() {
  const dir = join(native, ".build.lock");
  const deadline = Date.now() + 10 * 60 * 1000;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pid"), String(process.pid));
      process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
      return;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(dir, "pid"), "utf8"));
      } catch {}
      let alive = false;
      try {
        if (owner > 0) alive = process.kill(owner, 0);
      } catch {}
      if (owner > 0 && !alive) rmSync(dir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`another build holds ${dir}; remove it if no build is running`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}

try {
  lock();
  const cudaLib = buildCuda();
  nodeGyp(cudaLib);
  const addon = createRequire(import.meta.url)(join(native, "build", "Release", "calib.node"));
  const info = addon.info();
  log(`built: CPU threads ${info.cpuThreads}; CUDA ${info.cudaBuilt ? `built, ${info.cudaDevices} device(s): ${info.cudaMessage}` : "not built"}`);
} catch (err) {
  console.error(`[calib build] ${err.message}`);
  process.exit(1);
}
