// The switchyard dashboard: one page over the admin API. It holds no data
// of its own; every number comes from /api with the operator's token, kept
// in this tab's sessionStorage only. Everything from the journal is put in
// the page as text (textContent), never as HTML: event types, sources and
// error texts come from senders and targets.
"use strict";

const KEY = "switchyard.admin.token";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

function takeTokenFromFragment() {
  // A link like /#token=... opens the board directly; the fragment never
  // reaches the server, and it is removed from the address bar at once.
  const m = /^#token=(.+)$/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(KEY);
  const headers = { Authorization: "Bearer " + token };
  if (options.body) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { ...options, headers, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    throw new ApiError(resp.status, body && body.error, (body && body.message) || resp.statusText);
  }
  return body;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbody, rows, render) {
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    render(tr, r);
    tbody.appendChild(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "nothing here", "muted");
    td.colSpan = tbody.closest("table").querySelectorAll("th").length;
    tbody.appendChild(tr);
  }
}

const time = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  $("board").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

async function replay(selector) {
  const r = await api("/api/replay", { method: "POST", body: JSON.stringify(selector) });
  $("replay-result").textContent =
    r.replayed + (r.replayed === 1 ? " dead letter" : " dead letters") + " queued again";
  await refresh();
}

function renderRules(rules) {
  $("rules-version").textContent = "version " + rules.version;
  const errors = rules.reload_errors || [];
  fill($("rule-files"), rules.files, (tr, f) => {
    cell(tr, f.file);
    cell(tr, f.event_type === null ? "every event (_any)" : f.event_type);
  });
  $("rule-errors").replaceChildren(
    ...errors.map((e) => {
      const li = document.createElement("li");
      li.textContent = e;
      return li;
    })
  );
  $("rules-ok").hidden = errors.length > 0;
}

function renderTargets(t) {
  fill($("targets"), t.targets, (tr, x) => {
    tr.dataset.name = x.name;
    const status = !x.configured
      ? "not in config.yaml"
      : x.paused
        ? "paused: keeps failing"
        : x.ready
          ? "ready"
          : "holding: " + x.held_reason;
    tr.className = x.ready && !x.paused ? "" : "rule_error";
    cell(tr, x.name);
    cell(tr, x.kind);
    cell(tr, status, "wrap");
    for (const s of ["pending", "delivering", "held", "dead"]) cell(tr, x.actions[s]);
  });
}

function renderDead(dead) {
  $("dead-count").textContent = String(dead.actions.length);
  $("replay-all").disabled = dead.actions.length === 0;
  fill($("dead"), dead.actions, (tr, a) => {
    tr.dataset.id = a.id;
    cell(tr, a.id.slice(0, 12)).title = a.id;
    cell(tr, a.target);
    cell(tr, a.action);
    cell(tr, a.attempts);
    cell(tr, a.last_error, "wrap");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Replay";
    b.className = "replay";
    b.addEventListener("click", () => replay({ id: a.id }).catch(failed));
    tr.appendChild(document.createElement("td")).appendChild(b);
  });
}

const describe = (a) => a.action + " " + a.target + " " + a.payload + " (" + a.rule + ")";

async function dryRun() {
  const span = Number($("dry-span").value);
  const body = span ? { since: new Date(Date.now() - span).toISOString().replace(/\.\d+Z$/, "Z") } : {};
  $("dry-summary").textContent = "running…";
  const r = await api("/api/reevaluate", { method: "POST", body: JSON.stringify(body) });
  const s = r.summary;
  $("dry-summary").textContent =
    s.events + " events: " + s.unchanged + " unchanged, " + s.changed + " changed" +
    (r.more ? " (the first " + r.changes.length + " listed)" : "");
  fill($("dry-changes"), r.changes, (tr, c) => {
    tr.dataset.id = String(c.event);
    cell(tr, c.event);
    cell(tr, c.type, "wrap");
    const was = c.was || "unevaluated";
    cell(tr, (was === c.now ? was : was + " → " + c.now) + c.errors.map((e) => "\n" + e).join(""), "wrap pre");
    cell(tr, c.removed.map(describe).join("\n"), "wrap pre");
    cell(tr, c.added.map(describe).join("\n"), "wrap pre");
  });
}

function renderEvents(events) {
  fill($("events"), events.events, (tr, e) => {
    tr.dataset.id = String(e.id);
    tr.className = e.outcome || e.state;
    cell(tr, e.id);
    cell(tr, time(e.received_at));
    cell(tr, e.source);
    cell(tr, e.type === null ? "(none)" : e.type, "wrap");
    cell(tr, e.state === "rejected" ? "rejected: " + e.reason : e.state, "wrap");
    cell(tr, e.state === "rejected" ? "never routed" : e.outcome || "unevaluated");
  });
}

function renderQuarantine(q) {
  $("quarantine-count").textContent = String(q.quarantine.length) + (q.next_before ? "+" : "");
  fill($("quarantine"), q.quarantine, (tr, r) => {
    cell(tr, r.id);
    cell(tr, time(r.received_at));
    cell(tr, r.source);
    cell(tr, r.code);
    cell(tr, r.reason, "wrap");
    cell(tr, r.bytes);
  });
}

async function health() {
  const pill = $("health");
  try {
    const r = await fetch("/readyz", { cache: "no-store" });
    pill.textContent = r.ok ? "journal ok" : "journal unavailable";
    pill.className = "pill " + (r.ok ? "ok" : "bad");
  } catch (_) {
    pill.textContent = "router unreachable";
    pill.className = "pill bad";
  }
}

function failed(e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    showLogin(e.message);
    return;
  }
  const p = $("api-error");
  p.textContent = e.message;
  p.hidden = false;
}

let refreshing = null;
async function refresh() {
  if (!sessionStorage.getItem(KEY)) return;
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const outcome = $("outcome").value;
      const [rules, dead, events, quarantine, targets] = await Promise.all([
        api("/api/rules"),
        api("/api/dead-letters?limit=200"),
        api("/api/events?limit=100" + (outcome ? "&outcome=" + encodeURIComponent(outcome) : "")),
        api("/api/quarantine?limit=20"),
        api("/api/targets"),
        health(),
      ]);
      renderRules(rules);
      renderTargets(targets);
      renderDead(dead);
      renderEvents(events);
      renderQuarantine(quarantine);
      $("api-error").hidden = true;
      $("login").hidden = true;
      $("board").hidden = false;
      $("signout").hidden = false;
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    } catch (e) {
      failed(e);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("token").value);
    $("token").value = "";
    refresh();
  });
  $("signout").addEventListener("click", () => showLogin(""));
  $("outcome").addEventListener("change", () => refresh());
  $("dry-run").addEventListener("click", () => dryRun().catch(failed));
  $("replay-all").addEventListener("click", () => {
    const n = $("dead-count").textContent;
    if (confirm("Send all " + n + " dead letters again?")) replay({}).catch(failed);
  });
  if (sessionStorage.getItem(KEY)) refresh();
  else showLogin("");
  health();
  setInterval(() => refresh(), REFRESH_MS);
});
