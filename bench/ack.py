#!/usr/bin/env python3
"""What ack mode costs (issue 15; results in docs/performance.md). In one command, ROUNDS
interleaved rounds (every case once per round, so drift on a shared machine hits every case
alike; every other round runs them backwards), then the median of each case and the ratios of the target (ack >= 0.5x plain):

  plain            PUBLISHERS publishing connections and CONSUMERS members of one group, each
                   fetching up to MAX messages at a time (gophermq-bench --mode consume)
  ack              the same with ack-mode subscriptions: each fetch's receipts acked in one request
  plain-always     plain with storage on, storage.fsync=always
  ack-always       ack with storage on, storage.fsync=always

Throughput is messages consumed per second: fetched (plain) or fetched and acked (ack). The broker
and gophermq-bench are pinned to separate CPUs, as bench/compare.sh pins them (the broker on the
first half of this process's CPUs, the client on the rest). Every storage case gets a new, empty
directory under STORAGE_PARENT, which must be on the disk being measured (not tmpfs).

Usage: bench/ack.py BUILD_DIR
  env: ROUNDS=3 DURATION=10 (seconds per case) PUBLISHERS=4 CONSUMERS=4 MAX=10
       STORAGE_PARENT=/var/tmp SERVER_CPUS, CLIENT_CPUS (comma-separated CPU numbers)
Leaves nothing running and removes its directories.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_process import PinnedCpus  # noqa: E402

CASES = [("plain", None, []), ("ack", None, ["--ack"]),
         ("plain-always", "always", []), ("ack-always", "always", ["--ack"])]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/ack.py BUILD_DIR")
    build = sys.argv[1]
    rounds = int(os.environ.get("ROUNDS", 3))
    duration = os.environ.get("DURATION", "10")
    publishers = os.environ.get("PUBLISHERS", "4")
    consumers = os.environ.get("CONSUMERS", "4")
    fetch_max = os.environ.get("MAX", "10")
    cpus = PinnedCpus("ack.py")
    server_cpus, client_cpus = cpus.server, cpus.client
    storage_root = tempfile.mkdtemp(prefix="gophermq-ack-bench-",
                                    dir=os.environ.get("STORAGE_PARENT", "/var/tmp"))
    file_system = subprocess.run(["df", "--output=fstype", storage_root], capture_output=True,
                                 text=True, check=True).stdout.split()[-1]
    if file_system == "tmpfs":
        shutil.rmtree(storage_root)
        sys.exit("STORAGE_PARENT is tmpfs: fdatasync costs nothing there")

    def run_case(name, fsync, options, round_):
        extra = ["--broker.max-pending=100000000", "--broker.max-pending-bytes=17179869184"]
        if fsync:
            extra += [f"--storage.dir={storage_root}/{name}-{round_}", f"--storage.fsync={fsync}"]
        # What the previous case left dirty is written now, not during this case's fdatasyncs.
        os.sync()
        broker = cpus.start_broker(os.path.join(build, "gophermq"), extra)
        try:
            out = subprocess.run(
                cpus.client_command(
                    os.path.join(build, "bench", "gophermq-bench"), "--port",
                    str(broker.ports["api"]), "--mode", "consume", "--connections", publishers,
                    "--subscribers", consumers, "--max", fetch_max, "--threads",
                    str(len(client_cpus)), "--duration", duration, "--json", *options),
                capture_output=True, text=True).stdout
        finally:
            broker.stop()
            shutil.rmtree(f"{storage_root}/{name}-{round_}", ignore_errors=True)
        result = json.loads(out)
        errors = result["failed"] + result["transport_errors"]
        print(f"{name:14} {result['delivered_per_second']:10,.0f} msg/s consumed  "
              f"{result['published_per_second']:10,.0f} msg/s published  errors {errors}",
              flush=True)
        return result["delivered_per_second"]

    print(f"ack bench: {rounds} interleaved rounds of {duration} s per case, {publishers} "
          f"publishers, {consumers} consumers (one group), fetch max {fetch_max}, broker on CPUs "
          f"{sorted(server_cpus)}, client on CPUs {sorted(client_cpus)}; storage on "
          f"{file_system} ({storage_root})", flush=True)
    by_round = []
    try:
        for round_ in range(1, rounds + 1):
            print(f"-- round {round_}", flush=True)
            # Every other round backwards, so no case always follows the same one.
            order = CASES if round_ % 2 == 1 else CASES[::-1]
            by_round.append({name: run_case(name, fsync, options, round_)
                             for name, fsync, options in order})
    finally:
        shutil.rmtree(storage_root, ignore_errors=True)

    print("-- medians")
    median = {name: statistics.median(r[name] for r in by_round) for name, _, _ in CASES}
    for name, _, _ in CASES:
        print(f"{name:14} {median[name]:10,.0f} msg/s consumed")
    for ack, plain, note in (("ack", "plain", " (target >= 0.5)"),
                             ("ack-always", "plain-always", ""), ("ack-always", "plain", "")):
        per_round = ", ".join(f"{r[ack] / r[plain]:.2f}x" for r in by_round)
        print(f"{ack} / {plain}: {median[ack] / median[plain]:.2f}x{note}; per round {per_round}")


if __name__ == "__main__":
    main()
