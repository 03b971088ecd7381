#!/usr/bin/env bash
# Interleaved A/B probes of publish at 64 connections, for trying a change to the log against the
# unchanged broker (docs/storage.md, "Tried and dropped"): each round runs every case once, on a
# fresh broker pinned to the first CPU with gophermq-bench on the second, and prints its rate,
# p50, and the broker's CPU time per published message, which other load on the machine changes
# far less than the rate.
#
# Usage: bench/storage_ab.sh ROUNDS SECONDS CASE...
#   CASE = NAME:BUILD_DIR:MODE[:VAR=VALUE], MODE memory, always, interval or never; the optional
#   VAR=VALUE goes into the broker's environment.
#   e.g. bench/storage_ab.sh 4 5 mem:build:memory always:build:always new:build-new:always
# STORAGE_PARENT (default /var/tmp) must be on the disk being measured.
set -euo pipefail
# shellcheck source=bench/broker.sh
source "$(dirname "$0")/broker.sh"

rounds=${1:?usage: bench/storage_ab.sh ROUNDS SECONDS CASE...}
seconds=${2:?usage: bench/storage_ab.sh ROUNDS SECONDS CASE...}
shift 2
storage_parent=${STORAGE_PARENT:-/var/tmp}
work=$(mktemp -d "$storage_parent/gophermq-ab-XXXXXX")
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for round in $(seq "$rounds"); do
  for case in "$@"; do
    IFS=: read -r name build mode environment <<<"$case"
    dir="$work/$name-$round"
    storage=()
    if [ "$mode" != memory ]; then
      storage=(--storage.dir="$dir" --storage.fsync="$mode")
    fi
    # shellcheck disable=SC2086 # an empty environment adds nothing
    launch_broker "$work/broker.log" env $environment taskset -c 0 "$build/gophermq" broker \
      --broker.host=127.0.0.1 --broker.port=0 --monitoring.port=127.0.0.1:0 \
      --broker.max-pending=100000000 --broker.max-pending-bytes=17179869184 "${storage[@]}"
    result=$(taskset -c 1 "$build/bench/gophermq-bench" --port "$broker_port" --connections 64 \
      --duration "$seconds" --json)
    cpu_ns=$(cat /proc/"$broker_pid"/task/*/schedstat | awk '{n += $1} END {print n}')
    published=$(python3 -c '
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(next(l.split()[1] for l in text.splitlines() if l.startswith("gophermq_published_messages_total ")))' \
      "$metrics_port")
    kill "$broker_pid"
    wait "$broker_pid" || true
    broker_pid=""
    rm -rf "$dir"
    python3 -c '
import json, sys
r = json.loads(sys.argv[3])
rate, p50 = r["requests_per_second"], r["latency_ms"]["p50"]
cpu_us = float(sys.argv[4]) / 1000 / float(sys.argv[5])
print(f"round {sys.argv[1]} {sys.argv[2]:12} {rate:9.0f} req/s  p50 {p50:.3f} ms  "
      f"{cpu_us:.2f} us broker CPU per message")' \
      "$round" "$name" "$result" "$cpu_ns" "$published"
  done
done
