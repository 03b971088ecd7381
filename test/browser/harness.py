"""What the real-browser tests share: a test page server, the broker, headless Chromium driven
over its DevTools protocol, and a TCP proxy a test can cut.

    with harness.session(binary, page_directory) as session:
        page = session.open_page("stream_page.html?stream=...")
        harness.publish(session.broker_port, "subject", "data")
        page.evaluate("window.received")

The broker allows the page server's origin (http.cors-origins), so every page runs on another
origin than the API it calls. A test exits with SKIP (CTest's skip) when missing() says why.
"""

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

SKIP = 77
DEADLINE_SECONDS = 30

try:
    import websocket  # python3-websocket
except ImportError:
    websocket = None


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing():
    """Why the browser tests cannot run here, or None."""
    if chromium_path() is None or websocket is None:
        return "chromium or python3-websocket is not installed"
    return None


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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _start_page_server(directory):
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_chromium(profile):
    """Headless Chromium with its DevTools on a free port, and that port."""
    process = subprocess.Popen(
        [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = int(read_line_matching(process.stderr, r"DevTools listening on ws://[^:]+:(\d+)/",
                                  time.monotonic() + DEADLINE_SECONDS).group(1))
    # Chromium keeps logging to stderr; a full pipe would block it.
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, port


def page_target(devtools_port):
    """The DevTools address of the browser's page."""
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


class Session:
    """A running page server, broker and Chromium."""

    def __init__(self, page_origin, broker_port, devtools_port):
        self.page_origin = page_origin
        self.broker_port = broker_port
        self.devtools_port = devtools_port

    def open_page(self, path):
        """Loads page_origin/path in the browser's page and returns its DevTools connection."""
        page = DevTools(page_target(self.devtools_port))
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{self.page_origin}/{path}")
        page.wait_for_event("Page.loadEventFired")
        return page


@contextlib.contextmanager
def session(binary, page_directory, broker_arguments=()):
    """Serves page_directory, starts the broker allowing that origin and Chromium; on leaving,
    stops them all and checks that the broker exited 0."""
    with tempfile.TemporaryDirectory() as scratch:
        page_server = _start_page_server(page_directory)
        page_origin = f"http://127.0.0.1:{page_server.server_address[1]}"
        broker, broker_port = start_broker(binary, f"--http.cors-origins={page_origin}",
                                           *broker_arguments)
        browser = None
        try:
            browser, devtools_port = start_chromium(os.path.join(scratch, "profile"))
            yield Session(page_origin, broker_port, devtools_port)
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(timeout=DEADLINE_SECONDS)
            broker.terminate()
            status = broker.wait(timeout=DEADLINE_SECONDS)
            page_server.shutdown()
        assert status == 0, f"broker exited {status}"


def post(broker_port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{broker_port}{path}",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as answer:
        assert answer.status == 200, answer.status
        return json.load(answer)


def get(broker_port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker_port}{path}",
                                timeout=DEADLINE_SECONDS) as answer:
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
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
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
