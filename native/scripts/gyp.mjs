// Answers binding.gyp's questions: which sources, whether CUDA objects are linked,
// which -march, which libraries. build.mjs sets the CALIB_GYP_* variables.
import { readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const native = join(dirname(fileURLToPath(import.meta.url)), "..");
const cuda = process.env.CALIB_GYP_CUDA === "1";

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith(".cc")) out.push(relative(native, p));
  }
  return out;
}

const what = process.argv[2];
let answer = "";
if (what === "sources") answer = sources(join(native, "src")).join(" ");
else if (what === "napi-include") answer = createRequire(import.meta.url)("node-addon-api").include_dir;
else if (what === "cuda") answer = cuda ? "1" : "0";
else if (what === "march") answer = process.env.CALIB_MARCH ? `-march=${process.env.CALIB_MARCH}` : "-march=native";
else if (what === "libs") {
  answer = cuda
    ? [`${join(native, "build-cuda", "libcalib_cuda.a")}`, `-L${process.env.CALIB_GYP_CUDA_LIB}`, "-lcudart_static", "-ldl", "-lrt", "-lpthread"].join(" ")
    : "";
} else {
  console.error(`gyp.mjs: unknown question ${what}`);
  process.exit(1);
}
console.log(answer);
