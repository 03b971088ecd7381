#!/usr/bin/env python3
"""A real browser consumes GET /api/stream (API.md §10) from another origin.

Starts the broker with http.cors-origins set to the origin of a test page served by a second HTTP
server, drives headless Chromium over its DevTools protocol, lets the page subscribe with
EventSource, publishes, and checks that every message arrived in order. Then, on an ack-mode
subscription streamed through a TCP proxy the test cuts, EventSource's own reconnect resumes with
Last-Event-ID: nothing is lost or repeated, and what the browser read is acked. Exits 77 (CTest's
skip) when Chromium or python3-websocket is not installed.

Usage: stream_browser_test.py GOPHERMQ_BINARY
"""

import functools
import http.server
import json
import os
import re
import socket
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SKIP = 77
MESSAGES = 300
SUBJECT = "browser.test"
DEADLINE_SECONDS = 30

try:
    import websocket  # python3-websocket
except ImportError:
    websocket = None


class DevTools:
    """One DevTools protocol connection to a page target."""

    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=DEADLINE_SECONDS)
        self.next_id = 0
        self.events = []  # events that came while a call waited for its answer

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            if "method" in answer:
                self.events.append(answer["method"])

    def wait_for_event(self, method):
        """Waits for the event `method` (the socket's timeout bounds the wait)."""
        while method not in self.events:
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append(message["method"])
        self.events.remove(method)

    def evaluate(self, expression):
        """The value of `expression`, awaited when it is a promise."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True, timeout=DEADLINE_SECONDS * 1000)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


def read_line_matching(stream, pattern, deadline):
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:
            return found
    raise RuntimeError(f"no line matching {pattern!r}")


def start_page_server(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def start_chromium(chromium, profile):
    process = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = int(read_line_matching(process.stderr, r"DevTools listening on ws://[^:]+:(\d+)/",
                                  time.monotonic() + DEADLINE_SECONDS).group(1))
    # Chromium keeps logging to stderr; a full pipe would block it.
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, port


def page_target(devtools_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list") as answer:
        targets = json.load(answer)
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def post(broker_port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{broker_port}{path}",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as answer:
        assert answer.status == 200, answer.status
        return json.load(answer)


def publish(broker_port, subject, data):
    post(broker_port, "/api/publish", {"subject": subject, "data": data})


class CuttableProxy:
    """Forwards TCP connections to the broker until cut() ends every one of them at once."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            cut, self.open = self.open, []
        for connection in cut:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()
        self.cut()


def open_page(devtools_port, page_origin, stream_url):
    page = DevTools(page_target(devtools_port))
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{page_origin}/stream_page.html?" +
              urllib.parse.urlencode({"stream": stream_url}))
    page.wait_for_event("Page.loadEventFired")
    return page


def check_received(page, sent):
    assert page.evaluate(f"window.receivedAll({len(sent)})") == len(sent)
    received = page.evaluate("window.received")
    assert [m["data"] for m in received] == sent, [m["data"] for m in received][:10]
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(sent), seqs
    assert all(m["id"] == str(m["seq"]) for m in received)


def ephemeral_stream(devtools_port, page_origin, broker_port):
    page = open_page(devtools_port, page_origin,
                     f"http://127.0.0.1:{broker_port}/api/stream?subject={SUBJECT}")
    subscribed = page.evaluate("window.subscribed")
    assert subscribed["subject"] == SUBJECT, subscribed
    sent = [f"message {i} <&>" for i in range(MESSAGES)]
    for data in sent:
        publish(broker_port, SUBJECT, data)
    check_received(page, sent)
    assert page.evaluate("window.errors") == 0
    print(f"ok: {MESSAGES} messages reached EventSource from {page_origin} in order")


def resumed_stream(devtools_port, page_origin, broker_port):
    subject = "browser.acked"
    subscription = post(broker_port, "/api/subscribe",
                        {"subject": subject, "ack": True, "ack_wait_ms": 600000})
    proxy = CuttableProxy(broker_port)
    try:
        page = open_page(devtools_port, page_origin,
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
    with urllib.request.urlopen(f"http://127.0.0.1:{broker_port}/api/stats") as answer:
        totals = json.load(answer)["totals"]
    assert totals["in_flight"] == MESSAGES - half, totals
    assert totals["pending_messages"] == MESSAGES - half, totals
    print(f"ok: EventSource reconnected with Last-Event-ID, {MESSAGES} messages once each")


def main():
    binary = sys.argv[1]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or websocket is None:
        print("SKIP: chromium or python3-websocket is not installed")
        return SKIP

    with tempfile.TemporaryDirectory() as scratch:
        page_server = start_page_server(os.path.dirname(os.path.abspath(__file__)))
        page_origin = f"http://127.0.0.1:{page_server.server_address[1]}"
        broker = subprocess.Popen(
            [binary, "broker", "--broker.host=127.0.0.1", "--broker.port=0",
             "--monitoring.enable=false", "--threads=2", f"--http.cors-origins={page_origin}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        browser = None
        try:
            broker_port = int(read_line_matching(
                broker.stderr, r"listener=api address=\S+ port=(\d+)",
                time.monotonic() + DEADLINE_SECONDS).group(1))
            threading.Thread(target=broker.stderr.read, daemon=True).start()
            browser, devtools_port = start_chromium(chromium, os.path.join(scratch, "profile"))
            ephemeral_stream(devtools_port, page_origin, broker_port)
            resumed_stream(devtools_port, page_origin, broker_port)
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(timeout=DEADLINE_SECONDS)
            broker.terminate()
            status = broker.wait(timeout=DEADLINE_SECONDS)
            page_server.shutdown()
        assert status == 0, f"broker exited {status}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
