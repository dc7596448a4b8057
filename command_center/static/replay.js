// Audit replay: an auditor scrubs through a center's history. Each slider step is an incident
// event; the camera-alert events between two incident events are one step ("12 alerts"). The view
// shown is rebuilt by the server from the events up to that time
// (GET /api/audit/centers/{id}/view?at=...). The token comes from #token=... like the console.
// Times are shown in a chosen time zone (Asia/Shanghai by default; ?tz= or the selector).

import { getLang, setLang, t, tCategory, tEventType, tSeverity, tStatus, translateDom, unitName } from "./i18n.js";
import { loadNames, partyName, roleName } from "./display.js";

const TOKEN_KEY = "linkage.token";
const TZ_KEY = "linkage.replay.tz";
const DEFAULT_TZ = "Asia/Shanghai";
const TIME_ZONES = ["Asia/Shanghai", "UTC"];
const $ = (id) => document.getElementById(id);
const state = { token: null, center: null, steps: [], pending: null, nodes: new Map(), tz: DEFAULT_TZ,
  view: null, history: null, selected: null, index: -1, error: null };

function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const tok = params.get("token");
  if (tok) {
    try { localStorage.setItem(TOKEN_KEY, tok); } catch (_) { /* storage disabled */ }
    history.replaceState(null, "", location.pathname + location.search);
    return tok;
  }
  try { return localStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}

function readTz() {
  const fromUrl = new URLSearchParams(location.search).get("tz");
  let saved = null;
  try { saved = localStorage.getItem(TZ_KEY); } catch (_) { /* storage disabled */ }
  for (const tz of [fromUrl, saved, DEFAULT_TZ]) {
    if (!tz) continue;
    try {
      new Intl.DateTimeFormat("en", { timeZone: tz });
      return tz;
    } catch (_) { /* not a time zone */ }
  }
  return DEFAULT_TZ;
}

function when(iso) {
  const ms = Date.parse(iso || "");
  if (Number.isNaN(ms)) return "";
  return new Intl.DateTimeFormat(getLang(), {
    timeZone: state.tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(ms);
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || "HTTP " + status);
    this.status = status;
  }
}

// An error in the user's language: refusals are explained, the server's detail follows others.
function showError(err) {
  state.error = err || null;
  const el = $("error");
  if (!err) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  let text;
  if (err.status === 403) text = t("replay.forbidden");
  else if (err.status === 401) text = t("replay.login");
  else text = `${t("replay.error")}: ${err.message || err}`;
  el.textContent = text;
  el.dataset.status = String(err.status || "");
  el.hidden = false;
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, { headers });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new HttpError(resp.status, detail);
  }
  return resp.json();
}

function indexTree(node) {
  state.nodes.set(String(node.id), node);
  for (const child of node.children || []) indexTree(child);
}

function place(id) {
  const node = state.nodes.get(String(id ?? ""));
  return node ? unitName(node) : "";
}

function renderCenters() {
  const select = $("center-select");
  const keep = select.value || state.center;
  const frag = document.createDocumentFragment();
  const walk = (node, depth) => {
    if (["city", "district", "township"].includes(node.level)) {
      const opt = document.createElement("option");
      opt.value = node.id;
      opt.textContent = "\u00a0".repeat(depth * 2) + unitName(node);
      frag.appendChild(opt);
    }
    for (const child of node.children || []) walk(child, depth + 1);
  };
  const root = state.nodes.get(state.rootId);
  if (root) walk(root, 0);
  select.replaceChildren(frag);
  if (keep) select.value = keep;
}

function renderTz() {
  const select = $("tz-select");
  const zones = [...new Set([...TIME_ZONES, state.tz])];
  select.replaceChildren(...zones.map((tz) => {
    const opt = document.createElement("option");
    opt.value = tz;
    opt.textContent = tz;
    return opt;
  }));
  select.value = state.tz;
}

// Incident events are steps; the alert events between two of them make one grouped step.
function stepsOf(events) {
  const steps = [];
  let alerts = null;
  for (const e of events) {
    if (e.aggregate && e.aggregate !== "Incident") {
      if (!alerts) {
        alerts = { kind: "alerts", at: e.at, n: e.n, count: 0 };
        steps.push(alerts);
      }
      alerts.count++;
      alerts.at = e.at;
      alerts.n = e.n;
    } else {
      alerts = null;
      steps.push({ kind: "incident", at: e.at, n: e.n, type: e.type, incident: e.incident });
    }
  }
  return steps;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function renderView() {
  const view = state.view || { counts: {}, queue: {} };
  $("counts-at").replaceChildren(...Object.entries(view.counts || {}).map(([k, v]) => {
    const span = document.createElement("span");
    span.dataset.status = k;
    span.textContent = `${tStatus(k)}: ${v}`;
    return span;
  }));
  const rows = Object.values(view.queue || {}).map((item) => {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    tr.classList.toggle("selected", item.id === state.selected);
    tr.append(cell(tSeverity(item.severity)), cell(tCategory(item.category)), cell(place(item.grid)),
      cell(tStatus(item.status)), cell(item.assignee ? partyName(item.assignee) : t("unassigned")),
      cell(when(item.updated_at)));
    tr.tabIndex = 0;
    return tr;
  });
  $("open-at").replaceChildren(...rows);
}

function actorText(actor) {
  if (!actor) return "";
  const where = actor.center ? place(actor.center) : "";
  return [actor.user, actor.role ? roleName(actor.role) : "", where].filter(Boolean).join(" · ");
}

function renderHistory() {
  const data = state.history;
  $("history-hint").hidden = !!data;
  if (!data) {
    $("history").replaceChildren();
    return;
  }
  $("history").replaceChildren(...data.events.map((e) => {
    const li = document.createElement("li");
    const head = document.createElement("div");
    head.append(Object.assign(document.createElement("strong"), { textContent: tEventType(e.type) }),
      " · ", actorText(e.actor));
    const at = Object.assign(document.createElement("div"), { className: "h-when", textContent: when(e.at) });
    li.append(head, at);
    return li;
  }));
}

async function showHistory(id) {
  state.selected = id;
  renderView();
  try {
    state.history = await api(`/api/audit/incidents/${encodeURIComponent(id)}/history`);
    renderHistory();
  } catch (err) {
    showError(err);
  }
}

function renderLabels() {
  const step = state.steps[state.index];
  if (!step) {
    $("at-label").textContent = "—";
    $("event-label").textContent = state.center ? t("replay.none") : "";
    return;
  }
  $("at-label").textContent = when(step.at);
  const what = step.kind === "alerts" ? t("replay.alerts", { n: step.count }) : tEventType(step.type);
  $("event-label").textContent = `${what} · ${t("replay.step", { i: state.index + 1, n: state.steps.length })}`;
}

async function showAt(index) {
  const step = state.steps[index];
  state.index = index;
  renderLabels();
  if (!step) return;
  const ticket = {};
  state.pending = ticket;
  try {
    const view = await api(`/api/audit/centers/${encodeURIComponent(state.center)}/view?at=${encodeURIComponent(step.at)}`);
    if (state.pending === ticket) {
      state.view = view;
      renderView();
    }
    showError(null);
  } catch (err) {
    showError(err);
  }
}

async function selectCenter(center) {
  state.center = center;
  state.history = null;
  state.selected = null;
  renderHistory();
  try {
    state.steps = stepsOf(await api(`/api/audit/centers/${encodeURIComponent(center)}/events`));
  } catch (err) {
    showError(err);
    return;
  }
  const slider = $("scrubber");
  slider.max = String(Math.max(0, state.steps.length - 1));
  slider.value = slider.max;
  if (state.steps.length) await showAt(state.steps.length - 1);
  else {
    state.view = null;
    state.index = -1;
    renderView();
    renderLabels();
  }
}

function rerender() {
  translateDom();
  document.title = t("replay.title") + " · " + t("app.title");
  renderCenters();
  renderTz();
  renderView();
  renderHistory();
  renderLabels();
  if (state.error) showError(state.error);
}

async function main() {
  state.token = readToken();
  state.tz = readTz();
  rerender();
  let timer = null;
  $("scrubber").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => showAt(Number(ev.target.value)), 80);
  });
  $("center-select").addEventListener("change", (ev) => selectCenter(ev.target.value));
  $("tz-select").addEventListener("change", (ev) => {
    state.tz = ev.target.value;
    try { localStorage.setItem(TZ_KEY, state.tz); } catch (_) { /* storage disabled */ }
    rerender();
  });
  $("lang-toggle").addEventListener("click", () => {
    setLang(getLang() === "zh-CN" ? "en" : "zh-CN");
    rerender();
  });
  const open = (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (tr) showHistory(tr.dataset.id);
  };
  $("open-at").addEventListener("click", open);
  $("open-at").addEventListener("keydown", (e) => {
    if (e.key === "Enter") open(e);
  });
  window.addEventListener("linkage:names", rerender);
  try {
    const tree = await api("/api/centers");
    state.rootId = String(tree.id);
    indexTree(tree);
  } catch (err) {
    showError(err);
    return;
  }
  loadNames((path) => api(path));
  renderCenters();
  const wanted = new URLSearchParams(location.search).get("center");
  const select = $("center-select");
  if (wanted) select.value = wanted;
  if (select.value) await selectCenter(select.value);
}

main();
