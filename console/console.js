// The GopherMQ console: polls /api/stats, publishes from a form, tails a subject over SSE.
// Plain browser JavaScript, no framework and no build step; the broker serves this file as is.
"use strict";

const STATS_EVERY_MS = 2000;
const STATS_SUBJECTS = 50;
// The tail keeps this many rows, so a busy subject cannot grow the page without bound.
const TAIL_ROWS = 500;

// The bearer token for access control (API.md §11), asked for when the broker answers 401 and
// kept for this tab only (sessionStorage): it is gone when the tab closes.
const TOKEN_KEY = "gophermq-token";

function bearerToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function askForToken() {
  $("token-form").hidden = false;
  $("token-input").focus();
}

// Every API call goes through here, so credentials are added in one place.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = bearerToken();
  if (token) {
    headers.set("Authorization", `Bearer ${token}`);
  }
  const answer = await fetch(path, { ...options, headers, cache: "no-store" });
  if (answer.status === 401) askForToken();
  return answer;
}

// EventSource cannot send headers; §11 takes the token as a query parameter on streams.
function streamUrl(subject) {
  const query = new URLSearchParams({ subject });
  const token = bearerToken();
  if (token) {
    query.set("access_token", token);
  }
  return `/api/stream?${query}`;
}

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatUptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `up ${d}d ${h}h`;
  if (h > 0) return `up ${h}h ${m}m`;
  if (m > 0) return `up ${m}m ${s}s`;
  return `up ${s}s`;
}

function setPill(element, text, kind) {
  element.textContent = text;
  element.className = `pill ${kind}`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// ---- Stats -------------------------------------------------------------------------------------

let previous = null;  // the last totals and when they came, for the rates

function showTotals(totals, now) {
  for (const element of document.querySelectorAll("[data-stat]")) {
    const value = totals[element.dataset.stat];
    element.dataset.value = String(value);
    element.textContent =
      element.dataset.format === "bytes" ? formatBytes(value) : numbers.format(value);
  }
  const reasons = Object.entries(totals.dropped_messages);
  const dropped = reasons.reduce((sum, [, count]) => sum + count, 0);
  $("stat-dropped").textContent = numbers.format(dropped);
  $("stat-dropped").dataset.value = String(dropped);
  const nonZero = reasons.filter(([, count]) => count > 0);
  $("drops").textContent = nonZero.length === 0
    ? "none"
    : nonZero.map(([reason, count]) => `${reason.replaceAll("_", " ")} ${numbers.format(count)}`).join(" · ");
  if (previous !== null && now > previous.at) {
    const seconds = (now - previous.at) / 1000;
    const rate = (key) => Math.max(0, (totals[key] - previous.totals[key]) / seconds);
    $("rate-published").textContent = `${numbers.format(Math.round(rate("published_messages")))}/s`;
    $("rate-delivered").textContent = `${numbers.format(Math.round(rate("delivered_messages")))}/s`;
  }
  previous = { totals, at: now };
}

function showSubjects(subjects) {
  const rows = subjects.map((row) => {
    const tr = document.createElement("tr");
    const subject = document.createElement("td");
    subject.className = "subject";
    const pick = document.createElement("button");
    pick.type = "button";
    pick.textContent = row.subject;
    pick.title = "Tail this subject";
    pick.addEventListener("click", () => {
      $("tail-subject").value = row.subject;
      $("tail-subject").focus();
    });
    subject.append(pick);
    tr.append(subject,
      cell(numbers.format(row.subscriptions), "num"),
      cell(numbers.format(row.groups), "num"),
      cell(numbers.format(row.pending_messages), "num"),
      cell(formatBytes(row.pending_bytes), "num"),
      cell(numbers.format(row.in_flight), "num"));
    return tr;
  });
  $("subjects").tBodies[0].replaceChildren(...rows);
  $("no-subjects").hidden = rows.length > 0;
}

async function refreshStats() {
  try {
    const answer = await api(`/api/stats?limit=${STATS_SUBJECTS}`);
    if (!answer.ok) {
      const body = await answer.json().catch(() => ({}));
      throw new Error(body.message || `HTTP ${answer.status}`);
    }
    const stats = await answer.json();
    const now = Date.now();
    showTotals(stats.totals, now);
    showSubjects(stats.subjects);
    $("uptime").textContent = formatUptime(stats.uptime_seconds);
    $("updated").textContent = `updated ${new Date(now).toLocaleTimeString()}`;
    setPill($("health"), "live", "ok");
  } catch (error) {
    setPill($("health"), `unreachable: ${error.message}`, "bad");
  }
}

// Polls while the tab is visible; a hidden tab costs the broker nothing.
let statsTimer = null;

function scheduleStats() {
  clearTimeout(statsTimer);
  if (document.visibilityState === "hidden") return;
  statsTimer = setTimeout(async () => {
    await refreshStats();
    scheduleStats();
  }, STATS_EVERY_MS);
}

document.addEventListener("visibilitychange", async () => {
  if (document.visibilityState === "visible") {
    await refreshStats();
    scheduleStats();
  }
});

// ---- Publish -----------------------------------------------------------------------------------

async function publish(event) {
  event.preventDefault();
  const button = $("publish-button");
  const result = $("publish-result");
  const body = { subject: $("publish-subject").value.trim(), data: $("publish-data").value };
  const msgId = $("publish-msg-id").value.trim();
  if (msgId) body.msg_id = msgId;
  button.disabled = true;
  try {
    const answer = await api("/api/publish", { method: "POST", body: JSON.stringify(body) });
    const text = (await answer.text()).trim();
    let hint = "";
    if (answer.status === 404) {
      hint = "\nA message is kept only for the subscriptions that exist when it is published.";
    }
    result.textContent = `${answer.status} ${answer.statusText}  ${text}${hint}`;
    result.className = answer.ok ? "result ok" : "result bad";
    result.dataset.status = String(answer.status);
  } catch (error) {
    result.textContent = `request failed: ${error.message}`;
    result.className = "result bad";
    result.dataset.status = "0";
  } finally {
    result.hidden = false;
    button.disabled = false;
  }
  refreshStats();
}

// ---- Live tail ---------------------------------------------------------------------------------

let tail = null;

function tailControls(running) {
  $("tail-start").disabled = running;
  $("tail-stop").disabled = !running;
  $("tail-subject").readOnly = running;
}

function addTailRow(message) {
  const tr = document.createElement("tr");
  tr.className = "fresh";
  tr.dataset.seq = String(message.seq);
  tr.append(cell(String(message.seq), "num"),
    cell(new Date().toLocaleTimeString(), "time"),
    cell(message.subject, "subject"),
    cell(message.data, "data"));
  const body = $("tail").tBodies[0];
  body.prepend(tr);
  while (body.rows.length > TAIL_ROWS) {
    body.lastElementChild.remove();
  }
}

function stopTail(text = "stopped") {
  if (tail !== null) {
    tail.close();
    tail = null;
  }
  tailControls(false);
  setPill($("tail-status"), text, "idle");
}

// EventSource hides why a stream was refused; HEAD on the same URL gets its status without
// subscribing anything.
async function explainRefusal(url) {
  try {
    const answer = await api(url, { method: "HEAD" });
    const reasons = {
      400: "invalid subject",
      401: "token needed",
      403: "not permitted for this token",
      429: "too many subscriptions",
      503: "broker shutting down",
    };
    return reasons[answer.status] || `HTTP ${answer.status}`;
  } catch (error) {
    return "broker unreachable";
  }
}

function startTail(event) {
  event.preventDefault();
  const subject = $("tail-subject").value.trim();
  if (!subject) return;
  stopTail();
  const url = streamUrl(subject);
  const source = new EventSource(url);
  tail = source;
  tailControls(true);
  setPill($("tail-status"), "connecting…", "idle");
  source.addEventListener("subscribed", () => {
    setPill($("tail-status"), `live on ${subject}`, "live");
  });
  source.addEventListener("message", (message) => {
    addTailRow(JSON.parse(message.data));
  });
  source.addEventListener("error", async () => {
    if (tail !== source) return;
    if (source.readyState === EventSource.CLOSED) {
      const reason = await explainRefusal(url);
      if (tail === source) stopTail(`refused: ${reason}`);
    } else {
      // EventSource reconnects by itself; the new stream is a new subscription.
      setPill($("tail-status"), "reconnecting…", "bad");
    }
  });
}

// ---- Start -------------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-input").value = "";
  $("token-form").hidden = true;
  refreshStats();
});
$("publish-form").addEventListener("submit", publish);
$("tail-form").addEventListener("submit", startTail);
$("tail-stop").addEventListener("click", () => stopTail());
$("tail-clear").addEventListener("click", () => $("tail").tBodies[0].replaceChildren());
refreshStats().then(scheduleStats);
