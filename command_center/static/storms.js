// Linkage console — alert storms, one row per burst.
//
// The view keeps one storm summary per window key (camera or grid × 10 s or 60 s): a single burst
// is several of them. Here the windows of one place (a grid and its cameras, by the directory)
// whose times overlap are merged into one burst row that expands to its windows. A burst leaves the list when it is acknowledged (every window of it,
// through POST /api/storms/acknowledge; the view then marks each window `acked` with its count,
// for every console) or when its last window ended more than 60 s ago.

import { getLang, t, tAlertLabel, tStormKind } from "./i18n.js";
import { cameraGrid, cameraName } from "./display.js";

export const ENDED_GRACE_MS = 60_000; // windows that ended longer ago leave the active list
const MERGE_GAP_MS = 10_000; // windows this close belong to one burst
const ACK_BATCH = 17; // POST /api/storms/acknowledge: `key` and at most 16 `also`
const expanded = new Set(); // burst ids (the first window key) shown expanded

// Acknowledged with every alert it held (one more alert since brings it back).
function isAcked(s) {
  return s.acked !== undefined && s.acked !== null && Number(s.acked) >= Number(s.count);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

const ms = (iso) => {
  const v = Date.parse(iso || "");
  return Number.isNaN(v) ? 0 : v;
};

function timeOf(iso) {
  const v = ms(iso);
  return v ? new Date(v).toLocaleTimeString(getLang(), { hour12: false }) : "";
}

// Where a window is: its grid (a camera's from the directory), or the camera itself when unknown.
function placeOf(s) {
  if (s.kind === "grid") return "grid:" + s.id;
  const grid = cameraGrid(s.id);
  return grid ? "grid:" + grid : "camera:" + s.id;
}

// The storms still active at `now`, merged into bursts (same place, overlapping times):
// [{id, windows, start, end, count, labels}].
export function bursts(view, now) {
  const live = Object.values((view && view.storms) || {})
    .filter((s) => s && s.active && !isAcked(s) && ms(s.end) + ENDED_GRACE_MS > now)
    .sort((a, b) => ms(a.start) - ms(b.start) || String(a.key).localeCompare(String(b.key)));
  const out = [];
  const open = new Map(); // place -> the burst it is in
  for (const s of live) {
    const place = placeOf(s);
    const last = open.get(place);
    if (last && ms(s.start) <= last.end + MERGE_GAP_MS) {
      last.windows.push(s);
      last.end = Math.max(last.end, ms(s.end));
    } else {
      const burst = { id: s.key, windows: [s], start: ms(s.start), end: ms(s.end) };
      open.set(place, burst);
      out.push(burst);
    }
  }
  for (const b of out) {
    b.count = Math.max(...b.windows.map((w) => Number(w.count) || 0));
    const labels = {};
    for (const w of b.windows) {
      for (const [k, v] of Object.entries(w.labels || {})) labels[k] = Math.max(labels[k] || 0, Number(v) || 0);
    }
    b.labels = labels;
  }
  return out.sort((a, b) => b.end - a.end);
}

function whereOf(w, gridName) {
  return w.kind === "grid" ? gridName(w.id) : cameraName(w.id);
}

export function renderStorms(view, gridName) {
  const box = document.getElementById("storms");
  const list = bursts(view, Date.now());
  const frag = document.createDocumentFragment();
  for (const b of list) {
    const row = el("div", "storm");
    row.dataset.burst = b.id;
    row.dataset.windows = String(b.windows.length);
    const places = [...new Set(b.windows.map((w) => whereOf(w, gridName)))];
    let where = places.slice(0, 2).join("、");
    if (places.length > 2) where += " " + t("storm.more", { n: places.length - 2 });
    const labels = Object.entries(b.labels).sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${tAlertLabel(k)}×${v}`).join(" ");
    row.append(
      el("span", "storm-tag", t("storm.burst")),
      el("span", "storm-where", where),
      el("span", "storm-count", t("storm.summary", { n: b.count })),
      el("span", "storm-labels muted", labels),
      el("span", "storm-time muted", `${timeOf(new Date(b.start).toISOString())}–${timeOf(new Date(b.end).toISOString())}`),
    );
    const open = expanded.has(b.id);
    const toggle = el("button", "btn btn-small storm-toggle", open ? t("storm.collapse") : t("storm.expand"));
    toggle.type = "button";
    toggle.dataset.toggle = b.id;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.title = t("storm.windows", { n: b.windows.length });
    const ackAll = el("button", "btn btn-small storm-ack", t("alerts.action.acknowledgeStorm"));
    ackAll.type = "button";
    ackAll.dataset.burst = b.id;
    ackAll.dataset.keys = JSON.stringify(b.windows.map((w) => w.key));
    row.append(toggle, ackAll);
    if (open) {
      const ul = el("ul", "storm-windows");
      for (const w of b.windows) {
        ul.appendChild(el("li", "storm-window muted", t("storm.window", {
          kind: tStormKind(w.kind), where: whereOf(w, gridName), w: w.window, n: w.count,
        })));
      }
      row.appendChild(ul);
    }
    frag.appendChild(row);
  }
  box.replaceChildren(frag);
  box.hidden = list.length === 0;
}

export function wireStorms(apiFetch, onError, currentCenter, rerender) {
  const box = document.getElementById("storms");
  box.addEventListener("click", async (e) => {
    const toggle = e.target.closest("button[data-toggle]");
    if (toggle) {
      const id = toggle.dataset.toggle;
      if (expanded.has(id)) expanded.delete(id);
      else expanded.add(id);
      rerender();
      return;
    }
    const button = e.target.closest("button[data-burst]");
    if (!button) return;
    const windows = JSON.parse(button.dataset.keys || "[]");
    button.disabled = true;
    try {
      // The windows of one burst in one request (the server takes a key and up to 16 more).
      for (let i = 0; i < windows.length; i += ACK_BATCH) {
        const [key, ...also] = windows.slice(i, i + ACK_BATCH);
        await apiFetch("/api/storms/acknowledge", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ center: currentCenter(), key, also }),
        });
      }
      rerender();
    } catch (err) {
      onError(err.detail || err.message);
      button.disabled = false;
    }
  });
  // Windows age out with the clock, not with deltas.
  setInterval(rerender, 5000);
}
