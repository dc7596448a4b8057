// The registry's panels on the console: the center's population (from the live view's
// `population`, projections/population.py) and the warning for grids no worker serves
// (GET /api/registry/roster). console.js announces every snapshot and delta with a
// "linkage:view" event; nothing here touches its state.
import { addStrings, getLang, t } from "./i18n.js";

addStrings({
  "zh-CN": {
    "population.title": "人口登记",
    "population.total": "实有人口",
    "population.permanent": "户籍人口",
    "population.floating": "流动人口",
    "population.rental": "租住人口",
    "population.arrivals": "本周登记",
    "population.departures": "本周注销",
    "population.unstaffed": "无网格员的网格：",
  },
  en: {
    "population.title": "Population register",
    "population.total": "Residents",
    "population.permanent": "Permanent",
    "population.floating": "Floating",
    "population.rental": "Renting",
    "population.arrivals": "Arrivals this week",
    "population.departures": "Departures this week",
    "population.unstaffed": "Grids with no grid worker: ",
  },
});

const FIELDS = ["total", "permanent", "floating", "rental", "arrivals", "departures"];
let pending = null;
let rosterCenter = null;
let lastUnstaffed = []; // the unstaffed grids of rosterCenter, as last read

function isoWeek(d) {
  const date = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - day);
  const start = new Date(Date.UTC(date.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((date - start) / 86400000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

function renderPopulation(view, center) {
  const box = document.getElementById("population");
  if (!box) return;
  const population = (view && view.population) || {};
  const own = (population.units || {})[center] || {};
  const thisWeek = population.week === isoWeek(new Date());
  box.replaceChildren();
  for (const field of FIELDS) {
    const weekly = field === "arrivals" || field === "departures";
    const value = weekly && !thisWeek ? 0 : own[field] || 0;
    const cell = document.createElement("div");
    cell.className = "count";
    cell.dataset.field = field;
    const label = document.createElement("span");
    label.className = "count-label";
    label.textContent = t(`population.${field}`);
    const number = document.createElement("span");
    number.className = "count-value";
    number.textContent = String(value);
    cell.append(label, number);
    box.append(cell);
  }
}

async function renderUnstaffed(center, token) {
  const box = document.getElementById("unstaffed");
  if (!box) return;
  box.hidden = true;
  lastUnstaffed = [];
  const headers = token ? { Authorization: "Bearer " + token } : {};
  let roster;
  try {
    const answer = await fetch(`/api/registry/roster?center=${encodeURIComponent(center)}`, { headers });
    if (!answer.ok) return;
    roster = await answer.json();
  } catch (err) {
    return;
  }
  if (center !== rosterCenter) return;
  // For the map (or any other panel): the grids under this center that no worker serves.
  document.dispatchEvent(new CustomEvent("linkage:unstaffed", {
    detail: { center, grids: roster.unstaffed_grids || [] },
  }));
  lastUnstaffed = roster.unstaffed_grids || [];
  labelUnstaffed();
}

// Writes the warning from the last roster read, in the current language (the language
// toggle re-labels it from here at once, without reading the roster again).
function labelUnstaffed() {
  const box = document.getElementById("unstaffed");
  if (!box) return;
  const grids = lastUnstaffed;
  if (!grids.length) {
    box.hidden = true;
    return;
  }
  const shown = grids.slice(0, 20).join(getLang() === "en" ? ", " : "、");
  const more = grids.length > 20 ? ` (+${grids.length - 20})` : "";
  box.textContent = t("population.unstaffed") + shown + more;
  box.hidden = false;
}

const ROSTER_EVERY_MS = 30000; // the roster (unstaffed grids) is re-read at most this often
let rosterAt = 0;
let last = null;

function schedule() {
  if (pending || !last) return;
  pending = requestAnimationFrame(() => {
    pending = null;
    renderPopulation(last.view, last.center);
  });
}

document.addEventListener("linkage:view", (ev) => {
  const { view, center, token } = ev.detail || {};
  if (!center) return;
  last = { view, center, token };
  const now = Date.now();
  if (center !== rosterCenter || now - rosterAt > ROSTER_EVERY_MS) {
    rosterCenter = center;
    rosterAt = now;
    renderUnstaffed(center, token);
  }
  schedule();
});

// The language toggle re-labels the panel (and the warning) at once.
document.addEventListener("click", (ev) => {
  if (!(ev.target instanceof Element) || !ev.target.closest("#lang-toggle") || !last) return;
  setTimeout(() => {
    schedule();
    labelUnstaffed();
  }, 0);
});
