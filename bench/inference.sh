#!/usr/bin/env bash
# bench/run.sh inference: see bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${BENCH_THREADS:-$(nproc)}"
scripts/build release >&2
model=build/bench/bench-512x8-f16.gguf
if [ ! -f "$model" ]; then
  mkdir -p build/bench
  python3 tools/gguf-gen "$model" --dim 512 --layers 8 --type f16 --seed 3 >&2
fi
python3 bench/inference_bench.py "$PWD/$model"

# llama.cpp's own batched bench, from the same source with the same ggml options.
bench/llama-tools.sh llama-batched-bench
# Interleaved rounds, best of each: the machine may be shared, so both see the same load.
# Each round is one warm-up plus one measured batch for both (llama-batched-bench warms up
# and measures each npl once; inference_bench is told ROUNDS=1), so neither gets more tries.
rounds="${BENCH_INFERENCE_ROUNDS:-3}"
bb_speed=0
ours_speed=0
for round in $(seq "$rounds"); do
  bb=$(build/llama-tools/bin/llama-batched-bench -m "$model" -c 4096 -b 2048 -ub 512 -npp 128 -ntg 128 -npl 8 \
         -no-kvu -fa off -t "$threads" -tb "$threads" --output-format jsonl 2>/dev/null | grep '^{' | tail -1)
  bb_speed=$(python3 -c 'import json,sys; print("%.2f" % max(float(sys.argv[2]), json.loads(sys.argv[1])["speed"]))' \
               "$bb" "$bb_speed")
  ours=$(build/release/bin/inference_bench "$model" 128 128 8 "$threads" 1)
  ours_speed=$(echo "$ours" | sed -n 's/^engine_tokens_per_s=//p' | \
                 python3 -c 'import sys; print("%.2f" % max(float(sys.stdin.read()), float(sys.argv[1])))' "$ours_speed")
done
echo "llama_batched_bench_repetitions=$rounds"
echo "engine_repetitions=$rounds"
echo "llama_batched_bench_tokens_per_s=$bb_speed"
echo "engine_tokens_per_s=$ours_speed"
python3 -c 'import sys; print("ratio_vs_llama_batched_bench=%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' \
  "$ours_speed" "$bb_speed"
# The most batching can give here, by llama.cpp's own figures: 8 sequences one after
# another (npl 1, 8x) vs 8 at once (npl 8). batched_over_sequential cannot exceed it.
bb=$(build/llama-tools/bin/llama-batched-bench -m "$model" -c 4096 -b 2048 -ub 512 -npp 128 -ntg 128 -npl 1,8 \
       -no-kvu -fa off -t "$threads" -tb "$threads" --output-format jsonl 2>/dev/null | grep '^{')
python3 -c '
import json, sys
rows = {r["pl"]: r["t"] for r in map(json.loads, sys.argv[1].splitlines())}
print("llama_batched_bench_npl8_over_npl1=%.2f" % (8 * rows[1] / rows[8]))' "$bb"
