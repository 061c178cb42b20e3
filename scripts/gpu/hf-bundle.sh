#!/usr/bin/env bash
# Builds here what the transformers parity job (scripts/gpu/hf-job.sh, issue 19) needs on a machine
# with Python + PyTorch + transformers but no Node.js and no node_modules, into git-ignored paths:
#   .device/node.xz                       this machine's Node.js (../shared/gpu/prepare-node.sh)
#   .device/hf/hf-parity.mjs              scripts/gpu/hf-parity.ts bundled: our logits, the SFT batches,
#                                         the train log, and `calib train|eval|export`
#   .device/hf/commit                     the engine's commit (git describe --dirty), printed by the job
# and checks the addon that travels with them, native/build/Release/calib.node: it is NOT rebuilt
# (the job runs our engine on the CPU only; any build of the addon will do, CUDA or not, as long as
# its host code runs on the GPU machine's CPU: x86-64-v3, no AVX-512 — see the warning below).
# Carry: .device/node.xz .device/hf native/build/Release/calib.node (printed at the end with the size).
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
. scripts/gpu/lib.sh
addon=native/build/Release/calib.node
[ -f "$addon" ] || { echo "hf-bundle: $addon is missing: build it first (npm run build:native, or CALIB_MARCH=x86-64-v3 for a portable one)" >&2; exit 2; }
node -e "const a = require('./$addon').info(); console.log('  addon: CUDA ' + (a.cudaBuilt ? 'built' : 'not built') + ', CPU threads ' + a.cpuThreads)"
if objdump -d "$addon" | grep -qE '%zmm|\{%k[1-7]\}'; then
  echo "hf-bundle: warning: $addon uses AVX-512 (built with -march=native?); rebuild it with CALIB_MARCH=x86-64-v3 if the GPU machine's CPU lacks AVX-512" >&2
fi
# this machine's Node.js, compressed (the shared script beside the main checkout; a worktree's .git is a file,
# where that script cannot add its exclude line: .device/ is git-ignored anyway, so compress here alike)
build_addon --no-build  # only .device/node.xz: the addon is used as built
rm -rf .device/hf
mkdir -p .device/hf
bundle_ts scripts/gpu/hf-parity.ts .device/hf/hf-parity.mjs --external:better-sqlite3 --external:@duckdb/node-api '--external:../../runs/local.js'
if grep -qE '^import .* from "(better-sqlite3|@duckdb/node-api)"' .device/hf/hf-parity.mjs; then
  echo "hf-bundle: the bundle imports a native package at load time (better-sqlite3 / duckdb): it would not start on the GPU machine" >&2
  exit 1
fi
git describe --always --dirty --abbrev=7 > .device/hf/commit
# the bundle must start without node_modules: run it from a copy outside the checkout
probe=$(mktemp -d)
mkdir -p "$probe/native/build/Release" "$probe/.device"
cp -r .device/hf "$probe/.device/"
ln -s "$PWD/$addon" "$probe/$addon"
(cd "$probe" && node .device/hf/hf-parity.mjs calib export --help >/dev/null) || { echo "hf-bundle: the bundle does not start without node_modules" >&2; rm -rf "$probe"; exit 1; }
rm -rf "$probe"
du -shc .device/node.xz .device/hf "$addon" | sed 's/^/  /'
echo "bundle ready in $(( $(date +%s) - t0 )) s; carry: .device/node.xz .device/hf $addon"
