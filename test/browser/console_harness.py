"""What console_browser_test.py needs to drive headless Chromium against the real broker.

A small local copy, in the style of stream_browser_test.py: the WebSocket work is moving that
file's DevTools, Chromium and broker code into test/browser/harness.py, and this module is meant to
be replaced by it then (DevTools here also keeps each event's parameters, for console errors).
"""

import json
import os
import re
import subprocess
import threading
import time
import urllib.request

SKIP = 77
DEADLINE_SECONDS = 30

try:
    import websocket  # python3-websocket
except ImportError:
    websocket = None


class DevTools:
    """One DevTools protocol connection to a page target; keeps every event it receives."""

    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=DEADLINE_SECONDS)
        self.next_id = 0
        self.events = []  # (method, params), in arrival order

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
                self.events.append((answer["method"], answer.get("params", {})))

    def wait_for_event(self, method):
        """Waits for the event `method` (the socket's timeout bounds the wait)."""
        while True:
            for index, (name, params) in enumerate(self.events):
                if name == method:
                    del self.events[index]
                    return params
            message = json.loads(self.socket.recv())
            if "method" in message:
                self.events.append((message["method"], message.get("params", {})))

    def evaluate(self, expression):
        """The value of `expression`, awaited when it is a promise."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True, timeout=DEADLINE_SECONDS * 1000)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        self.socket.close()


def read_line_matching(stream, pattern, deadline):
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:
            return found
    raise RuntimeError(f"no line matching {pattern!r}")


def start_chromium(chromium, profile):
    process = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0",
         "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank"],
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


def start_broker(binary, *arguments):
    """The broker on a free port of 127.0.0.1, and that port."""
    # The broker reads GOPHERMQ_* variables as settings, and an unknown one (the test's own
    # GOPHERMQ_SCREENSHOTS) would stop it: it gets its settings from `arguments` only.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOPHERMQ_")}
    broker = subprocess.Popen(
        [binary, "broker", "--broker.host=127.0.0.1", "--broker.port=0",
         "--monitoring.enable=false", "--threads=2", *arguments],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        port = int(read_line_matching(broker.stderr, r"listener=api address=\S+ port=(\d+)",
                                      time.monotonic() + DEADLINE_SECONDS).group(1))
    except Exception:
        broker.kill()
        broker.wait()
        raise
    threading.Thread(target=broker.stderr.read, daemon=True).start()
    return broker, port


class Api:
    """The broker's JSON API, as a test's own client beside the browser."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def post(self, path, body):
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as answer:
            assert answer.status == 200, answer.status
            return json.load(answer)

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=DEADLINE_SECONDS) as answer:
            return json.load(answer)
