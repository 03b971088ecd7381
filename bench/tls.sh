#!/usr/bin/env bash
# Publish over TLS against plain HTTP in the same run, both with keep-alive, interleaved
# (plain tls, plain tls, ...) so drift on a shared machine hits both alike; then full TLS
# handshakes per second. Prints each round, the medians and the TLS/plain ratio.
#
# The broker runs on SERVER_CPUS and the clients on CLIENT_CPUS, pinned with taskset, so they never
# compete for a CPU. Two brokers run side by side there, one plain and one TLS; only one is loaded
# at a time.
#
# Usage: bench/tls.sh BUILD_DIR
#   env: ROUNDS=3 DURATION=5 (seconds) CONNECTIONS=16 HANDSHAKE_SECONDS=5
#        SERVER_CPUS (default: the first half of this process's CPUs) CLIENT_CPUS (the rest)
# Needs the openssl CLI. Leaves nothing running.
set -euo pipefail

build=${1:?usage: bench/tls.sh BUILD_DIR}
rounds=${ROUNDS:-3}
duration=${DURATION:-5}
connections=${CONNECTIONS:-16}
handshake_seconds=${HANDSHAKE_SECONDS:-5}
mapfile -t cpus < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
if [ "${#cpus[@]}" -lt 2 ]; then
  echo "tls.sh needs at least 2 CPUs: the broker and its clients must not share one" >&2
  exit 2
fi
half=$(( ${#cpus[@]} / 2 ))
server_cpus=${SERVER_CPUS:-$(IFS=,; echo "${cpus[*]:0:$half}")}
client_cpus=${CLIENT_CPUS:-$(IFS=,; echo "${cpus[*]:$half}")}
threads=$(tr ',' '\n' <<<"$client_cpus" | wc -l)
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A throwaway CA and a server certificate for 127.0.0.1 (P-256, as most deployments use).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/ca.key" -out "$work/ca.pem" -subj /CN=bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/server.key" -out "$work/server.csr" -subj /CN=127.0.0.1 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null

# start_broker NAME [ARGS...]: sets port_NAME.
start_broker() {
  local name=$1
  shift
  taskset -c "$server_cpus" "$build/gophermq" broker --broker.host=127.0.0.1 --broker.port=0 \
    --monitoring.enable=false --broker.max-pending=100000000 \
    --broker.max-pending-bytes=17179869184 "$@" 2>"$work/$name.log" &
  pids+=($!)
  until grep -q 'msg=ready' "$work/$name.log"; do
    kill -0 "${pids[-1]}" || { cat "$work/$name.log"; exit 1; }
    sleep 0.05
  done
  printf -v "port_$name" '%s' "$(sed -n 's/.*listener=api .* port=\([0-9]*\).*/\1/p' "$work/$name.log")"
}

start_broker plain
start_broker tls --tls.cert-file="$work/server.pem" --tls.key-file="$work/server.key"

# publish PORT [ARGS...]: messages per second of one run.
publish() {
  local port=$1
  shift
  taskset -c "$client_cpus" "$build/bench/gophermq-bench" --host 127.0.0.1 --port "$port" --mode pub \
    --connections "$connections" --threads "$threads" --duration "$duration" --warmup 1 \
    --size 16 --json "$@" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(int(r["published"] / r["seconds"]))'
}

plain=()
tls=()
for round in $(seq "$rounds"); do
  plain+=("$(publish "$port_plain")")
  tls+=("$(publish "$port_tls" --tls-ca "$work/ca.pem")")
  echo "round $round: plain ${plain[-1]} msg/s, tls ${tls[-1]} msg/s"
done

# One client, one full handshake (no resumption) per connection, as fast as it goes.
handshakes=$(taskset -c "$client_cpus" openssl s_time -connect "127.0.0.1:$port_tls" -new \
  -CAfile "$work/ca.pem" -time "$handshake_seconds" 2>&1 |
  sed -n 's/.* \([0-9.]*\) connections\/user sec.*/\1/p' | head -1)
handshakes_wall=$(taskset -c "$client_cpus" openssl s_time -connect "127.0.0.1:$port_tls" -new \
  -CAfile "$work/ca.pem" -time "$handshake_seconds" 2>&1 |
  sed -n 's/^\([0-9]*\) connections in \([0-9]*\) real seconds.*/\1 \2/p' | head -1)

python3 - "$handshakes" "$handshakes_wall" "${plain[*]}" "${tls[*]}" <<'PY'
import statistics, sys
per_user_sec, wall, plain, tls = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
p, t = statistics.median(map(int, plain)), statistics.median(map(int, tls))
print(f"median publish: plain {p:.0f} msg/s, tls {t:.0f} msg/s, tls/plain {t / p:.2f}")
if len(wall) == 2:
    print(f"full handshakes, one client: {int(wall[0]) / int(wall[1]):.0f}/s wall clock "
          f"({per_user_sec} per client CPU second)")
PY
