#!/usr/bin/env bash
# The GPU job of the PyTorch package calib_lce (issue 20), run from the repository root on the device machine:
#   scripts/gpu/python-job.sh
# Every phase is a subcommand of python/tests/gpu_check.py with its own time limit, all of them within
# JOB_BUDGET_S (default 560 s; the device's limit for one command is 600 s), in the order of what matters most:
#   library     the carried engine library (python/calib_lce/_build, built here by `python -m calib_lce.build`);
#               if it is missing, stale or does not load, it is built on the device (nvcc, 16 cores, ~1 min)
#   numerics    the op against fp32 PyTorch, torch.compile, memory, streams, errors
#   sft-hf      50 steps, unpatched (the curve's reference)      sft-calib   50 steps, calib_lce.patch
#   families    Llama / Qwen2 / Mistral / Gemma 2 patched vs unpatched in fp32
#   fsdp        FSDP2 (fully_shard) at world size 1 over NCCL
#   sft-liger, sft-cce   the peers, fewer steps (PEER_STEPS, default 20); skipped with one line when their sources
#               are not in .ref/ (see scripts/gpu/bundle.sh)
# GPU_CHECK_ARGS is added to every phase ("--device cpu --smoke" runs the whole job on tiny shapes on a CPU).
# Results: $OUT/job.log and $OUT/gpu_check.json (every phase's numbers); the summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
deadline=$(( start + ${JOB_BUDGET_S:-560} ))
. scripts/gpu/lib.sh
open_log /tmp/calib-gpu-out
find_cublas
WORK=$(mktemp -d)
export PYTHONPATH="$PWD/python:$PWD/.ref/cce:$PWD/.ref/liger/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export CALIB_LCE_LIB_DIR=${CALIB_LCE_LIB_DIR:-$PWD/python/calib_lce/_build}
CHECK="python3 python/tests/gpu_check.py --out $OUT --work $WORK ${GPU_CHECK_ARGS:-}"  # GPU_CHECK_ARGS="--device cpu --smoke": a dry run of this script on a CPU
summary=()

{
  echo "===== machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  python3 -c 'import triton; print("triton", triton.__version__)' 2>&1 | tail -1
  echo "CALIB_LCE_LIB_DIR=$CALIB_LCE_LIB_DIR"
} >> "$LOG" 2>&1

step_within library 240 $CHECK library
if ! grep -q '"cuda_built": true' "$WORK/library.json" 2>/dev/null || grep -q '"error"' "$WORK/library.json"; then
  # the carried library did not load here: build one on the device, into a fresh folder
  export CALIB_LCE_LIB_DIR=/tmp/calib_lce_lib
  step_within build 240 python3 -m calib_lce.build --out "$CALIB_LCE_LIB_DIR" --jobs 16
  step_within library 60 $CHECK library
fi
step_within numerics 150 $CHECK numerics
step_within sft-hf 110 $CHECK sft --variant hf --steps 50
step_within sft-calib 110 $CHECK sft --variant calib --steps 50
step_within families 90 $CHECK families
step_within fsdp 120 $CHECK fsdp --steps 4
for peer in liger cce; do
  src=$([ "$peer" = liger ] && echo .ref/liger/src/liger_kernel || echo .ref/cce/cut_cross_entropy)
  if [ -d "$src" ]; then
    step_within "sft-$peer" 120 $CHECK sft --variant "$peer" --steps "${PEER_STEPS:-20}"
  else
    summary+=("$(printf '%-16s skipped: %s is absent (extract it as scripts/gpu/bundle.sh says)' "sft-$peer" "$src")")
  fi
done

echo
$CHECK summary 2>&1 | tee -a "$LOG"
grep -E "Traceback|Error:|error:" "$LOG" | grep -v "^=====" | sort | uniq -c | head -12 | sed 's/^/  /'
printf '%s\n' "${summary[@]}"
echo "job: $(( $(date +%s) - start )) s"
