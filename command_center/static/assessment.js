// Linkage console — assessment (考核): the ranking of the townships, districts and departments
// this identity may see by their composite score in the latest period, and an SVG trend of the
// selected unit's score (no chart library, no CDN). Issue #14. Reads GET /api/assessment;
// refreshes on view deltas (throttled), a center switch and a language switch.

import { t } from "./i18n.js";

const REFRESH_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";
const W = 360;
const H = 140;
const PAD = 24;
const RANK_ROWS = 15;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

const pct = (v) => (v === null || v === undefined ? "—" : Math.round(v * 100) + "%");
const num = (v) => (v === null || v === undefined ? "—" : String(v));

// rows of one unit by period start, and the ranking by the latest period's score
export function rank(rows) {
  const byUnit = new Map();
  for (const r of rows) {
    if (!byUnit.has(r.unit)) byUnit.set(r.unit, []);
    byUnit.get(r.unit).push(r);
  }
  const latest = [];
  for (const [unit, list] of byUnit) {
    list.sort((a, b) => (a.start < b.start ? -1 : 1));
    latest.push({ unit, row: list[list.length - 1], series: list });
  }
  latest.sort((a, b) => {
    const sa = a.row.score, sb = b.row.score;
    if ((sa === null) !== (sb === null)) return sa === null ? 1 : -1;
    if (sa !== sb) return sb - sa;
    return a.unit < b.unit ? -1 : 1;
  });
  return latest;
}

export function mountAssessment({ center, apiFetch, names }) {
  const section = el("section", "panel panel-assessment step4-wide");
  section.id = "assessment-panel";
  section.setAttribute("aria-labelledby", "assessment-title");
  const head = el("div", "panel-head");
  const title = el("h2", null, t("assessment.title"));
  title.id = "assessment-title";
  title.dataset.i18n = "assessment.title";
  const period = el("select", "assessment-period");
  period.id = "assessment-period";
  for (const p of ["day", "week", "month"]) {
    const o = el("option", null, t("assessment.period." + p));
    o.value = p;
    period.append(o);
  }
  period.value = "week";
  head.append(title, period);
  const body = el("div", "assessment-body");
  const table = el("table", "assessment-table");
  table.id = "assessment-ranking";
  const chartWrap = el("figure", "assessment-chart");
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", id: "assessment-trend" });
  const caption = el("figcaption", "muted");
  chartWrap.append(chart, caption);
  body.append(table, chartWrap);
  const status = el("div", "muted assessment-status");
  status.setAttribute("role", "status");
  section.append(head, body, status);
  document.querySelector("main.layout").append(section);

  let ranked = [];
  let selected = null;
  let timer = null;
  let last = 0;

  function renderTable() {
    const thead = el("thead");
    const hr = el("tr");
    for (const key of ["rank", "unit", "score", "intake", "resolve", "satisfaction", "escalations"]) {
      hr.append(el("th", null, t("assessment.col." + key)));
    }
    thead.append(hr);
    const tbody = el("tbody");
    ranked.slice(0, RANK_ROWS).forEach((entry, i) => {
      const r = entry.row;
      const tr = el("tr", entry.unit === selected ? "selected" : "");
      tr.dataset.unit = entry.unit;
      tr.tabIndex = 0;
      tr.append(el("td", "num", i + 1), el("td", null, names(entry.unit)), el("td", "num score", num(r.score)),
        el("td", "num", r.intake), el("td", "num", pct(r.resolve_on_time)), el("td", "num", num(r.satisfaction)),
        el("td", "num", r.escalations));
      tbody.append(tr);
    });
    table.replaceChildren(thead, tbody);
  }

  function renderChart() {
    chart.replaceChildren();
    const entry = ranked.find((e) => e.unit === selected) || ranked[0];
    if (!entry) {
      caption.textContent = "";
      return;
    }
    caption.textContent = t("assessment.trend", { unit: names(entry.unit) });
    chart.append(svg("line", { x1: PAD, y1: H - PAD, x2: W - 6, y2: H - PAD, class: "axis" }));
    for (const v of [0, 50, 100]) {
      const y = H - PAD - ((H - 2 * PAD) * v) / 100;
      chart.append(svg("line", { x1: PAD, y1: y, x2: W - 6, y2: y, class: "grid" }));
      const label = svg("text", { x: 2, y: y + 4, class: "tick" });
      label.textContent = String(v);
      chart.append(label);
    }
    const series = entry.series;
    const step = series.length > 1 ? (W - PAD - 10) / (series.length - 1) : 0;
    const points = [];
    series.forEach((r, i) => {
      if (r.score === null) return;
      const x = PAD + i * step;
      const y = H - PAD - ((H - 2 * PAD) * r.score) / 100;
      points.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      const dot = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3, class: "dot" });
      const tip = svg("title");
      tip.textContent = `${r.start}: ${r.score}`;
      dot.append(tip);
      chart.append(dot);
    });
    if (points.length > 1) chart.append(svg("polyline", { points: points.join(" "), class: "trend" }));
    const first = svg("text", { x: PAD, y: H - 6, class: "tick" });
    first.textContent = series[0].start;
    const lastLabel = svg("text", { x: W - 70, y: H - 6, class: "tick" });
    lastLabel.textContent = series[series.length - 1].start;
    chart.append(first, lastLabel);
  }

  function render() {
    title.textContent = t("assessment.title");
    for (const o of period.options) o.textContent = t("assessment.period." + o.value);
    renderTable();
    renderChart();
    if (!ranked.length && !status.textContent) status.textContent = t("assessment.empty");
  }

  async function refresh() {
    if (!center()) {
      setTimeout(refresh, 500); // the console has not chosen its center yet
      return;
    }
    last = Date.now();
    try {
      const data = await apiFetch("/api/assessment?period=" + encodeURIComponent(period.value));
      ranked = rank(data.rows || []);
      if (!ranked.some((e) => e.unit === selected)) selected = ranked.length ? ranked[0].unit : null;
      status.textContent = "";
    } catch (err) {
      ranked = [];
      status.textContent = t("assessment.unavailable", { why: err.message || String(err) });
    }
    render();
  }

  function soon() {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, Math.max(0, REFRESH_MS - (Date.now() - last)));
  }

  table.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-unit]");
    if (!tr) return;
    selected = tr.dataset.unit;
    render();
  });
  period.addEventListener("change", refresh);
  document.addEventListener("linkage:delta", soon);
  document.getElementById("center-select").addEventListener("change", () => setTimeout(refresh, 0));
  document.getElementById("lang-toggle").addEventListener("click", () => setTimeout(render, 0));
  refresh();
  return { refresh };
}
