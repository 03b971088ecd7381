#!/usr/bin/env bash
# User-space instructions per request under callgrind (docs/performance.md, "Instructions per
# publish"): a count that, unlike a rate, does not depend on the machine's load, so two builds
# can be compared on a busy machine. Usage: bench/instructions.sh [BUILD_DIR] [pub|async|...]
set -euo pipefail
build=$(realpath "${1:-build}")
mode=${2:-pub}
work=$(mktemp -d)
cd "$work"
valgrind --tool=callgrind --instr-atstart=no "$build/gophermq" broker --threads=1 \
  --monitoring.enable=false --broker.host=127.0.0.1 --broker.port=0 2>"$work/log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$work"' EXIT
until grep -q 'msg=ready' "$work/log"; do
  kill -0 $broker || { cat "$work/log"; exit 1; }
  sleep 0.1
done
port=$(grep -o 'listener=api .*' "$work/log" | grep -o 'port=[0-9]*' | cut -d= -f2)
callgrind_control -i on $broker >/dev/null
result=$("$build/bench/gophermq-bench" --port "$port" --mode "$mode" --connections 4 \
  --duration 3 --warmup 0 --json)
callgrind_control -i off $broker >/dev/null
kill $broker
wait $broker 2>/dev/null || true
requests=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$result")
total=$(grep -h '^totals:' "$work"/callgrind.out.* | awk '{s += $2} END {print s}')
echo "requests=$requests instructions=$total per_request=$((total / requests))"
