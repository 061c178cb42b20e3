#!/usr/bin/env bash
# Our Llama-family engine against transformers (issue 19's GPU acceptance), on a machine with Python,
# PyTorch, transformers, safetensors and tokenizers but no Node.js, no node_modules and no internet.
# Build the carried files here first: scripts/gpu/hf-bundle.sh (carry .device/node.xz .device/hf
# native/build/Release/calib.node). Then, there, from the repository root:
#   bash scripts/gpu/hf-job.sh
# Our engine runs on the CPU in float32 with at most CALIB_THREADS (8) threads, and on the GPU (when there is
# one) in bf16 mixed precision; transformers runs on the GPU when there is one (TF32 off), else on the CPU.
#   make         bench/gpu/hf_parity.py make: REAL shapes of Llama-3.2-1B, Qwen2.5-0.5B, SmolLM2-135M,
#                Gemma-2-2B with 2 layers, random weights, save_pretrained (+ a bf16 copy, Gemma with a
#                sliding window of 8), a tokenizer built with `tokenizers`, the SFT data and run config
#   then two chains side by side (our engine on CALIB_THREADS cores | transformers, on the GPU if any):
#     batches      the SFT run's micro-batches as `calib train` feeds them
#     ours-<case>  our logits and ε = 0.1 loss of each folder (.device/hf/hf-parity.mjs logits); ours-cuda-<case>
#                  the same on CUDA in bf16
#     train        `calib train` (init.hf, ε = 0.1, AdamW, warm-up + cosine, clipping), SFT_STEPS steps
#     export       `calib export` of its checkpoint (float32); ours-trained: our logits of the checkpoint
#   | ref          transformers' logits / loss of every folder in float32, float64 and bfloat16
#   | sft          the same curve in transformers + torch.optim.AdamW (our batches and hyper-parameters)
#     train-bf16   with a GPU (and transformers on it): the same run on CUDA in bf16 mixed precision
#   | sft-bf16     and its curve in transformers under bf16 autocast on CUDA (report: the bf16 curve, sft_curve_bf16.csv)
#   ref-trained  transformers' logits of the exported folder (from_pretrained), its weights against PyTorch's
#   report       tables, $OUT/hf_parity.json, $OUT/sft_curve.csv
# Every phase has its own time limit, all within JOB_BUDGET_S (default 300 s). Results: $OUT/job.log,
# $OUT/hf_parity.json, $OUT/sft_curve.csv; the summary is printed last.
# SFT_STEPS (default 100): steps of the curve. HF_PARITY_ARGS is added to every Python phase
# ("--device cpu" keeps transformers on the CPU).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
deadline=$(( start + ${JOB_BUDGET_S:-300} ))
. scripts/gpu/lib.sh
open_log /tmp/calib-hf-out
# HF_PARITY_WORK: a work folder to use (and keep); one that holds make.json skips make (a dry run here
# brings folders made without PyTorch, see docs/hf.md)
W=${HF_PARITY_WORK:-$(mktemp -d /tmp/hf-parity.XXXXXX)}
mkdir -p "$W"
export CALIB_THREADS=${CALIB_THREADS:-8} TORCH_THREADS=${TORCH_THREADS:-8} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
SFT_STEPS=${SFT_STEPS:-100}
PYSCRIPT=(python3 bench/gpu/hf_parity.py)
OURS=(node .device/hf/hf-parity.mjs)
summary=()

# chain NAME FUNCTION: runs FUNCTION in the background with its own log and summary (joined by join_chains)
chain() {
  ( LOG="$W/$1.log"; : > "$LOG"; summary=(); "$2"; printf '%s\n' "${summary[@]}" > "$W/$1.summary" ) &
}
join_chains() {
  wait
  local c
  for c in "$@"; do
    cat "$W/$c.log" >> "$LOG" 2>/dev/null
    [ -f "$W/$c.summary" ] && mapfile -t -O "${#summary[@]}" summary < "$W/$c.summary"
  done
}

unpack_node
{
  echo "===== machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
  echo "cpu cores $(nproc); our engine: CALIB_THREADS=$CALIB_THREADS; torch: TORCH_THREADS=$TORCH_THREADS"
  python3 -c 'import sys, torch, transformers, tokenizers, safetensors; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "safetensors", safetensors.__version__, "cuda", torch.cuda.is_available())'
  echo "node $(node --version); engine commit $(cat .device/hf/commit 2>/dev/null || echo '?')"
  node -e "const a = require('./native/build/Release/calib.node').info(); console.log('addon:', JSON.stringify(a))"
  echo "work folder $W; SFT_STEPS=$SFT_STEPS; JOB_BUDGET_S=${JOB_BUDGET_S:-300}"
} >> "$LOG" 2>&1

# py NAME LIMIT SUBCOMMAND [ARGS…]: a phase of bench/gpu/hf_parity.py
py() { step_within "$1" "$2" "${PYSCRIPT[@]}" "$3" --work "$W" --out "$OUT" ${HF_PARITY_ARGS:-} "${@:4}"; }
if [ -f "$W/make.json" ]; then
  summary+=("$(printf '%-16s reused %s' make "$W/make.json")")
else
  py make 100 make --sft-steps "$SFT_STEPS"
fi
made() { python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(" ".join(m["cases"]) if sys.argv[2] == "cases" else m[sys.argv[2]])' "$W/make.json" "$1" 2>/dev/null; }
cases=$(made cases)
sft_case=$(made sft_case)
mkdir -p "$W/ours"
# a GPU for the bf16 curve (our CUDA engine and transformers under autocast); none with HF_PARITY_ARGS=--device cpu
gpu=$(command -v nvidia-smi >/dev/null && [[ "${HF_PARITY_ARGS:-}" != *"--device cpu"* ]] && echo 1)

ours_chain() {
  local c
  step_within batches 30 "${OURS[@]}" sft-batches --config "$W/sft/run.json" --out "$W/sft/batches"
  for c in $cases; do
    step_within "ours-$c" 60 "${OURS[@]}" logits --model "$W/models/$c" --inputs "$W/inputs/$c.ids.npy" --targets "$W/inputs/$c.targets.npy" --out "$W/ours/$c"
    # the CUDA path (bf16 mixed precision; it refuses head_dim other than 64 and 128 with the reason)
    command -v nvidia-smi >/dev/null && step_within "ours-cuda-$c" 60 "${OURS[@]}" logits --device cuda --model "$W/models/$c" \
      --inputs "$W/inputs/$c.ids.npy" --targets "$W/inputs/$c.targets.npy" --out "$W/ours/$c.cuda"
  done
  step_within train 180 "${OURS[@]}" calib train --config "$W/sft/run.json" --out "$W/sft/run-out" --quiet
  step_within train-log 20 "${OURS[@]}" train-log --run "$W/sft/run-out" --out "$W/ours/sft_log.json"
  step_within export 30 "${OURS[@]}" calib export --checkpoint "$W/sft/run-out/checkpoint" --hf "$W/sft/export" --dtype float32
  step_within ours-trained 30 "${OURS[@]}" logits --model "$W/sft/run-out/checkpoint" --inputs "$W/inputs/$sft_case.ids.npy" \
    --targets "$W/inputs/$sft_case.targets.npy" --out "$W/ours/trained"
  # the bf16 curve: the same run on CUDA in bf16 mixed precision
  if [ -n "$gpu" ]; then
    node -e 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
      fs.writeFileSync(process.argv[2], JSON.stringify({ ...c, device: "cuda", precision: "bfloat16" }, null, 1));' \
      "$W/sft/run.json" "$W/sft/run_bf16.json"
    step_within train-bf16 120 "${OURS[@]}" calib train --config "$W/sft/run_bf16.json" --out "$W/sft/run-bf16" --quiet
    step_within train-log-bf16 20 "${OURS[@]}" train-log --run "$W/sft/run-bf16" --out "$W/ours/sft_log_bf16.json"
  fi
}
ref_chain() {
  py ref 150 ref
  # the PyTorch curve needs our batches only (the first phase of the other chain)
  local i
  for i in $(seq 60); do [ -f "$W/sft/batches/micro.json" ] && break; sleep 1; done
  py sft 120 sft
  [ -n "$gpu" ] && py sft-bf16 120 sft --precision bfloat16
}
if [ -n "$cases" ]; then
  chain ours ours_chain
  chain ref ref_chain
  join_chains ours ref
  py ref-trained 40 ref --only trained
else
  summary+=("$(printf '%-16s not run: make wrote no cases (see job.log)' "later phases")")
fi
printf '%s\n' "${summary[@]}" | python3 -c 'import json, sys; json.dump({"seconds": int(sys.argv[1]), "budget_s": int(sys.argv[2]), "sft_steps": int(sys.argv[3]), "phases": sys.stdin.read().splitlines()}, open(sys.argv[4], "w"), indent=1)' \
  "$(( $(date +%s) - start ))" "${JOB_BUDGET_S:-300}" "$SFT_STEPS" "$W/job.json"

echo
"${PYSCRIPT[@]}" report --work "$W" --out "$OUT" 2>&1 | tee -a "$LOG"
grep -E "Traceback|Error:|error:|hf-parity [a-z-]+:" "$LOG" | grep -v "^=====" | sort | uniq -c | head -12 | sed 's/^/  /'
printf '%s\n' "${summary[@]}"
echo "job: $(( $(date +%s) - start )) s (JOB_BUDGET_S ${JOB_BUDGET_S:-300}); results in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
[ -n "${HF_PARITY_WORK:-}" ] || rm -rf "$W"
