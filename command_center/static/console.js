// Linkage console — live duty-officer console.
//
// Data: GET /api/centers (tree), websocket /ws/console?center=ID (snapshot + deltas),
// GET /api/incidents/<id> (detail with timeline). The protocol: docs/PROTOCOL.md.

import { applyChanges } from "./patch.js";
import { renderAlerts, renderLinkDialog, wireAlerts } from "./alerts.js";
import { anyFilter, fillSelect, filters, fitToViewport, matches, ordered } from "./queue.js";
import { gridLabel, loadMap, mapGrids, relabelMap, renderMap, select as selectGrid } from "./map.js";
import { acknowledge as acknowledgeAlarm, initAlarm, isRinging, observe as observeAlarm, renderAlarm, resetAlarm } from "./alarm.js";
import { loadNames, onNames, partyName } from "./display.js";
import Names from "./names.js";
import { caseLabel, renderActions, resetActions, setContext } from "./drawer.js";
import { wireKeys } from "./keys.js";
import { mountAssessment } from "./assessment.js";
import { mountOrders } from "./orders.js";
import {
  addStrings, STATUSES, getLang, setLang, t, tStatus, tCategory, tSource, tEventType, tSeverity, tAssignee,
  tLevel, tRule, unitName, formatDuration, translateDom,
} from "./i18n.js";

const TOKEN_KEY = "linkage.token";
const CENTER_KEY = "linkage.center";
const SWITCHER_LEVELS = ["city", "district", "township"];
const LEVEL_DEPTH = { city: 0, district: 1, township: 2, community: 3, grid: 4 };
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const STABLE_MS = 5000; // a socket open this long resets the backoff
const COUNTDOWN_MS = 30000;
const GRID_TOP = 20;
const OPEN_MAX_ROWS = 500; // most urgent first; more than this is unreadable and slow to lay out

const $ = (id) => document.getElementById(id);

addStrings({
  "zh-CN": {
    "conn.refused": "无权查看",
    "conn.tasks": "我的任务",
    "refused.center": "您无权查看“{center}”的控制台。",
    "refused.home": "您的中心是“{home}”，请在上方切换。",
    "refused.unknown": "该中心",
    "tasks.title": "派给我的事件",
    "tasks.refresh": "刷新",
  },
  en: {
    "conn.refused": "Not allowed",
    "conn.tasks": "My tasks",
    "refused.center": "You may not watch the console of “{center}”.",
    "refused.home": "Your center is “{home}”: switch to it above.",
    "refused.unknown": "this center",
    "tasks.title": "Cases dispatched to me",
    "tasks.refresh": "Refresh",
  },
});

// ---------------------------------------------------------------- state

const state = {
  token: null,
  centers: null, // tree root
  nodes: new Map(), // id -> node (every level)
  centerId: null,
  home: null, // the user's own center (GET /api/centers "home")
  assignee: null, // "kind:id" when the user is a department or a grid worker
  tasks: false, // no center to watch: the console lists the cases dispatched to the user
  refused: null, // the center the user may not watch, when the console was asked for one
  failedOpens: 0, // sockets closed before they opened, in a row
  // live view
  view: null,
  epoch: null,
  seq: null,
  // socket
  ws: null,
  gen: 0, // bumps on every new socket; stale sockets' events are ignored
  attempt: 0,
  retryTimer: null,
  retryAt: 0,
  authFailed: false,
  // detail panel
  detailId: null,
  detailData: null,
  detailVersion: null,
  detailError: null,
};

// ---------------------------------------------------------------- auth + fetch

function readToken() {
  const hash = location.hash.replace(/^#/, "");
  if (hash) {
    const params = new URLSearchParams(hash);
    const tok = params.get("token");
    if (tok) {
      try {
        localStorage.setItem(TOKEN_KEY, tok);
      } catch (_) {
        /* storage disabled */
      }
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
      return tok;
    }
  }
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch (_) {
    return null;
  }
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || "HTTP " + status);
    this.status = status;
    this.detail = detail;
  }
}

async function apiFetch(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Accept", "application/json");
  if (state.token) headers.set("Authorization", "Bearer " + state.token);
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) {
    showAuthBanner();
    throw new HttpError(401, t("auth.required"));
  }
  if (!resp.ok) {
    let detail = "";
    try {
      const body = await resp.json();
      detail = body.detail || body.title || "";
    } catch (_) {
      /* not JSON */
    }
    throw new HttpError(resp.status, detail || "HTTP " + resp.status);
  }
  clearAuthBanner();
  return resp.json();
}

// ---------------------------------------------------------------- banner

let bannerKind = null; // "auth" | "error" | null
let bannerText = "";

function showBanner(kind, text) {
  bannerKind = kind;
  bannerText = text;
  const el = $("banner");
  el.hidden = false;
  el.dataset.kind = kind;
  el.textContent = kind === "auth" ? "请登录 / Please log in — " + t("auth.required") : text;
}

function showAuthBanner() {
  state.authFailed = true;
  showBanner("auth", "");
}

function clearAuthBanner() {
  state.authFailed = false;
  if (bannerKind === "auth") clearBanner();
}

function clearBanner() {
  bannerKind = null;
  bannerText = "";
  const el = $("banner");
  el.hidden = true;
  el.textContent = "";
}

// ---------------------------------------------------------------- centers

function indexCenters(node, depth = 0) {
  if (!node || typeof node !== "object") return;
  state.nodes.set(String(node.id), node);
  for (const child of node.children || []) indexCenters(child, depth + 1);
}

function gridName(id) {
  if (id === null || id === undefined || id === "") return "";
  const node = state.nodes.get(String(id));
  return node ? unitName(node) : String(id);
}

function renderCenterOptions() {
  const sel = $("center-select");
  const frag = document.createDocumentFragment();
  const walk = (node) => {
    if (!node) return;
    if (SWITCHER_LEVELS.includes(node.level) && node.watchable === false) {
      // Above the user's centers: not listed, but its watchable descendants are.
      for (const child of node.children || []) walk(child);
    } else if (SWITCHER_LEVELS.includes(node.level)) {
      const opt = document.createElement("option");
      opt.value = String(node.id);
      const depth = LEVEL_DEPTH[node.level] ?? 0;
      opt.textContent = "\u00a0\u00a0\u00a0\u00a0".repeat(depth) + unitName(node);
      opt.title = tLevel(node.level) + " · " + node.id;
      opt.dataset.level = node.level;
      frag.appendChild(opt);
      for (const child of node.children || []) walk(child);
    }
  };
  if (state.centers) walk(state.centers);
  if (state.centerId && !state.nodes.has(state.centerId)) {
    // A center given in the URL that the tree does not list: keep it selectable.
    const opt = document.createElement("option");
    opt.value = state.centerId;
    opt.textContent = state.centerId;
    frag.appendChild(opt);
  } else if (state.centerId && !isSwitchable(state.centerId)) {
    // A center the user may not watch (refused): shown, not selectable, so that choosing one of
    // the listed centers is a change.
    const opt = document.createElement("option");
    opt.value = state.centerId;
    opt.textContent = unitName(state.nodes.get(state.centerId));
    opt.disabled = true;
    frag.prepend(opt);
  }
  sel.replaceChildren(frag);
  if (state.centerId) sel.value = state.centerId;
  sel.disabled = sel.options.length === 0;
}

async function loadCenters() {
  try {
    const tree = await apiFetch("/api/centers");
    // Accept either the root node or a list of roots.
    const root = Array.isArray(tree)
      ? { id: "", name: "", name_en: "", level: "root", children: tree }
      : tree;
    state.centers = root;
    state.home = root.home || null;
    state.assignee = root.assignee || null;
    state.nodes.clear();
    indexCenters(root);
    if (Array.isArray(tree)) state.nodes.delete("");
    return true;
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 401)) {
      showBanner("error", t("error.centers") + ": " + err.message);
    }
    return false;
  }
}

function defaultCenter() {
  const fromUrl = new URLSearchParams(location.search).get("center");
  if (fromUrl) return fromUrl;
  let saved = null;
  try {
    saved = localStorage.getItem(CENTER_KEY);
  } catch (_) {
    /* storage disabled */
  }
  if (saved && (state.nodes.size === 0 || isSwitchable(saved))) return saved;
  if (state.home && isSwitchable(state.home)) return state.home;
  if (state.centers) {
    const first = findFirst(state.centers, (n) => SWITCHER_LEVELS.includes(n.level) && n.watchable !== false);
    if (first) return String(first.id);
  }
  return saved;
}

function isSwitchable(id) {
  const n = state.nodes.get(id);
  return !!n && SWITCHER_LEVELS.includes(n.level) && n.watchable !== false;
}

// The user may not watch `id` (GET /api/centers says so): say why, in their language, and stop.
function showRefused(id) {
  dropSocket();
  state.refused = id;
  const node = state.nodes.get(id);
  const home = state.home && state.nodes.get(state.home);
  let text = t("refused.center", { center: node ? unitName(node) : t("refused.unknown") });
  if (home && isSwitchable(state.home)) text += " " + t("refused.home", { home: unitName(home) });
  showBanner("error", text);
  setConn("refused");
}

// A socket refused before it opened (a 403 at the handshake looks like a network error to a
// browser): ask the server again whether the center is watchable.
async function checkRefused() {
  if (!(await loadCenters())) return;
  renderCenterOptions();
  if (state.centerId && state.nodes.has(state.centerId) && !isSwitchable(state.centerId)) {
    showRefused(state.centerId);
  }
}

function findFirst(node, pred) {
  if (pred(node)) return node;
  for (const c of node.children || []) {
    const r = findFirst(c, pred);
    if (r) return r;
  }
  return null;
}

// ---------------------------------------------------------------- connection

function setConn(s) {
  const el = $("conn-status");
  el.dataset.state = s;
  document.body.dataset.conn = s;
  renderConnText();
  markDirty("seq");
}

function renderConnText() {
  const el = $("conn-status");
  const s = el.dataset.state;
  let text = t("conn." + s);
  if (s === "closed" && state.retryTimer && !state.authFailed) {
    const secs = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
    if (secs > 0) text += getLang() === "en" ? ` · retry ${secs}s` : ` · ${secs}秒后重试`;
  }
  el.querySelector(".conn-text").textContent = text;
}

function wsUrl(centerId) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${proto}//${location.host}/ws/console?center=${encodeURIComponent(centerId)}`;
  if (state.token) url += `&token=${encodeURIComponent(state.token)}`;
  return url;
}

function dropSocket() {
  state.gen++;
  if (state.retryTimer) {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
  }
  const ws = state.ws;
  state.ws = null;
  if (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, "client");
    } catch (_) {
      /* already closed */
    }
  }
}

function resetView() {
  state.view = null;
  state.epoch = null;
  state.seq = null;
  markDirty("all");
}

// Open a socket for the current center. With `resume`, and a view in hand, the
// first frame sent is {"type":"resume","epoch":E,"seq":N}.
function connect(resume) {
  dropSocket();
  if (!state.centerId) return;
  if (state.nodes.has(state.centerId) && !isSwitchable(state.centerId)) {
    showRefused(state.centerId);
    return;
  }
  if (state.refused) {
    state.refused = null;
    if (bannerKind === "error") clearBanner();
  }
  loadMap(apiFetch, state.centerId, onGridSelected).then(() => markDirty("open"));
  if (!resume) resetView();
  const gen = state.gen;
  const sendResume = resume && state.view !== null && state.epoch !== null && state.seq !== null;
  let ws;
  try {
    ws = new WebSocket(wsUrl(state.centerId));
  } catch (err) {
    scheduleReconnect(!!sendResume);
    return;
  }
  state.ws = ws;
  let openedAt = 0;
  let gotFrame = false;
  setConn("connecting");

  ws.onopen = () => {
    if (gen !== state.gen) return;
    openedAt = Date.now();
    if (sendResume) {
      ws.send(JSON.stringify({ type: "resume", epoch: state.epoch, seq: state.seq }));
      // The view we hold is live again; the server sends any missed deltas or a snapshot.
      setConn("open");
    } else {
      // Tells the server not to wait for a resume: it answers with a snapshot at once.
      ws.send(JSON.stringify({ type: "hello" }));
    }
  };

  ws.onmessage = (ev) => {
    if (gen !== state.gen) return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (_) {
      return resync("bad frame");
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "snapshot" || msg.type === "delta") {
      if (!gotFrame) {
        gotFrame = true;
        state.attempt = 0;
      }
    }
    handleMessage(msg);
  };

  ws.onclose = (ev) => {
    if (gen !== state.gen) return;
    state.ws = null;
    if (openedAt && Date.now() - openedAt >= STABLE_MS) state.attempt = 0;
    state.failedOpens = openedAt ? 0 : state.failedOpens + 1;
    if (state.failedOpens === 3) checkRefused();
    if ([4001, 4401, 4403].includes(ev.code) || /auth|token|unauthori[sz]ed|login/i.test(ev.reason || "")) {
      showAuthBanner();
    }
    scheduleReconnect(state.view !== null);
  };

  ws.onerror = () => {
    /* onclose follows */
  };
}

function scheduleReconnect(resume) {
  if (state.retryTimer) clearTimeout(state.retryTimer);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
  state.attempt = Math.min(state.attempt + 1, 16);
  state.retryAt = Date.now() + delay;
  const gen = state.gen;
  state.retryTimer = setTimeout(() => {
    if (gen !== state.gen) return;
    state.retryTimer = null;
    connect(resume && state.view !== null);
  }, delay);
  setConn("closed");
}

// Discard the view and reconnect without resume: the server sends a snapshot.
function resync(reason) {
  console.warn("linkage console: resync:", reason);
  resetView();
  connect(false);
}

function handleMessage(msg) {
  switch (msg.type) {
    case "snapshot": {
      if (msg.center !== undefined && String(msg.center) !== String(state.centerId)) return;
      state.view = normalizeView(msg.view);
      state.epoch = msg.epoch;
      state.seq = msg.seq;
      resetAlarm(state.view);
      if (bannerKind === "error") clearBanner();
      clearAuthBanner();
      setConn("open");
      markDirty("all");
      announceView();
      break;
    }
    case "delta": {
      if (msg.center !== undefined && String(msg.center) !== String(state.centerId)) return;
      if (state.view === null) return resync("delta without snapshot");
      if (msg.epoch !== state.epoch) return resync(`epoch ${state.epoch} -> ${msg.epoch}`);
      if (msg.seq !== state.seq + 1) return resync(`seq ${state.seq} -> ${msg.seq}`);
      try {
        applyChanges(state.view, msg.changes || []);
      } catch (err) {
        return resync("bad delta: " + err.message);
      }
      state.seq = msg.seq;
      observeAlarm(state.view);
      if ($("conn-status").dataset.state !== "open") setConn("open");
      for (const ch of msg.changes || []) {
        const head = Array.isArray(ch.path) ? ch.path[0] : null;
        markDirty(head === "recent" ? "feed" : head || "all");
      }
      markDirty("seq");
      announceView();
      document.dispatchEvent(new Event("linkage:delta")); // orders.js, assessment.js refresh
      break;
    }
    case "error": {
      const detail = msg.detail || t("error.server");
      if (/auth|token|401|unauthori[sz]ed|forbidden|login|登录/i.test(detail)) showAuthBanner();
      else showBanner("error", detail);
      break;
    }
    default:
      break;
  }
}

// Other panels (registry.js) follow the view through this event, without hooks in here.
function announceView() {
  document.dispatchEvent(new CustomEvent("linkage:view", {
    detail: { view: state.view, center: state.centerId, token: state.token },
  }));
}

function normalizeView(v) {
  const view = v && typeof v === "object" ? v : {};
  if (!view.counts || typeof view.counts !== "object") view.counts = {};
  if (!view.queue || typeof view.queue !== "object") view.queue = {};
  if (!view.grids || typeof view.grids !== "object") view.grids = {};
  if (!Array.isArray(view.recent)) view.recent = [];
  return view;
}

function switchCenter(id) {
  if (!id || id === state.centerId) return;
  state.centerId = id;
  try {
    localStorage.setItem(CENTER_KEY, id);
  } catch (_) {
    /* storage disabled */
  }
  const params = new URLSearchParams(location.search);
  if (params.has("center")) {
    params.set("center", id);
    history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
  }
  closeDetail();
  state.attempt = 0;
  connect(false);
}

// ---------------------------------------------------------------- rendering

const dirty = new Set();
let rafPending = false;

const ALERT_PARTS = ["alerts", "alert_counts", "storms", "storm_windows"];

function markDirty(part) {
  if (part === "all") {
    for (const p of ["counts", "open", "feed", "grids", "seq", "alerts"]) dirty.add(p);
  } else if (part === "position") {
    dirty.add("seq");
  } else if (part === "queue") {
    dirty.add("open"); // the urgency queue is the open list
  } else if (ALERT_PARTS.includes(part)) {
    if (part !== "storm_windows") dirty.add("alerts");
  } else if (["counts", "open", "feed", "grids", "seq"].includes(part)) {
    dirty.add(part);
  } else {
    for (const p of ["counts", "open", "feed", "grids", "seq"]) dirty.add(p);
  }
  if (!rafPending) {
    rafPending = true;
    requestAnimationFrame(flush);
  }
}

// The open list is the one costly part: when rendering it is slow (thousands of rows),
// render it at most every few times its own duration, so bursts never freeze the page.
let openLast = 0;
let openCost = 0;
let openTimer = null;

function flush() {
  rafPending = false;
  const parts = new Set(dirty);
  dirty.clear();
  try {
    if (parts.has("counts")) renderCounts();
    if (parts.has("open")) {
      const wait = openLast + Math.min(1000, openCost * 4) - performance.now();
      if (wait > 0) {
        if (!openTimer) {
          openTimer = setTimeout(() => {
            openTimer = null;
            markDirty("open");
          }, wait);
        }
      } else {
        const t0 = performance.now();
        renderOpen();
        openLast = performance.now();
        openCost = openLast - t0;
      }
    }
    if (parts.has("feed")) renderFeed();
    if (parts.has("alerts")) renderAlerts(state.view, gridName);
    else if (parts.has("open")) renderLinkDialog(state.view, gridName); // its incident list
    if (parts.has("grids")) renderGrids();
    if (parts.has("seq")) renderSeq();
    if (parts.has("open") || parts.has("grids") || parts.has("alerts")) renderMap(state.view);
    fitToViewport(document.querySelector(".panel-open"));
  } catch (err) {
    console.error("linkage console: render failed", err);
  }
}

const timeFmt = () =>
  new Intl.DateTimeFormat(getLang(), {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  });
const timeFmtSec = () =>
  new Intl.DateTimeFormat(getLang(), {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
let fmtCache = { lang: null, full: null, sec: null };
function fmt() {
  if (fmtCache.lang !== getLang()) fmtCache = { lang: getLang(), full: timeFmt(), sec: timeFmtSec() };
  return fmtCache;
}

function parseTime(iso) {
  if (!iso) return NaN;
  return Date.parse(iso);
}

function localTime(iso, withSeconds = false) {
  const ms = parseTime(iso);
  if (Number.isNaN(ms)) return iso ? String(iso) : "";
  return withSeconds ? fmt().sec.format(ms) : fmt().full.format(ms);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

// --- counts

let countEls = new Map(); // status -> {box, label, value}
let countsLang = null;

function renderCounts() {
  const box = $("counts");
  const counts = (state.view && state.view.counts) || {};
  const statuses = [...STATUSES, ...Object.keys(counts).filter((s) => !STATUSES.includes(s))];
  if (countsLang !== getLang() || statuses.some((s) => !countEls.has(s))) {
    countEls = new Map();
    const frag = document.createDocumentFragment();
    for (const s of statuses) {
      const item = el("div", "count st-" + s);
      const value = el("span", "count-value", "0");
      value.dataset.status = s;
      const label = el("span", "count-label", tStatus(s));
      item.append(value, label);
      frag.appendChild(item);
      countEls.set(s, { item, value });
    }
    box.replaceChildren(frag);
    countsLang = getLang();
  }
  for (const [s, { item, value }] of countEls) {
    const n = state.view ? Number(counts[s] || 0) : null;
    const text = n === null ? "–" : String(n);
    if (value.textContent !== text) value.textContent = text;
    item.classList.toggle("zero", !n);
  }
}

// --- open incidents

const rowCache = new Map(); // id -> {tr, sig, cells}

// Parsed times per incident object (a delta replaces the object, so the cache stays valid).
const timeCache = new WeakMap();

// The page's urgency order (static/queue.js): the server's rule, with "overdue" from the clock.
function sortKeyed(list, now) {
  return ordered(list, now);
}

// --- queue filters (static/queue.js) and the map (static/map.js)

let namesVersion = 0; // bumps when the directory (names) arrives: rows re-render their names
let filterOptionsKey = null;

function renderFilters(keyed) {
  const incs = keyed.map((k) => k.inc);
  const statuses = STATUSES.filter((st) => !FINAL.has(st));
  fillSelect($("filter-status"), t("filter.all"), statuses.map((st) => [st, tStatus(st)]));
  const gridIds = new Set(mapGrids());
  for (const inc of incs) if (inc.grid) gridIds.add(String(inc.grid));
  if (filters.grid) gridIds.add(filters.grid);
  const assignees = new Set(incs.map((inc) => inc.assignee).filter(Boolean));
  if (filters.assignee && filters.assignee !== "-") assignees.add(filters.assignee);
  // The option lists change rarely: rebuilt only when their ids, the language or the names change.
  const key = [getLang(), namesVersion, [...gridIds].join(","), [...assignees].join(",")].join("\u0000");
  if (key !== filterOptionsKey) {
    filterOptionsKey = key;
    const collator = new Intl.Collator(getLang());
    const gridOpts = [...gridIds].map((g) => [g, gridLabel(g) || gridName(g)])
      .sort((a, b) => collator.compare(a[1], b[1]));
    fillSelect($("filter-grid"), t("filter.all"), gridOpts);
    fillSelect($("filter-severity"), t("filter.all"), [["major", tSeverity("major")], ["routine", tSeverity("routine")]]);
    const assigneeOpts = [["-", t("filter.unassigned")],
      ...[...assignees].map((a) => [String(a), partyName(a)]).sort((a, b) => collator.compare(a[1], b[1]))];
    fillSelect($("filter-assignee"), t("filter.all"), assigneeOpts);
  }
  for (const [key, id] of [["status", "filter-status"], ["grid", "filter-grid"], ["severity", "filter-severity"], ["assignee", "filter-assignee"]]) {
    if ($(id).value !== filters[key]) $(id).value = filters[key];
  }
  $("filter-clear").hidden = !anyFilter();
}

function setFilter(key, value) {
  filters[key] = value || "";
  if (key === "grid") selectGrid(filters.grid);
  else markDirty("open");
}

// The map's grid selection is the queue's grid filter.
function onGridSelected(grid) {
  filters.grid = grid || "";
  markDirty("open");
}

// A grid's name without the name of the center the console watches ("城镇街道第一社区网格01" on
// 城镇街道's console is "第一社区网格01"): the part that tells the rows apart.
function shortGridName(id) {
  const full = gridName(id);
  const center = state.nodes.get(String(state.centerId));
  const prefix = center ? unitName(center) : "";
  if (prefix && full.startsWith(prefix) && full.length > prefix.length) {
    return full.slice(prefix.length).replace(/^[\s·,]+/, "");
  }
  return full;
}

// Open cases in the whole center (not only the queue): every status but the final ones.
const FINAL = new Set(["rejected", "duplicate", "closed"]);

function openCount() {
  const counts = (state.view && state.view.counts) || {};
  return Object.entries(counts).filter(([k]) => !FINAL.has(k)).reduce((n, [, v]) => n + (Number(v) || 0), 0);
}

const WORKING = new Set(["accepted", "dispatched", "returned", "acknowledged", "reopened"]);

function dueText(dueMs, now, repMs, step = "") {
  if (dueMs === Infinity && repMs !== undefined && repMs !== Infinity) {
    return { abs: "", rel: t("since.report", { d: formatDuration(now - repMs) }) };
  }
  if (dueMs === Infinity) return { abs: t("due.none"), rel: "" };
  const diff = dueMs - now;
  // The step's own words (to accept, dispatch, acknowledge, return visit); resolving reads as before.
  const key = step && step !== "resolve" ? "due." + step : "due";
  const rel = diff < 0 ? t(key + ".overdue", { d: formatDuration(-diff) }) : t(key + ".in", { d: formatDuration(diff) });
  return { abs: fmt().full.format(dueMs), rel };
}

function buildRow(id) {
  const tr = document.createElement("tr");
  tr.dataset.id = id;
  tr.tabIndex = 0;
  const cells = {
    sev: el("td", "c-sev"),
    cat: el("td", "c-cat"),
    grid: el("td", "c-grid"),
    status: el("td", "c-status"),
    assignee: el("td", "c-assignee"),
    due: el("td", "c-due"),
  };
  cells.dueAbs = el("span", "due-abs");
  cells.dueRel = el("span", "due-rel");
  cells.due.append(cells.dueAbs, cells.dueRel);
  tr.append(cells.sev, cells.cat, cells.grid, cells.status, cells.assignee, cells.due);
  return { tr, sig: null, cells, dueSig: null };
}

function fillRow(entry, k, now) {
  const inc = k.inc;
  const lang = getLang();
  const sig = [lang, namesVersion, inc.version, inc.status, inc.severity, inc.category, inc.grid, inc.assignee, inc.summary, inc.source, inc.escalated_to, inc.supervised_by].join("\u0001");
  const c = entry.cells;
  if (sig !== entry.sig) {
    entry.sig = sig;
    const major = inc.severity === "major";
    entry.tr.classList.toggle("major", major);
    c.sev.replaceChildren(el("span", "sev sev-" + (inc.severity || "unknown"), tSeverity(inc.severity)));
    c.cat.textContent = tCategory(inc.category);
    c.cat.title = [inc.summary, inc.source ? tSource(inc.source) : ""].filter(Boolean).join(" · ");
    c.grid.textContent = shortGridName(inc.grid);
    c.grid.title = gridName(inc.grid);
    c.status.replaceChildren(el("span", "pill st-" + (inc.status || ""), tStatus(inc.status)));
    // Step 4 badges: escalation up the tree and supervision by a higher center.
    if (inc.escalated_to) c.status.append(" ", el("span", "pill badge-escalated", t("escalated." + inc.escalated_to)));
    if (inc.supervised_by) c.status.append(" ", el("span", "pill badge-supervised", t("supervised")));
    c.assignee.textContent = inc.assignee ? partyName(inc.assignee) : "";
    c.assignee.classList.toggle("muted", !inc.assignee);
    if (!inc.assignee) c.assignee.textContent = t("unassigned");
  }
  const d = dueText(k.countdown, now, k.rep, k.step);
  const dueSig = lang + "|" + d.abs + "|" + d.rel + "|" + k.overdue;
  if (dueSig !== entry.dueSig) {
    entry.dueSig = dueSig;
    c.dueAbs.textContent = d.abs;
    c.dueRel.textContent = d.rel;
    entry.tr.classList.toggle("overdue", k.overdue);
    if (k.overdue) entry.tr.dataset.overdue = "true";
    else delete entry.tr.dataset.overdue;
  }
}

function renderOpen() {
  const tbody = $("open-list");
  // The view holds only the most urgent open cases (its queue); the others are a query away
  // (GET /api/incidents), and the counts give how many there are.
  const open = (state.view && state.view.queue) || {};
  const now = Date.now();
  const keyed = sortKeyed(Object.values(open).filter((x) => x && typeof x === "object"), now);
  renderFilters(keyed);
  const shown = anyFilter() ? keyed.filter((k) => matches(k.inc)) : keyed;
  const seen = new Set();
  const order = [];
  for (const k of shown) {
    if (order.length >= OPEN_MAX_ROWS) break;
    const id = String(k.inc.id ?? "");
    if (!id || seen.has(id)) continue;
    seen.add(id);
    let entry = rowCache.get(id);
    if (!entry) {
      entry = buildRow(id);
      rowCache.set(id, entry);
    }
    fillRow(entry, k, now);
    entry.tr.classList.toggle("selected", id === state.detailId);
    entry.tr.classList.toggle("alarm", isRinging(id));
    order.push(entry.tr);
  }
  for (const [id, entry] of rowCache) {
    if (!seen.has(id)) {
      entry.tr.remove();
      rowCache.delete(id);
    }
  }
  // Reorder only what is out of place.
  let cur = tbody.firstElementChild;
  for (const tr of order) {
    if (cur === tr) {
      cur = cur.nextElementSibling;
    } else {
      tbody.insertBefore(tr, cur);
    }
  }
  while (cur) {
    const next = cur.nextElementSibling;
    cur.remove();
    cur = next;
  }
  $("open-empty").hidden = order.length !== 0 || state.view === null;
  const openTotal = Math.max(keyed.length, openCount());
  let total = state.view ? t("open.count", { n: openTotal }) : "";
  if (anyFilter()) total += " · " + t("filter.shown", { n: shown.length });
  else if (openTotal > order.length) total += " · " + t("open.shown", { n: order.length });
  $("open-total").textContent = total;
  const overdue = keyed.filter((k) => k.overdue).length;
  $("open-total").dataset.overdue = String(overdue);

  // Keep the detail panel in step with the incident's version.
  if (state.detailId && open[state.detailId] && state.detailData &&
      open[state.detailId].version !== state.detailVersion) {
    refreshDetailSoon();
  }
}

// --- feed

function renderFeed() {
  const list = $("feed");
  const recent = (state.view && state.view.recent) || [];
  const items = [...recent].sort((a, b) => (b.n ?? 0) - (a.n ?? 0));
  const frag = document.createDocumentFragment();
  for (const ev of items) {
    const li = el("li", "feed-item ev-" + (ev.type || ""));
    if (ev.n !== undefined) li.dataset.n = String(ev.n);
    if (ev.incident) li.dataset.incident = String(ev.incident);
    const head = el("div", "feed-head");
    head.append(
      el("time", "feed-time", localTime(ev.at, true)),
      el("span", "feed-type", tEventType(ev.type)),
      el("span", "feed-grid", gridName(ev.grid)),
    );
    li.appendChild(head);
    const body = el("div", "feed-body");
    if (ev.summary) body.appendChild(el("span", "feed-summary", feedSummary(ev.summary)));
    if (ev.actor) body.appendChild(el("span", "feed-actor", actorName(ev.actor)));
    li.appendChild(body);
    if (ev.at) li.title = ev.at;
    frag.appendChild(li);
  }
  if (items.length === 0 && state.view) frag.appendChild(el("li", "empty", t("feed.empty")));
  list.replaceChildren(frag);
  // The drawer follows its incident: a newer event of it (even one that took it out of the queue,
  // like a close) reloads the drawer.
  if (state.detailId) {
    const latest = latestEventOf(state.detailId);
    if (latest > state.detailSeenN) {
      state.detailSeenN = latest;
      refreshDetailSoon();
    }
  }
}

// The notification number of the newest event of an incident in the view's recent events (-1).
function latestEventOf(id) {
  let n = -1;
  for (const ev of (state.view && state.view.recent) || []) {
    if (String(ev.incident) === id && Number(ev.n) > n) n = Number(ev.n);
  }
  return n;
}

// A feed summary without ids: "department:housing" is the party's name, "duplicate of <id>" a word.
function feedSummary(text) {
  const m = /^(department|grid_worker|party|user):\S+$/.exec(text);
  if (m) return partyName(text);
  if (/^duplicate of /.test(text)) return tEventType("MarkedDuplicate");
  return text;
}

// A feed actor: a user's login stays, an alert rule is named by its description.
function actorName(actor) {
  const text = String(actor);
  return text.startsWith("rule:") ? `${t("alerts.rule")}: ${tRule(text.slice(5))}` : text;
}

// --- grids

function renderGrids() {
  const box = $("grids");
  const grids = (state.view && state.view.grids) || {};
  const rows = Object.entries(grids)
    .map(([id, n]) => [id, Number(n) || 0])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, GRID_TOP);
  const max = rows.length ? rows[0][1] : 1;
  const frag = document.createDocumentFragment();
  for (const [id, n] of rows) {
    const row = el("div", "grid-row");
    row.dataset.grid = id;
    const name = el("span", "grid-name", gridName(id));
    name.title = id;
    const bar = el("span", "grid-bar");
    const fill = el("span", "grid-fill");
    fill.style.width = Math.max(2, Math.round((n / max) * 100)) + "%";
    bar.appendChild(fill);
    row.append(name, bar, el("span", "grid-count", String(n)));
    frag.appendChild(row);
  }
  if (rows.length === 0 && state.view) frag.appendChild(el("div", "empty", t("grids.empty")));
  box.replaceChildren(frag);
}

// --- footer

function renderSeq() {
  // The ids of the stream (center, epoch, seq, position) stay in the footer's details fold.
  const e = $("seq");
  if (!state.view) {
    e.textContent = state.centerId ? `${state.centerId} · —` : "—";
    delete e.dataset.epoch;
    delete e.dataset.seq;
  } else {
    const parts = [state.centerId, `${t("footer.epoch")} ${state.epoch}`, `${t("footer.seq")} ${state.seq}`];
    if (state.view.position !== undefined) parts.push(`${t("footer.position")} ${state.view.position}`);
    e.textContent = parts.join(" · ");
    e.dataset.epoch = String(state.epoch);
    e.dataset.seq = String(state.seq);
  }
  // What the officer reads: connected or not, and when the last event happened (local time).
  const open = ["open", "tasks"].includes($("conn-status").dataset.state) && state.view;
  const recent = (state.view && state.view.recent) || [];
  let last = NaN;
  for (const ev of recent) last = Math.max(Number.isNaN(last) ? -Infinity : last, parseTime(ev.at));
  const when = Number.isFinite(last)
    ? t("footer.last", { time: new Date(last).toLocaleString(getLang(), { hour12: false }) })
    : t("footer.none");
  const status = $("footer-status");
  status.textContent = (open ? t("footer.connected") : t("footer.offline")) + " · " + when;
  status.dataset.state = open ? "open" : "closed";
}

// ---------------------------------------------------------------- detail panel

let detailTimer = null;
let detailReq = 0;

function openDetail(id) {
  acknowledgeAlarm(id);
  state.detailId = id;
  state.detailSeenN = latestEventOf(id);
  state.detailData = null;
  state.detailError = null;
  state.detailVersion = null;
  const panel = $("detail");
  panel.hidden = false;
  panel.dataset.id = id;
  document.body.classList.add("detail-open");
  resetActions();
  renderDetail();
  markDirty("open");
  loadDetail();
}

function closeDetail() {
  state.detailId = null;
  state.detailData = null;
  state.detailError = null;
  if (detailTimer) clearTimeout(detailTimer);
  detailTimer = null;
  resetActions();
  const panel = $("detail");
  panel.hidden = true;
  delete panel.dataset.id;
  document.body.classList.remove("detail-open");
  markDirty("open");
}

function refreshDetailSoon() {
  if (detailTimer) return;
  detailTimer = setTimeout(() => {
    detailTimer = null;
    if (state.detailId) loadDetail();
  }, 300);
}

async function loadDetail() {
  const id = state.detailId;
  const req = ++detailReq;
  const liveVersion = state.view && state.view.queue[id] ? state.view.queue[id].version : null;
  try {
    const data = await apiFetch("/api/incidents/" + encodeURIComponent(id));
    if (req !== detailReq || id !== state.detailId) return;
    state.detailData = data;
    state.detailError = null;
    state.detailVersion = data.version ?? liveVersion;
    if (liveVersion !== null && state.detailVersion !== liveVersion) state.detailVersion = liveVersion;
  } catch (err) {
    if (req !== detailReq || id !== state.detailId) return;
    state.detailError = err.message;
  }
  renderDetail();
}

const DETAIL_FIELDS = [
  "id", "status", "category", "severity", "grid", "source", "summary", "description",
  "reported_at", "created_at", "updated_at", "due", "assignee", "version",
];
const ID_FIELDS = new Set(["id", "version", "request_id"]);
const TIME_FIELDS = new Set(["reported_at", "created_at", "updated_at", "due", "at", "deadline", "resolved_at", "closed_at", "step_due", "policy_resolve_due"]);

// {"user","role","center"} -> "duty-officer (city_officer)"; a string stays as it is.
function formatActor(a) {
  if (a === null || a === undefined || a === "") return "";
  if (typeof a !== "object") return String(a);
  const who = a.user || a.id || a.name || "";
  const extra = [a.role ? Names.role(a.role) : "", a.center ? gridName(a.center) : ""].filter(Boolean).join(" · ");
  return who && extra ? `${who} (${extra})` : who || extra || JSON.stringify(a);
}

function formatParty(v) {
  if (v && typeof v === "object" && "kind" in v) return Names.party(v);
  return typeof v === "string" && v.includes(":") ? Names.party(v) : typeof v === "string" ? tAssignee(v) : formatValue(v);
}

function formatValue(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.map(formatValue).join(", ");
  if (typeof v === "object") {
    if ("kind" in v && "id" in v) return formatParty(v);
    if ("user" in v) return formatActor(v);
    return Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined && x !== "")
      .map(([k, x]) => `${fieldLabel(k)}: ${typeof x === "object" ? JSON.stringify(x) : x}`)
      .join("; ");
  }
  return String(v);
}

function formatField(key, value) {
  if (value === null || value === undefined || value === "") return "—";
  switch (key) {
    case "status": return tStatus(value);
    case "category": return tCategory(value);
    case "severity": return tSeverity(value);
    case "source": return tSource(value);
    case "grid": return gridName(value);
    case "centers": return Array.isArray(value) ? value.map(gridName).join(" · ") : formatValue(value);
    case "escalated_to": case "level": return tLevel(value);
    case "center": return gridName(value);
    case "step": { const k = "step." + value; const s = t(k); return s === k ? String(value) : s; }
    case "actor": case "by": return formatActor(value);
    case "assignee": case "to": case "from": case "new_assignee": case "previous_assignee": return formatParty(value);
    default: break;
  }
  if (TIME_FIELDS.has(key) || (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value))) {
    const ms = parseTime(value);
    if (!Number.isNaN(ms)) return fmt().full.format(ms);
  }
  return formatValue(value);
}

function fieldLabel(key) {
  const k = "field." + key;
  const s = t(k);
  return s === k ? key : s;
}

function renderDetail() {
  const body = $("detail-body");
  const id = state.detailId;
  if (!id) {
    body.replaceChildren();
    return;
  }
  const frag = document.createDocumentFragment();
  const live = state.view && state.view.queue ? state.view.queue[id] : null;
  const data = state.detailData || live || { id };
  if (state.detailError) frag.appendChild(el("div", "detail-error", t("error.incident") + ": " + state.detailError));
  if (!state.detailData && !state.detailError) frag.appendChild(el("div", "muted", t("detail.loading")));

  const dl = el("dl", "fields");
  const keys = [...DETAIL_FIELDS.filter((k) => k in data)];
  for (const k of Object.keys(data)) {
    if (keys.includes(k) || k === "timeline" || k === "allowed_actions") continue;
    const v = data[k];
    if (v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    keys.push(k);
  }
  // Ids and versions only in a "details" fold (issue #13: names, not ids).
  const ids = el("dl", "fields");
  for (const k of keys) {
    const row = el("div", "field");
    row.dataset.field = k;
    row.append(el("dt", null, fieldLabel(k)), el("dd", null, formatField(k, data[k])));
    if (k === "severity" && data[k] === "major") row.classList.add("major");
    (ID_FIELDS.has(k) ? ids : dl).appendChild(row);
  }
  frag.appendChild(dl);
  if (ids.childElementCount) {
    const fold = el("details", "detail-ids");
    fold.append(el("summary", null, t("details.title")), ids);
    frag.appendChild(fold);
  }

  frag.appendChild(el("h3", null, t("detail.timeline")));
  const timeline = Array.isArray(data.timeline) ? data.timeline : [];
  const ol = el("ol", "timeline");
  ol.id = "detail-timeline";
  for (const ev of timeline) {
    const li = el("li", "tl-item ev-" + (ev.type || ""));
    const head = el("div", "tl-head");
    head.append(
      el("span", "tl-type", tEventType(ev.type)),
      el("time", "tl-at", localTime(ev.at)),
      el("span", "tl-actor", formatActor(ev.actor)),
    );
    if (ev.version !== undefined) head.appendChild(el("span", "tl-version", "v" + ev.version));
    li.appendChild(head);
    // Event fields: top-level ones and those nested under "data", leaving out empty values.
    const flat = [];
    for (const [k, v] of Object.entries(ev)) {
      if (["type", "at", "actor", "version", "request_id"].includes(k)) continue;
      if (k === "data" && v && typeof v === "object" && !Array.isArray(v)) flat.push(...Object.entries(v));
      else flat.push([k, v]);
    }
    const extra = flat.filter(([, v]) => v !== null && v !== undefined && v !== "");
    if (extra.length) {
      const edl = el("dl", "tl-fields");
      for (const [k, v] of extra) {
        const row = el("div", "field");
        row.append(el("dt", null, fieldLabel(k)), el("dd", null, formatField(k, v)));
        edl.appendChild(row);
      }
      li.appendChild(edl);
    }
    ol.appendChild(li);
  }
  if (timeline.length === 0 && state.detailData) ol.appendChild(el("li", "muted", t("detail.noTimeline")));
  frag.appendChild(ol);
  body.replaceChildren(frag);
  renderActions(state.detailData);
}

// ---------------------------------------------------------------- language

function applyLanguage() {
  translateDom();
  renderCenterOptions();
  renderConnText();
  if (bannerKind === "auth") showBanner("auth", "");
  markDirty("all");
  relabelMap();
  renderAlarm();
  if (state.detailId) renderDetail();
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("lang-toggle").addEventListener("click", () => {
    setLang(getLang() === "zh-CN" ? "en" : "zh-CN");
    applyLanguage();
  });
  $("center-select").addEventListener("change", (e) => switchCenter(e.target.value));
  for (const select of document.querySelectorAll("#queue-filters select[data-filter]")) {
    select.addEventListener("change", () => setFilter(select.dataset.filter, select.value));
  }
  $("filter-clear").addEventListener("click", () => {
    for (const key of Object.keys(filters)) filters[key] = "";
    selectGrid("");
  });
  initAlarm(() => markDirty("open"));
  window.addEventListener("resize", () => fitToViewport(document.querySelector(".panel-open")));
  onNames(() => {
    namesVersion++;
    markDirty("all");
  });

  const tbody = $("open-list");
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (tr) openDetail(tr.dataset.id);
  });
  tbody.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    const tr = e.target.closest("tr[data-id]");
    if (tr) {
      e.preventDefault();
      openDetail(tr.dataset.id);
    }
  });
  $("feed").addEventListener("click", (e) => {
    const li = e.target.closest("li[data-incident]");
    if (li) openDetail(li.dataset.incident);
  });
  $("detail-close").addEventListener("click", closeDetail);
  wireAlerts(apiFetch, (detail) => showBanner("error", detail), () => state.centerId);
  wireKeys(); // Esc closes the drawer there (an open form first)
  setContext({
    apiFetch,
    reload: async () => {
      await loadDetail();
      return state.detailData;
    },
    applied: (data) => {
      // The action's answer is the incident now; its timeline comes with the next load.
      if (data && data.id === state.detailId) {
        state.detailData = { ...data, timeline: (state.detailData || {}).timeline };
        state.detailVersion = data.version;
        renderDetail();
        loadDetail();
      }
      if (state.tasks) loadTasks();
    },
    openCases: () => Object.values((state.view && state.view.queue) || {})
      .filter((c) => c && c.id).map((c) => ({ id: String(c.id), label: caseLabel(c, gridName) })),
    watchable: (id) => isSwitchable(id),
    unitName: (id) => gridName(id),
    get home() {
      return state.home;
    },
  });

  // Countdown refresh.
  setInterval(() => markDirty("open"), COUNTDOWN_MS);
  // Retry countdown in the indicator.
  setInterval(() => {
    if ($("conn-status").dataset.state === "closed") renderConnText();
  }, 1000);

  window.addEventListener("online", () => {
    if (!state.ws) {
      state.attempt = 0;
      connect(state.view !== null);
    }
  });
  window.addEventListener("offline", () => {
    if (state.ws) state.ws.close();
  });
  window.addEventListener("hashchange", async () => {
    if (!/token=/.test(location.hash)) return;
    state.token = readToken();
    Names.reset(); // another user: another directory
    clearAuthBanner();
    await start();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) markDirty("all");
    if (!document.hidden && state.tasks) loadTasks();
  });
}

// A department or a grid worker watches no center: the console lists the open cases dispatched
// to them (GET /api/incidents?assignee=...), again after each action and on "Refresh".
async function loadTasks() {
  const center = state.home || (state.centers && state.centers.id) || "";
  const query = new URLSearchParams({ center, assignee: state.assignee, status: "open", limit: "200" });
  try {
    const page = await apiFetch("/api/incidents?" + query.toString());
    const queue = {};
    for (const item of page.items || []) queue[String(item.id)] = item;
    state.view = normalizeView({ queue });
    setConn("tasks");
    markDirty("all");
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 401)) showBanner("error", err.message);
  }
}

function startTasks() {
  state.tasks = true;
  state.centerId = null;
  dropSocket();
  document.body.dataset.mode = "tasks";
  $("open-title").textContent = t("tasks.title");
  $("open-title").removeAttribute("data-i18n");
  $("open-title").dataset.i18n = "tasks.title";
  if (!$("tasks-refresh")) {
    const b = el("button", "btn", t("tasks.refresh"));
    b.id = "tasks-refresh";
    b.type = "button";
    b.dataset.i18n = "tasks.refresh";
    b.addEventListener("click", loadTasks);
    $("open-title").after(b);
  }
  renderCenterOptions();
  loadTasks();
}

async function start() {
  const ok = await loadCenters();
  loadNames(apiFetch);
  Names.load(apiFetch).then(() => {
    markDirty("all");
    if (state.detailId) renderDetail();
  }).catch(() => {
    /* names fall back to generic labels */
  });
  const watchable = [...state.nodes.values()].some((n) => n.watchable === true);
  if (ok && !watchable && state.assignee && !new URLSearchParams(location.search).get("center")) {
    startTasks();
    return;
  }
  if (!ok && !state.centerId) state.centerId = defaultCenter();
  if (ok) {
    const current = state.centerId;
    state.centerId = current && (state.nodes.has(current) || !state.nodes.size) ? current : defaultCenter();
  }
  renderCenterOptions();
  markDirty("all");
  if (state.centerId) {
    try {
      localStorage.setItem(CENTER_KEY, state.centerId);
    } catch (_) {
      /* storage disabled */
    }
    state.attempt = 0;
    connect(false);
  } else {
    setConn("closed");
    if (!ok) setTimeout(start, BACKOFF_MAX_MS);
  }
}

// Issue #14: the supervision-order and assessment panels, in modules of their own.
function mountStep4() {
  const names = (u) => (String(u).startsWith("department:") ? tAssignee(u) : gridName(u));
  const deps = { center: () => state.centerId, apiFetch, names };
  mountOrders(deps);
  mountAssessment(deps);
}

function main() {
  state.token = readToken();
  translateDom();
  setConn("connecting");
  wire();
  mountStep4();
  start();
}

// Exposed for debugging from the browser console.
window.linkageConsole = { state, applyChanges };

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
else main();
