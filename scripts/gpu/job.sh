#!/usr/bin/env bash
# The one GPU job of the CUDA loss (run from the repository root on the device machine,
# after scripts/gpu/bundle.sh ran on the development machine):
#   scripts/gpu/job.sh check     building-block self-test, the CUDA tests, compute-sanitizer
#                                (memcheck, racecheck), a quick benchmark of the headline shape
#   scripts/gpu/job.sh bench     the full benchmark against the peers → results.json, Arrow; the
#                                CUPTI breakdown, the GEMM-width and cuBLASLt-candidate tables (.txt)
#   scripts/gpu/job.sh quick     check without Nsight Compute and racecheck, plus the CUPTI breakdown
#                                (BASELINE_LIB=.device/libcalib_old.so: the quick benchmark of that build too;
#                                BREAKDOWN=0: no CUPTI breakdown)
#   scripts/gpu/job.sh profile   Nsight Compute on the three main kernels
#   scripts/gpu/job.sh all       check, then bench
# Extra arguments after the mode go to the benchmark harness (e.g. --budget-s 300).
# Everything lands in $OUT (at most 8 files: job.log and the result files); a short
# summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-check}
shift || true
. scripts/gpu/lib.sh
open_log /tmp/calib-gpu-out
unpack_node
find_cublas
export PYTHONPATH="$PWD/.ref/cce:$PWD/.ref/liger/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
summary=()

{
  echo "===== machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
  node --version
  python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
} >> "$LOG" 2>&1

ncu_profile() {  # the three main kernels of one forward+backward, small shape unless given
  step ncu "$1" ncu --clock-control none --target-processes all -k 'regex:slab_|lse_kernel|gtile_kernel|grad_kernel' -c 6 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats --section SourceCounters \
    python3 bench/gpu/lce_bench.py --lib .device/libcalib.so --out "$OUT/once.json" --once --shapes "${PROFILE_SHAPE:-8192,2304,32768}"
  sed -n '/==PROF==/,$p' "$LOG" > "$OUT/ncu.txt"
}
hung() { printf '%s\n' "${summary[@]}" | grep -q "exit 124"; }


breakdown() { step breakdown 120 sh -c "python3 bench/gpu/lce_profile.py --lib .device/libcalib.so > '$OUT/profile.txt'"; }

if [ "$mode" = check ] || [ "$mode" = quick ] || [ "$mode" = all ]; then
  step selftest 40 .device/mma_selftest
  hung || step tests 150 node .device/b/cuda-test.mjs
  hung || step memcheck-node 150 compute-sanitizer --tool memcheck --error-exitcode 9 node .device/b/sanitize.mjs
  [ "$mode" = quick ] || { hung || step racecheck-self 60 compute-sanitizer --tool racecheck --error-exitcode 9 .device/mma_selftest; }
  [ "$mode" = all ] || { hung || step quick 200 python3 bench/gpu/lce_bench.py --lib .device/libcalib.so --out "$OUT/quick.json" --quick --iters 3 --sweep 1073741824 "$@"; }
  # BASELINE_LIB=path: the same quick benchmark of another build of the C API (e.g. an earlier commit's), same job
  if [ -n "${BASELINE_LIB:-}" ] && [ "$mode" != all ]; then
    hung || step quick-baseline 200 python3 bench/gpu/lce_bench.py --lib "$BASELINE_LIB" --out "$OUT/quick_baseline.json" --quick --iters 3 --sweep 1073741824 "$@"
  fi
  if [ "$mode" = quick ]; then [ "${BREAKDOWN:-1}" = 0 ] || { hung || breakdown; }; else hung || ncu_profile 120; fi
fi
if [ "$mode" = bench ] || [ "$mode" = all ]; then
  [ "$mode" = bench ] && step selftest 40 .device/mma_selftest
  hung || step bench 560 python3 bench/gpu/lce_bench.py --lib .device/libcalib.so --out "$OUT/results.json" "$@"
  [ -s "$OUT/results.json" ] && step arrow 120 node .device/b/bench.mjs --json "$OUT/results.json" --api --out "$OUT/kernels.arrow"
  breakdown
  if [ "${BENCH_TOOLS:-1}" = 1 ]; then  # BENCH_TOOLS=0: skip the two cuBLAS-only tables
    step widths 90 sh -c "python3 dev/cuda/gemm_widths.py > '$OUT/widths.txt'"
    step lt 90 sh -c "python3 dev/cuda/lt_candidates.py > '$OUT/lt.txt'"
  fi
fi
if [ "$mode" = profile ]; then
  ncu_profile 300
fi

echo
echo "================ summary ($mode)"
grep -E "^device:|FAIL|SELFTEST|^(not ok|# (tests|pass|fail|skipped))|ERROR SUMMARY|sanitize:" "$LOG" | sed 's/^/  /' | head -40
grep -E "^\s+(# |)(dE|dC|loss|lse)|AssertionError|relative error" "$LOG" | sed 's/^/  /' | head -20
grep -E "^  [a-z_]+_kernel|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy" "$OUT/ncu.txt" 2>/dev/null | sed 's/^/  /' | head -24
grep -E "^\[ *[0-9.]+s\] +(ours|torch|liger|cce)|cuBLAS|regime |failed|Error|error" "$LOG" | grep -v "^=====" | sed 's/^/  /' | tail -45
printf '%s\n' "${summary[@]}"
