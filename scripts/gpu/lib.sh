# Shared by the GPU scripts (sourced from the repository root):
#   here, by the bundle scripts:   build_addon, cuda_static_lib, link_c_api, bundle_ts
#   on the device, by the jobs:    open_log, unpack_node, find_cublas, step, step_within (need $LOG and a summary
#                                  array; step_within also $deadline), job_header, llama_table

# The addon for the GPU machine (CUDA sm_90a, host code x86-64-v3) and this machine's Node.js in
# .device/node.xz; `--no-build` as the first argument keeps an addon built earlier.
build_addon() {
  [ "${1:-}" = --no-build ] || CALIB_MARCH=x86-64-v3 CALIB_CUDA=1 node native/scripts/build.mjs --force
  ../shared/gpu/prepare-node.sh >/dev/null  # the shared folder beside the checkout (not committed)
}

# The directory of the toolkit's libcudart_static.a (for the ctypes libraries of the Python harness).
cuda_static_lib() {
  local nvcc_bin d
  nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  for d in "$(dirname "$(readlink -f "$nvcc_bin")")/../lib64" "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64; do
    [ -f "$d/libcudart_static.a" ] && { echo "$d"; return 0; }
  done
  echo "libcudart_static.a not found" >&2
  return 1
}

# link_c_api OUT [SOURCES…]: the engine's C API as a shared library for the Python harness
# (ctypes): every common source, the loss and the given sources, with the CUDA objects of the last
# build (native/build-cuda) and a static CUDA runtime.
link_c_api() {
  local out=$1 cuda_lib
  shift
  cuda_lib=$(cuda_static_lib) || return 1
  g++ -O3 -march=x86-64-v3 -std=c++17 -fPIC -shared -Inative/include -DCALIB_WITH_CUDA=1 \
    native/src/common/*.cc native/src/loss/*.cc "$@" \
    native/build-cuda/libcalib_cuda.a -L"$cuda_lib" -lcudart_static -ldl -lrt -lpthread -o "$out"
}

# bundle_ts SOURCE OUTFILE [ESBUILD ARGS…]: a TypeScript entry point bundled for Node.js 20 (the device
# machine has no node_modules).
bundle_ts() {
  local src=$1 out=$2
  shift 2
  local hfv
  hfv=$(node -p 'require("./node_modules/@huggingface/tokenizers/package.json").version')
  npx esbuild "$src" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --define:__HF_TOKENIZERS_VERSION__="\"$hfv\"" "$@" --outfile="$out"
}

# open_log DEFAULT_OUT [--append]: OUT is the device's output folder ($OUT, else DEFAULT_OUT) and LOG its
# job.log, emptied unless --append.
open_log() {
  OUT=${OUT:-$1}
  mkdir -p "$OUT"
  LOG="$OUT/job.log"
  [ "${2:-}" = --append ] || : > "$LOG"
}

# The device machine has no Node.js: unpack the one carried in .device/node.xz onto PATH.
unpack_node() {
  local nd
  nd=$(mktemp -d)
  xz -d -c .device/node.xz > "$nd/node" && chmod +x "$nd/node" && export PATH="$nd:$PATH"
}

# cuBLAS: the engine searches the loader's path, the toolkit and PyTorch's wheels; name it if all miss.
find_cublas() {
  if ! ls /usr/local/cuda/lib64/libcublas.so.1* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libcublas.so.1; then
    CALIB_CUBLAS_PATH=$(python3 -c "import glob, sys; c = sorted(glob.glob(sys.prefix + '/lib/python3*/site-packages/nvidia/*/lib/libcublas.so.1*')); print(c[0] if c else '')")
    [ -n "$CALIB_CUBLAS_PATH" ] && export CALIB_CUBLAS_PATH
  fi
  return 0
}

# step NAME TIMEOUT_S CMD...: runs with a time limit, appends its output to $LOG and a line
# (name, exit code, seconds) to the summary array; never fails the job itself.
step() {
  local name=$1 limit=$2
  shift 2
  local t=$(date +%s)
  echo "===== $name: $*" >> "$LOG"
  timeout "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  summary+=("$(printf '%-16s exit %-3s %5ss' "$name" "$rc" "$(( $(date +%s) - t ))")")
  return 0
}

# step_within NAME LIMIT CMD...: step with the limit cut to what is left of the job's budget ($deadline, in
# seconds since the epoch, less 15 s for the summary); not run (a summary line says so) when under 20 s are left.
step_within() {
  local name=$1 limit=$2 left
  shift 2
  left=$(( deadline - $(date +%s) - 15 ))
  if [ "$left" -lt 20 ]; then
    summary+=("$(printf '%-16s not run: the job budget (JOB_BUDGET_S) is spent' "$name")")
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  step "$name" "$limit" "$@"
}

# llama_table FILE: the Llama-family benchmark lines of a job (llama_bench.json, one JSON object a line) as a table.
llama_table() {
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'engine':22s} {'model':14s} {'ws MiB':>6s} {'ck':>3s} {'ms/step':>8s} {'tokens/s':>9s} {'GPU MiB':>8s} {'max alloc GiB':>13s}")
for r in rows:
    ws = r.get('head_workspace_bytes')
    print(f"{r['engine']:22s} {r['model']:14s} {ws // 2**20 if ws is not None else '':>6} {r.get('checkpoint_layers', 0):3d} {r['step_ms']:8.1f} "
          f"{r['tokens_per_s']:9.0f} {r['gpu_mib']:8d} {r.get('max_allocated_gib', float('nan')):13.1f}")
PY
}

# job_header NOTE: the lines bench/llama_train.ts reads from a job log (start time, card and driver, torch and
# transformers, the engine commit bundle-trainer.sh recorded), with NOTE after the commit.
job_header() {
  echo "started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  node --version; nproc
  echo "engine commit $(cat .device/b/commit 2>/dev/null || echo '?'); $1"
}
