// Linkage console — the in-page forms of an alert's "create incident" and "dismiss" actions.
//
// Create incident asks for category, severity and description, prefilled from the alert in the
// user's language; dismiss asks for a reason. Both POST /api/alerts/<id>/<action>; an error is
// shown in the form, which stays open.

import { CATEGORIES, getLang, t, tAlertLabel, tCategory, tSeverity } from "./i18n.js";
import { cameraName } from "./display.js";

const form = { action: null, alert: null, back: null, busy: false };
const $ = (id) => document.getElementById(id);

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function guessCategory(item) {
  const label = item && item.label;
  if (label === "fire" || label === "smoke") return "fire_hazard";
  if (label === "car" || label === "truck") return "illegal_parking";
  if (label === "person") return "public_security";
  return "other";
}

export function openAlertForm(action, alertId, item, gridName, back) {
  form.action = action;
  form.alert = alertId;
  form.back = back || null;
  const create = action === "create-incident";
  $("alert-form-title").textContent = t(create ? "form.create.title" : "form.dismiss.title");
  $("alert-form-create").hidden = !create;
  $("alert-form-dismiss").hidden = create;
  $("alert-form-submit").textContent = t(create ? "form.create.submit" : "form.dismiss.submit");
  $("alert-form-error").hidden = true;
  const when = item && item.at ? new Date(item.at).toLocaleTimeString(getLang(), { hour12: false }) : "";
  const where = item ? [item.camera ? cameraName(item.camera) : "", gridName(item.grid)].filter(Boolean).join(" · ") : "";
  if (create) {
    const cat = $("alert-form-category");
    cat.replaceChildren(...CATEGORIES.map((c) => option(c, tCategory(c))));
    cat.value = guessCategory(item);
    const sev = $("alert-form-severity");
    sev.replaceChildren(option("routine", tSeverity("routine")), option("major", tSeverity("major")));
    sev.value = item && (item.priority === "critical" || item.label === "fire" || item.label === "smoke") ? "major" : "routine";
    $("alert-form-description").value = t("form.create.default", {
      label: tAlertLabel(item && item.label) || t("alerts.camera"), where, time: when,
    });
  } else {
    $("alert-form-reason").value = t("alerts.falsePositive");
  }
  const dialog = $("alert-form-dialog");
  if (!dialog.open) dialog.showModal();
  (create ? $("alert-form-category") : $("alert-form-reason")).focus();
}

export function wireAlertForm(apiFetch, onDone) {
  const dialog = $("alert-form-dialog");
  $("alert-form-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape") e.stopPropagation();
  });
  dialog.addEventListener("close", () => {
    if (form.back && form.back.isConnected) form.back.focus();
    form.action = form.alert = form.back = null;
  });
  $("alert-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (form.busy || !form.alert) return;
    const create = form.action === "create-incident";
    const body = create
      ? { category: $("alert-form-category").value, severity: $("alert-form-severity").value,
        description: $("alert-form-description").value.trim() }
      : { reason: $("alert-form-reason").value.trim() };
    const missing = create ? !body.description : !body.reason;
    const errorBox = $("alert-form-error");
    if (missing) {
      errorBox.textContent = t("form.err.required");
      errorBox.hidden = false;
      return;
    }
    form.busy = true;
    $("alert-form-submit").disabled = true;
    try {
      await apiFetch(`/api/alerts/${encodeURIComponent(form.alert)}/${form.action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      dialog.close();
      onDone(create ? "form.done.create" : "form.done.dismiss");
    } catch (err) {
      errorBox.textContent = err.detail || err.message;
      errorBox.hidden = false;
    } finally {
      form.busy = false;
      $("alert-form-submit").disabled = false;
    }
  });
}
