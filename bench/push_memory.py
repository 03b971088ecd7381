#!/usr/bin/env python3
"""What an open stream costs the broker in memory (issue 16; docs/delivery.md): STREAMS ephemeral
SSE streams (or WebSockets) on one subject, and the broker's RSS from /proc before they open,
once all are open and idle, and after one publish has pushed one message to each, divided by
STREAMS. Every figure is read once the broker has answered what it measures (each stream's
subscribed event, or head, and its message), never after a sleep.

Usage: bench/push_memory.py BUILD_DIR [STREAMS] [sse|ws]
  Raises this process's open-file limit to its hard limit (the broker inherits it); STREAMS
  (default 10000) needs about that many descriptors in each process.
Prints a line per step and last a JSON object.
"""
import json
import os
import resource
import selectors
import socket
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_process import BrokerProcess  # noqa: E402

SUBJECT = "bench.memory"
DEADLINE_SECONDS = 60


def read_until_all(connections, marker):
    """Reads every connection until what it received since the last call holds `marker`."""
    selector = selectors.DefaultSelector()
    waiting = {}
    for connection in connections:
        buffer = bytearray()
        waiting[connection.fileno()] = (connection, buffer)
        selector.register(connection, selectors.EVENT_READ)
    while waiting:
        ready = selector.select(timeout=DEADLINE_SECONDS)
        if not ready:
            raise SystemExit(f"{len(waiting)} streams did not receive {marker!r} in time")
        for key, _ in ready:
            connection, buffer = waiting[key.fd]
            chunk = connection.recv(65536)
            if not chunk:
                raise SystemExit("a stream ended")
            buffer += chunk
            if marker in buffer:
                selector.unregister(connection)
                del waiting[key.fd]
    selector.close()


def main():
    if len(sys.argv) not in (2, 3, 4):
        sys.exit("usage: bench/push_memory.py BUILD_DIR [STREAMS] [sse|ws]")
    build = sys.argv[1]
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    mode = sys.argv[3] if len(sys.argv) > 3 else "sse"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < streams + 200:
        sys.exit(f"the open-file limit {hard} is too low for {streams} streams")
    broker = BrokerProcess(os.path.join(build, "gophermq"),
                           [f"--broker.max-connections={streams + 100}", "--threads=2"])
    port = broker.ports["api"]
    if mode == "ws":
        request = (f"GET /api/ws?subject={SUBJECT} HTTP/1.1\r\nHost: bench\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        opened = b"\r\n\r\n"
    else:
        request = f"GET /api/stream?subject={SUBJECT} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        opened = b"}\n\n"
    connections = []
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats") as answer:
            answer.read()
        before = broker.status_bytes("VmRSS")
        print(f"broker RSS before: {before / 2**20:.1f} MiB", flush=True)
        for _ in range(streams):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(request)
            connections.append(connection)
        read_until_all(connections, opened)
        idle = broker.status_bytes("VmRSS")
        print(f"{streams} {mode} streams open and idle: {idle / 2**20:.1f} MiB, "
              f"{(idle - before) / streams:,.0f} B per stream", flush=True)
        body = json.dumps({"subject": SUBJECT, "data": "x" * 64}).encode()
        publish = urllib.request.Request(f"http://127.0.0.1:{port}/api/publish", data=body,
                                         method="POST")
        with urllib.request.urlopen(publish) as answer:
            answer.read()
        read_until_all(connections, b"x" * 64)
        after = broker.status_bytes("VmRSS")
        print(f"after one message each: {after / 2**20:.1f} MiB, "
              f"{(after - before) / streams:,.0f} B per stream", flush=True)
    finally:
        for connection in connections:
            connection.close()
        status = broker.stop()
    print(json.dumps({"mode": mode, "streams": streams, "rss_before": before, "rss_idle": idle,
                      "rss_after_one_message": after,
                      "bytes_per_idle_stream": round((idle - before) / streams),
                      "bytes_per_stream_after_one_message": round((after - before) / streams),
                      "broker_exit": status}))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
