#!/usr/bin/env python3
"""A real browser consumes GET /api/stream and GET /api/ws (API.md §10) from another origin.

Starts the broker with http.cors-origins set to the origin of a test page served by a second HTTP
server, drives headless Chromium over its DevTools protocol, lets the page subscribe with
EventSource, publishes, and checks that every message arrived in order. Then, on an ack-mode
subscription streamed through a TCP proxy the test cuts, EventSource's own reconnect resumes with
Last-Event-ID: nothing is lost or repeated, and what the browser read is acked. Last, a page
consumes an ack-mode subscription with the browser's WebSocket and acks each message over the
socket: every message arrives in order, and once all are acked none is left in the broker. Exits
77 (CTest's skip) when Chromium or python3-websocket is not installed.

Usage: stream_browser_test.py GOPHERMQ_BINARY
"""

import os
import sys
import time
import urllib.parse

import harness
from harness import publish, post

MESSAGES = 300
SUBJECT = "browser.test"


def open_page(session, stream_url):
    return session.open_page("stream_page.html?" + urllib.parse.urlencode({"stream": stream_url}))


def check_received(page, sent, event_ids=True):
    """Every message of `sent` reached the page once, in order; with `event_ids` (EventSource)
    each event's id is its seq. Returns what the page received."""
    assert page.evaluate(f"window.receivedAll({len(sent)})") == len(sent)
    received = page.evaluate("window.received")
    assert [m["data"] for m in received] == sent, [m["data"] for m in received][:10]
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(sent), seqs
    assert not event_ids or all(m["id"] == str(m["seq"]) for m in received)
    return received


def ephemeral_stream(session):
    broker_port = session.broker_port
    page = open_page(session, f"http://127.0.0.1:{broker_port}/api/stream?subject={SUBJECT}")
    subscribed = page.evaluate("window.subscribed")
    assert subscribed["subject"] == SUBJECT, subscribed
    sent = [f"message {i} <&>" for i in range(MESSAGES)]
    for data in sent:
        publish(broker_port, SUBJECT, data)
    check_received(page, sent)
    assert page.evaluate("window.errors") == 0
    print(f"ok: {MESSAGES} messages reached EventSource from {session.page_origin} in order")


def resumed_stream(session):
    broker_port = session.broker_port
    subject = "browser.acked"
    subscription = post(broker_port, "/api/subscribe",
                        {"subject": subject, "ack": True, "ack_wait_ms": 600000})
    proxy = harness.CuttableProxy(broker_port)
    try:
        page = open_page(session,
                         f"http://127.0.0.1:{proxy.port}/api/stream?id={subscription['id']}")
        page.evaluate("window.opened")
        half = MESSAGES // 2
        sent = [f"acked {i}" for i in range(MESSAGES)]
        for data in sent[:half]:
            publish(broker_port, subject, data)
        check_received(page, sent[:half])
        proxy.cut()
        for data in sent[half:]:
            publish(broker_port, subject, data)
        # EventSource reconnects by itself, sending Last-Event-ID.
        check_received(page, sent)
        assert page.evaluate("window.opens") == 2
    finally:
        proxy.close()
    # The reconnect acked the first half; the second is in flight, never acked by the page.
    totals = harness.get(broker_port, "/api/stats")["totals"]
    assert totals["in_flight"] == MESSAGES - half, totals
    assert totals["pending_messages"] == MESSAGES - half, totals
    print(f"ok: EventSource reconnected with Last-Event-ID, {MESSAGES} messages once each")


def websocket_stream(session):
    broker_port = session.broker_port
    subject = "browser.ws"
    subscription = post(broker_port, "/api/subscribe",
                        {"subject": subject, "ack": True, "ack_wait_ms": 600000})
    page = session.open_page("ws_page.html?" + urllib.parse.urlencode(
        {"ws": f"ws://127.0.0.1:{broker_port}/api/ws?id={subscription['id']}"}))
    assert page.evaluate("window.opened") is True
    # Earlier parts leave messages of their own in flight.
    before = harness.get(broker_port, "/api/stats")["totals"]
    sent = [f"socket {i} <&>" for i in range(MESSAGES)]
    for data in sent:
        publish(broker_port, subject, data)
    received = check_received(page, sent, event_ids=False)
    assert all(m["deliveries"] == 1 for m in received)
    # The acks travel over the socket and are applied as they come: the broker gets there on
    # its own time.
    deadline = time.monotonic() + harness.DEADLINE_SECONDS
    totals = harness.get(broker_port, "/api/stats")["totals"]
    while totals["pending_messages"] != before["pending_messages"] and time.monotonic() < deadline:
        time.sleep(0.05)
        totals = harness.get(broker_port, "/api/stats")["totals"]
    assert totals["pending_messages"] == before["pending_messages"], (before, totals)
    assert totals["in_flight"] == before["in_flight"], (before, totals)
    assert totals["published_messages"] == before["published_messages"] + MESSAGES, totals
    assert page.evaluate("window.closes") == []
    print(f"ok: {MESSAGES} messages reached WebSocket from {session.page_origin} in order, "
          "each acked over the socket")


def main():
    why = harness.missing()
    if why is not None:
        print(f"SKIP: {why}")
        return harness.SKIP
    with harness.session(sys.argv[1], os.path.dirname(os.path.abspath(__file__))) as session:
        ephemeral_stream(session)
        resumed_stream(session)
        websocket_stream(session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
