#!/usr/bin/env bash
# The same wrk load against GopherMQ and against nginx and Nchan on this machine, interleaved
# (A B C D E F G, A B C D E F G, ...) so drift in a shared machine hits every case alike. Besides
# the wrk cases, gophermq-bench measures batch publish (100 messages per request) and the p99 of
# publish at a fixed rate (latency not hidden by coordinated omission). Prints each run, then per
# case the median and the ratios the performance targets use; with PLOT=file.png also draws them.
#
# Fair by construction: every server runs on the same CPUs (SERVER_CPUS) and the load generators
# on the others (CLIENT_CPUS), pinned with taskset, so no server competes with its client. The
# broker sizes its threads from the CPUs it may use; nginx runs with the worker count that was
# fastest for each of its cases on those CPUs, found by a short calibration before the rounds.
#
# Usage: bench/compare.sh BUILD_DIR
#   env: ROUNDS=3 DURATION=10 (seconds) CONNECTIONS=64 FIXED_RATE=20000 PLOT=
#        SERVER_CPUS (default: the first half of this process's CPUs) CLIENT_CPUS (the rest)
#        CALIBRATE_SECONDS=3
# Needs wrk, nginx, libnginx-mod-nchan and, for PLOT, gnuplot (`make bench-compare` installs
# them). Leaves nothing running.
set -euo pipefail

build=${1:?usage: bench/compare.sh BUILD_DIR}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
fixed_rate=${FIXED_RATE:-20000}
connections=${CONNECTIONS:-64}
calibrate_seconds=${CALIBRATE_SECONDS:-3}
# This process's CPUs as a list, split in two halves: servers on the first, clients on the rest.
mapfile -t cpus < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
if [ "${#cpus[@]}" -lt 2 ]; then
  echo "compare.sh needs at least 2 CPUs: servers and clients must not share one" >&2
  exit 2
fi
half=$(( ${#cpus[@]} / 2 ))
server_cpus=${SERVER_CPUS:-$(IFS=,; echo "${cpus[*]:0:$half}")}
client_cpus=${CLIENT_CPUS:-$(IFS=,; echo "${cpus[*]:$half}")}
count_cpus() { tr ',' '\n' <<<"$1" | wc -l; }
server_cpu_count=$(count_cpus "$server_cpus")
# One client thread per client CPU.
threads=$(count_cpus "$client_cpus")
on_client() { taskset -c "$client_cpus" "$@"; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
broker_pid=""
nginx_pid=""

cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# 16 bytes of data in every body, as in the targets.
body='{"subject":"bench","data":"0123456789abcdef"}'

start_broker() {
  # Emptied here, not only by the redirection below: that runs in the background, and until it has,
  # the file still holds the previous broker's msg=ready and port.
  : >"$work/broker.log"
  taskset -c "$server_cpus" "$build/gophermq" broker --broker.host=127.0.0.1 --broker.port=0 --monitoring.enable=false \
    --broker.max-pending=100000000 --broker.max-pending-bytes=17179869184 \
    --broker.async-queue-size=1000000 --logger.level=info 2>"$work/broker.log" &
  broker_pid=$!
  until grep -q 'msg=ready' "$work/broker.log"; do
    kill -0 "$broker_pid" || { cat "$work/broker.log"; exit 1; }
    sleep 0.05
  done
  broker_port=$(sed -n 's/.*listener=api .* port=\([0-9]*\).*/\1/p' "$work/broker.log")
  subscription=$(curl -s -d '{"subject":"bench"}' "127.0.0.1:$broker_port/api/subscribe" |
    sed 's/.*"id":"\([^"]*\)".*/\1/')
}

stop_broker() {
  kill "$broker_pid"
  wait "$broker_pid" || true
  broker_pid=""
}

# nginx with $1 workers on the server CPUs; /ceiling answers every request with a fixed JSON
# body, /pub publishes to an Nchan channel whose buffer is large enough that nothing is dropped
# during a run.
start_nginx() {
  local workers=$1
  nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes $workers;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body;
  nchan_shared_memory_size 1024M;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /ceiling {
      default_type "application/json; charset=UTF-8";
      return 200 '{"status":"ok"}\n';
    }
    location = /pub {
      nchan_publisher;
      nchan_channel_id bench;
      nchan_message_buffer_length 10000000;
      nchan_message_timeout 10m;
    }
  }
}
EOF
  # taskset itself (not a function) goes in the background, so $! is the server; its output goes
  # to files, so it holds no command substitution's pipe open.
  taskset -c "$server_cpus" nginx -c "$work/nginx.conf" -p "$work" >"$work/nginx.out" 2>&1 &
  nginx_pid=$!
  until curl -s -o /dev/null "127.0.0.1:$nginx_port/ceiling"; do
    kill -0 "$nginx_pid" || { cat "$work/nginx-error.log"; exit 1; }
    sleep 0.05
  done
}

cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
EOF

# Publish, then fetch up to 10 messages from the same subscription, alternating per connection.
cat >"$work/pubfetch.lua" <<EOF
local publish, fetch
function init(args)
  publish = wrk.format("POST", "/api/publish", {["Content-Type"] = "application/json"}, '$body')
  fetch = wrk.format("POST", "/api/fetch", {["Content-Type"] = "application/json"},
    '{"subject":"bench","id":"' .. args[1] .. '","max":10}')
end
local turn = 0
function request()
  turn = turn + 1
  if turn % 2 == 1 then return publish end
  return fetch
end
EOF

# Runs wrk; appends "case requests_per_s p99_ms errors" to the results.
measure() {
  local name=$1 url=$2 script=$3
  shift 3
  local out
  out=$(on_client wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$script" "$url" -- "$@")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print "non-2xx:", $5} /Socket errors/ {print $0}' <<<"$out" | tr '\n' ' ')
  printf '%-24s %12s req/s  p99 %8s ms  %s\n' "$name" "$rps" "$p99" "${errors:-}"
  echo "$name $rps $p99" >>"$work/results"
}

# Runs gophermq-bench against a fresh broker; appends "case rate p99_ms" to the results, where the
# rate is messages/s for batch and requests/s otherwise.
measure_bench() {
  local name=$1 rate_field=$2
  shift 2
  start_broker
  local out
  out=$(on_client "$build/bench/gophermq-bench" --port "$broker_port" --connections "$connections" \
    --threads "$threads" --duration "$duration" --json "$@")
  stop_broker
  local rate p99 errors
  read -r rate p99 errors <<<"$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r[sys.argv[2]], r["latency_ms"]["p99"], r["failed"] + r["transport_errors"])' "$out" "$rate_field")"
  printf '%-24s %12.0f %s  p99 %8.2f ms  errors %s\n' "$name" "$rate" \
    "$([ "$rate_field" = published_per_second ] && echo msg/s || echo req/s)" "$p99" "$errors"
  echo "$name $rate $p99" >>"$work/results"
}

stop_nginx() {
  kill "$nginx_pid"
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=""
}

# The requests/s of a short wrk run against nginx's $1 location with $2 workers.
calibration_rate() {
  start_nginx "$2"
  on_client wrk -t"$threads" -c"$connections" -d"${calibrate_seconds}s" -s "$work/post.lua" \
    "http://127.0.0.1:$nginx_port/$1" | awk '/^Requests\/sec:/ {print $2}'
  stop_nginx
}

# The worker count, from 1 to one more than the server CPUs, at which nginx's $1 location serves
# the most; both the ceiling and Nchan get their own best.
best_workers() {
  local best=1 best_rate=0 workers rate
  for workers in $(seq 1 $((server_cpu_count + 1))); do
    rate=$(calibration_rate "$1" "$workers")
    echo "calibration: /$1 with $workers nginx workers: $rate req/s" >&2
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' \
      "$rate" "$best_rate"; then
      best=$workers best_rate=$rate
    fi
  done
  echo "$best"
}

echo "wrk -t$threads -c$connections -d${duration}s, $rounds interleaved rounds, servers on CPUs" \
  "$server_cpus, clients on CPUs $client_cpus, $(date -u +%F)"
ceiling_workers=$(best_workers ceiling)
nchan_workers=$(best_workers pub)
echo "nginx workers: $ceiling_workers for return 200, $nchan_workers for Nchan"
for round in $(seq "$rounds"); do
  echo "-- round $round"
  start_nginx "$ceiling_workers"
  measure nginx-return-200 "http://127.0.0.1:$nginx_port/ceiling" "$work/post.lua"
  stop_nginx
  start_nginx "$nchan_workers"
  measure nchan-publish "http://127.0.0.1:$nginx_port/pub" "$work/post.lua"
  stop_nginx
  start_broker
  measure gophermq-publish "http://127.0.0.1:$broker_port/api/publish" "$work/post.lua"
  stop_broker
  start_broker
  measure gophermq-publish-async "http://127.0.0.1:$broker_port/api/publish/async" "$work/post.lua"
  stop_broker
  start_broker
  measure gophermq-pub-fetch "http://127.0.0.1:$broker_port" "$work/pubfetch.lua" "$subscription"
  stop_broker
  measure_bench gophermq-batch published_per_second --mode batch --batch 100
  measure_bench gophermq-publish-fixed requests_per_second --mode pub --rate "$fixed_rate"
done

echo "-- medians"
python3 - "$work/results" "$work/medians" "$fixed_rate" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rps, p99 = line.split()
    runs.setdefault(name, []).append((float(rps), float(p99)))
median = {name: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v))
          for name, v in runs.items()}
with open(sys.argv[2], "w") as out:
    for name, (rps, p99) in median.items():
        unit = "msg/s" if name == "gophermq-batch" else "req/s"
        print(f"{name:24} {rps:12.0f} {unit}  p99 {p99:7.2f} ms")
        out.write(f"{name} {rps:.0f} {p99:.3f}\n")
ceiling = median["nginx-return-200"][0]
nchan = median["nchan-publish"][0]
print("-- ratios")
print(f"publish / nginx ceiling      {median['gophermq-publish'][0] / ceiling:.2f}  (target >= 0.8)")
print(f"publish / nchan publish      {median['gophermq-publish'][0] / nchan:.2f}  (target >= 1.2; same CPUs, Nchan at its best)")
print(f"pub+fetch / nginx ceiling    {median['gophermq-pub-fetch'][0] / ceiling:.2f}  (target >= 0.6)")
print(f"async publish / ceiling      {median['gophermq-publish-async'][0] / ceiling:.2f}")
print(f"publish p99 (wrk, 64 conns)  {median['gophermq-publish'][1]:.2f} ms  (target < 2)")
print(f"publish p99 at {sys.argv[3]} req/s  {median['gophermq-publish-fixed'][1]:.2f} ms  (fixed rate)")
print(f"batch publish                {median['gophermq-batch'][0]:,.0f} msg/s  (target >= 2,000,000)")
EOF

if [ -n "${PLOT:-}" ]; then
  gnuplot -e "medians='$work/medians'; output='$PLOT'; machine='servers on CPUs $server_cpus, clients on $client_cpus, $(date -u +%F)'" \
    "$here/compare.gp"
  echo "plot written to $PLOT"
fi
