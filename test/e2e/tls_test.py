#!/usr/bin/python3
"""TLS on the API and metrics ports, through the real binary and real clients.

Usage: tls_test.py PATH_TO_GOPHERMQ [unittest arguments, e.g. a test class]

A throwaway CA, server and client certificates are made with the openssl CLI in a temp dir; curl,
openssl s_client and Python's ssl module talk to the broker. No step sleeps: each waits for an
event (a log line, a close, an answer) with a timeout as a safety net only.
"""

import base64
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BINARY = ""
WAIT = 15  # seconds: the safety net of every wait, never a delay


def run(*args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=WAIT, **kwargs)


def make_ca(directory, name):
    key, cert = f"{directory}/{name}.key", f"{directory}/{name}.pem"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        check=True)
    return cert


def make_cert(directory, name, ca, extension):
    key, cert, csr = (f"{directory}/{name}.key", f"{directory}/{name}.pem",
                      f"{directory}/{name}.csr")
    ext = f"{directory}/{name}.ext"
    with open(ext, "w") as out:
        out.write(extension + "\n")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}", check=True)
    ca_key = ca[:-len(".pem")] + ".key"
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext, check=True)
    return cert, key


SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1"
CLIENT_EXT = "extendedKeyUsage=clientAuth"


class Broker:
    """The real binary; its log is read by a thread so waits can match lines as they come."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [BINARY, "broker", "--broker.port", "0", "--monitoring.port", "127.0.0.1:0",
             "--broker.host", "127.0.0.1", *args],
            cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.lines = queue.Queue()
        self.log = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = int(self.wait_for(r"listener=api address=\S+ port=(\d+)").group(1))
        self.metrics_port = int(self.wait_for(r"listener=metrics address=\S+ port=(\d+)").group(1))

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no log line matching {pattern!r}; log: {self.log}")
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=WAIT)
        self.reader.join(timeout=WAIT)
        self.proc.stderr.close()
        return code


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="gophermq-tls-")
        d = cls.dir
        cls.ca = make_ca(d, "ca")
        cls.other_ca = make_ca(d, "otherca")
        cls.client_ca = make_ca(d, "clientca")
        cls.cert, cls.key = make_cert(d, "server", cls.ca, SERVER_EXT)
        cls.cert2, cls.key2 = make_cert(d, "server2", cls.ca, SERVER_EXT)
        cls.client_cert, cls.client_key = make_cert(d, "client", cls.client_ca, CLIENT_EXT)
        cls.rogue_cert, cls.rogue_key = make_cert(d, "rogue", cls.other_ca, CLIENT_EXT)
        cls.broker = Broker("--tls.cert-file", cls.cert, "--tls.key-file", cls.key,
                            "--broker.header-timeout", "1s")

    @classmethod
    def tearDownClass(cls):
        assert cls.broker.stop() == 0, cls.broker.log
        shutil.rmtree(cls.dir)

    def tearDown(self):
        self.assertTrue(self.broker.alive(), self.broker.log)

    # Helpers ---------------------------------------------------------------------------------

    def context(self, ca=None):
        context = ssl.create_default_context(cafile=ca or self.ca)
        return context

    def connect(self, port=None, ca=None):
        raw = socket.create_connection(("127.0.0.1", port or self.broker.port), timeout=WAIT)
        return self.context(ca).wrap_socket(raw, server_hostname="localhost")

    def request(self, conn, method, path, body=None):
        """One HTTP/1.1 request on a kept-alive TLS socket; returns (status, body)."""
        payload = json.dumps(body).encode() if body is not None else b""
        conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                     .encode() + payload)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            self.assertTrue(chunk, "connection closed before the answer")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
        while len(rest) < length:
            chunk = conn.recv(65536)
            self.assertTrue(chunk)
            rest += chunk
        return int(head.split(b" ")[1]), rest[:length]

    def curl(self, *args):
        return run("curl", "-sS", "--max-time", str(WAIT), *args)

    def url(self, path, port=None):
        return f"https://localhost:{port or self.broker.port}{path}"

    def handshake_failures(self):
        with self.connect() as conn:
            pass
        text = run("curl", "-sS", f"http://127.0.0.1:{self.broker.metrics_port}/metrics").stdout
        return float(re.search(r"^gophermq_tls_handshake_failures_total (\S+)$", text,
                               re.M).group(1))

    # Real clients ------------------------------------------------------------------------------

    def test_curl_with_the_ca_publishes_and_fetches(self):
        sub = self.curl("--cacert", self.ca, self.url("/api/subscribe"),
                        "-d", '{"subject":"curl.tls"}')
        self.assertEqual(sub.returncode, 0, sub.stderr)
        sid = json.loads(sub.stdout)["id"]
        pub = self.curl("--cacert", self.ca, self.url("/api/publish"),
                        "-d", '{"subject":"curl.tls","data":"over tls"}')
        self.assertEqual(json.loads(pub.stdout), {"status": "ok"})
        fetch = self.curl("--cacert", self.ca, self.url("/api/fetch"),
                          "-d", json.dumps({"subject": "curl.tls", "id": sid}))
        self.assertEqual(json.loads(fetch.stdout)["data"], ["over tls"])

    def test_a_client_trusting_another_ca_refuses_the_server(self):
        answer = self.curl("--cacert", self.other_ca, self.url("/api/stats"))
        self.assertEqual(answer.returncode, 60, answer.stderr)  # peer certificate not verified
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.connect(ca=self.other_ca)

    def test_tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted(self):
        for version, accepted in (("-tls1", False), ("-tls1_1", False), ("-tls1_2", True),
                                  ("-tls1_3", True)):
            # SECLEVEL=0 lets the client offer the old versions: the refusal is the server's.
            answer = run("openssl", "s_client", version, "-cipher", "DEFAULT@SECLEVEL=0",
                         "-CAfile", self.ca, "-verify_return_error", "-brief",
                         "-connect", f"127.0.0.1:{self.broker.port}", input="")
            self.assertEqual(answer.returncode == 0, accepted, (version, answer.stderr))
            if accepted:
                self.assertIn("Protocol version: TLSv1." + version[-1], answer.stderr)

    def test_python_ssl_client_keeps_the_connection_alive(self):
        with self.connect() as conn:
            self.assertIn(conn.version(), ("TLSv1.2", "TLSv1.3"))
            for _ in range(3):
                status, body = self.request(conn, "GET", "/api/stats")
                self.assertEqual(status, 200)
                self.assertIn("totals", json.loads(body))

    def test_compression_and_weak_ciphers_are_not_offered(self):
        context = self.context()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with context.wrap_socket(socket.create_connection(("127.0.0.1", self.broker.port)),
                                 server_hostname="localhost") as conn:
            self.assertIsNone(conn.compression())
            name, _, _ = conn.cipher()
            self.assertTrue(name.startswith("ECDHE-"), name)
            self.assertTrue("GCM" in name or "CHACHA20" in name, name)

    # Hardening --------------------------------------------------------------------------------

    def assert_closed_within(self, sock, low, high):
        started = time.monotonic()
        sock.settimeout(WAIT)
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        took = time.monotonic() - started
        self.assertGreaterEqual(took, low)
        self.assertLess(took, high)

    def test_a_client_that_sends_nothing_is_closed_at_header_timeout(self):
        before = self.handshake_failures()
        with socket.create_connection(("127.0.0.1", self.broker.port)) as sock:
            self.assert_closed_within(sock, 0.8, 5)
        self.assertGreater(self.handshake_failures(), before)

    def test_a_handshake_that_never_completes_is_closed_at_header_timeout(self):
        # A TLS record header announcing a ClientHello whose body never comes.
        with socket.create_connection(("127.0.0.1", self.broker.port)) as sock:
            sock.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
            self.assert_closed_within(sock, 0.8, 5)

    def test_a_slow_request_head_over_tls_is_closed_at_header_timeout(self):
        with self.connect() as conn:
            conn.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            status_line = b""
            try:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    status_line += chunk
            except (ssl.SSLError, ConnectionResetError):
                pass
            self.assertLess(time.monotonic() - started, 5)
            self.assertNotIn(b"200 OK", status_line)

    def test_plain_http_to_the_tls_port_is_closed_cleanly(self):
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=WAIT) as sock:
            sock.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
            self.assertNotIn(b"HTTP/1.1 200", received)
        with self.connect() as conn:
            self.assertEqual(self.request(conn, "GET", "/api/stats")[0], 200)

    def test_random_bytes_do_not_crash_or_leak(self):
        rng = random.Random(17)

        def garbage_round(count):
            for _ in range(count):
                with socket.create_connection(("127.0.0.1", self.broker.port),
                                              timeout=WAIT) as sock:
                    blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
                    if rng.random() < 0.5:
                        blob = bytes([0x16, 0x03, rng.randint(0, 4)]) + blob
                    try:
                        sock.sendall(blob)
                        while sock.recv(4096):
                            pass
                    except (ConnectionResetError, BrokenPipeError, socket.timeout):
                        pass

        garbage_round(150)  # warms the allocator up
        rss_before = self.broker.rss_kib()
        garbage_round(400)
        rss_after = self.broker.rss_kib()
        # A sanitizer's allocator keeps freed memory (ASan's quarantine), so there the bound would
        # measure the sanitizer; the broker must still survive the garbage and answer.
        if os.environ.get("TEST_UNDER_SANITIZER") != "1":
            self.assertLess(rss_after - rss_before, 8 * 1024, "RSS grew by more than 8 MiB")
        with self.connect() as conn:
            self.assertEqual(self.request(conn, "GET", "/api/stats")[0], 200)

    def test_limits_hold_under_tls(self):
        with self.connect() as conn:
            big = {"subject": "big", "data": "x" * (2 * 1024 * 1024)}
            payload = json.dumps(big).encode()
            conn.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         + str(len(payload)).encode() + b"\r\n\r\n")
            answer = conn.recv(4096)
            self.assertIn(b" 413 ", answer)
        with self.connect() as conn:
            conn.sendall(b"GET /api/stats HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            self.assertIn(b" 431 ", conn.recv(4096))

    # Streams ---------------------------------------------------------------------------------

    def read_until(self, conn, marker, received=b""):
        while marker not in received:
            chunk = conn.recv(65536)
            self.assertTrue(chunk, f"closed before {marker!r}: {received!r}")
            received += chunk
        return received

    def test_server_sent_events_over_tls(self):
        with self.connect() as stream:
            stream.sendall(b"GET /api/stream?subject=sse.tls HTTP/1.1\r\nHost: x\r\n\r\n")
            self.read_until(stream, b"event: subscribed")
            with self.connect() as conn:
                self.assertEqual(self.request(conn, "POST", "/api/publish",
                                              {"subject": "sse.tls", "data": "pushed"})[0], 200)
            received = self.read_until(stream, b"event: message")
            self.read_until(stream, b"pushed", received)

    def test_websocket_over_tls(self):
        with self.connect() as ws:
            key = base64.b64encode(os.urandom(16)).decode()
            ws.sendall(f"GET /api/ws?subject=wss.tls HTTP/1.1\r\nHost: localhost\r\n"
                       f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
            head = self.read_until(ws, b"\r\n\r\n")
            self.assertIn(b" 101 ", head)
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            self.assertIn(accept, head)
            with self.connect() as conn:
                self.assertEqual(self.request(conn, "POST", "/api/publish",
                                              {"subject": "wss.tls", "data": "framed"})[0], 200)
            frame = head.split(b"\r\n\r\n", 1)[1]
            while len(frame) < 2 or len(frame) < 2 + (frame[1] & 0x7F):
                frame += ws.recv(65536)
            self.assertEqual(frame[0], 0x81)  # FIN, text
            length = frame[1] & 0x7F
            if length == 126:
                frame = self.read_until_length(ws, frame, 4)
                length = struct.unpack("!H", frame[2:4])[0]
                frame = self.read_until_length(ws, frame, 4 + length)
                text = frame[4:4 + length]
            else:
                text = frame[2:2 + length]
            self.assertEqual(json.loads(text)["data"], "framed")

    def read_until_length(self, conn, data, length):
        while len(data) < length:
            data += conn.recv(65536)
        return data


class TlsBrokers(unittest.TestCase):
    """Brokers of their own: client certificates, reload, metrics over TLS, bad files."""

    @classmethod
    def setUpClass(cls):
        d = cls.dir = tempfile.mkdtemp(prefix="gophermq-tls-")
        cls.ca = make_ca(d, "ca")
        cls.other_ca = make_ca(d, "otherca")
        cls.client_ca = make_ca(d, "clientca")
        cls.cert, cls.key = make_cert(d, "server", cls.ca, SERVER_EXT)
        cls.cert2, cls.key2 = make_cert(d, "server2", cls.ca, SERVER_EXT)
        cls.client_cert, cls.client_key = make_cert(d, "client", cls.client_ca, CLIENT_EXT)
        cls.rogue_cert, cls.rogue_key = make_cert(d, "rogue", cls.other_ca, CLIENT_EXT)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def tls_args(self, cert=None, key=None):
        return ["--tls.cert-file", cert or self.cert, "--tls.key-file", key or self.key]

    def test_client_certificates_from_the_client_ca_only(self):
        broker = Broker(*self.tls_args(), "--tls.client-ca-file", self.client_ca)
        try:
            url = f"https://localhost:{broker.port}/api/stats"
            base = ["curl", "-sS", "--max-time", str(WAIT), "--cacert", self.ca, url]
            self.assertNotEqual(run(*base).returncode, 0)
            self.assertNotEqual(run(*base, "--cert", self.rogue_cert, "--key",
                                    self.rogue_key).returncode, 0)
            good = run(*base, "--cert", self.client_cert, "--key", self.client_key)
            self.assertEqual(good.returncode, 0, good.stderr)
            self.assertIn("totals", good.stdout)
            for version in ("-tls1_2", "-tls1_3"):
                missing = run("openssl", "s_client", version, "-CAfile", self.ca, "-brief",
                              "-connect", f"127.0.0.1:{broker.port}",
                              input="GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertNotIn("HTTP/1.1 200", missing.stdout, version)
            self.assertTrue(broker.alive())
        finally:
            self.assertEqual(broker.stop(), 0)

    def test_sighup_reloads_the_certificate_without_dropping_connections(self):
        cert, key = f"{self.dir}/live.pem", f"{self.dir}/live.key"
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        broker = Broker(*self.tls_args(cert, key))
        helper = Tls()
        helper.ca = self.ca
        helper.broker = broker
        try:
            with open(self.cert) as first, open(self.cert2) as second:
                first_der = ssl.PEM_cert_to_DER_cert(first.read())
                second_der = ssl.PEM_cert_to_DER_cert(second.read())
            before = helper.connect()
            self.assertEqual(before.getpeercert(binary_form=True), first_der)
            self.assertEqual(helper.request(before, "GET", "/api/stats")[0], 200)

            shutil.copy(self.cert2, cert)
            shutil.copy(self.key2, key)
            broker.proc.send_signal(signal.SIGHUP)
            broker.wait_for(r'msg="tls reloaded"')
            self.assertEqual(helper.request(before, "GET", "/api/stats")[0], 200)
            with helper.connect() as after:
                self.assertEqual(after.getpeercert(binary_form=True), second_der)

            with open(cert, "w") as broken:
                broken.write("not a certificate\n")
            broker.proc.send_signal(signal.SIGHUP)
            broker.wait_for(r"tls reload failed, keeping the old certificates")
            with helper.connect() as after:
                self.assertEqual(after.getpeercert(binary_form=True), second_der)
                self.assertEqual(helper.request(after, "GET", "/api/stats")[0], 200)
            self.assertEqual(helper.request(before, "GET", "/api/stats")[0], 200)
            before.close()
        finally:
            self.assertEqual(broker.stop(), 0)

    def test_monitoring_tls_serves_metrics_over_tls(self):
        broker = Broker(*self.tls_args(), "--monitoring.tls", "true")
        try:
            answer = run("curl", "-sS", "--max-time", str(WAIT), "--cacert", self.ca,
                         f"https://localhost:{broker.metrics_port}/metrics")
            self.assertEqual(answer.returncode, 0, answer.stderr)
            self.assertIn("gophermq_tls_handshake_failures_total", answer.stdout)
            plain = run("curl", "-sS", "--max-time", str(WAIT),
                        f"http://127.0.0.1:{broker.metrics_port}/metrics")
            self.assertNotIn("gophermq_", plain.stdout)
        finally:
            self.assertEqual(broker.stop(), 0)

    def test_shutdown_sends_close_notify(self):
        broker = Broker(*self.tls_args())
        helper = Tls()
        helper.ca = self.ca
        helper.broker = broker
        context = helper.context()
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        conn = context.wrap_socket(socket.create_connection(("127.0.0.1", broker.port),
                                                            timeout=WAIT),
                                   server_hostname="localhost", suppress_ragged_eofs=False)
        self.assertEqual(helper.request(conn, "GET", "/api/stats")[0], 200)
        broker.proc.send_signal(signal.SIGTERM)
        # b"" is a close_notify; a bare FIN would raise SSLEOFError.
        self.assertEqual(conn.recv(4096), b"")
        conn.close()
        self.assertEqual(broker.stop(), 0)

    def test_max_connections_refusal_is_a_503_over_tls(self):
        broker = Broker(*self.tls_args(), "--broker.max-connections", "1")
        helper = Tls()
        helper.ca = self.ca
        helper.broker = broker
        try:
            with helper.connect() as first:
                self.assertEqual(helper.request(first, "GET", "/api/stats")[0], 200)
                with helper.connect() as second:
                    second.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertIn(b" 503 ", helper.read_until(second, b"\r\n\r\n"))
        finally:
            self.assertEqual(broker.stop(), 0)

    def test_unusable_tls_settings_exit_2_with_one_line(self):
        cases = {
            "only cert": ["--tls.cert-file", self.cert],
            "only key": ["--tls.key-file", self.key],
            "missing cert": self.tls_args(f"{self.dir}/absent.pem"),
            "unreadable key": self.tls_args(key=f"{self.dir}/absent.key"),
            "key of another cert": self.tls_args(self.cert, self.key2),
            "key given as cert": self.tls_args(self.key, self.key),
            "bad client ca": self.tls_args() + ["--tls.client-ca-file", self.key],
            "client ca without tls": ["--tls.client-ca-file", self.client_ca],
            "monitoring.tls without tls": ["--monitoring.tls", "true"],
        }
        for name, args in cases.items():
            answer = run(BINARY, "broker", "--broker.port", "0", "--monitoring.port", ":0",
                         *args, cwd=self.dir)
            self.assertEqual(answer.returncode, 2, (name, answer.stderr))
            self.assertEqual(len(answer.stderr.strip().splitlines()), 1, (name, answer.stderr))
            self.assertRegex(answer.stderr, r"tls", name)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
