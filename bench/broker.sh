# shellcheck shell=bash
# Sourced by the storage benches: starting a broker and learning its ports.

# Runs the broker command line "$@" in the background with its stderr in LOG, waits for
# msg=ready, and sets broker_pid, broker_port and metrics_port. A broker that dies first exits the
# bench with its log.
launch_broker() {
  local log=$1
  shift
  # Emptied first: the shell may not have opened it yet when the wait below first reads it.
  : >"$log"
  "$@" 2>"$log" &
  broker_pid=$!
  until grep -q 'msg=ready' "$log"; do
    kill -0 "$broker_pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.05
  done
  # shellcheck disable=SC2034 # read by the bench that sourced this
  broker_port=$(sed -n 's/.*listener=api .* port=\([0-9]*\).*/\1/p' "$log")
  # shellcheck disable=SC2034
  metrics_port=$(sed -n 's/.*listener=metrics .* port=\([0-9]*\).*/\1/p' "$log")
}
