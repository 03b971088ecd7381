#!/usr/bin/env python3
"""Smoke test of gophermq-bench against the real broker: every mode runs for a second and must
report answered requests, no errors and (where the mode fetches) delivered messages, in valid
JSON. Then the push benchmarks (bench/push.py, push_memory.py and, where Chromium and Debian's
python3-websocket are installed, push_latency.py) run for a fraction of a second each and must
report pushed messages. No timing is asserted: the figures depend on the machine.

Usage: bench_smoke.py BROKER BENCH (BROKER's directory is the build directory)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

BENCH_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench")
SYSTEM_PYTHON = "/usr/bin/python3"

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


def run_script(script, environment, *arguments, python=sys.executable):
    """The JSON object a push benchmark prints last, or the problem."""
    completed = subprocess.run(
        [python, os.path.join(BENCH_DIR, script), *arguments], capture_output=True, text=True,
        timeout=90, env={**os.environ, **environment})
    if completed.returncode != 0:
        return None, f"{script}: exit {completed.returncode}: {completed.stderr.strip()}"
    return json.loads(completed.stdout.splitlines()[-1]), None


def push_benchmarks(build):
    """The problems of the push benchmarks' shortest runs."""
    problems = []
    quick = {"ROUNDS": "1", "DURATION": "0.3", "WARMUP": "0.1", "WIDE": "20"}
    result, problem = run_script("push.py", quick, build)
    if problem is None and not all(result["median_pushed_per_second"].get(case, 0) > 0
                                   for case in ("sse-1", "sse-20", "ws-1")):
        problem = f"push.py: nothing pushed: {result}"
    problems.append(problem)
    for mode in ("sse", "ws"):
        result, problem = run_script("push_memory.py", {}, build, "50", mode)
        if problem is None and (result["streams"] != 50 or result["broker_exit"] != 0):
            problem = f"push_memory.py {mode}: {result}"
        problems.append(problem)
    latency_ready = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import websocket"], capture_output=True).returncode == 0
    if shutil.which("chromium") and latency_ready:
        result, problem = run_script("push_latency.py", {"RATE": "200", "DURATION": "0.5"},
                                     build, python=SYSTEM_PYTHON)
        if problem is None and not (result["messages"] == 100
                                    and result["p50_ms"] <= result["p99_ms"]):
            problem = f"push_latency.py: {result}"
        problems.append(problem)
    else:
        print("push_latency.py not run: chromium or python3-websocket is not installed")
    return [problem for problem in problems if problem is not None]


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
    failures += push_benchmarks(os.path.dirname(os.path.abspath(sys.argv[1])))
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
