#!/usr/bin/env python3
"""Memory cost of stored messages: what issue 6's memory targets are measured with.

Starts a broker, subscribes once, stores MESSAGES messages of 16 bytes (batches of 100), then
fetches them all back, once in pages of `max` and once in a single fetch. RSS is VmRSS from
/proc/PID/status. Each phase's peak is the kernel's own high-water mark (VmHWM), reset before the
phase by writing 5 to /proc/PID/clear_refs, so a transient peak inside a request is seen too.

Prints, and with --json emits: idle RSS, RSS after the fill, growth per message, the peak during
the fill and its ratio to the RSS after it, and the peak while fetching back in either way.

Usage: memory.py BINARY [--messages N] [--page N] [--json]
"""
import argparse
import http.client
import json

from broker_process import BrokerProcess

DATA = "0123456789abcdef"  # 16 bytes
BATCH = 100


class Broker(BrokerProcess):
    def __init__(self, binary, messages):
        super().__init__(binary, ["--threads=2", f"--broker.max-pending={messages}",
                                  "--broker.max-body-bytes=67108864"])
        self.connection = http.client.HTTPConnection("127.0.0.1", self.ports["api"])

    def rss(self, field="VmRSS"):
        return self.status_bytes(field)

    def post(self, path, body):
        self.connection.request("POST", path, json.dumps(body),
                                {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {payload[:200]!r}")
        return json.loads(payload)

    def stop(self):
        self.connection.close()
        return super().stop()


def fill(broker, messages):
    broker.reset_peak()
    batch = {"subject": "memory", "data": [DATA] * BATCH}
    for _ in range(messages // BATCH):
        broker.post("/api/publish/batch", batch)
    return broker.rss("VmHWM")


def fetch_back(broker, sid, messages, page):
    broker.reset_peak()
    fetched = 0
    while fetched < messages:
        body = {"subject": "memory", "id": sid}
        if page:
            body["max"] = page
        got = len(broker.post("/api/fetch", body)["data"])
        if got == 0:
            raise SystemExit(f"fetched {fetched} of {messages}")
        fetched += got
    return broker.rss("VmHWM")


def measure(binary, messages, page):
    broker = Broker(binary, messages)
    try:
        sid = broker.post("/api/subscribe", {"subject": "memory"})["id"]
        idle = broker.rss()
        fill_peak = fill(broker, messages)
        filled = broker.rss()
        paged_peak = fetch_back(broker, sid, messages, page)
        fill(broker, messages)
        refilled = broker.rss()
        whole_peak = fetch_back(broker, sid, messages, 0)
        result = {
            "messages": messages,
            "idle_rss": idle,
            "filled_rss": filled,
            "bytes_per_message": (filled - idle) / messages,
            "fill_peak_rss": fill_peak,
            "fill_peak_ratio": fill_peak / filled,
            "page": page,
            "paged_fetch_peak_rss": paged_peak,
            "paged_fetch_ratio": paged_peak / filled,
            "refilled_rss": refilled,
            "whole_fetch_peak_rss": whole_peak,
            "whole_fetch_ratio": whole_peak / refilled,
        }
    finally:
        exit_status = broker.stop()
    result["exit_status"] = exit_status
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    result = measure(options.binary, options.messages, options.page)
    if options.json:
        print(json.dumps(result))
        return 0 if result["exit_status"] == 0 else 1
    mib = 1024 * 1024
    print(f"messages stored             {result['messages']:>12,} x 16 bytes, one subscriber")
    print(f"idle RSS                    {result['idle_rss'] / mib:>12.1f} MiB")
    print(f"RSS after the fill          {result['filled_rss'] / mib:>12.1f} MiB")
    print(f"growth per message          {result['bytes_per_message']:>12.1f} B   (target <= 40)")
    print(f"peak during the fill        {result['fill_peak_rss'] / mib:>12.1f} MiB  "
          f"{result['fill_peak_ratio']:.2f}x after (target <= 1.2)")
    print(f"peak fetching, max={result['page']:<8}{result['paged_fetch_peak_rss'] / mib:>12.1f} MiB  "
          f"{result['paged_fetch_ratio']:.2f}x (target < 2)")
    print(f"peak fetching all at once   {result['whole_fetch_peak_rss'] / mib:>12.1f} MiB  "
          f"{result['whole_fetch_ratio']:.2f}x (target < 2)")
    print(f"exit status                 {result['exit_status']:>12}")
    return 0 if result["exit_status"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
