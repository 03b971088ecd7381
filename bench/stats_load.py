#!/usr/bin/env python3
"""Does polling stats slow publishing down when the broker holds many subjects? (issue 12, item 4)

Starts a broker, creates SUBJECTS subjects with one subscription each (pipelined subscribes on
one keep-alive connection) and one pending message on every tenth, then runs ROUNDS rounds of two
gophermq-bench runs each (`--mode pub` at a fixed --rate, so latency counts from when a publish
was due): one alone, one while POLLERS processes each request GET /api/stats and GET /metrics
in turn, PAUSE_MS apart. Prints the publish p50 of each run, the ratio with/without per round, and
the pollers' requests per second and median answer time.

The rounds interleave the two cases, so a machine shared with other work slows both alike:
compare the ratios, not the absolute figures across runs.

Usage: stats_load.py BINARY BENCH [--subjects N] [--rounds N] [--duration S] [--rate R]
                     [--connections N] [--pollers N] [--pause-ms MS]
"""
import argparse
import http.client
import json
import multiprocessing
import re
import socket
import statistics
import subprocess
import time

from broker_process import BrokerProcess

CHUNK = 1000  # requests in flight on the set-up connection


class Broker(BrokerProcess):
    def __init__(self, binary, subjects):
        super().__init__(binary, ["--threads=2", f"--broker.max-subscriptions={subjects + 1000}"])
        self.api_port = self.ports["api"]
        self.metrics_port = self.ports["metrics"]


def request(target, body):
    return (f"POST {target} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def pipelined(port, requests):
    """Sends the requests CHUNK at a time on one connection; fails unless every answer is 200."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        buffer = b""
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start:start + CHUNK]
            connection.sendall(b"".join(chunk))
            answered = 0
            while answered < len(chunk):
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    head = buffer[:end].decode()
                    length = int(re.search(r"(?i)content-length: *(\d+)", head).group(1))
                    if len(buffer) >= end + 4 + length:
                        if not head.startswith("HTTP/1.1 200"):
                            raise SystemExit("set-up refused: " + head.splitlines()[0] + " " +
                                             buffer[end + 4:end + 4 + length].decode())
                        buffer = buffer[end + 4 + length:]
                        answered += 1
                        continue
                data = connection.recv(1 << 20)
                if not data:
                    raise SystemExit("the broker closed the set-up connection")
                buffer += data


def set_up(broker, subjects):
    names = [f"stats.{i}" for i in range(subjects)]
    pipelined(broker.api_port,
              [request("/api/subscribe", json.dumps({"subject": name})) for name in names])
    pipelined(broker.api_port, [request("/api/publish", json.dumps({"subject": name, "data": "x"}))
                                for name in names[::10]])


def poll(api_port, metrics_port, pause, stop, results):
    connections = [http.client.HTTPConnection("127.0.0.1", api_port),
                   http.client.HTTPConnection("127.0.0.1", metrics_port)]
    targets = ["/api/stats", "/metrics"]
    counts = [0, 0]
    times = []
    while not stop.is_set():
        which = len(times) % 2
        begin = time.perf_counter()
        connections[which].request("GET", targets[which])
        response = connections[which].getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{targets[which]}: {response.status}")
        times.append(time.perf_counter() - begin)
        counts[which] += 1
        stop.wait(pause)
    results.put((counts, times))


def publish_p50(bench, broker, options):
    result = subprocess.run(
        [bench, "--port", str(broker.api_port), "--mode", "pub",
         "--connections", str(options.connections),
         "--rate", str(options.rate), "--duration", str(options.duration), "--warmup", "0.5",
         "--json"], check=True, capture_output=True, text=True, timeout=10 * options.duration + 60)
    return json.loads(result.stdout)["latency_ms"]["p50"]


def measure_with_pollers(bench, broker, options):
    stop = multiprocessing.Event()
    results = multiprocessing.Queue()
    pollers = [multiprocessing.Process(
        target=poll,
        args=(broker.api_port, broker.metrics_port, options.pause_ms / 1000, stop, results))
        for _ in range(options.pollers)]
    for poller in pollers:
        poller.start()
    begin = time.monotonic()
    p50 = publish_p50(bench, broker, options)
    seconds = time.monotonic() - begin
    stop.set()
    counts = [0, 0]
    times = []
    for _ in pollers:
        (stats, metrics), answers = results.get(timeout=60)
        counts[0] += stats
        counts[1] += metrics
        times += answers
    for poller in pollers:
        poller.join()
    return p50, counts[0] / seconds, counts[1] / seconds, statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("bench")
    parser.add_argument("--subjects", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3)
    # Publishes due faster than a stalled strand answers them would take the run far past its
    # --duration: many connections at a modest rate keep each run short either way.
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pollers", type=int, default=2)
    # Back to back (0), two Python pollers take a core of a small machine by themselves, and what
    # the publishes then wait for is CPU, whatever stats cost on the broker strand.
    parser.add_argument("--pause-ms", type=float, default=10)
    options = parser.parse_args()

    broker = Broker(options.binary, options.subjects)
    try:
        begin = time.monotonic()
        set_up(broker, options.subjects)
        print(f"{options.subjects} subjects set up in {time.monotonic() - begin:.1f} s",
              flush=True)
        ratios = []
        for round_number in range(1, options.rounds + 1):
            alone = publish_p50(options.bench, broker, options)
            polled, stats_rate, metrics_rate, answer_ms = measure_with_pollers(
                options.bench, broker, options)
            ratios.append(polled / alone)
            print(f"round {round_number}: publish p50 {alone:.3f} ms alone, {polled:.3f} ms with "
                  f"{options.pollers} pollers ({stats_rate:.0f} stats/s, {metrics_rate:.0f} "
                  f"metrics/s, median answer {answer_ms:.2f} ms): ratio {ratios[-1]:.2f}", flush=True)
        print(f"median ratio with/without pollers: {statistics.median(ratios):.2f}", flush=True)
    finally:
        begin = time.monotonic()
        status = broker.stop()
        print(f"broker exit {status} {time.monotonic() - begin:.1f} s after SIGTERM")


if __name__ == "__main__":
    main()
