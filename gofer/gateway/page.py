"""The page served at ``/``: the caller's recent calls, their state kept live from their events.

One self-contained document: its style and script are inline, it loads
nothing else, and its Content-Security-Policy allows exactly those two
(by hash) and requests to the gateway itself. The page holds no data: its
script asks ``GET /v1/calls`` and reads each unfinished call's
``/v1/calls/{sn}/events`` with ``fetch``, so the token (kept in the tab's
``sessionStorage``) travels in the ``Authorization`` header, never in a
URL as ``EventSource`` would need. Everything the API returns goes into
the page as text (``textContent``), never as markup.
"""

from __future__ import annotations

import base64
import hashlib

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
form { margin-bottom: 1em; }
input { width: 24em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #ddd; }
td.sn, td.created { font-family: monospace; }
td.outcome { max-width: 30em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
tr[data-state="succeeded"] td.state { color: #176f2c; }
tr[data-state="failed"] td.state, tr[data-state="rejected"] td.state,
tr[data-state="expired"] td.state { color: #a31515; }
tr[data-live] td.state::after { content: " \\25CF"; color: #2a6fdb; }
#status { color: #555; min-height: 1.4em; }
"""

_SCRIPT = """
"use strict";
const KEY = "gofer-gateway-token";
const FINAL = new Set(["succeeded", "failed", "rejected", "expired"]);
const COLUMNS = ["sn", "agent", "method", "state", "progress", "outcome", "created"];
const REFRESH = 10000;
const rows = new Map();
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function say(text) {
  $("status").textContent = text;
}

function headers(extra) {
  const sent = Object.assign({}, extra);
  const token = sessionStorage.getItem(KEY);
  if (token) sent.Authorization = "Bearer " + token;
  return sent;
}

function brief(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text === undefined ? "" : text.length > 200 ? text.slice(0, 200) + "\\u2026" : text;
}

function progressText(report) {
  if (!report || typeof report !== "object") return "";
  const parts = [];
  if (report.total != null) parts.push(brief(report.completed ?? 0) + "/" + brief(report.total));
  else if (report.completed != null) parts.push(brief(report.completed));
  if (report.details != null && report.details !== "") parts.push(brief(report.details));
  return parts.join(" ");
}

function outcomeText(state, data) {
  if (!data || typeof data !== "object") return "";
  if (state === "succeeded") return brief(data.result);
  if (data.message != null) return brief((data.type ? data.type + ": " : "") + data.message);
  if (data.description != null) return brief(data.description);
  return brief(data);
}

function entryFor(sn) {
  let entry = rows.get(sn);
  if (!entry) {
    const row = document.createElement("tr");
    const cells = {};
    for (const name of COLUMNS) {
      const cell = document.createElement("td");
      cell.className = name;
      row.appendChild(cell);
      cells[name] = cell;
    }
    entry = { sn, row, cells, state: "", lastId: 0, stop: null };
    rows.set(sn, entry);
  }
  return entry;
}

function setState(entry, state) {
  entry.state = state;
  entry.cells.state.textContent = state;
  entry.row.dataset.state = state;
}

function show(call) {
  const entry = entryFor(call.sn);
  const cells = entry.cells;
  cells.sn.textContent = call.sn;
  cells.agent.textContent = call.agent;
  cells.method.textContent = call["class"] + "." + call.method;
  cells.created.textContent = call.created;
  // A listing read before an event already applied must not take the call back.
  if (!FINAL.has(entry.state)) {
    setState(entry, call.state);
    cells.progress.textContent = progressText(call.progress);
    const ending = call.state === "succeeded" ? { result: call.result } : call.error;
    cells.outcome.textContent = outcomeText(call.state, ending);
  }
  return entry;
}

function apply(entry, event) {
  const id = Number.parseInt(event.id, 10);
  if (id > entry.lastId) entry.lastId = id;
  let data = null;
  try {
    data = JSON.parse(event.data);
  } catch (error) {
    data = null;
  }
  if (FINAL.has(entry.state)) return;
  // "accepted" from the agent changes no state: the call was accepted already.
  if (event.kind === "accepted" && entry.state) return;
  if (event.kind === "progress") entry.cells.progress.textContent = progressText(data);
  setState(entry, event.kind);
  if (FINAL.has(event.kind)) entry.cells.outcome.textContent = outcomeText(event.kind, data);
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: "", kind: "message", data: [] };
      for (const line of block.split("\\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "id") event.id = text;
        else if (field === "event") event.kind = text;
        else if (field === "data") event.data.push(text);
      }
      if (!event.data.length) continue;
      onEvent({ id: event.id, kind: event.kind, data: event.data.join("\\n") });
    }
  }
}

async function watch(entry) {
  if (entry.stop || FINAL.has(entry.state)) return;
  const stop = new AbortController();
  entry.stop = stop;
  entry.row.dataset.live = "";
  try {
    while (!FINAL.has(entry.state) && !stop.signal.aborted) {
      const sent = headers({ Accept: "text/event-stream" });
      if (entry.lastId) sent["Last-Event-ID"] = String(entry.lastId);
      const url = "/v1/calls/" + encodeURIComponent(entry.sn) + "/events";
      const response = await fetch(url, { headers: sent, signal: stop.signal, cache: "no-store" });
      if (response.status === 401 || response.status === 404) return;
      if (response.ok) await readEvents(response.body, (event) => apply(entry, event));
      // A stream ends after the final event; one cut before it is resumed.
      if (!FINAL.has(entry.state)) await sleep(2000);
    }
  } catch (error) {
    if (!stop.signal.aborted) say("An event stream failed: " + brief(String(error)));
  } finally {
    if (entry.stop === stop) entry.stop = null;
    delete entry.row.dataset.live;
  }
}

function forgetAll() {
  for (const entry of rows.values()) if (entry.stop) entry.stop.abort();
  rows.clear();
  $("calls").replaceChildren();
}

async function load() {
  let response;
  try {
    response = await fetch("/v1/calls?limit=50", { headers: headers(), cache: "no-store" });
  } catch (error) {
    say("The gateway cannot be reached.");
    return;
  }
  if (response.status === 401) {
    forgetAll();
    const known = sessionStorage.getItem(KEY);
    say(known ? "The token was refused." : "Enter a token to see your calls.");
    return;
  }
  if (!response.ok) {
    say("The gateway answered " + response.status + ".");
    return;
  }
  const calls = (await response.json()).calls;
  const listed = new Set(calls.map((call) => call.sn));
  for (const [sn, entry] of rows) {
    if (listed.has(sn)) continue;
    if (entry.stop) entry.stop.abort();
    rows.delete(sn);
  }
  const entries = calls.map(show);
  $("calls").replaceChildren(...entries.map((entry) => entry.row));
  say(entries.length ? "" : "No calls yet.");
  for (const entry of entries) watch(entry);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  if (token) sessionStorage.setItem(KEY, token);
  forgetAll();
  load();
});

$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  forgetAll();
  load();
});

async function refresh() {
  for (;;) {
    await load();
    await sleep(REFRESH);
  }
}

refresh();
"""

_BODY = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>gofer gateway: recent calls</title>
<style>{style}</style>
</head>
<body>
<h1>Recent calls</h1>
<form id="login">
<label>Token <input id="token" type="password" autocomplete="off"></label>
<button type="submit">Use</button>
<button type="button" id="forget">Forget</button>
</form>
<p id="status" role="status"></p>
<table>
<thead><tr>
<th>Call</th><th>Agent</th><th>Method</th><th>State</th><th>Progress</th><th>Outcome</th>
<th>Created</th>
</tr></thead>
<tbody id="calls"></tbody>
</table>
<script>{script}</script>
</body>
</html>
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The page, as served.
HTML = _BODY.format(style=_STYLE, script=_SCRIPT).encode()

#: The headers it is served with: only its own style and script run, and nobody may frame it.
HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hash(_SCRIPT)}",
            f"style-src {_hash(_STYLE)}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


__all__ = ["HEADERS", "HTML"]
