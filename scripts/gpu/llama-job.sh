#!/usr/bin/env bash
# The Llama family on CUDA in one GPU job (issues 19 and 21), from the repository root on the device machine
# after scripts/gpu/bundle-trainer.sh and scripts/gpu/hf-bundle.sh ran here (carry .device/node.xz .device/b
# .device/hf native/build/Release/calib.node, and .ref for Liger):
#   scripts/gpu/llama-job.sh [BUDGET_S]
# In the foreground, with the GPU to itself as far as timings go:
#   llama-tests   test/cuda/llama_cuda.test.ts (bundled): CUDA bf16 against the CPU float32 engine, checkpointing
#   bench         per model (Llama-3.2-1B, Qwen2.5-0.5B shapes, every layer, random weights; context 2048,
#                 batch 4, ε = 0.1, AdamW): ours (bench/gpu/llama-train.ts) in three plans — a 1 GiB LM-head
#                 workspace with every layer checkpointed, the same without checkpointing, the trainer's default
#                 4 GiB workspace — then transformers' own step (bench/gpu/llama_step.py: sdpa, liger, compile),
#                 each in its own process, while the budget lasts
# In the background: scripts/gpu/hf-job.sh with transformers on the CPU (so that it does not share the GPU with
# the timings; our CUDA logits phases are short).
# $OUT: job.log, llama_bench.json (every benchmark's JSON line), tests.log, hf.tar.gz (hf-job's output and log).
# Published (here, after the job): npm run bench -- llama-train --jsonl llama_bench.json --log job.log
# (bench/llama_train.ts → data/bench/llama_train.arrow + _meta.json, with the card, versions and start from the log).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
budget=${1:-540}
deadline=$(( start + budget ))
. scripts/gpu/lib.sh
open_log /tmp/calib-llama-out
unpack_node
find_cublas
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/.ref/liger/src:${PYTHONPATH:-}"
summary=()
job_header "budget $budget s" >> "$LOG" 2>&1
mkdir -p /tmp/hfout
( OUT=/tmp/hfout CALIB_THREADS=6 TORCH_THREADS=6 JOB_BUDGET_S=$(( budget - 40 )) HF_PARITY_ARGS="--device cpu" \
    timeout $(( budget - 10 )) bash scripts/gpu/hf-job.sh > /tmp/hfout/hf-job.out 2>&1; echo "hf-job exit $?" >> /tmp/hfout/hf-job.out ) &
hf=$!
step_within llama-tests 150 node .device/b/llama-test.mjs
grep -E "^# (tests|pass|fail|skipped)|^not ok" "$LOG" | tail -6 > "$OUT/tests.log"
: > "$OUT/llama_bench.json"
bench() {  # bench NAME LIMIT CMD…: one process; its JSON line into llama_bench.json
  step_within "$1" "$2" bash -c '"$@" | tee -a /tmp/bench-lines.jsonl' _ "${@:3}"
}
rm -f /tmp/bench-lines.jsonl
for m in llama-3.2-1b qwen2.5-0.5b; do
  bench "ours-$m" 150 node .device/b/llama-bench.mjs --model $m --plans 1024:all,1024:0,4096:0
  for v in sdpa liger compile; do bench "torch-$v-$m" 120 python3 bench/gpu/llama_step.py --model $m --variant $v; done
done
grep '^{' /tmp/bench-lines.jsonl > "$OUT/llama_bench.json" 2>/dev/null
wait $hf
tar -czf "$OUT/hf.tar.gz" -C /tmp hfout
printf '%s\n' "${summary[@]}" | tee -a "$LOG"
llama_table "$OUT/llama_bench.json" | tee -a "$LOG"
tail -25 /tmp/hfout/hf-job.out
echo "job: $(( $(date +%s) - start )) s"
