#!/usr/bin/env bash
# What durable storage costs (issue 14; results in docs/storage.md). In one command, ROUNDS
# interleaved rounds (every case once per round, so drift on a shared machine hits every case
# alike), then the median of each case:
#
#   memory-publish       publish at CONNECTIONS connections, storage off (the reference)
#   always-publish       the same with storage.fsync=always (every answer waits for its fdatasync)
#   interval-publish     the same with storage.fsync=interval (100ms)
#   always-batch         batch publish (BATCH messages a request), fsync=always, in messages/s
#   always-fixed-rate    publish at a fixed FIXED_RATE requests/s, fsync=always: p50 and p99
#   bytes-per-message    log bytes written per stored 16-byte message, single and batch publish
#   restart              RESTART_MESSAGES pending 16-byte messages: time from exec to msg=ready,
#                        twice (the first start replays the publishes, the second the checkpoint
#                        the first wrote), and the pending count each start recovered
#
# The broker and gophermq-bench are pinned to separate CPUs with taskset, as bench/compare.sh
# does (servers on the first half of this process's CPUs, clients on the rest). Every broker gets
# a new, empty storage directory under STORAGE_PARENT, which must be on the disk being measured
# (not tmpfs); its file system is printed. Bytes per message are counted from the log's frames
# (up to the end of the last frame of each file): gophermq_storage_bytes counts the space files
# reserve ahead, so it grows in steps of storage.file-bytes.
#
# Usage: bench/storage.sh BUILD_DIR      (or `make bench-storage`)
#   env: ROUNDS=3 DURATION=10 (seconds per throughput case) CONNECTIONS=64 BATCH=100
#        FIXED_RATE=10000 RESTART_MESSAGES=1000000 STORAGE_PARENT=/var/tmp
#        SERVER_CPUS, CLIENT_CPUS (as in compare.sh)
# Needs python3 and taskset. Leaves nothing running and removes its directories.
set -euo pipefail
# shellcheck source=bench/broker.sh
source "$(dirname "$0")/broker.sh"

build=${1:?usage: bench/storage.sh BUILD_DIR}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
batch=${BATCH:-100}
fixed_rate=${FIXED_RATE:-10000}
restart_messages=${RESTART_MESSAGES:-1000000}
storage_parent=${STORAGE_PARENT:-/var/tmp}
mapfile -t cpus < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
if [ "${#cpus[@]}" -lt 2 ]; then
  echo "storage.sh needs at least 2 CPUs: the broker and its client must not share one" >&2
  exit 2
fi
half=$(( ${#cpus[@]} / 2 ))
server_cpus=${SERVER_CPUS:-$(IFS=,; echo "${cpus[*]:0:$half}")}
client_cpus=${CLIENT_CPUS:-$(IFS=,; echo "${cpus[*]:$half}")}
threads=$(tr ',' '\n' <<<"$client_cpus" | wc -l)
on_client() { taskset -c "$client_cpus" "$@"; }
work=$(mktemp -d)
storage_root=$(mktemp -d "$storage_parent/gophermq-storage-bench-XXXXXX")
broker_pid=""

cleanup() {
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$work" "$storage_root"
}
trap cleanup EXIT

fs_type=$(df -T "$storage_root" | awk 'NR == 2 {print $2 " on " $1}')
if [[ $fs_type == tmpfs* ]]; then
  echo "STORAGE_PARENT=$storage_parent is tmpfs: fdatasync costs nothing there" >&2
  exit 2
fi

# Limits out of the way: every case stores what it publishes until its broker stops.
broker_args=(--broker.host=127.0.0.1 --broker.port=0 --monitoring.port=127.0.0.1:0
  --broker.max-pending=100000000 --broker.max-pending-bytes=17179869184 --logger.level=info)
runs=0

# Starts a broker on the server CPUs with a new storage directory when $1 is a fsync mode, none
# when it is `memory`; the rest are extra options. Sets broker_port, metrics_port, storage_dir.
start_broker() {
  local mode=$1
  shift
  runs=$((runs + 1))
  storage_dir=""
  local storage=()
  if [ "$mode" != memory ]; then
    storage_dir="$storage_root/run-$runs"
    storage=(--storage.dir="$storage_dir" --storage.fsync="$mode")
  fi
  launch_broker "$work/broker-$runs.log" taskset -c "$server_cpus" "$build/gophermq" broker \
    "${broker_args[@]}" "${storage[@]}" "$@"
}

stop_broker() {
  kill "$broker_pid"
  wait "$broker_pid" || true
  broker_pid=""
  if [ -n "$storage_dir" ]; then
    rm -rf "$storage_dir"
  fi
}

# Runs gophermq-bench against the running broker and prints its JSON answer.
bench() {
  on_client "$build/bench/gophermq-bench" --port "$broker_port" --connections "$connections" \
    --threads "$threads" --json "$@"
}

# Appends "case value p99_ms round" to the results and prints the run.
record() {
  printf '%-22s %14.0f %-5s  p50 %8.3f ms  p99 %8.3f ms  errors %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
  echo "$1 $2 $5 $round" >>"$work/results"
}

# Context switches of every thread of the broker since it started, voluntary and not.
context_switches() {
  cat /proc/"$broker_pid"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'
}

# CPU time the broker's threads have run since it started, in nanoseconds: all of them, and the
# log's sync thread (named gophermq-sync), whose time is almost all fdatasync.
cpu_times() {
  local total=0 sync=0 task run
  for task in /proc/"$broker_pid"/task/*; do
    read -r run _ <"$task/schedstat"
    total=$((total + run))
    if [ "$(cat "$task/comm")" = gophermq-sync ]; then
      sync=$((sync + run))
    fi
  done
  echo "$total $sync"
}

# One gophermq-bench case on a fresh broker: NAME FSYNC_MODE RATE_FIELD BENCH_OPTIONS...
# Prints the broker's context switches and CPU time per published message (warm-up included),
# which the load of other processes on the machine changes much less than the rates. With
# storage, also how the group commit went: fdatasyncs per second, their mean duration, the sync
# thread's CPU time per fdatasync, and messages published per fdatasync.
throughput_case() {
  local name=$1 mode=$2 field=$3
  shift 3
  start_broker "$mode"
  local out syncs=0 sync_seconds=0 published=0 switches cpu_total cpu_sync
  out=$(bench --duration "$duration" "$@")
  switches=$(context_switches)
  read -r cpu_total cpu_sync <<<"$(cpu_times)"
  published=$(metric gophermq_published_messages_total)
  if [ "$mode" != memory ]; then
    syncs=$(metric gophermq_storage_fsync_seconds_count)
    sync_seconds=$(metric gophermq_storage_fsync_seconds_sum)
  fi
  stop_broker
  local rate p50 p99 errors
  read -r rate p50 p99 errors <<<"$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r[sys.argv[2]], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
      r["failed"] + r["transport_errors"])' "$out" "$field")"
  record "$name" "$rate" "$([ "$field" = published_per_second ] && echo msg/s || echo req/s)" \
    "$p50" "$p99" "$errors"
  python3 -c '
import sys
switches, published, cpu_ns = map(float, sys.argv[1:])
print(" " * 22, f"{switches / max(published, 1):14.3f} context switches, "
      f"{cpu_ns / 1000 / max(published, 1):.2f} us of broker CPU per message")' \
    "$switches" "$published" "$cpu_total"
  if [ "$mode" != memory ]; then
    python3 -c '
import sys
syncs, seconds, published, duration, sync_ns = map(float, sys.argv[1:])
print(" " * 22, f"{syncs / duration:14.0f} fdatasync/s, mean {1000 * seconds / max(syncs, 1):.3f} ms, "
      f"{sync_ns / 1000 / max(syncs, 1):.0f} us of sync-thread CPU each, "
      f"{published / max(syncs, 1):.1f} messages per fdatasync")' \
      "$syncs" "$sync_seconds" "$published" "$duration" "$cpu_sync"
  fi
}

# Bytes the log's frames take: each frame is a 4-byte little-endian length, a 4-byte CRC-32C and
# the record; a zero length where a frame would start is the preallocated rest of the file.
used_log_bytes() {
  python3 - "$storage_dir" <<'EOF'
import os, sys
total = 0
for name in os.listdir(sys.argv[1]):
    if not name.endswith(".wal"):
        continue
    data = open(os.path.join(sys.argv[1], name), "rb").read()
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "little")
        if size == 0:
            break
        offset += 8 + size
    total += offset
print(total)
EOF
}

metric() {
  python3 - "$metrics_port" "$1" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(next(line.split()[1] for line in text.splitlines() if line.split(" ")[0] == sys.argv[2]))
EOF
}

# Log bytes per stored message: two seconds of load with NAME's BENCH_OPTIONS, over the messages
# the broker counted as published (warm-up included, as the bytes are). fsync=never: the bytes
# do not depend on the mode, and the case runs faster.
bytes_case() {
  local name=$1
  shift
  start_broker never
  local before published
  before=$(used_log_bytes)
  bench --duration 2 --warmup 0 "$@" >/dev/null
  published=$(metric gophermq_published_messages_total)
  local per_message
  per_message=$(python3 -c 'import sys; print(f"{(int(sys.argv[1]) - int(sys.argv[2])) / float(sys.argv[3]):.1f}")' \
    "$(used_log_bytes)" "$before" "$published")
  stop_broker
  printf '%-22s %14s B/msg  over %s messages\n' "$name" "$per_message" "${published%.*}"
  echo "$name $per_message 0 $round" >>"$work/results"
}

# RESTART_MESSAGES pending on one subscription, published in batches of 1000; then two restarts,
# each timed from exec to msg=ready, each checked to hold every message.
restart_case() {
  start_broker always
  python3 - "$broker_port" "$restart_messages" <<'EOF'
import http.client, json, sys
port, total = int(sys.argv[1]), int(sys.argv[2])
connection = http.client.HTTPConnection("127.0.0.1", port)
def post(path, body):
    connection.request("POST", path, json.dumps(body))
    answer = connection.getresponse()
    text = answer.read()
    if answer.status != 200:
        sys.exit(f"{path}: {answer.status} {text!r}")
    return json.loads(text)
post("/api/subscribe", {"subject": "restart"})
sent = 0
while sent < total:
    count = min(1000, total - sent)
    post("/api/publish/batch", {"subject": "restart", "data": ["0123456789abcdef"] * count})
    sent += count
EOF
  local dir=$storage_dir
  kill "$broker_pid"
  wait "$broker_pid" || true
  broker_pid=""
  local start
  for start in 1 2; do
    taskset -c "$server_cpus" python3 - "$build/gophermq" "$restart_messages" "$start" \
      "${broker_args[@]}" --storage.dir="$dir" <<'EOF' >>"$work/restart"
import re, signal, subprocess, sys, time, urllib.request, json
binary, expected, start = sys.argv[1], int(sys.argv[2]), sys.argv[3]
began = time.monotonic()
broker = subprocess.Popen([binary, "broker", *sys.argv[4:]], stderr=subprocess.PIPE, text=True)
lines = []
for line in broker.stderr:
    lines.append(line)
    if "msg=ready" in line:
        break
ready = time.monotonic() - began
log = "".join(lines)
port = re.search(r"listener=api .* port=(\d+)", log).group(1)
recovery_ms = re.search(r"msg=recovered .* ms=(\d+)", log).group(1)
stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats?limit=0").read())
pending = stats["totals"]["pending_messages"]
broker.send_signal(signal.SIGTERM)
broker.communicate()
print(f"restart-{start}", f"{ready:.3f}", recovery_ms, pending, expected)
EOF
  done
  rm -rf "$dir"
  tail -n 2 "$work/restart" | while read -r name seconds recovery pending expected; do
    printf '%-22s %14s s      recovery %s ms, %s of %s messages pending after it%s\n' \
      "$name" "$seconds" "$recovery" "$pending" "$expected" \
      "$([ "$pending" = "$expected" ] && echo "" || echo "  LOST MESSAGES")"
  done
}

echo "storage bench: $rounds interleaved rounds, $connections connections, ${duration}s per case," \
  "broker on CPUs $server_cpus, client on CPUs $client_cpus, $(date -u +%F)"
echo "storage directory on $fs_type ($storage_parent); $(nproc) CPUs: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | sort -u)"
for round in $(seq "$rounds"); do
  echo "-- round $round"
  throughput_case memory-publish memory requests_per_second --mode pub
  throughput_case always-publish always requests_per_second --mode pub
  throughput_case interval-publish interval requests_per_second --mode pub
  throughput_case always-batch always published_per_second --mode batch --batch "$batch"
  throughput_case always-fixed-rate always requests_per_second --mode pub --rate "$fixed_rate"
  bytes_case bytes-single-publish --mode pub
  bytes_case bytes-batch-publish --mode batch --batch "$batch"
  restart_case
done

echo "-- medians"
python3 - "$work/results" "$work/restart" "$fixed_rate" "$batch" "$restart_messages" <<'EOF'
import statistics, sys
runs = {}
by_round = {}
for line in open(sys.argv[1]):
    name, value, p99, round_ = line.split()
    runs.setdefault(name, []).append((float(value), float(p99)))
    by_round.setdefault(round_, {})[name] = float(value)
median = {name: (statistics.median(v for v, _ in r), statistics.median(p for _, p in r))
          for name, r in runs.items()}
restarts = {}
for line in open(sys.argv[2]):
    name, seconds, recovery_ms, pending, expected = line.split()
    restarts.setdefault(name, []).append((float(seconds), float(recovery_ms), pending == expected))
memory = median["memory-publish"][0]
print(f"memory-only publish          {memory:12,.0f} req/s  p99 {median['memory-publish'][1]:.2f} ms")
for mode, target in (("always", 0.7), ("interval", 0.9)):
    rate, p99 = median[f"{mode}-publish"]
    # The same ratio within each round, where the two cases ran a minute apart at most.
    ratios = sorted(r[f"{mode}-publish"] / r["memory-publish"] for r in by_round.values())
    print(f"fsync={mode:8} publish      {rate:12,.0f} req/s  p99 {p99:.2f} ms  "
          f"{rate / memory:.2f}x memory-only (target >= {target}); per round "
          + ", ".join(f"{r:.2f}x" for r in ratios))
print(f"fsync=always batch of {sys.argv[4]:4}  {median['always-batch'][0]:12,.0f} msg/s  "
      "(target >= 1,000,000)")
print(f"fsync=always at {sys.argv[3]} req/s  p99 {median['always-fixed-rate'][1]:.2f} ms")
print(f"log bytes per 16-byte message  {median['bytes-single-publish'][0]:.1f} single, "
      f"{median['bytes-batch-publish'][0]:.1f} batch (target <= 64)")
for name, values in sorted(restarts.items()):
    whole = "all kept" if all(ok for *_, ok in values) else "MESSAGES LOST in some round"
    print(f"{name} with {int(sys.argv[5]):,} pending  "
          f"{statistics.median(s for s, _, _ in values):.2f} s exec to ready, recovery "
          f"{statistics.median(r for _, r, _ in values):.0f} ms ({whole}; target < 3 s)")
EOF
