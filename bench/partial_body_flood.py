#!/usr/bin/env python3
"""Partial-body flood (issue 12, item 5): what stalled uploads cost the broker in memory.

Starts a broker, then opens CONNECTIONS connections that each declare a body of BODY bytes, send
all of it but the last 100 bytes and stall. Once every client has sent what it will (or was
answered), it records the broker's RSS (VmRSS) and its peak (VmHWM), closes the clients and
records RSS again once it has settled. Answers the broker sent (503 when max-receiving-bytes
refuses a body) are counted.

With --warm-up the broker first receives two whole bodies of that size, as a broker that has served
traffic has: glibc then keeps such buffers in its arenas instead of mapping each on its own, so
what the flood leaves behind shows in RSS.

Usage: partial_body_flood.py BINARY [--connections N] [--body BYTES] [--warm-up] [--json]
                             [-- BROKER_ARGS...]
"""
import argparse
import asyncio
import json
import time

from broker_process import BrokerProcess


async def stalled_upload(port, body, answers):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /api/publish HTTP/1.1\r\nHost: flood\r\nContent-Length: {body}\r\n\r\n"
                 .encode())
    chunk = b"x" * 65536
    left = body - 100
    try:
        while left > 0:
            writer.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
            await writer.drain()
    except ConnectionError:
        pass
    try:
        status_line = await asyncio.wait_for(reader.readline(), 0.5)
        if status_line:
            answers[status_line.split()[1].decode()] = \
                answers.get(status_line.split()[1].decode(), 0) + 1
    except (asyncio.TimeoutError, ConnectionError):
        pass
    return writer


async def warm_up(port, body):
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /api/publish HTTP/1.1\r\nHost: flood\r\nContent-Length: {body}\r\n"
                     f"Connection: close\r\n\r\n".encode() + b"x" * body)
        await writer.drain()
        await reader.read()
        writer.close()


async def flood(port, broker, connections, body):
    answers = {}
    broker.reset_peak()
    writers = await asyncio.gather(*(stalled_upload(port, body, answers)
                                     for _ in range(connections)))
    during = broker.status_bytes("VmRSS")
    peak = broker.status_bytes("VmHWM")
    for writer in writers:
        writer.close()
    return answers, during, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--body", type=int, default=1024 * 1024)
    parser.add_argument("--warm-up", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("broker_args", nargs="*")
    args = parser.parse_args()

    broker = BrokerProcess(args.binary, ["--threads=2", "--broker.read-timeout=600s",
                                         "--broker.max-connections=20000"] + args.broker_args)
    port = broker.ports["api"]
    if args.warm_up:
        asyncio.run(warm_up(port, args.body))
    baseline = broker.status_bytes("VmRSS")
    answers, during, peak = asyncio.run(flood(port, broker, args.connections, args.body))
    # The broker frees what the clients held once it sees them close: wait for RSS to settle.
    # Settled: five samples half a second apart within 1 MiB of each other.
    samples = [broker.status_bytes("VmRSS")]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
            len(samples) < 5 or max(samples[-5:]) - min(samples[-5:]) > 2**20):
        time.sleep(0.5)
        samples.append(broker.status_bytes("VmRSS"))
    after = samples[-1]
    broker.stop()

    mib = 2**20
    result = {"connections": args.connections, "body_bytes": args.body, "warm_up": args.warm_up,
              "answers": answers,
              "rss_baseline_mib": round(baseline / mib, 1), "rss_during_mib": round(during / mib, 1),
              "rss_peak_mib": round(peak / mib, 1), "rss_after_mib": round(after / mib, 1)}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
