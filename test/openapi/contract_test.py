"""The OpenAPI description checked against the real broker.

Starts the broker, sends the requests of CASES (one line each), and checks every real answer
against docs/openapi.yaml: the status is one the operation declares, the Content-Type is one it
declares for that status, the body validates against its schema, and declared required headers
are there. It fails, too, when a status an operation declares was never seen: the description
cannot promise what the broker does not do, nor miss what it does.

Cases for a broker with access control (API.md §11) run only when the binary knows `auth.file`;
until then the 401 and 403 they cover are reported as skipped.

usage: contract_test.py GOPHERMQ_BINARY OPENAPI_YAML FSYNC_SHIM
"""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile

import jsonschema
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from broker_process import BrokerProcess  # noqa: E402

BINARY, SPEC_PATH, SHIM = sys.argv[1], sys.argv[2], sys.argv[3]
with open(SPEC_PATH, encoding="utf-8") as spec_file:
    SPEC = yaml.safe_load(spec_file)
RESOLVER = jsonschema.RefResolver.from_schema(SPEC)

UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
BIG = "x" * 70000  # over --broker.max-body-bytes below
ADMIN_TOKEN, READER_TOKEN, METRICS_TOKEN = "admin-token-1", "reader-token-1", "metrics-token-1"
ADMIN = {"Authorization": "Bearer " + ADMIN_TOKEN}
READER = {"Authorization": "Bearer " + READER_TOKEN}


class Case:
    """One request and the status it must get. `body`: a dict (sent as JSON) or a str (as is);
    `{name}` in the path or body is replaced by a value saved before; `save` maps names to the
    path of a value in the JSON answer (keys and list indexes, dot-separated)."""

    def __init__(self, broker, method, path, body=None, status=200, headers=None, save=None,
                 port="api"):
        self.broker, self.method, self.path, self.body = broker, method, path, body
        self.status, self.headers, self.save, self.port = status, headers or {}, save or {}, port


def C(*args, **kwargs):
    return Case(*args, **kwargs)


CASES = [
    # Messaging (API.md §3) on the main broker.
    C("main", "POST", "/api/subscribe", {"subject": "c.plain"}, save={"plain": "id"}),
    C("main", "POST", "/api/subscribe", {"subject": "c.*", "group": "g"}, save={"grouped": "id"}),
    C("main", "POST", "/api/subscribe", {"subject": "c.ack", "ack": True, "ack_wait_ms": 60000},
      save={"acked": "id"}),
    C("main", "POST", "/api/subscribe", "", 400),
    C("main", "POST", "/api/subscribe", {"subject": "a..b"}, 400),
    C("main", "POST", "/api/subscribe", {"subject": "c.x", "data": BIG}, 413),
    C("main", "POST", "/api/publish", {"subject": "c.plain", "data": "hello"}),
    C("main", "POST", "/api/publish", {"subject": "c.plain", "data": "again", "msg_id": "m1"}),
    C("main", "POST", "/api/publish", {"subject": "c.*", "data": "x"}, 400),
    C("main", "POST", "/api/publish", {"subject": "nobody.here", "data": "x"}, 404),
    C("main", "POST", "/api/publish", {"subject": "c.plain", "data": "x" * 2000}, 413),
    C("main", "POST", "/api/publish/async", {"subject": "c.plain", "data": "async"}),
    C("main", "POST", "/api/publish/async", {"subject": "c.plain", "msg_id": "m2"}),
    C("main", "POST", "/api/publish/async", {"subject": ""}, 400),
    C("main", "POST", "/api/publish/async", {"subject": "c.plain", "data": BIG}, 413),
    C("main", "POST", "/api/publish/batch", {"subject": "c.ack", "data": ["1", "2", "3"]}),
    C("main", "POST", "/api/publish/batch", {"subject": "c.ack", "data": ["4"], "msg_ids": ["b"]}),
    C("main", "POST", "/api/publish/batch", {"subject": "c.ack", "data": []}, 400),
    C("main", "POST", "/api/publish/batch", {"subject": "nobody.here", "data": ["x"]}, 404),
    C("main", "POST", "/api/publish/batch", {"subject": "c.ack", "data": ["x" * 2000]}, 413),
    C("main", "POST", "/api/fetch", {"subject": "c.plain", "id": "{plain}"}),
    C("main", "POST", "/api/fetch", {"subject": "c.ack", "id": "{acked}", "max": 2},
      save={"receipt": "messages.0.receipt", "receipt2": "messages.1.receipt"}),
    C("main", "POST", "/api/fetch", {"subject": "c.plain", "id": "{plain}", "meta": True}),
    C("main", "POST", "/api/fetch", {"subject": "c.plain", "id": "{plain}", "max": 0}, 400),
    C("main", "POST", "/api/fetch", {"subject": "c.plain", "id": "nope"}, 404),
    C("main", "POST", "/api/fetch", {"subject": "c.plain", "id": BIG}, 413),
    # At-least-once (API.md §9).
    C("main", "POST", "/api/ack", {"subject": "c.ack", "id": "{acked}", "receipts": ["{receipt}"]}),
    C("main", "POST", "/api/ack", {"subject": "c.ack", "id": "{acked}", "receipts": "r"}, 400),
    C("main", "POST", "/api/ack", {"subject": "c.ack", "id": "nope", "receipts": []}, 404),
    C("main", "POST", "/api/ack", {"subject": "c.ack", "id": BIG}, 413),
    C("main", "POST", "/api/extend",
      {"subject": "c.ack", "id": "{acked}", "receipts": ["{receipt2}"]}),
    C("main", "POST", "/api/extend", {"subject": "c.ack", "id": "{acked}", "receipts": [1]}, 400),
    C("main", "POST", "/api/extend", {"subject": "c.ack", "id": "nope", "receipts": []}, 404),
    C("main", "POST", "/api/extend", {"subject": "c.ack", "id": BIG}, 413),
    C("main", "POST", "/api/nack",
      {"subject": "c.ack", "id": "{acked}", "receipts": ["{receipt2}"], "delay_ms": 0}),
    C("main", "POST", "/api/nack",
      {"subject": "c.ack", "id": "{acked}", "receipts": [], "delay_ms": -1}, 400),
    C("main", "POST", "/api/nack", {"subject": "c.ack", "id": "nope", "receipts": []}, 404),
    C("main", "POST", "/api/nack", {"subject": "c.ack", "id": BIG}, 413),
    C("main", "GET", "/api/stats"),
    C("main", "GET", "/api/stats?limit=1"),
    C("main", "GET", "/api/stats?limit=5000", status=400),
    # Push (API.md §10): the head of the stream, or of the upgrade, is what is checked.
    C("main", "GET", "/api/stream?subject=c.stream"),
    C("main", "GET", "/api/stream?id={plain}"),
    C("main", "GET", "/api/stream?subject=a..b", status=400),
    C("main", "GET", "/api/stream?id=nope", status=404),
    C("main", "GET", "/api/ws?subject=c.ws", status=101, headers=UPGRADE),
    C("main", "GET", "/api/ws?subject=c.ws", status=400,
      headers={**UPGRADE, "Sec-WebSocket-Key": "short"}),
    C("main", "GET", "/api/ws?subject=c.ws", status=403,
      headers={**UPGRADE, "Origin": "http://elsewhere.example"}),
    C("main", "GET", "/api/ws?id=nope", status=404, headers=UPGRADE),
    C("main", "GET", "/api/ws?subject=c.ws", status=426),
    # Admin.
    C("main", "GET", "/api/admin/subscriptions"),
    C("main", "GET", "/api/admin/subscriptions?subject=c.%3E&limit=1"),
    C("main", "GET", "/api/admin/subscriptions?subject=a..b", status=400),
    C("main", "POST", "/api/admin/purge", {"subject": "c.>"}),
    C("main", "POST", "/api/admin/purge", {"id": "{acked}"}),
    C("main", "POST", "/api/admin/purge", {}, 400),
    C("main", "POST", "/api/admin/purge", {"id": "nope"}, 404),
    C("main", "POST", "/api/admin/purge", {"subject": BIG}, 413),
    C("main", "POST", "/api/admin/unsubscribe", {"id": "{grouped}"}),
    C("main", "POST", "/api/admin/unsubscribe", "null", 400),
    C("main", "POST", "/api/admin/unsubscribe", {"id": "{grouped}"}, 404),
    C("main", "POST", "/api/admin/unsubscribe", {"id": BIG}, 413),
    C("main", "POST", "/api/unsubscribe", {"subject": "c.plain", "id": "{plain}"}),
    C("main", "POST", "/api/unsubscribe", {"subject": 1}, 400),
    C("main", "POST", "/api/unsubscribe", {"subject": "c.plain", "id": "{plain}"}, 404),
    C("main", "POST", "/api/unsubscribe", {"subject": "c.plain", "id": BIG}, 413),
    # Operations.
    C("main", "GET", "/ready", status=204),
    C("main", "GET", "/openapi.yaml"),
    C("main", "GET", "/"),
    C("main", "GET", "/metrics", port="metrics"),
    # Limits, on a broker that has almost no room.
    C("tiny", "POST", "/api/subscribe", {"subject": "t"}, save={"tiny": "id"}),
    C("tiny", "POST", "/api/subscribe", {"subject": "t"}, 429),
    C("tiny", "GET", "/api/stream?subject=t", status=429),
    C("tiny", "GET", "/api/ws?subject=t", status=429, headers=UPGRADE),
    C("tiny", "POST", "/api/publish", {"subject": "t", "data": "1"}),
    C("tiny", "POST", "/api/publish", {"subject": "t", "data": "2"}, 429),
    C("tiny", "POST", "/api/publish/batch", {"subject": "t", "data": ["2"]}, 429),
    C("tiny", "POST", "/api/publish/async", {"subject": "t", "data": "too long"}, 429),
    # Access control (API.md §11): every /api/ route without a token, and with one lacking the
    # permission.
    C("auth", "POST", "/api/subscribe", {"subject": "c.x"}, 401),
    C("auth", "POST", "/api/publish", {"subject": "c.x"}, 401),
    C("auth", "POST", "/api/publish/async", {"subject": "c.x"}, 401),
    C("auth", "POST", "/api/publish/batch", {"subject": "c.x", "data": ["x"]}, 401),
    C("auth", "POST", "/api/fetch", {"subject": "c.x", "id": "x"}, 401),
    C("auth", "POST", "/api/unsubscribe", {"subject": "c.x", "id": "x"}, 401),
    C("auth", "POST", "/api/ack", {"subject": "c.x", "id": "x", "receipts": []}, 401),
    C("auth", "POST", "/api/nack", {"subject": "c.x", "id": "x", "receipts": []}, 401),
    C("auth", "POST", "/api/extend", {"subject": "c.x", "id": "x", "receipts": []}, 401),
    C("auth", "GET", "/api/stats", status=401),
    C("auth", "GET", "/api/stream?subject=c.x", status=401),
    C("auth", "GET", "/api/ws?subject=c.x", status=401, headers=UPGRADE),
    C("auth", "GET", "/api/admin/subscriptions", status=401),
    C("auth", "POST", "/api/admin/unsubscribe", {"id": "x"}, 401),
    C("auth", "POST", "/api/admin/purge", {"subject": ">"}, 401),
    C("auth", "GET", "/metrics", status=401, port="metrics"),
    C("auth", "POST", "/api/subscribe", {"subject": "c.x"}, 403, headers=READER),
    C("auth", "POST", "/api/publish", {"subject": "c.x"}, 403, headers=READER),
    C("auth", "POST", "/api/publish/async", {"subject": "c.x"}, 403, headers=READER),
    C("auth", "POST", "/api/publish/batch", {"subject": "c.x", "data": ["x"]}, 403,
      headers=READER),
    C("auth", "POST", "/api/fetch", {"subject": "c.x", "id": "x"}, 404, headers=READER),
    C("auth", "POST", "/api/unsubscribe", {"subject": "c.x", "id": "x"}, 404, headers=READER),
    C("auth", "POST", "/api/ack", {"subject": "c.x", "id": "x", "receipts": []}, 404,
      headers=READER),
    C("auth", "POST", "/api/nack", {"subject": "c.x", "id": "x", "receipts": []}, 404,
      headers=READER),
    C("auth", "POST", "/api/extend", {"subject": "c.x", "id": "x", "receipts": []}, 404,
      headers=READER),
    C("auth", "GET", "/api/stats", status=403, headers=READER),
    C("auth", "GET", "/api/stream?subject=c.x", status=403, headers=READER),
    C("auth", "GET", "/api/ws?subject=c.x", status=403, headers={**UPGRADE, **READER}),
    C("auth", "GET", "/api/admin/subscriptions", status=403, headers=READER),
    C("auth", "POST", "/api/admin/unsubscribe", {"id": "x"}, 403, headers=READER),
    C("auth", "POST", "/api/admin/purge", {"subject": ">"}, 403, headers=READER),
    # An owned subscription, so the admin list below has a row with "owner".
    C("auth", "POST", "/api/subscribe", {"subject": "other.x"}, headers=READER),
    C("auth", "GET", "/api/admin/subscriptions", headers=ADMIN),
]


def supports_auth():
    """Whether this binary takes auth.file (API.md §11): its help lists the key."""
    result = subprocess.run([BINARY, "broker", "--help"], capture_output=True, text=True,
                            timeout=20, check=False)
    return "auth.file" in result.stdout + result.stderr


def start_brokers(directory, with_auth):
    brokers = {
        "main": BrokerProcess(BINARY, ["--broker.max-body-bytes=65536",
                                       "--broker.max-message-bytes=1024"]),
        "tiny": BrokerProcess(BINARY, ["--broker.max-subscriptions=1", "--broker.max-pending=1",
                                       "--broker.async-queue-bytes=1"]),
    }
    if with_auth:
        tokens = os.path.join(directory, "tokens")
        with open(tokens, "w", encoding="utf-8") as out:
            for name, token, permissions in (("ops", ADMIN_TOKEN, "admin"),
                                             ("reader", READER_TOKEN, "sub:other.>")):
                digest = hashlib.sha256(token.encode()).hexdigest()
                out.write(f"{name} {digest} {permissions}\n")
        brokers["auth"] = BrokerProcess(BINARY, ["--auth.file=" + tokens,
                                                 "--monitoring.token=" + METRICS_TOKEN])
    return brokers


def substitute(text, saved):
    return re.sub(r"\{(\w+)\}", lambda match: saved[match.group(1)], text)


def send(port, case, saved):
    path = substitute(case.path, saved)
    if case.body is None:
        body = None
    elif isinstance(case.body, str):
        body = substitute(case.body, saved)
    else:
        body = substitute(json.dumps(case.body), saved)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(case.method, path, body=body, headers=case.headers)
        response = connection.getresponse()
        content_type = response.getheader("Content-Type", "")
        # A stream never ends and an upgraded socket is no HTTP any more: their heads are enough.
        streaming = content_type.startswith("text/event-stream") or response.status == 101
        payload = b"" if streaming else response.read()
        return response, payload
    finally:
        connection.close()


def declared_statuses():
    statuses = set()
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post"):
                statuses.update((path, method, code) for code in operation["responses"])
    return statuses


def resolve(node):
    while "$ref" in node:
        node = RESOLVER.resolve(node["$ref"])[1]
    return node


def check(case, response, payload):
    """The problems with one answer, as strings; none when it is as described."""
    path = case.path.split("?")[0]
    operation = SPEC["paths"].get(path, {}).get(case.method.lower())
    if operation is None:
        return [f"{case.method} {path} is not described"]
    problems = []
    if response.status != case.status:
        problems.append(f"status {response.status}, the case expects {case.status}: {payload!r}")
    declared = operation["responses"].get(str(response.status))
    if declared is None:
        return problems + [f"status {response.status} is not declared"]
    declared = resolve(declared)
    for name, header in declared.get("headers", {}).items():
        if header.get("required") and response.getheader(name) is None:
            problems.append(f"header {name} is missing")
    content = declared.get("content")
    content_type = response.getheader("Content-Type", "")
    if not content:
        if payload:
            problems.append(f"a body where none is declared: {payload!r}")
        return problems
    media = content_type.split(";")[0].strip()
    if media not in content:
        return problems + [f"Content-Type {content_type!r}, declared {sorted(content)}"]
    if media == "application/json":
        if content_type != "application/json; charset=UTF-8":
            problems.append(f"Content-Type {content_type!r}")
        try:
            document = json.loads(payload)
        except ValueError as error:
            return problems + [f"not JSON ({error}): {payload!r}"]
        validator = jsonschema.Draft202012Validator(content[media]["schema"], resolver=RESOLVER)
        problems += [f"schema: {error.message} at {list(error.absolute_path)}"
                     for error in validator.iter_errors(document)]
    return problems


def spawn(arguments, environment=None):
    """The broker as a child whose log this test reads itself, and its API port once listening."""
    process = subprocess.Popen([BINARY, "broker", "--broker.host=127.0.0.1", "--broker.port=0",
                                "--monitoring.port=127.0.0.1:0", *arguments],
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(environment or {})})
    for line in process.stderr:
        match = re.search(r"msg=listening listener=api address=\S+ port=(\d+)", line)
        if match:
            return process, int(match.group(1))
    raise SystemExit("the broker did not start: " + str(process.wait()))


def ready_while_recovering(directory):
    """`GET /ready` while the broker replays its log: the LD_PRELOAD shim holds recovery at its
    first read of the log until this test opens the FIFO, so the 503 is seen without a race."""
    storage = os.path.join(directory, "log")
    process, port = spawn(["--storage.dir=" + storage])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("POST", "/api/subscribe", body='{"subject":"r"}')
    connection.getresponse().read()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    hold = os.path.join(directory, "hold")
    os.mkfifo(hold)
    process, port = spawn(["--storage.dir=" + storage], {
        "LD_PRELOAD": SHIM, "GOPHERMQ_SHIM_DIR": storage,
        "GOPHERMQ_SHIM_STATE": os.path.join(directory, "shim-state"),
        "GOPHERMQ_SHIM_CONTROL": os.path.join(directory, "shim-control"),
        "GOPHERMQ_SHIM_HOLD_READ": hold})
    try:
        return send(port, Case("recovering", "GET", "/ready", status=503), {})
    finally:
        with open(hold, "w", encoding="utf-8"):
            pass
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def main():
    with_auth = supports_auth()
    failures, seen, skipped = [], set(), set()
    with tempfile.TemporaryDirectory() as directory:
        brokers = start_brokers(directory, with_auth)
        saved = {}
        try:
            for case in CASES:
                key = (case.path.split("?")[0], case.method.lower(), str(case.status))
                if case.broker not in brokers:
                    skipped.add(key)
                    continue
                port = brokers[case.broker].ports[case.port]
                response, payload = send(port, case, saved)
                seen.add((key[0], key[1], str(response.status)))
                for problem in check(case, response, payload):
                    failures.append(f"{case.method} {case.path} [{case.broker}]: {problem}")
                if response.status == case.status and case.save:
                    document = json.loads(payload)
                    for name, where in case.save.items():
                        value = document
                        for step in where.split("."):
                            value = value[int(step)] if isinstance(value, list) else value[step]
                        saved[name] = value
        finally:
            for broker in brokers.values():
                broker.stop()
        recovering = Case("recovering", "GET", "/ready", status=503)
        response, payload = ready_while_recovering(directory)
        seen.add(("/ready", "get", str(response.status)))
        failures += [f"GET /ready while recovering: {problem}"
                     for problem in check(recovering, response, payload)]
    missing = declared_statuses() - seen - skipped
    for path, method, status in sorted(missing):
        failures.append(f"{method.upper()} {path} declares {status}, never seen")
    for path, method, status in sorted(skipped - seen):
        print(f"skipped (no auth.file in this broker): {method.upper()} {path} {status}")
    print(f"{len(CASES)} cases, {len(seen)} statuses seen")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
