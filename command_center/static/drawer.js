// Linkage console — act from the incident drawer.
//
// The drawer shows one button per action in the incident's `allowed_actions` (the server derives
// them for this user from the one action table: docs/PROTOCOL.md). Each action that needs more
// than a click opens a small form in the page (never prompt()/confirm()). Every request sends the
// `expected_version` the user saw; a 409 says what changed, in the user's language, and the
// drawer reloads. The console (console.js) calls renderActions() whenever the drawer's data change.

import { addStrings, getLang, t, tCategory, tStatus } from "./i18n.js";
import Names from "./names.js";

addStrings({
  "zh-CN": {
    "act.title": "操作",
    "act.none": "当前状态下您没有可执行的操作",
    "act.accept": "受理", "act.reject": "不予受理", "act.mark-duplicate": "标记重复",
    "act.dispatch": "派遣", "act.return": "退回", "act.transfer": "转办",
    "act.acknowledge": "签收", "act.progress": "报告进展", "act.resolve": "办结",
    "act.supervise": "督办", "act.escalate": "升级", "act.return-visit": "回访",
    "act.reopen": "重办", "act.close": "结案", "act.visit-attempt": "回访未接通",
    "act.at": "拨打时间", "act.dueReason": "延长时限的原因",
    "act.dueReason.hint": "所选时限晚于时限规定（{due}），需说明原因（将被记录）",
    "act.submit": "提交", "act.cancel": "取消", "act.sending": "提交中…",
    "act.reason": "原因", "act.note": "备注", "act.outcome": "处置结果", "act.comment": "群众意见",
    "act.original": "重复于（原事件）", "act.original.paste": "或粘贴原事件编号",
    "act.original.choose": "— 选择原事件 —",
    "act.assignee": "承办方", "act.assignee.choose": "— 选择承办方 —",
    "act.assignee.matching": "负责此类事件", "act.assignee.others": "其他可派遣单位",
    "act.assignee.workers": "本网格网格员",
    "act.due": "处置时限", "act.due.sla": "按时限规定预填", "act.due.default": "按事件等级预填（重大 2 小时，一般 24 小时）",
    "act.byCenter": "督办中心", "act.rating": "满意度（1–5）",
    "act.rating.1": "1 很不满意", "act.rating.2": "2 不满意", "act.rating.3": "3 一般",
    "act.rating.4": "4 满意", "act.rating.5": "5 很满意",
    "act.required": "请填写：{field}",
    "act.done": "已{action}。",
    "act.conflict": "提交前事件已被他人更改：状态由“{was}”变为“{now}”（版本 {v0} → {v1}）。已刷新，请重新确认。",
    "act.conflictSame": "提交前事件已被他人更改（版本 {v0} → {v1}）。已刷新，请重新确认。",
    "act.refused": "操作未被接受（{status}）：{detail}",
    "act.failed": "操作失败：{detail}",
    "field.escalations": "升级次数",
    "field.escalated_to": "已升级至",
    "field.supervised_by": "督办中心",
    "field.by_center": "督办中心",
    "field.of": "原事件",
    "field.policy_resolve_due": "时限规定的办结时间", "field.due_reason": "延长时限原因",
    "field.visit_attempts": "回访未接通次数", "field.step": "当前环节", "field.step_due": "环节时限",
  },
  en: {
    "act.title": "Actions",
    "act.none": "No action is open to you in this status",
    "act.accept": "Accept", "act.reject": "Reject", "act.mark-duplicate": "Mark duplicate",
    "act.dispatch": "Dispatch", "act.return": "Return", "act.transfer": "Transfer",
    "act.acknowledge": "Acknowledge", "act.progress": "Report progress", "act.resolve": "Resolve",
    "act.supervise": "Supervise", "act.escalate": "Escalate", "act.return-visit": "Return visit",
    "act.reopen": "Reopen", "act.close": "Close case", "act.visit-attempt": "Visit not reached",
    "act.at": "Called at", "act.dueReason": "Reason for the later due",
    "act.dueReason.hint": "The due is later than the SLA policy's ({due}): give a reason (it is recorded)",
    "act.submit": "Submit", "act.cancel": "Cancel", "act.sending": "Sending…",
    "act.reason": "Reason", "act.note": "Note", "act.outcome": "Outcome", "act.comment": "Resident's comment",
    "act.original": "Duplicate of (the original)", "act.original.paste": "or paste the original's id",
    "act.original.choose": "— choose the original —",
    "act.assignee": "Assignee", "act.assignee.choose": "— choose an assignee —",
    "act.assignee.matching": "Handles this category", "act.assignee.others": "Others serving this center",
    "act.assignee.workers": "Grid workers of this grid",
    "act.due": "Due", "act.due.sla": "prefilled from the SLA", "act.due.default": "prefilled by severity (major 2 h, routine 24 h)",
    "act.byCenter": "By center", "act.rating": "Satisfaction (1–5)",
    "act.rating.1": "1 very dissatisfied", "act.rating.2": "2 dissatisfied", "act.rating.3": "3 neutral",
    "act.rating.4": "4 satisfied", "act.rating.5": "5 very satisfied",
    "act.required": "Please fill in: {field}",
    "act.done": "{action}: done.",
    "act.conflict": "Someone changed this case before your action: its status went from “{was}” to “{now}” (version {v0} → {v1}). The drawer is refreshed; check and try again.",
    "act.conflictSame": "Someone changed this case before your action (version {v0} → {v1}). The drawer is refreshed; check and try again.",
    "act.refused": "The action was refused ({status}): {detail}",
    "act.failed": "The action failed: {detail}",
    "field.escalations": "Escalations",
    "field.escalated_to": "Escalated to",
    "field.supervised_by": "Supervised by",
    "field.by_center": "By center",
    "field.of": "Original",
    "field.policy_resolve_due": "SLA resolve time", "field.due_reason": "Reason for the later due",
    "field.visit_attempts": "Unanswered visit calls", "field.step": "Step", "field.step_due": "Step due",
  },
});

// action -> the fields of its form ([] : a button that acts at once)
const FORMS = {
  accept: [],
  acknowledge: [],
  reject: ["reason"],
  "mark-duplicate": ["original"],
  dispatch: ["assignee", "due", "dueReason?", "note?"],
  return: ["reason"],
  transfer: ["assignee", "reason"],
  progress: ["note"],
  resolve: ["outcome"],
  supervise: ["note", "byCenter"],
  escalate: ["reason"],
  "return-visit": ["rating", "comment?"],
  "visit-attempt": ["at", "note?"],
  reopen: ["reason?"],
  close: ["note?"],
};
const DEFAULT_DUE_H = { major: 2, routine: 24 };

const drawer = {
  ctx: null, // {apiFetch, reload(), applied(data), openCases(), watchable(id), home, unitName(id)}
  data: null,
  sig: null,
  form: null, // the action whose form is open
  message: null, // {id, kind, text}
  busy: false,
  pending: null, // an action asked for (keyboard) before the actions were rendered
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

export function setContext(ctx) {
  drawer.ctx = ctx;
}

// The drawer closed or shows another incident.
export function resetActions() {
  drawer.data = null;
  drawer.sig = null;
  drawer.form = null;
  drawer.busy = false;
  drawer.pending = null;
  const box = $("detail-actions");
  if (box) box.replaceChildren();
}

export function formOpen() {
  return drawer.form !== null;
}

export function cancelForm() {
  drawer.form = null;
  drawer.sig = null;
  renderActions(drawer.data, true);
}

// Keyboard: press the button of `action` if it is allowed (opening its form or acting at once).
export function request(action) {
  const button = document.querySelector(`#detail-actions button[data-action="${action}"]`);
  if (button) {
    button.click();
    return true;
  }
  if (!drawer.data) drawer.pending = action;
  return false;
}

function setMessage(kind, text) {
  drawer.message = drawer.data ? { id: drawer.data.id, kind, text } : null;
}

// Render the action bar (and the open form) for `data`, the incident as GET /api/incidents/{id}
// returned it. Re-renders only when the incident's version, its actions or the language changed.
export function renderActions(data, force = false) {
  const box = $("detail-actions");
  if (!box) return;
  if (!data || !data.id || !Array.isArray(data.allowed_actions)) {
    if (!data) box.replaceChildren();
    return;
  }
  const sig = [getLang(), data.id, data.version, data.allowed_actions.join(","), drawer.form,
    drawer.busy, drawer.message && drawer.message.text].join("|");
  if (!force && sig === drawer.sig) return;
  if (drawer.data && drawer.data.id === data.id && drawer.data.version !== data.version &&
      drawer.form && !drawer.busy) {
    drawer.form = null; // the case changed under an open form: its choices may be stale
  }
  if (drawer.message && drawer.message.id !== data.id) drawer.message = null;
  drawer.data = data;
  drawer.sig = sig;
  const frag = document.createDocumentFragment();
  frag.appendChild(el("h3", null, t("act.title")));
  if (drawer.message) {
    const msg = el("div", "act-msg act-" + drawer.message.kind, drawer.message.text);
    msg.setAttribute("role", drawer.message.kind === "ok" ? "status" : "alert");
    msg.id = "act-message";
    frag.appendChild(msg);
  }
  const bar = el("div", "act-bar");
  for (const action of data.allowed_actions) {
    if (!(action in FORMS)) continue;
    const b = el("button", "btn act-btn", t("act." + action));
    b.type = "button";
    b.dataset.action = action;
    b.disabled = drawer.busy;
    if (drawer.form === action) b.setAttribute("aria-expanded", "true");
    b.addEventListener("click", () => choose(action));
    bar.appendChild(b);
  }
  if (!bar.childElementCount) bar.appendChild(el("span", "muted", t("act.none")));
  frag.appendChild(bar);
  if (drawer.form && data.allowed_actions.includes(drawer.form)) frag.appendChild(buildForm(drawer.form, data));
  const focused = document.activeElement && box.contains(document.activeElement)
    ? document.activeElement.dataset.action || document.activeElement.name : null;
  box.replaceChildren(frag);
  if (focused) {
    const again = box.querySelector(`[data-action="${focused}"], [name="${focused}"]`);
    if (again) again.focus();
  }
  if (drawer.pending && data.allowed_actions.includes(drawer.pending)) {
    const action = drawer.pending;
    drawer.pending = null;
    request(action);
  } else {
    drawer.pending = null;
  }
}

function choose(action) {
  if (drawer.busy) return;
  if (FORMS[action].length === 0) {
    submit(action, {});
    return;
  }
  drawer.form = drawer.form === action ? null : action;
  drawer.message = null;
  renderActions(drawer.data, true);
  const first = document.querySelector("#act-form [name]");
  if (first) first.focus();
}

function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function field(form, id, labelText, control, hint) {
  const wrap = el("div", "act-field");
  control.id = "act-" + id;
  const label = el("label", null, labelText);
  label.htmlFor = control.id;
  wrap.append(label, control);
  if (hint) wrap.appendChild(el("small", "muted", hint));
  form.appendChild(wrap);
  return control;
}

function textControl(name, required, multiline = false) {
  const c = document.createElement(multiline ? "textarea" : "input");
  if (!multiline) c.type = "text";
  else c.rows = 2;
  c.name = name;
  c.maxLength = 2000;
  c.required = required;
  c.autocomplete = "off";
  return c;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function assigneeSelect(data) {
  const sel = document.createElement("select");
  sel.name = "assignee";
  sel.required = true;
  sel.appendChild(option("", t("act.assignee.choose")));
  const { matching, others, workers } = Names.assignees(data.centers || [], data.category, data.grid);
  const current = data.assignee && typeof data.assignee === "object"
    ? `${data.assignee.kind}:${data.assignee.id}` : String(data.assignee || "");
  const group = (label, items, value, text) => {
    if (!items.length) return;
    const g = document.createElement("optgroup");
    g.label = label;
    for (const item of items) {
      const v = value(item);
      if (v === current) continue; // a transfer needs another assignee
      g.appendChild(option(v, text(item)));
    }
    if (g.childElementCount) sel.appendChild(g);
  };
  const partyText = (p) => `${Names.pick(p.name)} · ${Names.kind(p.kind)}`;
  group(t("act.assignee.matching"), matching, (p) => `${p.assignee_kind}:${p.id}`, partyText);
  group(t("act.assignee.others"), others, (p) => `${p.assignee_kind}:${p.id}`, partyText);
  group(t("act.assignee.workers"), workers, (w) => `grid_worker:${w.id}`, (w) => Names.pick(w.name));
  return sel;
}

function buildForm(action, data) {
  const form = el("form", "act-form");
  form.id = "act-form";
  form.dataset.action = action;
  form.noValidate = true;
  form.appendChild(el("h4", null, t("act." + action)));
  for (const spec of FORMS[action]) {
    const name = spec.replace("?", "");
    const required = !spec.endsWith("?");
    if (name === "reason" || name === "note" || name === "outcome" || name === "comment") {
      field(form, name, t("act." + name), textControl(name, required, name !== "reason"));
    } else if (name === "original") {
      const sel = document.createElement("select");
      sel.name = "original";
      sel.appendChild(option("", t("act.original.choose")));
      for (const c of (drawer.ctx && drawer.ctx.openCases ? drawer.ctx.openCases() : [])) {
        if (c.id === data.id) continue;
        sel.appendChild(option(c.id, c.label));
      }
      field(form, "original", t("act.original"), sel);
      const paste = textControl("original_id", false);
      paste.spellcheck = false;
      field(form, "original-id", t("act.original.paste"), paste);
    } else if (name === "assignee") {
      field(form, "assignee", t("act.assignee"), assigneeSelect(data));
    } else if (name === "due") {
      const input = document.createElement("input");
      input.type = "datetime-local";
      input.name = "due";
      input.required = true;
      // The SLA policy's resolve time for a dispatch now (the server's policy_resolve_due).
      const sla = Date.parse(data.policy_resolve_due || data.due || "");
      const hours = DEFAULT_DUE_H[data.severity] || DEFAULT_DUE_H.routine;
      input.value = localInput(Number.isNaN(sla) ? Date.now() + hours * 3600e3 : sla);
      field(form, "due", t("act.due"), input, Number.isNaN(sla) ? t("act.due.default") : t("act.due.sla"));
      input.addEventListener("input", () => showDueReason(form, data));
    } else if (name === "dueReason") {
      const limit = Date.parse(data.policy_resolve_due || "");
      if (Number.isNaN(limit)) continue; // no policy: any due is the officer's
      const reason = textControl("due_reason", false);
      const box = field(form, "due-reason", t("act.dueReason"), reason,
        t("act.dueReason.hint", { due: localInput(limit).replace("T", " ") }));
      box.parentElement.classList.add("act-due-reason");
    } else if (name === "at") {
      const input = document.createElement("input");
      input.type = "datetime-local";
      input.name = "at";
      input.required = true;
      input.value = localInput(Date.now());
      field(form, "at", t("act.at"), input);
    } else if (name === "byCenter") {
      const sel = document.createElement("select");
      sel.name = "by_center";
      const ctx = drawer.ctx || {};
      for (const c of data.centers || []) {
        if (ctx.watchable && !ctx.watchable(c)) continue;
        sel.appendChild(option(c, ctx.unitName ? ctx.unitName(c) : c));
      }
      if (ctx.home && [...sel.options].some((o) => o.value === ctx.home)) sel.value = ctx.home;
      field(form, "by-center", t("act.byCenter"), sel);
    } else if (name === "rating") {
      const group = el("fieldset", "act-rating");
      group.appendChild(el("legend", null, t("act.rating")));
      for (let n = 1; n <= 5; n++) {
        const label = el("label", "act-star");
        const radio = document.createElement("input");
        radio.type = "radio";
        radio.name = "satisfaction";
        radio.value = String(n);
        radio.id = "act-rating-" + n;
        label.append(radio, " ", t("act.rating." + n));
        group.appendChild(label);
      }
      form.appendChild(group);
    }
  }
  showDueReason(form, data);
  const error = el("div", "act-error");
  error.id = "act-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  form.appendChild(error);
  const buttons = el("div", "act-buttons");
  const ok = el("button", "btn act-submit", drawer.busy ? t("act.sending") : t("act.submit"));
  ok.type = "submit";
  ok.disabled = drawer.busy;
  const cancel = el("button", "btn", t("act.cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", cancelForm);
  buttons.append(ok, cancel);
  form.appendChild(buttons);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = collect(form, action);
    if (body) submit(action, body);
  });
  return form;
}

// A due later than the SLA policy's resolve time needs a reason: its field shows only then.
function laterThanPolicy(form, data) {
  const limit = Date.parse(data.policy_resolve_due || "");
  const c = form.querySelector('[name="due"]');
  const ms = c ? Date.parse(c.value) : NaN;
  // datetime-local has minutes: a prefill cut to the minute is not "later".
  return !Number.isNaN(limit) && !Number.isNaN(ms) && ms > limit;
}

function showDueReason(form, data) {
  const wrap = form.querySelector(".act-due-reason");
  if (wrap) wrap.hidden = !laterThanPolicy(form, data);
}

function collect(form, action) {
  const get = (name) => {
    const c = form.querySelector(`[name="${name}"]`);
    return c ? String(c.value || "").trim() : "";
  };
  const fail = (labelKey) => {
    const error = form.querySelector("#act-error");
    error.textContent = t("act.required", { field: t(labelKey) });
    error.hidden = false;
    return null;
  };
  const body = {};
  for (const spec of FORMS[action]) {
    const name = spec.replace("?", "");
    const required = !spec.endsWith("?");
    if (["reason", "note", "outcome", "comment"].includes(name)) {
      const v = get(name);
      if (required && !v) return fail("act." + name);
      if (v || required) body[name] = v;
    } else if (name === "original") {
      const v = get("original_id") || get("original");
      if (!v) return fail("act.original");
      body.of = v;
    } else if (name === "assignee") {
      const v = get("assignee");
      if (!v) return fail("act.assignee");
      const i = v.indexOf(":");
      body.assignee = { kind: v.slice(0, i), id: v.slice(i + 1) };
    } else if (name === "due") {
      const ms = Date.parse(get("due"));
      if (Number.isNaN(ms)) return fail("act.due");
      body.due = new Date(ms).toISOString();
    } else if (name === "dueReason") {
      if (!laterThanPolicy(form, drawer.data || {})) continue;
      const v = get("due_reason");
      if (!v) return fail("act.dueReason");
      body.due_reason = v;
    } else if (name === "at") {
      const ms = Date.parse(get("at"));
      if (Number.isNaN(ms)) return fail("act.at");
      body.at = new Date(ms).toISOString();
    } else if (name === "byCenter") {
      const v = get("by_center");
      if (!v) return fail("act.byCenter");
      body.by_center = v;
    } else if (name === "rating") {
      const checked = form.querySelector('[name="satisfaction"]:checked');
      if (!checked) return fail("act.rating");
      body.satisfaction = Number(checked.value);
    }
  }
  return body;
}

async function submit(action, body) {
  const data = drawer.data;
  const ctx = drawer.ctx;
  if (!data || !ctx || drawer.busy) return;
  drawer.busy = true;
  renderActions(data, true);
  const before = { status: data.status, version: data.version };
  try {
    const result = await ctx.apiFetch(`/api/incidents/${encodeURIComponent(data.id)}/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, expected_version: data.version }),
    });
    drawer.busy = false;
    drawer.form = null;
    setMessage("ok", t("act.done", { action: t("act." + action) }));
    ctx.applied(result);
  } catch (err) {
    drawer.busy = false;
    if (err && err.status === 409) {
      const fresh = await ctx.reload();
      drawer.form = null;
      if (fresh && fresh.status !== before.status) {
        setMessage("warn", t("act.conflict", {
          was: tStatus(before.status), now: tStatus(fresh.status), v0: before.version, v1: fresh.version,
        }));
      } else {
        setMessage("warn", t("act.conflictSame", { v0: before.version, v1: fresh ? fresh.version : "?" }));
      }
      renderActions(fresh || data, true);
      return;
    }
    const status = err && err.status;
    setMessage("error", status ? t("act.refused", { status, detail: err.detail || err.message })
      : t("act.failed", { detail: (err && err.message) || "" }));
    renderActions(data, true);
  }
}

// A one-line label for a case in the "duplicate of" list.
export function caseLabel(c, gridName) {
  const when = Date.parse(c.reported_at || "");
  const time = Number.isNaN(when) ? "" : new Intl.DateTimeFormat(getLang(), {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(when);
  return [tCategory(c.category), gridName(c.grid), time, tStatus(c.status)].filter(Boolean).join(" · ");
}

window.LinkageDrawer = { request, formOpen, cancelForm };
