#!/usr/bin/env python3
"""Smoke test of gophermq-bench against the real broker: every mode runs for a second and must
report answered requests, no errors and (where the mode fetches) delivered messages, in valid
JSON. No timing is asserted: the figures depend on the machine.

Usage: bench_smoke.py BROKER BENCH
"""
import json
import re
import signal
import subprocess
import sys

FETCHING_MODES = {"pubfetch", "fanout", "longpoll", "consume"}
# Each mode with the extra options it is also run with.
MODES = [("pub",), ("pub-async",), ("pubfetch",), ("fanout",), ("batch",), ("longpoll",),
         ("consume",), ("consume", "--ack")]


def start_broker(binary):
    process = subprocess.Popen(
        [binary, "broker", "--broker.host=127.0.0.1", "--broker.port=0",
         "--monitoring.port=127.0.0.1:0", "--threads=2"], stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        match = re.search(r"listener=api address=\S+ port=(\d+)", line)
        if match:
            port = int(match.group(1))
        if "msg=ready" in line:
            return process, port
    raise SystemExit("the broker did not start")


def run_mode(bench, port, mode, *extra):
    completed = subprocess.run(
        [bench, "--port", str(port), "--mode", mode, "--connections", "4", "--duration", "1",
         "--warmup", "0.2", "--rate", "2000", "--json", *extra],
        capture_output=True, text=True, timeout=60)
    if completed.returncode != 0:
        return f"{mode}: exit {completed.returncode}: {completed.stderr.strip()}"
    result = json.loads(completed.stdout)
    problems = []
    if result["mode"] != mode:
        problems.append(f"mode {result['mode']}")
    if result["requests"] <= 0 or result["published"] <= 0:
        problems.append("nothing published")
    if mode in FETCHING_MODES and result["delivered"] <= 0:
        problems.append("nothing delivered")
    latency = result["latency_ms"]
    if not 0 < latency["p50"] <= latency["p99"] <= latency["max"]:
        problems.append(f"latency percentiles out of order: {latency}")
    if result["failed"] or result["transport_errors"]:
        problems.append("errors reported")
    return f"{mode}: {', '.join(problems)}: {result}" if problems else None


def main():
    broker, port = start_broker(sys.argv[1])
    try:
        failures = [problem for mode in MODES
                    if (problem := run_mode(sys.argv[2], port, *mode)) is not None]
        bad_option = subprocess.run([sys.argv[2], "--mode", "nope"], capture_output=True,
                                    text=True, timeout=10)
        if bad_option.returncode != 2 or "unknown --mode nope" not in bad_option.stderr:
            failures.append(f"bad --mode: exit {bad_option.returncode} {bad_option.stderr!r}")
    finally:
        broker.send_signal(signal.SIGTERM)
        status = broker.wait(timeout=30)
    if status != 0:
        failures.append(f"broker exit status {status}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
