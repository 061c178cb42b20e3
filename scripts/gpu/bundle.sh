#!/usr/bin/env bash
# Builds here everything a GPU job needs, into git-ignored paths, so that the device
# machine (no Node.js, no registry) runs it as is:
#   native/build/Release/calib.node   the addon, CUDA for sm_90a, host code for x86-64-v3
#   .device/node.xz                   this machine's Node.js (../shared/gpu/prepare-node.sh)
#   .device/libcalib.so               the engine's C API for the Python harness (ctypes)
#   .device/mma_selftest              tensor-core building-block self-test
#   .device/b/*.mjs                   esbuild bundles of the CUDA tests, the sanitizer
#                                     driver and the benchmark (node_modules stays here)
#   .ref/                             peer sources (CCE, Liger), extracted beforehand
# Afterwards rebuild the default addon with `npm run build:native`.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
. scripts/gpu/lib.sh
# --no-build: keep the addon built by an earlier run of this script
build_addon "${1:-}"
mkdir -p .device/b
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
link_c_api .device/libcalib.so
"$nvcc_bin" -std=c++17 -O3 --use_fast_math -lineinfo -Inative/include -Inative/src \
  -gencode arch=compute_90a,code=sm_90a -o .device/mma_selftest test/cuda/mma_selftest.cu
for entry in test/cuda/linear_ce_cuda.test.ts:cuda-test test/cuda/sanitize.ts:sanitize bench/gpu/bench-entry.ts:bench; do
  bundle_ts "${entry%%:*}" ".device/b/${entry##*:}.mjs"
done
[ -d .ref/cce/cut_cross_entropy ] && [ -d .ref/liger/src/liger_kernel ] || echo "warning: .ref/ peers missing"
du -sh .device native/build/Release/calib.node .ref | sed 's/^/  /'
echo "bundle ready in $(( $(date +%s) - t0 )) s"
