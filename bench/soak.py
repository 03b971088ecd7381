#!/usr/bin/env python3
"""Soak: many clients publishing, fetching, long-polling, disconnecting mid-request and sending
garbage at one broker for a bounded time, then checks that nothing leaked and nothing was lost.

Afterwards:
  - publishes were answered 200 and messages delivered (a broker refusing everything fails);
  - every publish answered 200 was fetched exactly once by each subscriber of its subject (each
    group once); a publish whose client left before the answer was fetched at most once;
  - the pending count the broker reports equals what the subscribers could still fetch, and is 0
    after they did;
  - process_open_fds is back to its baseline and RSS is near its baseline.

Usage: soak.py BINARY [--duration SECONDS] [--json] [--no-rss-check]
"""
import argparse
import asyncio
import json
import os
import random
import re
import sys
import time

from broker_process import BrokerProcess

SUBJECTS = [f"soak.{i}" for i in range(6)]
PUBLISHERS = 8
CHAOS_WORKERS = 6
RSS_ALLOWANCE = 16 * 1024 * 1024  # allocator caches and grown per-thread arenas


class Broker(BrokerProcess):
    def __init__(self, binary):
        super().__init__(binary, [
            "--threads=2", "--broker.max-connections=300", "--broker.header-timeout=1s",
            "--broker.read-timeout=2s", "--broker.idle-timeout=5s",
            "--broker.max-body-bytes=65536", "--broker.max-pending=200000",
            # The limits a hostile client meets first, on but above what honest clients need:
            # a publish they refuse is not acknowledged, so the checks below still hold.
            "--broker.max-subscriptions=5000", "--broker.max-pending-per-queue=50000",
            "--broker.slow-queue-policy=reject", "--broker.max-receiving-bytes=4194304"])
        self.api = self.ports["api"]
        self.metrics = self.ports["metrics"]


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    @classmethod
    async def open(cls, port):
        self = cls()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def request(self, method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: soak\r\nContent-Length: {len(data)}\r\n\r\n"
        self.writer.write(head.encode() + data)
        return await self.response()

    async def response(self):
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, (json.loads(body) if body else None)

    def close(self):
        self.writer.close()


async def request_until_served(port, method, path, body):
    """On a fresh connection; retried while the broker refuses connections over its limit."""
    while True:
        try:
            connection = await Connection.open(port)
            status, answer = await connection.request(method, path, body)
            connection.close()
            if status != 503:
                return status, answer
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        await asyncio.sleep(0.05)


async def metric(port, name):
    match = re.search(rf"^{re.escape(name)} (\S+)$", await metrics_text(port), re.M)
    return float(match.group(1))


async def metrics_text(port):
    connection = await Connection.open(port)
    connection.writer.write(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n")
    status_line = await connection.reader.readline()
    length = 0
    while True:
        line = await connection.reader.readline()
        if line == b"\r\n":
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    text = (await connection.reader.readexactly(length)).decode()
    connection.close()
    assert b"200" in status_line
    return text


class Soak:
    def __init__(self, broker, duration):
        self.broker = broker
        self.duration = duration
        self.stopping = False
        self.acked = {s: [] for s in SUBJECTS}      # published and answered 200
        self.maybe = set()                          # published, client left before the answer
        self.received = {}                          # subscription key -> payloads
        self.subscriptions = []                     # (key, subject, id)
        self.counts = {}
        self.sequence = 0

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def payload(self):
        self.sequence += 1
        return f"m{self.sequence}"

    async def subscribe_all(self):
        connection = await Connection.open(self.broker.api)
        for subject in SUBJECTS:
            for key, group in ((f"{subject}/a", None), (f"{subject}/b", None),
                               (f"{subject}/g", "g"), (f"{subject}/g", "g")):
                body = {"subject": subject} | ({"group": group} if group else {})
                status, answer = await connection.request("POST", "/api/subscribe", body)
                assert status == 200, (status, answer)
                self.subscriptions.append((key, subject, answer["id"]))
                self.received.setdefault(key, [])
        connection.close()

    async def publisher(self):
        connection = await Connection.open(self.broker.api)
        while not self.stopping:
            subject = random.choice(SUBJECTS)
            if random.random() < 0.2:
                data = [self.payload() for _ in range(random.randint(2, 5))]
                status, _ = await connection.request(
                    "POST", "/api/publish/batch", {"subject": subject, "data": data})
            else:
                data = [self.payload()]
                status, _ = await connection.request(
                    "POST", "/api/publish", {"subject": subject, "data": data[0]})
            if status == 200:
                self.acked[subject].extend(data)
            self.count(f"publish {status}")
        connection.close()

    async def fetcher(self, key, subject, sid):
        connection = await Connection.open(self.broker.api)
        while not self.stopping:
            status, answer = await connection.request(
                "POST", "/api/fetch", {"subject": subject, "id": sid, "max": 50, "wait_ms": 200})
            assert status == 200, (status, answer)
            self.received[key].extend(answer["data"])
            self.count("fetch 200")
        connection.close()

    async def chaos(self):
        port = self.broker.api
        while not self.stopping:
            kind = random.randrange(8)
            self.count(f"chaos {CHAOS_KINDS[kind]}")
            try:
                await CHAOS[kind](self, port)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.count("chaos connection ended by server")

    async def run(self):
        await self.subscribe_all()
        await asyncio.sleep(0)  # baseline below is taken with the subscriptions in place
        baseline_fds = await metric(self.broker.metrics, "process_open_fds")
        baseline_rss = await metric(self.broker.metrics, "process_resident_memory_bytes")
        started = time.monotonic()
        fetchers = [asyncio.create_task(self.fetcher(*s)) for s in self.subscriptions]
        workers = [asyncio.create_task(self.publisher()) for _ in range(PUBLISHERS)]
        workers += [asyncio.create_task(self.chaos()) for _ in range(CHAOS_WORKERS)]
        peak_rss = baseline_rss
        while time.monotonic() - started < self.duration:
            await asyncio.sleep(1)
            peak_rss = max(peak_rss, await metric(self.broker.metrics,
                                                  "process_resident_memory_bytes"))
        self.stopping = True
        await asyncio.gather(*workers)
        await asyncio.gather(*fetchers)
        elapsed = time.monotonic() - started

        pending_before = await metric(self.broker.metrics, "gophermq_pending_messages")
        drained = await self.drain()
        pending_after = await metric(self.broker.metrics, "gophermq_pending_messages")
        bytes_after = await metric(self.broker.metrics, "gophermq_pending_bytes")
        fds = await self.settled_fds(baseline_fds)
        rss = await metric(self.broker.metrics, "process_resident_memory_bytes")
        lost, duplicated, unexpected = self.check_delivery()
        limit_hits = {key: int(float(value)) for key, value in re.findall(
            r'^gophermq_limit_hits_total\{limit="([^"]+)"\} (\S+)$',
            await metrics_text(self.broker.metrics), re.M) if float(value) > 0}
        total_acked = sum(len(v) for v in self.acked.values())
        total_delivered = sum(len(v) for v in self.received.values())
        requests = sum(v for k, v in self.counts.items() if not k.startswith("chaos connection"))
        return {
            "duration_s": round(elapsed, 1),
            "requests": requests,
            "requests_per_s": round(requests / elapsed),
            "acknowledged_publishes": total_acked,
            "unacknowledged_publishes": len(self.maybe),
            "delivered": total_delivered,
            "lost": lost, "duplicated": duplicated, "unexpected": unexpected,
            "pending_before_drain": int(pending_before), "drained": drained,
            "pending_after_drain": int(pending_after), "pending_bytes_after_drain": int(bytes_after),
            "open_fds_baseline": int(baseline_fds), "open_fds_after": int(fds),
            "rss_baseline_mib": round(baseline_rss / 2**20, 1),
            "rss_peak_mib": round(peak_rss / 2**20, 1),
            "rss_after_mib": round(rss / 2**20, 1),
            "limit_hits": dict(sorted(limit_hits.items())),
            "counts": dict(sorted(self.counts.items())),
        }

    async def drain(self):
        connection = await Connection.open(self.broker.api)
        drained = 0
        for key, subject, sid in self.subscriptions:
            while True:
                status, answer = await connection.request(
                    "POST", "/api/fetch", {"subject": subject, "id": sid, "max": 1000})
                assert status == 200, (status, answer)
                if not answer["data"]:
                    break
                drained += len(answer["data"])
                self.received[key].extend(answer["data"])
        connection.close()
        return drained

    async def settled_fds(self, baseline):
        """Connections end on the server's own time (timeouts, lingering closes): wait for it."""
        deadline = time.monotonic() + 20
        fds = await metric(self.broker.metrics, "process_open_fds")
        while fds > baseline and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            fds = await metric(self.broker.metrics, "process_open_fds")
        return fds

    def check_delivery(self):
        lost = duplicated = unexpected = 0
        for key, payloads in self.received.items():
            subject = key.split("/")[0]
            seen = {}
            for payload in payloads:
                seen[payload] = seen.get(payload, 0) + 1
            acked = set(self.acked[subject])
            lost += sum(1 for payload in acked if payload not in seen)
            duplicated += sum(1 for payload, n in seen.items() if n > 1)
            unexpected += sum(1 for payload in seen if payload not in acked
                              and payload not in self.maybe)
        return lost, duplicated, unexpected


async def publish_and_leave(soak, port):
    """A publish whose client closes before reading the answer: stored or not, never twice."""
    connection = await Connection.open(port)
    subject = random.choice(SUBJECTS)
    data = soak.payload()
    soak.maybe.add(data)
    body = json.dumps({"subject": subject, "data": data}).encode()
    connection.writer.write(f"POST /api/publish HTTP/1.1\r\nHost: soak\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await connection.writer.drain()
    connection.close()


async def half_request(soak, port):
    connection = await Connection.open(port)
    connection.writer.write(
        b"POST /api/publish HTTP/1.1\r\nHost: soak\r\nContent-Length: 100\r\n\r\n{\"subj")
    await connection.writer.drain()
    connection.close()


async def garbage(soak, port):
    connection = await Connection.open(port)
    connection.writer.write(bytes(random.randrange(256) for _ in range(random.randint(1, 512))))
    connection.writer.write(b"\r\n\r\n")
    try:
        await asyncio.wait_for(connection.reader.read(), 5)  # answered 400, or cut off
    finally:
        connection.close()


async def oversized(soak, port):
    connection = await Connection.open(port)
    connection.writer.write(
        b"POST /api/publish HTTP/1.1\r\nHost: soak\r\nContent-Length: 10000000\r\n\r\n")
    status, _ = await connection.response()
    assert status in (413, 503), status
    connection.close()


async def bad_json(soak, port):
    connection = await Connection.open(port)
    for path, body, expected in (("/api/publish", {"subject": 5}, 400),
                                 ("/api/publish", {"subject": "a..b", "data": "x"}, 400),
                                 ("/api/subscribe", [1, 2], 400),
                                 ("/api/fetch", {"subject": "soak.0", "id": "nope"}, 404),
                                 ("/api/unsubscribe", {"subject": "soak.>", "id": "x"}, 404),
                                 ("/api/nope", {}, 404)):
        status, answer = await connection.request("POST", path, body)
        if status == 503:  # this connection was over max-connections
            break
        assert status == expected, (path, status, answer)
    connection.close()


async def slowloris(soak, port):
    """Holds a half-sent head until the header timeout cuts it off."""
    connection = await Connection.open(port)
    connection.writer.write(b"GET /ready HTTP/1.1\r\nHost: soak\r\n")
    for _ in range(30):
        await asyncio.sleep(0.1)
        connection.writer.write(b"X-Slow: 1\r\n")
        await connection.writer.drain()
    connection.close()


async def long_poll_and_hang_up(soak, port):
    """A waiting fetch whose client leaves, on a subscription that then churns away."""
    status, answer = await request_until_served(port, "POST", "/api/subscribe",
                                                {"subject": "churn.*"})
    assert status == 200, (status, answer)
    try:
        await wait_and_hang_up(port, answer["id"])
    finally:
        await request_until_served(port, "POST", "/api/publish",
                                   {"subject": "churn.x", "data": "gone"})
        status, _ = await request_until_served(port, "POST", "/api/unsubscribe",
                                               {"subject": "churn.*", "id": answer["id"]})
        assert status == 200, status


async def wait_and_hang_up(port, sid):
    connection = await Connection.open(port)
    body = json.dumps({"subject": "churn.*", "id": sid, "wait_ms": 5000}).encode()
    connection.writer.write(f"POST /api/fetch HTTP/1.1\r\nHost: soak\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await connection.writer.drain()
    await asyncio.sleep(random.random() * 0.3)
    connection.close()


async def connection_burst(soak, port):
    """More connections at once than max-connections: the excess gets 503, none hangs."""
    connections = await asyncio.gather(*(Connection.open(port) for _ in range(350)),
                                       return_exceptions=True)
    opened = [c for c in connections if isinstance(c, Connection)]
    results = await asyncio.gather(*(c.request("GET", "/ready") for c in opened),
                                   return_exceptions=True)
    for result in results:
        if not isinstance(result, BaseException):
            soak.count(f"burst {result[0]}")
    for c in opened:
        c.close()


CHAOS = [publish_and_leave, half_request, garbage, oversized, bad_json, slowloris,
         long_poll_and_hang_up, connection_burst]
CHAOS_KINDS = [f.__name__ for f in CHAOS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--no-rss-check", action="store_true",
                        help="for sanitizer builds, whose allocators keep freed memory on purpose")
    args = parser.parse_args()
    random.seed(int(os.environ.get("SOAK_SEED", "1")))
    broker = Broker(args.binary)
    try:
        result = asyncio.run(Soak(broker, args.duration).run())
    finally:
        exit_status = broker.stop()
    result["exit_status"] = exit_status
    failures = []
    # A broker that refuses every publish loses nothing, so the checks below would all pass.
    if not result["acknowledged_publishes"]:
        failures.append("no publish was acknowledged")
    if not result["delivered"]:
        failures.append("no message was delivered")
    if result["lost"] or result["duplicated"] or result["unexpected"]:
        failures.append("delivery: lost, duplicated or unexpected messages")
    if result["drained"] != result["pending_before_drain"]:
        failures.append("pending count does not match what could be fetched")
    if result["pending_after_drain"] or result["pending_bytes_after_drain"]:
        failures.append("pending not 0 after draining")
    if result["open_fds_after"] > result["open_fds_baseline"]:
        failures.append("open fds not back to baseline")
    if (not args.no_rss_check
            and (result["rss_after_mib"] - result["rss_baseline_mib"]) * 2**20 > RSS_ALLOWANCE):
        failures.append("RSS not back near baseline")
    if exit_status != 0:
        failures.append(f"broker exited with {exit_status}")
    result["failures"] = failures
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
