#!/usr/bin/env bash
# Builds the libFuzzer parse target with clang and runs it for $1 seconds (default 60).
# Invoked by `bench/run.sh fuzz-parser [SECONDS]`; prints fuzz_execs=, fuzz_seconds=,
# fuzz_crashes=. Exit status 1 when the fuzzer found a crash.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
CXX="${FUZZ_CXX:-clang++}"
command -v "$CXX" >/dev/null || { echo "fuzz-parser needs clang++ (apt-get install -y clang)" >&2; exit 2; }
out=build/fuzz
mkdir -p "$out/obj" "$out/corpus" "$out/artifacts"
launcher=""
command -v ccache >/dev/null && launcher=ccache
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address
       -Isrc -Iinclude -Itests)
sources=(src/spec/*.cc src/common/status.cc tests/fuzz/parse_fuzzer.cc)
objects=()
pids=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "$src" | tr '/' '_').o"
  objects+=("$obj")
  # Rebuild when the source or any header it may include is newer (cheap and conservative).
  if [ ! -f "$obj" ] || [ -n "$(find src/spec src/common tests/fuzz -newer "$obj" -name '*.h' -print -quit)" ] ||
     [ "$src" -nt "$obj" ]; then
    $launcher "$CXX" "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    # At most two compilers at a time (the build machine is shared).
    if [ "${#pids[@]}" -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
"$CXX" -fsanitize=fuzzer,address "${objects[@]}" -lyaml -o "$out/parse_fuzzer"
before=$(find "$out/artifacts" -type f | wc -l)
log="$out/fuzz.log"
start=$(date +%s.%N)
set +e
"$out/parse_fuzzer" "$out/corpus" tests/fuzz/corpus -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" >"$log" 2>&1
rc=$?
set -e
end=$(date +%s.%N)
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
if [ -z "$execs" ]; then  # a crash stops the run before the final stats
  execs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -1)
fi
after=$(find "$out/artifacts" -type f | wc -l)
crashes=$((after - before))
if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
echo "fuzz_execs=${execs:-0}"
echo "fuzz_seconds=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')"
echo "fuzz_crashes=$crashes"
if [ "$crashes" -gt 0 ]; then
  echo "fuzzer log: $log; inputs in $out/artifacts/" >&2
  tail -40 "$log" >&2
  exit 1
fi
