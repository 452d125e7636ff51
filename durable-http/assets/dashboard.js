// The durable dashboard: plain JS over the JSON API, with relative URLs only (so it works
// wherever the router is mounted). Views: #/ (instances), #/instances/ID, #/entities,
// #/schedules.
"use strict";

const STATUSES = ["Pending", "Running", "Suspended", "Completed", "Failed", "Terminated", "ContinuedAsNew"];
const FINISHED = ["Completed", "Failed", "Terminated"];
const REFRESH_MS = 1500;
let timer = null;      // the current view's refresh timer
let generation = 0;    // bumped on every navigation: stale refreshes drop their results

// ---------- helpers ----------

function token() { return sessionStorage.getItem("durable-token") || ""; }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ("HTTP " + status));
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init); // relative: resolved against this page
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (resp.status === 401) {
    document.getElementById("token-bar").hidden = false;
    throw new ApiError(401, json);
  }
  // GET /instances/{id} answers 202 (running) and 400 (failed/terminated) with the status body.
  if (resp.status >= 400 && !(json && json.instanceId)) throw new ApiError(resp.status, json);
  return json;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(status) { return el("span", { class: "badge " + status, "data-status": status }, status); }
// Version 0: started by name, not yet run (bound to the highest version the worker registers).
function fmtVersion(v) { return v === 0 ? "unbound" : "v" + v; }
function blockedBadge(s) { return s.blocked ? el("span", { class: "badge blocked", title: "blocked: " + (s.reason || "") }, "blocked") : null; }
function json(v) { return v === undefined ? "" : JSON.stringify(v); }
function pretty(v) { return v === undefined || v === null ? "null" : JSON.stringify(v, null, 2); }
function fmtTime(t) { return t ? t.replace("T", " ").replace("Z", "") : ""; }
function enc(s) { return encodeURIComponent(s); }

function say(text, isError) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
  m.hidden = !text;
}

function parseJsonInput(text, what) {
  if (!text.trim()) return null;
  try { return JSON.parse(text); } catch (e) { throw new Error(what + " is not JSON: " + e.message); }
}

function every(ms, f) {
  clearInterval(timer);
  const gen = generation;
  const run = async () => { if (gen === generation) await f(gen).catch(showError); };
  run();
  timer = setInterval(run, ms);
}

function showError(e) { say(e.message || String(e), true); }

// ---------- instances ----------

const PAGE_SIZE = 50;

function viewInstances(view) {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const status = el("select", { id: "filter-status" }, el("option", { value: "" }, "any status"),
    STATUSES.map(s => el("option", { value: s, selected: q.get("status") === s }, s)));
  const name = el("input", { id: "filter-name", placeholder: "orchestrator name", value: q.get("name") || "" });
  const prefix = el("input", { id: "filter-prefix", placeholder: "instance id prefix", value: q.get("prefix") || "" });
  const from = el("input", { id: "filter-from", type: "datetime-local", title: "created at or after", value: q.get("from") || "" });
  const to = el("input", { id: "filter-to", type: "datetime-local", title: "created before", value: q.get("to") || "" });
  const live = el("input", { id: "live", type: "checkbox", checked: true });
  const count = el("span", { class: "muted", id: "count" });
  const body = el("tbody", { id: "instances" });
  // Pages by continuation token: where each page visited so far starts.
  let starts = [null], page = 0, nextToken = null;
  const prev = el("button", { id: "page-prev", disabled: true, onclick: () => { if (page > 0) { page--; reload(); } } }, "‹ Previous");
  const next = el("button", { id: "page-next", disabled: true, onclick: () => {
    if (nextToken) { starts[page + 1] = nextToken; page++; reload(); }
  } }, "Next ›");
  const startName = el("input", { id: "start-name", placeholder: "orchestrator" });
  const startInput = el("input", { id: "start-input", class: "json", placeholder: "input (JSON)" });
  const startId = el("input", { id: "start-id", placeholder: "instance id (optional)" });
  view.append(
    el("h1", {}, "Instances"),
    el("div", { class: "panel" },
      el("div", { class: "toolbar" },
        el("label", {}, "Status"), status, el("label", {}, "Name"), name, el("label", {}, "Id"), prefix,
        el("label", {}, "Created"), from, el("span", { class: "muted" }, "to"), to,
        el("label", {}, live, " live")),
      el("table", {}, el("thead", {}, el("tr", {},
        ["Instance", "Name", "Version", "Status", "Created", "Updated"].map(h => el("th", {}, h)))), body),
      el("div", { class: "toolbar" }, prev, next, count)),
    el("div", { class: "panel" },
      el("div", { class: "toolbar" }, el("label", {}, "Start"), startName, startInput, startId,
        el("button", { class: "primary", id: "start", onclick: async () => {
          try {
            const input = parseJsonInput(startInput.value, "the input");
            const path = "orchestrations/" + enc(startName.value.trim()) +
              (startId.value.trim() ? "?instanceId=" + enc(startId.value.trim()) : "");
            const r = await api("POST", path, input);
            location.hash = "#/instances/" + enc(r.id);
          } catch (e) { showError(e); }
        } }, "Start"))));
  const iso = (v) => { const d = new Date(v); if (isNaN(d)) throw new Error("not a time: " + v); return d.toISOString(); };
  const refresh = async (gen) => {
    if (!live.checked && body.childElementCount) return;
    const p = new URLSearchParams({ top: String(PAGE_SIZE) });
    if (status.value) p.set("runtimeStatus", status.value);
    if (name.value.trim()) p.set("name", name.value.trim());
    if (prefix.value.trim()) p.set("instanceIdPrefix", prefix.value.trim());
    if (from.value) p.set("createdTimeFrom", iso(from.value));
    if (to.value) p.set("createdTimeTo", iso(to.value));
    if (starts[page]) p.set("continuationToken", starts[page]);
    const r = await api("GET", "instances?" + p);
    if (gen !== generation) return;
    body.replaceChildren(...r.instances.map(s => el("tr", {
      class: "clickable", "data-id": s.instanceId,
      onclick: () => { location.hash = "#/instances/" + enc(s.instanceId); },
    }, el("td", { class: "mono" }, s.instanceId), el("td", {}, s.name),
      el("td", { class: "version", "data-version": s.version }, fmtVersion(s.version)),
      el("td", {}, badge(s.runtimeStatus), " ", blockedBadge(s)),
      el("td", {}, fmtTime(s.createdTime)), el("td", {}, fmtTime(s.lastUpdatedTime)))));
    if (!r.instances.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no instances")));
    nextToken = r.continuationToken || null;
    next.disabled = !nextToken;
    prev.disabled = page === 0;
    count.textContent = "page " + (page + 1) + ": " + r.instances.length + " shown" + (nextToken ? ", more on the next pages" : "");
    count.dataset.page = String(page + 1);
  };
  const reload = () => { body.replaceChildren(); refresh(generation).catch(showError); };
  const refilter = () => {
    const p = new URLSearchParams();
    if (status.value) p.set("status", status.value);
    if (name.value.trim()) p.set("name", name.value.trim());
    if (prefix.value.trim()) p.set("prefix", prefix.value.trim());
    if (from.value) p.set("from", from.value);
    if (to.value) p.set("to", to.value);
    history.replaceState(null, "", "#/" + (p.toString() ? "?" + p : ""));
    starts = [null]; page = 0; nextToken = null;
    reload();
  };
  for (const f of [status, name, prefix, from, to]) f.addEventListener("change", refilter);
  every(REFRESH_MS * 2, refresh);
}

// ---------- one instance ----------

/// Bars and markers of the timeline, from the history.
function timelineItems(history, endMs) {
  const t = e => Date.parse(e.timestamp);
  const open = new Map(); // "kind:id" -> item
  const items = [];
  const markers = [];
  let start = null, end = null;
  for (const e of history) {
    const at = t(e);
    const key = id => e.eventType + ":" + id;
    switch (e.eventType) {
      case "ExecutionStarted": start = start ?? at; break;
      case "ExecutionCompleted": case "ExecutionFailed": case "ExecutionTerminated": case "ContinuedAsNew":
        end = at; break;
      case "TaskScheduled": {
        const it = { lane: e.name + " #" + e.id + (e.attempt > 1 ? " (attempt " + e.attempt + ")" : ""),
          kind: "activity", from: at, to: null, title: e.name + " " + json(e.input) };
        open.set("task:" + e.id, it); items.push(it); break;
      }
      case "TaskCompleted": case "TaskFailed": {
        const it = open.get("task:" + e.id);
        if (it) { it.to = at; if (e.eventType === "TaskFailed") { it.kind = "failed"; it.title += " failed: " + e.message; } open.delete("task:" + e.id); }
        break;
      }
      case "TimerCreated": {
        const it = { lane: "timer #" + e.id, kind: "timer", from: at, to: null, due: Date.parse(e.fireAt),
          title: "timer until " + fmtTime(e.fireAt) };
        open.set("timer:" + e.id, it); items.push(it); break;
      }
      case "TimerFired": case "TimerCancelled": {
        const it = open.get("timer:" + e.id);
        if (it) { it.to = at; if (e.eventType === "TimerCancelled") it.title += " (cancelled)"; open.delete("timer:" + e.id); }
        break;
      }
      case "SubOrchestrationCreated": {
        const it = { lane: e.name + " #" + e.id, kind: "sub", from: at, to: null, title: "sub-orchestration " + e.instanceId };
        open.set("sub:" + e.id, it); items.push(it); break;
      }
      case "SubOrchestrationCompleted": case "SubOrchestrationFailed": {
        const it = open.get("sub:" + e.id);
        if (it) { it.to = at; if (e.eventType.endsWith("Failed")) it.kind = "failed"; open.delete("sub:" + e.id); }
        break;
      }
      case "EntityCalled": case "EntityLockRequested": {
        const what = e.eventType === "EntityCalled" ? (e.entity.name + "/" + e.entity.key + " ." + e.op) : "lock";
        const it = { lane: what + " #" + e.id, kind: "entity", from: at, to: null, title: what };
        open.set("entity:" + e.id, it); items.push(it); break;
      }
      case "EntityCompleted": case "EntityFailed": case "EntityLockAcquired": {
        const it = open.get("entity:" + e.id);
        if (it) { it.to = at; if (e.eventType === "EntityFailed") it.kind = "failed"; open.delete("entity:" + e.id); }
        break;
      }
      case "EventRaised": case "ExecutionSuspended": case "ExecutionResumed": case "ExecutionRewound":
        markers.push({ at, label: e.eventType === "EventRaised" ? "event " + e.name : e.eventType.replace("Execution", "").toLowerCase(),
          title: e.eventType + (e.name ? " " + e.name + " " + json(e.data) : "") + (e.reason ? ": " + e.reason : "") });
        break;
    }
  }
  if (start === null && history.length) start = t(history[0]);
  const stop = end ?? endMs;
  for (const it of items) if (it.to === null) { it.to = it.kind === "timer" && it.due && it.due < stop ? it.due : stop; it.open = true; }
  if (start !== null) items.unshift({ lane: "orchestration", kind: "orchestration", from: start, to: stop, open: end === null, title: "the whole execution" });
  return { items, markers, start, stop };
}

/// A durable task handle (`{"id": 2, "kind": {"Event": "approve"}}`) in words.
function describeTask(t) {
  if (!t || typeof t !== "object" || !("kind" in t)) return json(t);
  const k = t.kind;
  if (typeof k === "string") return k.toLowerCase() + " #" + t.id;
  const [name, v] = Object.entries(k)[0] || ["task", null];
  return name.toLowerCase() + (typeof v === "string" ? " " + JSON.stringify(v) : "") + " #" + t.id;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtDur(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  if (ms < 3600000) return (ms / 60000).toFixed(1) + " min";
  return (ms / 3600000).toFixed(1) + " h";
}

function renderTimeline(box, history, finished) {
  const { items, markers, start, stop } = timelineItems(history, Date.now());
  box.replaceChildren();
  if (start === null) { box.append(el("p", { class: "muted" }, "no history yet")); return; }
  const W = Math.max(box.clientWidth || 900, 500), label = 190, right = 20, rowH = 24, top = 24;
  const span = Math.max(stop - start, 1);
  const x = ms => label + ((ms - start) / span) * (W - label - right);
  const lanes = items.length + (markers.length ? 1 : 0);
  const H = top + lanes * rowH + 8;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, height: H, id: "timeline-svg", "data-finished": finished });
  for (let i = 0; i <= 4; i++) {
    const ms = start + (span * i) / 4, gx = x(ms);
    s.append(svg("line", { x1: gx, x2: gx, y1: top - 6, y2: H, class: "grid-line" }));
    s.append(svg("text", { x: gx, y: 12, class: "axis", "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, "+" + fmtDur(ms - start)));
  }
  items.forEach((it, i) => {
    const y = top + i * rowH;
    s.append(svg("text", { x: 4, y: y + 15, class: "lane-label" }, it.lane.length > 28 ? it.lane.slice(0, 27) + "…" : it.lane));
    const x1 = x(it.from), w = Math.max(x(it.to) - x1, 3);
    const r = svg("rect", { x: x1, y: y + 4, width: w, height: rowH - 8, class: "bar " + it.kind + (it.open ? " open" : ""), "data-kind": it.kind });
    r.append(svg("title", {}, it.title + " — " + fmtDur(it.to - it.from) + (it.open ? " so far" : "")));
    s.append(r);
  });
  if (markers.length) {
    const y = top + items.length * rowH;
    s.append(svg("text", { x: 4, y: y + 15, class: "lane-label" }, "events"));
    for (const m of markers) {
      const mx = x(m.at);
      const d = svg("path", { d: `M${mx} ${y + 4} l6 8 l-6 8 l-6 -8 z`, class: "marker" });
      d.append(svg("title", {}, m.title));
      s.append(d);
    }
  }
  box.append(s, el("div", { class: "legend" },
    [["activity", "activity"], ["timer", "timer"], ["sub", "sub-orchestration"], ["entity", "entity"], ["failed", "failed"]]
      .map(([c, t]) => el("span", {}, el("i", { class: "swatch " + c }), t)),
    el("span", {}, "faded: still open")));
}

function viewInstance(view, id) {
  const head = el("div", {});
  const banner = el("div", { id: "blocked-banner", class: "banner blocked", hidden: true });
  const details = el("div", { class: "grid", id: "details" });
  const locals = el("div", { id: "locals" });
  const timeline = el("div", { id: "timeline" });
  const hist = el("tbody", { id: "history" });
  const reason = el("input", { id: "reason", placeholder: "reason (optional)" });
  const evName = el("input", { id: "event-name", placeholder: "event name" });
  const evData = el("input", { id: "event-data", class: "json", placeholder: "data (JSON)" });
  const buttons = {};
  const act = (name, label, cls, f) => (buttons[name] = el("button", { id: "btn-" + name, class: cls, onclick: async () => {
    try { await f(); say(label + ": accepted"); refresh(generation).catch(showError); } catch (e) { showError(e); }
  } }, label));
  const control = (what) => () => api("POST", "instances/" + enc(id) + "/" + what + "?reason=" + enc(reason.value));
  view.append(
    el("p", {}, el("a", { href: "#/" }, "← instances")),
    head,
    banner,
    el("div", { class: "panel actions" },
      evName, evData, act("raise", "Raise event", "", () => {
        if (!evName.value.trim()) throw new Error("give the event a name");
        return api("POST", "instances/" + enc(id) + "/raiseEvent/" + enc(evName.value.trim()), parseJsonInput(evData.value, "the event data"));
      }),
      el("span", { class: "sep" }), reason,
      act("suspend", "Suspend", "", control("suspend")),
      act("resume", "Resume", "", control("resume")),
      act("rewind", "Rewind", "", control("rewind")),
      act("terminate", "Terminate", "danger", control("terminate")),
      act("purge", "Purge", "danger", async () => {
        await api("DELETE", "instances/" + enc(id));
        location.hash = "#/";
      })),
    el("div", { class: "cols" },
      el("div", { class: "panel" }, el("h2", {}, "Status"), details),
      el("div", { class: "panel" }, el("h2", {}, "Live locals"), locals)),
    el("div", { class: "panel" }, el("h2", {}, "Timeline"), timeline),
    el("div", { class: "panel" }, el("h2", {}, "History"),
      el("table", {}, el("thead", {}, el("tr", {}, ["#", "Time", "Event", "Details"].map(h => el("th", {}, h)))), hist)));
  let lastSeen = "";
  const refresh = async (gen) => {
    let s;
    try {
      s = await api("GET", "instances/" + enc(id) + "?showHistory=true&showInput=true&showState=true");
    } catch (e) {
      if (e.status === 404) { head.replaceChildren(el("h1", {}, id), el("p", { class: "error-text" }, e.message)); clearInterval(timer); return; }
      throw e;
    }
    if (gen !== generation) return;
    const finished = FINISHED.includes(s.runtimeStatus);
    head.replaceChildren(el("h1", {}, badge(s.runtimeStatus), " ", el("span", { id: "instance-id" }, s.instanceId)),
      el("p", { class: "muted" }, s.name + " " + fmtVersion(s.version)));
    // Blocked: no code registered on the workers can run it now; the reason says what to deploy.
    banner.hidden = !s.blocked;
    banner.textContent = s.blocked ? "blocked: " + (s.reason || "no registered code can run it now") : "";
    const row = (k, v, cls) => [el("div", { class: "k" }, k), el("div", { class: cls || "" }, v)];
    details.replaceChildren(
      ...row("Status", el("span", { id: "status" }, s.runtimeStatus)),
      ...row("Orchestrator", s.name),
      ...row("Version", el("span", { id: "version" }, s.version === 0 ? "0 (not yet bound: started by name, not yet run)" : String(s.version))),
      ...row("Created", fmtTime(s.createdTime)),
      ...row("Updated", fmtTime(s.lastUpdatedTime)),
      ...row("Input", el("pre", { id: "input" }, pretty(s.input))),
      ...row("Output", el("pre", { id: "output" }, pretty(s.output))),
      ...(s.customStatus !== null ? row("Custom status", el("pre", {}, pretty(s.customStatus))) : []),
      ...(s.error ? row("Error", el("pre", { class: "error-text" }, s.error)) : []),
      ...(s.reason && !s.blocked ? row("Reason", s.reason) : []),
      ...(s.parentInstanceId ? row("Parent", el("a", { id: "parent", href: "#/instances/" + enc(s.parentInstanceId) }, s.parentInstanceId)) : []),
      ...(children(s.history).length ? row("Children", el("span", { id: "children" },
        children(s.history).flatMap((c, i) => [i ? ", " : "", el("a", { href: "#/instances/" + enc(c) }, c)]))) : []));
    if (s.state && s.state.locals) {
      // The compiler's own locals (`__durable_…`: the task being awaited) are shown apart.
      const all = Object.entries(s.state.locals);
      const entries = all.filter(([k]) => !k.startsWith("__durable"));
      const awaited = all.filter(([k]) => k.startsWith("__durable")).map(([, v]) => v);
      locals.replaceChildren(
        el("p", { class: "muted" }, "suspended at ", el("span", { class: "mono", id: "state-at" }, s.state.at), " (pc " + s.state.pc + ")",
          awaited.length ? [el("br"), "awaiting ", el("span", { class: "mono" }, awaited.map(describeTask).join(", "))] : null),
        entries.length
          ? el("table", {}, el("tbody", {}, entries.map(([k, v]) => el("tr", { "data-local": k }, el("td", { class: "mono" }, k), el("td", {}, el("pre", {}, pretty(v)))))))
          : el("p", { class: "muted" }, "no live locals at this point"));
    } else {
      locals.replaceChildren(el("p", { class: "muted" }, finished ? "finished: no live state" : "no snapshot yet"));
    }
    buttons.terminate.disabled = buttons.suspend.disabled = buttons.raise.disabled = finished;
    buttons.resume.disabled = s.runtimeStatus !== "Suspended";
    buttons.rewind.disabled = s.runtimeStatus !== "Failed";
    buttons.purge.disabled = !finished;
    const h = s.history || [];
    const seen = s.runtimeStatus + h.length + s.lastUpdatedTime;
    if (seen !== lastSeen || !finished) renderTimeline(timeline, h, finished);
    if (seen !== lastSeen) {
      hist.replaceChildren(...h.map(e => {
        const { seq, timestamp, eventType, ...rest } = e;
        return el("tr", { "data-event": eventType }, el("td", {}, seq), el("td", {}, fmtTime(timestamp)), el("td", {}, eventType),
          el("td", { class: "mono" }, Object.entries(rest).map(([k, v]) => k + "=" + json(v)).join("  ")));
      }));
    }
    lastSeen = seen;
    if (finished) clearInterval(timer);
  };
  every(REFRESH_MS, refresh);
}

// The sub-orchestrations an instance started, from its history.
function children(history) {
  return (history || []).filter(e => e.eventType === "SubOrchestrationCreated").map(e => e.instanceId);
}

// ---------- entities ----------

function viewEntities(view) {
  const name = el("input", { id: "entity-filter", placeholder: "entity name" });
  const body = el("tbody", { id: "entities" });
  const sName = el("input", { id: "signal-name", placeholder: "name" });
  const sKey = el("input", { id: "signal-key", placeholder: "key" });
  const sOp = el("input", { id: "signal-op", placeholder: "operation" });
  const sInput = el("input", { id: "signal-input", class: "json", placeholder: "input (JSON)" });
  const journalTitle = el("h2", {}, "Journal");
  const journalBody = el("tbody", { id: "entity-journal" },
    el("tr", {}, el("td", { colspan: 5, class: "muted" }, "click an entity to see the last operations it applied")));
  // The last operations of one entity: what changed its state, when, sent by whom.
  const showJournal = async (e) => {
    const r = await api("GET", "entities/" + enc(e.name) + "/" + enc(e.key) + "/history");
    journalTitle.textContent = "Journal of " + e.name + "/" + e.key;
    journalBody.replaceChildren(...r.operations.slice().reverse().map(o => el("tr", {},
      el("td", {}, fmtTime(o.time)), el("td", { class: "mono" }, o.operation),
      el("td", { class: "mono" }, o.sender || "client"), el("td", {}, el("pre", {}, json(o.input))),
      o.error ? el("td", { class: "error-text" }, o.error) : el("td", {}, el("pre", {}, json(o.result))))));
    if (!r.operations.length) journalBody.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no operations kept")));
  };
  view.append(
    el("h1", {}, "Entities"),
    el("div", { class: "panel" },
      el("div", { class: "toolbar" }, el("label", {}, "Name"), name),
      el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Key", "State", "Last error", "Modified"].map(h => el("th", {}, h)))), body)),
    el("div", { class: "panel" },
      el("div", { class: "toolbar" }, el("label", {}, "Signal"), sName, sKey, sOp, sInput,
        el("button", { class: "primary", id: "signal", onclick: async () => {
          try {
            const input = parseJsonInput(sInput.value, "the input");
            await api("POST", "entities/" + enc(sName.value.trim()) + "/" + enc(sKey.value) + "?op=" + enc(sOp.value.trim()), input);
            say("signaled " + sName.value + "/" + sKey.value + " " + sOp.value);
          } catch (e) { showError(e); }
        } }, "Signal"))),
    el("div", { class: "panel" }, journalTitle,
      el("table", {}, el("thead", {}, el("tr", {}, ["Time", "Operation", "Sender", "Input", "Result"].map(h => el("th", {}, h)))), journalBody)));
  const refresh = async (gen) => {
    const p = new URLSearchParams({ top: "500" });
    if (name.value.trim()) p.set("name", name.value.trim());
    const r = await api("GET", "entities?" + p);
    if (gen !== generation) return;
    body.replaceChildren(...r.entities.map(e => el("tr", { class: "clickable", "data-entity": e.name + "/" + e.key,
      onclick: () => { sName.value = e.name; sKey.value = e.key; sOp.focus(); showJournal(e).catch(showError); } },
      el("td", {}, e.name), el("td", { class: "mono" }, e.key), el("td", {}, el("pre", {}, json(e.state))),
      el("td", { class: "error-text" }, e.lastError || ""), el("td", {}, fmtTime(e.lastModifiedTime)))));
    if (!r.entities.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no entities")));
  };
  name.addEventListener("change", () => refresh(generation).catch(showError));
  every(REFRESH_MS * 2, refresh);
}

// ---------- schedules ----------

/// A schedule's state: paused, active (its instance running), or its instance's status when
/// it stopped (failed on an error, or terminated).
function scheduleBadge(s) {
  if (s.paused) return el("span", { class: "badge paused", "data-state": "paused" }, "paused");
  if (s.runtimeStatus === "Running" || s.runtimeStatus === "Pending") return el("span", { class: "badge active", "data-state": "active" }, "active");
  return el("span", { class: "badge " + s.runtimeStatus, "data-state": s.runtimeStatus, title: s.error || "" }, s.runtimeStatus);
}

function viewSchedules(view) {
  const body = el("tbody", { id: "schedules" });
  const count = el("span", { class: "muted", id: "schedule-count" });
  const cId = el("input", { id: "schedule-id", placeholder: "schedule id" });
  const cCron = el("input", { id: "schedule-cron", class: "json", placeholder: "cron (0 2 * * *)" });
  const cTz = el("input", { id: "schedule-timezone", placeholder: "time zone (UTC)" });
  const cName = el("input", { id: "schedule-orchestrator", placeholder: "orchestrator" });
  const cInput = el("input", { id: "schedule-input", class: "json", placeholder: "input (JSON)" });
  const cOverlap = el("select", { id: "schedule-overlap", title: "a fire time comes while the previous run is going" },
    ["skip", "buffer-one", "allow-all"].map(o => el("option", { value: o }, "overlap: " + o)));
  const cCatchUp = el("select", { id: "schedule-catch-up", title: "fire times missed during downtime or a pause" },
    ["run-last", "skip-missed", "run-all"].map(o => el("option", { value: o }, "catch-up: " + o)));
  const cWindow = el("input", { id: "schedule-window", type: "number", min: "1", placeholder: "window (s)", hidden: true });
  cCatchUp.addEventListener("change", () => { cWindow.hidden = cCatchUp.value !== "run-all"; });
  // A button of one schedule's row: its action, then the list again.
  const act = (s, name, label, cls, f) => el("button", { class: cls, "data-action": name, "data-schedule": s.id, onclick: async () => {
    try { await f(); say(label + " " + s.id + ": accepted"); refresh(generation).catch(showError); } catch (e) { showError(e); }
  } }, label);
  // A run's instance id linked to it, with its status (fetched; "purged" if it is gone).
  const runCell = (cls, id, statuses) => {
    if (!id) return el("td", { class: cls + " muted" }, "—");
    const st = statuses.get(id);
    return el("td", { class: cls + " mono" }, el("a", { href: "#/instances/" + enc(id) }, id), " ",
      st ? badge(st) : el("span", { class: "muted" }, "purged"));
  };
  view.append(
    el("h1", {}, "Schedules"),
    el("div", { class: "panel" },
      el("table", {}, el("thead", {}, el("tr", {},
        ["Schedule", "Cron", "Time zone", "Orchestrator", "State", "Next fire (UTC)", "Last run", "Running", ""].map(h => el("th", {}, h)))), body),
      el("div", { class: "toolbar" }, count)),
    el("div", { class: "panel" },
      el("div", { class: "toolbar" }, el("label", {}, "Create"), cId, cCron, cTz, cName, cInput, cOverlap, cCatchUp, cWindow,
        el("button", { class: "primary", id: "schedule-create", onclick: async () => {
          try {
            if (!cId.value.trim()) throw new Error("give the schedule an id");
            const spec = { cron: cCron.value.trim(), orchestrator: cName.value.trim(), input: parseJsonInput(cInput.value, "the input"),
              overlap: cOverlap.value, catchUp: cCatchUp.value };
            if (cTz.value.trim()) spec.timezone = cTz.value.trim();
            if (cCatchUp.value === "run-all") spec.catchUpWindowSecs = Number(cWindow.value);
            await api("POST", "schedules/" + enc(cId.value.trim()), spec);
            say("created schedule " + cId.value.trim());
            refresh(generation).catch(showError);
          } catch (e) { showError(e); }
        } }, "Create"))));
  const refresh = async (gen) => {
    const r = await api("GET", "schedules");
    // The status of each last run and running run, to show beside it.
    const ids = [...new Set(r.schedules.flatMap(s => [s.lastRun, s.running]).filter(Boolean))];
    const statuses = new Map();
    await Promise.all(ids.map(id => api("GET", "instances/" + enc(id))
      .then(st => statuses.set(id, st.runtimeStatus))
      .catch(e => { if (e.status !== 404) throw e; })));
    if (gen !== generation) return;
    body.replaceChildren(...r.schedules.map(s => el("tr", { "data-schedule": s.id },
      el("td", { class: "mono" }, el("a", { href: "#/instances/" + enc("schedule:" + s.id), title: "the schedule's instance" }, s.id)),
      el("td", { class: "cron mono" }, s.cron),
      el("td", { class: "timezone" }, s.timezone),
      el("td", { class: "orchestrator", title: "input " + json(s.input) }, s.orchestrator),
      el("td", { class: "state", title: "overlap " + s.overlap + ", catch-up " + s.catchUp + (s.catchUpWindowSecs ? " (" + s.catchUpWindowSecs + " s)" : "") +
        "; " + s.runsStarted + " runs started, " + s.skipped + " fire times skipped" + (s.error ? "; " + s.error : "") }, scheduleBadge(s)),
      el("td", { class: "next-fire" }, s.paused ? el("span", { class: "muted" }, "paused") : fmtTime(s.nextFire).replace(/\.000$/, "") || el("span", { class: "muted" }, "—")),
      runCell("last-run", s.lastRun, statuses),
      runCell("running", s.running, statuses),
      el("td", { class: "row-actions" },
        s.paused
          ? act(s, "resume", "Resume", "", () => api("POST", "schedules/" + enc(s.id) + "/resume"))
          : act(s, "pause", "Pause", "", () => api("POST", "schedules/" + enc(s.id) + "/pause")),
        act(s, "delete", "Delete", "danger", () => api("DELETE", "schedules/" + enc(s.id)))))));
    if (!r.schedules.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "no schedules")));
    count.textContent = r.schedules.length + " schedule" + (r.schedules.length === 1 ? "" : "s");
  };
  every(REFRESH_MS * 2, refresh);
}

// ---------- routing ----------

function route() {
  generation++;
  clearInterval(timer);
  say("");
  const view = document.getElementById("view");
  view.replaceChildren();
  const hash = location.hash.replace(/^#/, "") || "/";
  const path = hash.split("?")[0];
  const tab = path.startsWith("/entities") ? "entities" : path.startsWith("/schedules") ? "schedules" : "instances";
  for (const t of ["instances", "entities", "schedules"]) document.getElementById("nav-" + t).className = t === tab ? "active" : "";
  const m = path.match(/^\/instances\/(.+)$/);
  if (m) viewInstance(view, decodeURIComponent(m[1]));
  else if (tab === "entities") viewEntities(view);
  else if (tab === "schedules") viewSchedules(view);
  else viewInstances(view);
}

async function health() {
  const h = document.getElementById("health");
  try { await api("GET", "healthz"); h.textContent = "backend ok"; h.className = "health ok"; }
  catch (e) { h.textContent = e.status === 401 ? "token needed" : "backend unavailable"; h.className = "health down"; }
}

document.getElementById("token-save").addEventListener("click", () => {
  sessionStorage.setItem("durable-token", document.getElementById("token-input").value.trim());
  document.getElementById("token-bar").hidden = true;
  health();
  route();
});
window.addEventListener("hashchange", route);
route();
health();
setInterval(health, 10000);
