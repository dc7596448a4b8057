// Linkage console — camera/sensor alert panel: unacknowledged and linked counts, storm
// summaries, the alert feed with acknowledge / dismiss / link / create-incident actions.
//
// Reads view.alerts (id -> item), view.alert_counts and view.storms; the server keeps them
// bounded, and a storm is one summary that updates instead of a flood of rows. The link
// dialog lists the incidents of the view's urgency queue (or takes a pasted id) and POSTs
// /api/alerts/<id>/link {"incident": ...}.

import { getLang, t, tAlertLabel, tCategory, tRule } from "./i18n.js";
import { cameraName } from "./display.js";
import { renderStorms, wireStorms } from "./storms.js";
import { openAlertForm, wireAlertForm } from "./alert_form.js";

const PRIORITY_RANK = { critical: 0, high: 1, normal: 2 };
const LINK_MAX_OPTIONS = 500; // most recently reported first; any other incident by pasted id
const SUMMARY_CHARS = 60;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The last view and grid-name function renderAlerts was given (the link dialog reads them).
let lastView = null;
let lastGridName = (id) => (id === null || id === undefined ? "" : String(id));

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
  lastView = view;
  lastGridName = gridName;
  const counts = (view && view.alert_counts) || {};
  const badge = document.getElementById("alerts-unack");
  badge.textContent = t("alerts.unack", { n: counts.unacknowledged ?? 0 });
  badge.dataset.n = String(counts.unacknowledged ?? 0);
  const linked = document.getElementById("alerts-linked");
  linked.textContent = t("alerts.linked", { n: counts.linked ?? 0 });
  linked.dataset.n = String(counts.linked ?? 0);

  renderStorms(view, gridName);

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
      el("span", "alert-label", tAlertLabel(a.label)),
      el("span", "alert-score", a.score != null ? Math.round(a.score * 100) + "%" : ""),
      el("span", "alert-where", a.camera ? cameraName(a.camera) : gridName(a.grid)),
    );
    if (a.priority && a.priority !== "normal") head.appendChild(el("span", "alert-prio", t("alerts.prio." + a.priority)));
    if (a.plate) head.appendChild(el("span", "alert-plate", a.plate));
    if (a.ended) head.appendChild(el("span", "alert-ended muted", t("alerts.ended")));
    const actions = el("div", "alert-actions");
    for (const action of ["acknowledge", "dismiss", "link", "create-incident"]) {
      const b = el("button", "btn btn-small", t("alerts.action." + action));
      b.type = "button";
      b.dataset.action = action;
      actions.appendChild(b);
    }
    li.append(head);
    if (a.description || a.rule) li.appendChild(el("div", "alert-desc muted", a.rule ? `${t("alerts.rule")}: ${tRule(a.rule)}` : a.description));
    li.append(actions);
    frag.appendChild(li);
  }
  if (items.length === 0 && view) frag.appendChild(el("li", "empty", t("alerts.empty")));
  list.replaceChildren(frag);
  renderStatus();
  renderLinkDialog(view, gridName);
}

function alertSummary(a, gridName) {
  return [tAlertLabel(a.label), a.plate, a.camera ? cameraName(a.camera) : "", gridName(a.grid), timeOf(a.at)]
    .filter(Boolean).join(" · ");
}

// ---------------------------------------------------------------- link to an existing incident

const link = {
  alert: null, // the alert id being linked while the dialog is open
  error: null, // {key, params, detail}: shown in the dialog, re-translated on a language switch
  optionsSig: null,
  busy: false,
};
let status = null; // {key, params}: the last action's outcome, under the list

const shortId = (id) => String(id ?? "").slice(0, 8);

function openIncidents(view) {
  const all = Object.values((view && view.queue) || {}).filter((x) => x && typeof x === "object" && x.id);
  all.sort((a, b) => String(b.reported_at ?? "").localeCompare(String(a.reported_at ?? "")) ||
    (String(a.id) < String(b.id) ? -1 : 1));
  return { shown: all.slice(0, LINK_MAX_OPTIONS), total: all.length };
}

function incidentLabel(inc, gridName) {
  let summary = String(inc.summary || "").replace(/\s+/g, " ").trim();
  if (summary.length > SUMMARY_CHARS) summary = summary.slice(0, SUMMARY_CHARS - 1) + "…";
  return [shortId(inc.id), tCategory(inc.category), gridName(inc.grid), summary].filter(Boolean).join(" · ");
}

// Keeps the dialog in step with the view and the language; cheap when the dialog is closed.
export function renderLinkDialog(view, gridName) {
  if (view !== undefined) lastView = view;
  if (gridName) lastGridName = gridName;
  const dialog = document.getElementById("link-dialog");
  if (!dialog || !dialog.open || !link.alert) return;
  const gn = lastGridName;
  const item = lastView && lastView.alerts ? lastView.alerts[link.alert] : null;
  document.getElementById("link-alert").textContent = item
    ? t("alerts.link.alert", { what: alertSummary(item, gn) })
    : t("alerts.link.alertGone");

  const { shown, total } = openIncidents(lastView);
  const sig = getLang() + "\u0000" + total + "\u0000" + shown.map((inc) => inc.id + "\u0001" + incidentLabel(inc, gn)).join("\u0000");
  if (sig !== link.optionsSig) {
    link.optionsSig = sig;
    const select = document.getElementById("link-select");
    const keep = select.value;
    const frag = document.createDocumentFragment();
    const none = document.createElement("option");
    none.value = "";
    none.textContent = t(total ? "alerts.link.placeholder" : "alerts.link.noOpen");
    frag.appendChild(none);
    for (const inc of shown) {
      const opt = document.createElement("option");
      opt.value = String(inc.id);
      opt.textContent = incidentLabel(inc, gn);
      opt.title = String(inc.id);
      frag.appendChild(opt);
    }
    select.replaceChildren(frag);
    select.value = shown.some((inc) => String(inc.id) === keep) ? keep : "";
    const more = document.getElementById("link-more");
    more.hidden = total <= shown.length;
    more.textContent = more.hidden ? "" : t("alerts.link.more", { n: shown.length });
  }

  const box = document.getElementById("link-error");
  box.hidden = !link.error;
  if (link.error) {
    const main = t(link.error.key, link.error.params);
    const parts = [el("span", "link-error-text", main)];
    if (link.error.detail && link.error.detail !== main) {
      parts.push(el("span", "link-error-detail", link.error.detail));
    }
    box.replaceChildren(...parts);
    box.dataset.key = link.error.key;
  } else {
    box.replaceChildren();
    delete box.dataset.key;
  }
}

function renderStatus() {
  const box = document.getElementById("alerts-status");
  if (box) box.textContent = status ? t(status.key, status.params) : "";
}

// The incident id the officer chose: a pasted id wins over the list. A pasted short form (the
// first 8 or more characters, as the list shows) is resolved when exactly one open incident has it.
function chosenIncident() {
  const typed = document.getElementById("link-id").value.trim();
  if (!typed) return document.getElementById("link-select").value;
  if (UUID_RE.test(typed) || typed.length < 8) return typed;
  const prefix = typed.toLowerCase();
  const matches = Object.keys((lastView && lastView.queue) || {}).filter((id) => id.toLowerCase().startsWith(prefix));
  return matches.length === 1 ? matches[0] : typed;
}

// An HTTP error as a message in the officer's language; the server's own detail goes below it.
function linkError(err, incident) {
  const code = err && err.status;
  const detail = String((err && (err.detail || err.message)) || "");
  let key = "alerts.link.err.failed";
  if (code === 401) return { key: "auth.required", params: {}, detail: "" };
  if (code === 404) {
    key = /not an alert|^alert\b/i.test(detail) ? "alerts.link.err.alertNotFound" : "alerts.link.err.notFound";
  } else if (code === 409) {
    key = "alerts.link.err.conflict";
  } else if (code === 403) {
    key = "alerts.link.err.forbidden";
  } else if (code === 422) {
    key = "alerts.link.err.invalid";
  }
  return { key, params: { id: incident }, detail };
}

function openLinkDialog(alertId) {
  const dialog = document.getElementById("link-dialog");
  link.alert = alertId;
  link.error = null;
  link.optionsSig = null;
  status = null;
  renderStatus();
  document.getElementById("link-select").value = "";
  document.getElementById("link-id").value = "";
  if (!dialog.open) dialog.showModal();
  renderLinkDialog();
  document.getElementById("link-select").focus();
}

function wireLinkDialog(apiFetch) {
  const dialog = document.getElementById("link-dialog");
  const form = document.getElementById("link-form");
  const select = document.getElementById("link-select");
  const input = document.getElementById("link-id");
  const submit = document.getElementById("link-submit");

  // One source at a time: choosing from the list clears the pasted id and the other way round.
  select.addEventListener("change", () => {
    if (select.value) input.value = "";
  });
  input.addEventListener("input", () => {
    if (input.value.trim()) select.value = "";
  });
  document.getElementById("link-cancel").addEventListener("click", () => dialog.close());
  // Escape closes the dialog (the browser's own "cancel"), not the incident detail panel too.
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape") e.stopPropagation();
  });
  dialog.addEventListener("close", () => {
    const id = link.alert;
    link.alert = null;
    link.error = null;
    link.optionsSig = null;
    const back = (id && document.querySelector(`#alert-list li[data-alert="${CSS.escape(id)}"] button[data-action="link"]`)) ||
      document.querySelector("#alert-list button[data-action]") ||
      document.getElementById("alerts-title");
    if (back) back.focus();
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (link.busy || !link.alert) return;
    const incident = chosenIncident();
    if (!incident) {
      link.error = { key: "alerts.link.err.none", params: {}, detail: "" };
      renderLinkDialog();
      select.focus();
      return;
    }
    const alertId = link.alert;
    link.busy = true;
    submit.disabled = true;
    try {
      const result = await apiFetch(`/api/alerts/${encodeURIComponent(alertId)}/link`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ incident }),
      });
      status = { key: "alerts.link.done", params: { id: shortId((result && result.incident) || incident) } };
      if (link.alert === alertId) dialog.close();
      renderStatus();
    } catch (err) {
      if (link.alert === alertId) {
        link.error = linkError(err, incident);
        renderLinkDialog();
        (input.value.trim() ? input : select).focus();
      }
    } finally {
      link.busy = false;
      submit.disabled = false;
    }
  });
}

export function wireAlerts(apiFetch, onError, currentCenter) {
  wireLinkDialog(apiFetch);
  wireStorms(apiFetch, onError, currentCenter, () => renderStorms(lastView, lastGridName));
  wireAlertForm(apiFetch, (key) => {
    status = { key, params: {} };
    renderStatus();
  });
  document.getElementById("alert-list").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    const li = e.target.closest("li[data-alert]");
    if (!button || !li) return;
    const action = button.dataset.action;
    if (action === "link") {
      openLinkDialog(li.dataset.alert);
      return;
    }
    if (action === "dismiss" || action === "create-incident") {
      const item = lastView && lastView.alerts ? lastView.alerts[li.dataset.alert] : null;
      openAlertForm(action, li.dataset.alert, item, lastGridName, button);
      return;
    }
    const body = {};
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
