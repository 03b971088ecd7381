#!/usr/bin/env python3
"""A real browser uses the built-in web console at GET / (API.md §10, docs/console.md).

Headless Chromium, driven over its DevTools protocol, loads http://127.0.0.1:PORT/ from the
broker itself. The test checks that the stats the page shows are the broker's (/api/stats), that
its publish form reaches a subscriber the test fetches from and shows refusals, and that its live
tail shows messages published meanwhile and removes its subscription when stopped. The page must
run without a script error or a Content-Security-Policy violation.

With GOPHERMQ_SCREENSHOTS=DIR it also writes DIR/console.png and DIR/console-dark.png at
1280x800 (docs/img holds the committed ones). Exits 77 (CTest's skip) when Chromium or
python3-websocket is not installed.

Usage: console_browser_test.py GOPHERMQ_BINARY
"""

import base64
import json
import os
import re
import sys
import tempfile

import harness

WIDTH, HEIGHT = 1280, 800


def wait_for(page, condition, what):
    """Resolves when the page's `condition` (a JS expression) is truthy, checked on every DOM
    change; fails after the deadline. Returns the condition's value."""
    expression = f"""new Promise((resolve, reject) => {{
      const check = () => {{ try {{ return ({condition}); }} catch (error) {{ return undefined; }} }};
      const first = check();
      if (first) {{ resolve(first); return; }}
      const observer = new MutationObserver(() => {{
        const value = check();
        if (value) {{ observer.disconnect(); clearTimeout(timer); resolve(value); }}
      }});
      observer.observe(document, {{subtree: true, childList: true, characterData: true,
                                   attributes: true}});
      const timer = setTimeout(() => {{
        observer.disconnect();
        reject(new Error({json.dumps("timed out waiting for " + what)}));
      }}, {harness.DEADLINE_SECONDS * 1000 - 2000});
    }})"""
    return page.evaluate(expression)


def set_value(page, element_id, value):
    page.evaluate(f"document.getElementById({json.dumps(element_id)}).value = {json.dumps(value)}")


def click(page, element_id):
    page.evaluate(f"document.getElementById({json.dumps(element_id)}).click()")


def text_of(page, element_id):
    return page.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent")


def stats_are_shown(page, api):
    """The totals and the subject table show what /api/stats says."""
    api.post("/api/subscribe", {"subject": "orders.eu"})
    api.post("/api/subscribe", {"subject": "orders.eu"})
    api.post("/api/subscribe", {"subject": "orders.us"})
    for i in range(7):
        api.post("/api/publish", {"subject": "orders.eu", "data": f"order {i}"})
    api.post("/api/publish/batch", {"subject": "orders.us", "data": ["a", "bb", "ccc"]})
    totals = api.get("/api/stats")["totals"]
    assert totals["published_messages"] == 10, totals
    assert totals["pending_messages"] == 17, totals
    # The page polls every 2 s: it shows these numbers by its next poll at the latest.
    for stat in ("published_messages", "pending_messages", "subscriptions", "subjects"):
        shown = wait_for(
            page, f"document.getElementById('stat-{stat}').dataset.value === "
                  f"'{totals[stat]}' && document.getElementById('stat-{stat}').textContent",
            f"{stat} = {totals[stat]}")
        assert re.sub(r"\D", "", shown) == str(totals[stat]), (stat, shown)
    row = wait_for(page, """[...document.querySelectorAll('#subjects tbody tr')]
        .map((tr) => [...tr.cells].map((td) => td.textContent))
        .find((cells) => cells[0] === 'orders.eu')""", "the orders.eu row")
    assert row[1:4] == ["2", "0", "14"], row
    assert text_of(page, "health") == "live", text_of(page, "health")
    print("ok: the console shows the broker's totals and subjects")


def submit_publish(page, status):
    """Submits the publish form and returns the answer it shows once its status is `status`."""
    page.evaluate("delete document.getElementById('publish-result').dataset.status")
    click(page, "publish-button")
    wait_for(page, f"document.getElementById('publish-result').dataset.status === '{status}'",
             f"the {status} answer")
    return text_of(page, "publish-result")


def publish_form_reaches_a_subscriber(page, api):
    subscription = api.post("/api/subscribe", {"subject": "console.form"})

    # Refusals show the broker's error body.
    set_value(page, "publish-data", "refused")
    for subject, status, message in (("nobody.listens", "404", "subscriber not found"),
                                     ("not a subject", "400", "invalid subject")):
        set_value(page, "publish-subject", subject)
        shown = submit_publish(page, status)
        assert f'{{"message":"{message}"}}' in shown, shown

    data = 'hello from the console <&> "quoted" ünïcode'
    set_value(page, "publish-subject", "console.form")
    set_value(page, "publish-data", data)
    set_value(page, "publish-msg-id", "form-1")
    shown = submit_publish(page, "200")
    assert '"duplicate":false' in shown and '"status":"ok"' in shown, shown
    fetched = api.post("/api/fetch", {"subject": "console.form", "id": subscription["id"]})
    assert fetched["data"] == [data], fetched

    # The same msg_id again is a duplicate, and the answer says so.
    assert '"duplicate":true' in submit_publish(page, "200")
    assert api.post("/api/fetch", {"subject": "console.form", "id": subscription["id"]})[
        "data"] == []
    print("ok: the publish form reaches a subscriber and shows the broker's answers")


def live_tail_shows_messages(page, api):
    set_value(page, "tail-subject", "console.>")
    click(page, "tail-start")
    wait_for(page, "document.getElementById('tail-status').textContent === 'live on console.>'",
             "the tail's subscription")
    sent = [f"tail message {i}" for i in range(5)] + ['{"json": [1, 2]} <b>not bold</b>']
    for i, data in enumerate(sent):
        api.post("/api/publish", {"subject": f"console.tail.{i % 2}", "data": data})
    rows = wait_for(page, f"""(() => {{
        const rows = [...document.querySelectorAll('#tail tbody tr')]
          .map((tr) => [...tr.cells].map((td) => td.textContent));
        return rows.length === {len(sent)} && rows;
      }})()""", f"{len(sent)} tail rows")
    rows.reverse()  # newest first on the page
    assert [r[3] for r in rows] == sent, rows
    assert [r[2] for r in rows] == [f"console.tail.{i % 2}" for i in range(len(sent))], rows
    seqs = [int(r[0]) for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    # Data is shown as text, never parsed as HTML.
    assert page.evaluate("document.querySelector('#tail b')") is None
    # The tail is a subscription like any other: the subject table shows it.
    wait_for(page, """[...document.querySelectorAll('#subjects tbody tr')]
        .some((tr) => tr.cells[0].textContent === 'console.>')""", "the tail's subscription")
    print(f"ok: the live tail shows {len(sent)} messages in order")


def tail_stops_and_refuses(page, api):
    click(page, "tail-stop")
    assert text_of(page, "tail-status") == "stopped"
    # The stream's end removes its subscription; the console's own table shows it go, and the
    # broker agrees.
    wait_for(page, """![...document.querySelectorAll('#subjects tbody tr')]
        .some((tr) => tr.cells[0].textContent === 'console.>')""", "the tail's subscription gone")
    assert all(s["subject"] != "console.>" for s in api.get("/api/stats")["subjects"])

    set_value(page, "tail-subject", "not a subject")
    click(page, "tail-start")
    wait_for(page, "document.getElementById('tail-status').textContent === "
                   "'refused: invalid subject'", "the refused tail")
    assert page.evaluate("document.getElementById('tail-start').disabled") is False
    print("ok: stopping the tail removes its subscription; a bad subject is refused")


def screenshot(page, path):
    shot = page.call("Page.captureScreenshot", format="png")
    with open(path, "wb") as out:
        out.write(base64.b64decode(shot["data"]))
    print(f"wrote {path}")


def page_errors(page):
    """Script errors, CSP violations and console errors the page had, besides network ones."""
    errors = []
    for method, params in page.events:
        if method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error" and \
                params["entry"]["source"] != "network":
            errors.append(params["entry"])
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            errors.append(params["args"])
    return errors


def main():
    binary = sys.argv[1]
    if harness.missing():
        print(f"SKIP: {harness.missing()}")
        return harness.SKIP
    screenshots = os.environ.get("GOPHERMQ_SCREENSHOTS")

    with tempfile.TemporaryDirectory() as scratch:
        broker, port = harness.start_broker(binary)
        browser = None
        try:
            api = harness.Api(port)
            browser, devtools_port = harness.start_chromium(os.path.join(scratch, "profile"))
            page = harness.DevTools(harness.page_target(devtools_port))
            for domain in ("Page", "Runtime", "Log"):
                page.call(f"{domain}.enable")
            page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                      deviceScaleFactor=1, mobile=False)
            page.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
            page.wait_for_event("Page.loadEventFired")
            assert page.evaluate("document.title") == "GopherMQ console"

            stats_are_shown(page, api)
            publish_form_reaches_a_subscriber(page, api)
            live_tail_shows_messages(page, api)
            if screenshots:
                os.makedirs(screenshots, exist_ok=True)
                screenshot(page, os.path.join(screenshots, "console.png"))
                page.call("Emulation.setEmulatedMedia",
                          features=[{"name": "prefers-color-scheme", "value": "dark"}])
                wait_for(page, "getComputedStyle(document.body).backgroundColor === "
                               "'rgb(15, 20, 25)'", "the dark theme")
                screenshot(page, os.path.join(screenshots, "console-dark.png"))
                page.call("Emulation.setEmulatedMedia", features=[])
            tail_stops_and_refuses(page, api)

            errors = page_errors(page)
            assert not errors, errors
            page.close()
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(timeout=harness.DEADLINE_SECONDS)
            broker.terminate()
            status = broker.wait(timeout=harness.DEADLINE_SECONDS)
        assert status == 0, f"broker exited {status}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
