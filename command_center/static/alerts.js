// Linkage console — camera/sensor alert panel: unacknowledged counts, storm summaries,
// the alert feed with acknowledge / dismiss / create-incident actions.
//
// Reads view.alerts (id -> item), view.alert_counts and view.storms; the server keeps them
// bounded, and a storm is one summary that updates instead of a flood of rows.

import { getLang, t } from "./i18n.js";

const PRIORITY_RANK = { critical: 0, high: 1, normal: 2 };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function timeOf(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString(getLang(), { hour12: false });
}

export function renderAlerts(view, gridName) {
  const counts = (view && view.alert_counts) || {};
  const badge = document.getElementById("alerts-unack");
  badge.textContent = t("alerts.unack", { n: counts.unacknowledged ?? 0 });
  badge.dataset.n = String(counts.unacknowledged ?? 0);

  const stormBox = document.getElementById("storms");
  const storms = Object.values((view && view.storms) || {})
    .filter((s) => s && s.active)
    .sort((a, b) => (b.count ?? 0) - (a.count ?? 0));
  const sfrag = document.createDocumentFragment();
  for (const s of storms) {
    const row = el("div", "storm");
    row.dataset.key = s.key;
    const where = s.kind === "grid" ? gridName(s.id) : s.id;
    const labels = Object.entries(s.labels || {}).map(([k, v]) => `${k}×${v}`).join(" ");
    row.append(
      el("span", "storm-tag", t("alerts.storm")),
      el("span", "storm-where", `${t(s.kind === "grid" ? "alerts.grid" : "alerts.camera")} ${where}`),
      el("span", "storm-count", t("alerts.stormCount", { n: s.count, w: s.window })),
      el("span", "storm-labels muted", labels),
      el("span", "storm-time muted", `${timeOf(s.start)}–${timeOf(s.end)}`),
    );
    const ackAll = el("button", "btn btn-small storm-ack", t("alerts.action.acknowledgeStorm"));
    ackAll.type = "button";
    ackAll.dataset.storm = s.key;
    row.appendChild(ackAll);
    sfrag.appendChild(row);
  }
  stormBox.replaceChildren(sfrag);
  stormBox.hidden = storms.length === 0;

  const list = document.getElementById("alert-list");
  const items = Object.values((view && view.alerts) || {}).sort(
    (a, b) => (PRIORITY_RANK[a.priority] ?? 3) - (PRIORITY_RANK[b.priority] ?? 3) || (b.n ?? 0) - (a.n ?? 0),
  );
  const frag = document.createDocumentFragment();
  for (const a of items) {
    const li = el("li", "alert-item prio-" + (a.priority || "normal"));
    li.dataset.alert = a.id;
    const head = el("div", "alert-head");
    head.append(
      el("time", "alert-time", timeOf(a.at)),
      el("span", "alert-label", a.label),
      el("span", "alert-score", a.score != null ? Math.round(a.score * 100) + "%" : ""),
      el("span", "alert-where", a.camera || gridName(a.grid)),
    );
    if (a.priority && a.priority !== "normal") head.appendChild(el("span", "alert-prio", t("alerts.prio." + a.priority)));
    if (a.plate) head.appendChild(el("span", "alert-plate", a.plate));
    if (a.ended) head.appendChild(el("span", "alert-ended muted", t("alerts.ended")));
    const actions = el("div", "alert-actions");
    for (const action of ["acknowledge", "dismiss", "create-incident"]) {
      const b = el("button", "btn btn-small", t("alerts.action." + action));
      b.type = "button";
      b.dataset.action = action;
      actions.appendChild(b);
    }
    li.append(head);
    if (a.description || a.rule) li.appendChild(el("div", "alert-desc muted", a.rule ? `${t("alerts.rule")}: ${a.rule}` : a.description));
    li.append(actions);
    frag.appendChild(li);
  }
  if (items.length === 0 && view) frag.appendChild(el("li", "empty", t("alerts.empty")));
  list.replaceChildren(frag);
}

export function wireAlerts(apiFetch, onError, currentCenter) {
  document.getElementById("storms").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-storm]");
    if (!button) return;
    if (!window.confirm(t("alerts.confirmStorm"))) return;
    button.disabled = true;
    try {
      await apiFetch("/api/storms/acknowledge", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ center: currentCenter(), key: button.dataset.storm }),
      });
    } catch (err) {
      onError(err.detail || err.message);
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById("alert-list").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    const li = e.target.closest("li[data-alert]");
    if (!button || !li) return;
    const action = button.dataset.action;
    let body = {};
    if (action === "dismiss") {
      const reason = window.prompt(t("alerts.dismissReason"), t("alerts.falsePositive"));
      if (!reason) return;
      body = { reason };
    } else if (action === "create-incident") {
      if (!window.confirm(t("alerts.confirmIncident"))) return;
    }
    button.disabled = true;
    try {
      await apiFetch(`/api/alerts/${encodeURIComponent(li.dataset.alert)}/${action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      onError(err.detail || err.message);
      button.disabled = false;
    }
  });
}
