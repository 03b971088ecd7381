#!/usr/bin/env python3
"""What push delivery sustains (issue 16; results in docs/delivery.md and docs/performance.md).
ROUNDS interleaved rounds (every case once per round, every other round backwards), then the
median of each case:

  sse-1       1 ephemeral SSE stream on one subject
  sse-WIDE    WIDE ephemeral SSE streams on that one subject: every message is pushed WIDE times
  ws-1        1 ephemeral WebSocket on one subject

One publisher sends POST /api/publish/batch (BATCH messages of SIZE bytes) over one keep-alive
connection, at most WINDOW messages ahead of the average stream. Throughput is messages pushed per
second, summed over the streams, counted by gophermq_push_bench: one epoll loop in C++ that counts
events or frames as their bytes pass. Each case gets a new broker. The broker and the client are
pinned to separate CPUs, as bench/ack.py pins them.

Usage: bench/push.py BUILD_DIR
  env: ROUNDS=3 DURATION=5 WARMUP=1 BATCH=100 SIZE=64 WINDOW=1024 WIDE=1000
       CASES (comma-separated names: only those cases)
       SERVER_CPUS, CLIENT_CPUS (comma-separated CPU numbers)
Prints a line per run, the medians, and last a JSON object of every run and the medians.
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_process import PinnedCpus  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/push.py BUILD_DIR")
    build = sys.argv[1]
    rounds = int(os.environ.get("ROUNDS", 3))
    wide = int(os.environ.get("WIDE", 1000))
    settings = {name: os.environ.get(name.upper(), default) for name, default in (
        ("duration", "5"), ("warmup", "1"), ("batch", "100"), ("size", "64"),
        ("window", "1024"))}
    cases = [("sse-1", "sse", 1), (f"sse-{wide}", "sse", wide), ("ws-1", "ws", 1)]
    if only := os.environ.get("CASES"):
        cases = [case for case in cases if case[0] in only.split(",")]
    cpus = PinnedCpus("push.py")
    server_cpus, client_cpus = cpus.server, cpus.client

    def run_case(name, mode, streams):
        broker = cpus.start_broker(os.path.join(build, "gophermq"), [
            f"--broker.max-connections={streams + 100}",
            "--broker.max-pending=100000000", "--broker.max-pending-bytes=17179869184"])
        try:
            completed = subprocess.run(
                cpus.client_command(
                    os.path.join(build, "bench", "gophermq_push_bench"), "--port",
                    str(broker.ports["api"]), "--mode", mode, "--streams", str(streams),
                    *[arg for name, value in settings.items() for arg in (f"--{name}", value)]),
                capture_output=True, text=True, timeout=120)
        finally:
            status = broker.stop()
        if completed.returncode != 0 or status != 0:
            sys.exit(f"{name}: bench exit {completed.returncode}, broker exit {status}: "
                     f"{completed.stderr.strip()}")
        result = json.loads(completed.stdout)
        print(f"{name:9} {result['pushed_per_second']:12,.0f} msg/s pushed "
              f"{result['bytes_per_second'] / 1e6:8,.1f} MB/s  "
              f"{result['published_per_second']:10,.0f} msg/s published  per stream "
              f"{result['fewest_per_stream']:,}..{result['most_per_stream']:,}", flush=True)
        return result

    print(f"push bench: {rounds} interleaved rounds of {settings['duration']} s per case "
          f"(+{settings['warmup']} s warm-up), batches of {settings['batch']} x "
          f"{settings['size']} B, window {settings['window']}, broker on CPUs "
          f"{sorted(server_cpus)}, client on CPUs {sorted(client_cpus)}", flush=True)
    by_round = []
    for round_ in range(1, rounds + 1):
        print(f"-- round {round_}", flush=True)
        order = cases if round_ % 2 == 1 else cases[::-1]
        by_round.append({name: run_case(name, mode, streams) for name, mode, streams in order})
    print("-- medians")
    medians = {}
    for name, _, _ in cases:
        medians[name] = statistics.median(r[name]["pushed_per_second"] for r in by_round)
        print(f"{name:9} {medians[name]:12,.0f} msg/s pushed")
    print(json.dumps({"settings": settings, "rounds": by_round, "median_pushed_per_second":
                      medians}))


if __name__ == "__main__":
    main()
