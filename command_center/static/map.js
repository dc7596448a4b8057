// Linkage console — the map of the center's grids (SVG, no tile server).
//
// Outlines come from GET /api/centers/{id}/map (the jurisdiction polygons, cached by ETag);
// each grid is shaded by its open cases (view.grids), major incidents of the queue and camera
// alerts (listed alerts and grid storms of the view) are markers at their grid's centre.
// Clicking a grid filters the queue; hovering shows the grid's name, open count and workers.

import { getLang, t } from "./i18n.js";
import { gridWorkers } from "./display.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 1000;

const map = {
  center: null,
  data: null, // the answer of /api/centers/{id}/map
  error: null,
  shapes: new Map(), // grid id -> {path, cx, cy, name, name_en}
  selected: "",
  onSelect: () => {},
  height: 600,
  unstaffed: { center: null, grids: new Set() }, // from the registry's linkage:unstaffed event
};

// The registry (static/registry.js) tells which grids under the center no grid worker serves:
// the map outlines them (class "unstaffed", dashed amber).
document.addEventListener("linkage:unstaffed", (e) => {
  const detail = (e && e.detail) || {};
  map.unstaffed = { center: String(detail.center || ""), grids: new Set((detail.grids || []).map(String)) };
  markUnstaffed();
});

function markUnstaffed() {
  const mine = map.unstaffed.center === String(map.center);
  for (const [id, s] of map.shapes) s.path.classList.toggle("unstaffed", mine && map.unstaffed.grids.has(id));
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

export function gridLabel(id) {
  const s = map.shapes.get(String(id));
  if (!s) return "";
  return getLang() === "en" ? s.name_en || s.name : s.name || s.name_en;
}

export function mapGrids() {
  return [...map.shapes.keys()];
}

export async function loadMap(apiFetch, centerId, onSelect) {
  map.onSelect = onSelect || map.onSelect;
  if (map.center === centerId && map.data) return;
  map.center = centerId;
  map.data = null;
  map.error = null;
  map.shapes.clear();
  if (map.selected) {
    map.selected = "";
    map.onSelect(""); // another center: its grids are others, the grid filter goes
  }
  drawFrame();
  try {
    const data = await apiFetch(`/api/centers/${encodeURIComponent(centerId)}/map`);
    if (map.center !== centerId) return;
    map.data = data;
  } catch (err) {
    if (map.center !== centerId) return;
    map.error = err.message || String(err);
  }
  drawFrame();
}

// The outlines: drawn once per center (and language, for the titles).
function drawFrame() {
  const box = document.getElementById("map");
  if (!box) return;
  const status = document.getElementById("map-status");
  map.shapes.clear();
  if (!map.data) {
    box.replaceChildren();
    if (status) status.textContent = map.error ? t("map.error") + ": " + map.error : t("map.loading");
    return;
  }
  if (status) status.textContent = "";
  const bbox = map.data.bbox;
  if (!bbox) {
    box.replaceChildren();
    return;
  }
  const [x0, y0, x1, y1] = bbox;
  const kx = Math.cos((((y0 + y1) / 2) * Math.PI) / 180); // equirectangular, true at mid latitude
  const w = Math.max((x1 - x0) * kx, 1e-9);
  const h = Math.max(y1 - y0, 1e-9);
  const scale = WIDTH / w;
  map.height = Math.max(1, Math.round(h * scale));
  const px = (lon) => ((lon - x0) * kx * scale).toFixed(1);
  const py = (lat) => ((y1 - lat) * scale).toFixed(1);
  const root = svg("svg", {
    viewBox: `-4 -4 ${WIDTH + 8} ${map.height + 8}`, role: "img", class: "map-svg",
    "aria-label": t("map.title"), preserveAspectRatio: "xMidYMid meet",
  });
  const gridsLayer = svg("g", { class: "map-grids" });
  for (const grid of map.data.grids || []) {
    let d = "";
    let sx = 0;
    let sy = 0;
    let n = 0;
    for (const ring of grid.rings || []) {
      d += "M" + ring.map(([lon, lat]) => `${px(lon)},${py(lat)}`).join("L") + "Z";
      for (const [lon, lat] of ring) {
        sx += Number(px(lon));
        sy += Number(py(lat));
        n++;
      }
    }
    if (!d) continue;
    // Not a tab stop each (a city has hundreds of grids): the keyboard filters by grid with the
    // queue's grid selector, which this map mirrors.
    const path = svg("path", { d, class: "map-grid", "data-grid": grid.id });
    gridsLayer.appendChild(path);
    map.shapes.set(String(grid.id), { path, cx: sx / n, cy: sy / n, name: grid.name, name_en: grid.name_en });
  }
  root.append(gridsLayer, svg("g", { class: "map-markers" }));
  box.replaceChildren(root);
  markUnstaffed();
  wireHover(root);
}

function wireHover(root) {
  const tip = document.getElementById("map-tip");
  const show = (e) => {
    const path = e.target.closest ? e.target.closest("path[data-grid]") : null;
    if (!path || !tip) return;
    const id = path.dataset.grid;
    const count = Number(path.dataset.open || 0);
    const workers = gridWorkers(id);
    tip.replaceChildren(
      Object.assign(document.createElement("strong"), { textContent: gridLabel(id) }),
      Object.assign(document.createElement("div"), { textContent: t("map.open", { n: count }) }),
      Object.assign(document.createElement("div"), {
        textContent: workers.length ? t("map.workers", { names: workers.join("、") }) : t("map.noWorkers"),
      }),
    );
    tip.hidden = false;
    tip.dataset.grid = id;
    const host = document.getElementById("map").getBoundingClientRect();
    const r = path.getBoundingClientRect();
    // Beside the grid, kept inside the map: below it, or above it near the bottom edge.
    const left = Math.min(r.left - host.left + r.width / 2, host.width - tip.offsetWidth - 4);
    let top = r.bottom - host.top + 4;
    if (top + tip.offsetHeight > host.height) top = r.top - host.top - tip.offsetHeight - 4;
    tip.style.left = Math.max(0, Math.round(left)) + "px";
    tip.style.top = Math.max(0, Math.round(top)) + "px";
  };
  root.addEventListener("mouseover", show);
  root.addEventListener("focusin", show);
  root.addEventListener("mouseleave", () => {
    if (tip) tip.hidden = true;
  });
  const pick = (e) => {
    const path = e.target.closest ? e.target.closest("path[data-grid]") : null;
    if (!path) return;
    select(map.selected === path.dataset.grid ? "" : path.dataset.grid);
  };
  root.addEventListener("click", pick);
  root.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      pick(e);
    }
  });
}

export function select(gridId) {
  map.selected = gridId || "";
  for (const [id, s] of map.shapes) s.path.classList.toggle("selected", id === map.selected);
  map.onSelect(map.selected);
}

export function selectedGrid() {
  return map.selected;
}

// Shading and markers from the live view; cheap enough for every render of the queue.
export function renderMap(view) {
  if (!map.data || !map.shapes.size) return;
  const grids = (view && view.grids) || {};
  let max = 1;
  for (const id of map.shapes.keys()) max = Math.max(max, Number(grids[id]) || 0);
  for (const [id, s] of map.shapes) {
    const n = Number(grids[id]) || 0;
    const level = n === 0 ? 0 : Math.min(5, 1 + Math.floor((4 * n) / max));
    if (s.path.dataset.level !== String(level)) s.path.dataset.level = String(level);
    if (s.path.dataset.open !== String(n)) s.path.dataset.open = String(n);
    s.path.classList.toggle("selected", id === map.selected);
  }
  const markers = document.querySelector("#map .map-markers");
  if (!markers) return;
  const frag = document.createDocumentFragment();
  const r = Math.round(Math.max(WIDTH, map.height) / 45); // about 2% of the drawn map
  const majors = new Map();
  for (const inc of Object.values((view && view.queue) || {})) {
    if (inc && inc.severity === "major" && map.shapes.has(String(inc.grid))) {
      majors.set(String(inc.grid), (majors.get(String(inc.grid)) || 0) + 1);
    }
  }
  for (const [grid, n] of majors) {
    const s = map.shapes.get(grid);
    const c = svg("circle", { cx: s.cx, cy: s.cy, r, class: "marker marker-major", "data-grid": grid });
    c.appendChild(svg("title", {})).textContent = `${t("map.legend.major")} × ${n}`;
    frag.appendChild(c);
  }
  const alerted = new Map();
  for (const a of Object.values((view && view.alerts) || {})) {
    if (a && map.shapes.has(String(a.grid))) alerted.set(String(a.grid), (alerted.get(String(a.grid)) || 0) + 1);
  }
  for (const s of Object.values((view && view.storms) || {})) {
    if (s && s.active && s.kind === "grid" && map.shapes.has(String(s.id))) {
      alerted.set(String(s.id), (alerted.get(String(s.id)) || 0) + (Number(s.count) || 1));
    }
  }
  for (const [grid, n] of alerted) {
    const s = map.shapes.get(grid);
    const x = s.cx + r * 1.4;
    const y = s.cy - r * 1.4;
    const d = `M${x},${y - r}L${x + r},${y}L${x},${y + r}L${x - r},${y}Z`;
    const p = svg("path", { d, class: "marker marker-alert", "data-grid": grid });
    p.appendChild(svg("title", {})).textContent = `${t("map.legend.alert")} × ${n}`;
    frag.appendChild(p);
  }
  markers.replaceChildren(frag);
}

export function relabelMap() {
  const root = document.querySelector("#map svg");
  if (root) root.setAttribute("aria-label", t("map.title"));
}
