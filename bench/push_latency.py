#!/usr/bin/env python3
"""Publish-to-browser-event latency (issue 16; docs/delivery.md): headless Chromium (driven as
the browser tests drive it, test/browser/harness.py) opens test/browser/stream_page.html, whose
EventSource consumes an ephemeral stream from the broker on another origin and stamps each event
with performance.timeOrigin + performance.now() as it arrives. This process publishes RATE
messages a second for DURATION seconds, one POST /api/publish each over a keep-alive connection,
each carrying its send time (time.time(), the same wall clock on the same machine) as its data.
Latency is the arrival stamp minus the send time; the script prints p50, p99 and max.

With MODE=ws the page is ws_page.html over GET /api/ws instead.

Usage: bench/push_latency.py BUILD_DIR
  env: RATE=1000 DURATION=10 MODE=sse
Needs chromium and python3-websocket (`make test-deps`); prints a line and last a JSON object.
"""
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = os.path.join(HERE, "..", "test", "browser")
sys.path.insert(0, PAGES)
import harness  # noqa: E402

SUBJECT = "bench.latency"


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/push_latency.py BUILD_DIR")
    if (why := harness.missing()) is not None:
        sys.exit(why)
    rate = float(os.environ.get("RATE", 1000))
    duration = float(os.environ.get("DURATION", 10))
    mode = os.environ.get("MODE", "sse")
    count = int(rate * duration)
    binary = os.path.join(sys.argv[1], "gophermq")
    with harness.session(binary, PAGES) as session:
        port = session.broker_port
        if mode == "ws":
            url = f"ws://127.0.0.1:{port}/api/ws?subject={SUBJECT}"
            page = session.open_page("ws_page.html?" + urllib.parse.urlencode({"ws": url}))
            page.evaluate("window.opened")
        else:
            url = f"http://127.0.0.1:{port}/api/stream?subject={SUBJECT}"
            page = session.open_page("stream_page.html?" + urllib.parse.urlencode({"stream": url}))
            page.evaluate("window.subscribed")
        connection = http.client.HTTPConnection("127.0.0.1", port)
        started = time.perf_counter()
        for index in range(count):
            # Paced by the clock: message i leaves at i / RATE, late ones at once.
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps({"subject": SUBJECT, "data": repr(time.time() * 1000)})
            connection.request("POST", "/api/publish", body,
                               {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                sys.exit(f"publish answered {answer.status}")
        sent_for = time.perf_counter() - started
        connection.close()
        assert page.evaluate(f"window.receivedAll({count})") == count
        received = page.evaluate("window.received.map((m) => [m.data, m.at])")
        page.close()
    if [float(data) for data, _ in received] != sorted(float(data) for data, _ in received):
        sys.exit("messages arrived out of order")
    latencies = sorted(at - float(data) for data, at in received)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"{mode}: {count} messages at {count / sent_for:,.0f} msg/s: latency p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms, mean "
          f"{statistics.fmean(latencies):.2f} ms", flush=True)
    print(json.dumps({"mode": mode, "messages": count, "rate": round(count / sent_for),
                      "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                      "max_ms": round(latencies[-1], 3)}))


if __name__ == "__main__":
    main()
