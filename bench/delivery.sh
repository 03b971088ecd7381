#!/usr/bin/env bash
# The delivery benchmarks of docs/delivery.md: subject-index cost (1 vs 100 000 unrelated
# subscriptions) and 10 000 concurrent long-poll fetches against the real binary.
# Usage: bench/delivery.sh [BUILD_DIR] [WAITERS]
set -euo pipefail
build=${1:-build}
waiters=${2:-10000}

"$build/bench/gophermq_index_bench" 100000 9

# Each waiting fetch holds a socket in the bench and one in the broker.
ulimit -n "$(ulimit -Hn)"
log=$(mktemp)
"$build/gophermq" broker --broker.host=127.0.0.1 --broker.port=0 --monitoring.port=127.0.0.1:0 \
  --threads=2 --broker.max-connections=100000 2>"$log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -f "$log"' EXIT
until grep -q 'msg=ready' "$log"; do
  kill -0 $broker || { cat "$log"; exit 1; }
  sleep 0.05
done
port_of() { grep "listener=$1" "$log" | sed 's/.* port=\([0-9]*\).*/\1/'; }
"$build/bench/gophermq_longpoll_bench" "$(port_of api)" "$(port_of metrics)" "$waiters" 3
