#!/usr/bin/env bash
# Runs one benchmark and prints key=value lines. Usage: bench/run.sh NAME
#   echo   throughput of 1,000 independent echo tasks and submit->DONE latency of
#          200 sequential single-task workflows, on a private stack with 2 CPU workers.
#   parse  parse + validate of a generated 10,000-node graph with references
#          (parse_ms_10k_nodes) and of a typical 5-node document (validate_docs_per_sec).
#   fuzz-parser [SECONDS]  builds tests/fuzz/parse_fuzzer.cc with clang++ -fsanitize=fuzzer,address
#          (apt-get install clang) and runs it over the seed corpus for SECONDS (default 60);
#          prints fuzz_execs, fuzz_seconds, fuzz_crashes. Crashing inputs land in
#          build/fuzz/artifacts/ (add them to tests/fuzz/corpus/ once fixed).
#   inference  on a generated 512-dim, 8-layer f16 model: 8 inference tasks (128-token
#          prompts, 128 new tokens) at once through the full stack vs one at a time
#          (batched_over_sequential), worker_rss_mb with the model loaded, and the engine's
#          batched decode vs llama.cpp's llama-batched-bench from the same source
#          (ratio_vs_llama_batched_bench; built into build/llama-tools), and the ceiling
#          llama.cpp itself gives batching on this machine (llama_batched_bench_npl8_over_npl1).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: bench/run.sh NAME (echo|parse|fuzz-parser|inference)}"
case "$name" in
  echo)
    scripts/build release >&2  # incremental: never measure stale binaries
    exec python3 bench/echo_bench.py ;;
  parse)
    [ -f build/release/build.ninja ] || cmake --preset release >&2
    cmake --build build/release --target parse_bench >&2
    exec build/release/bin/parse_bench ;;
  fuzz-parser)
    exec tests/fuzz/run_fuzzer.sh "${2:-60}" ;;
  inference)
    exec bench/inference.sh ;;
  *) echo "unknown benchmark '$name' (known: echo, parse, fuzz-parser, inference)" >&2; exit 2 ;;
esac
