#!/usr/bin/env bash
# Runs one benchmark and prints key=value lines. Usage: bench/run.sh NAME
#   echo   throughput of 1,000 independent echo tasks and submit->DONE latency of
#          200 sequential single-task workflows, on a private stack with 2 CPU workers.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: bench/run.sh NAME (echo)}"
case "$name" in
  echo)
    [ -x build/release/bin/flowmesh-server ] || scripts/build release >&2
    exec python3 bench/echo_bench.py ;;
  *) echo "unknown benchmark '$name' (known: echo)" >&2; exit 2 ;;
esac
