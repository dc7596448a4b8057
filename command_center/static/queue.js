// Linkage console — the urgency queue's order and filters.
//
// The server sends the most urgent open cases (view.queue) ordered by a key without a clock
// (docs/PROTOCOL.md §3, "Urgency"). The page orders the rows it has by the same rule with its
// clock: major first; then overdue (escalated, or being worked past its due time); then not yet
// accepted, the longest waiting first; then being worked, the nearest due time first; then the
// rest by report time. Filters (status, grid, severity, assignee) narrow the rows shown.

export const WORKING = new Set(["accepted", "dispatched", "returned", "acknowledged", "reopened"]);

// Parsed times per incident object (a delta replaces the object, so the cache stays valid).
const timeCache = new WeakMap();

function times(inc) {
  let tm = timeCache.get(inc);
  if (!tm) {
    const due = Date.parse(inc.due || "");
    const stepDue = Date.parse(inc.step_due || "");
    const rep = Date.parse(inc.reported_at || "");
    tm = { due: Number.isNaN(due) ? Infinity : due, rep: Number.isNaN(rep) ? Infinity : rep,
      stepDue: Number.isNaN(stepDue) ? Infinity : stepDue };
    timeCache.set(inc, tm);
  }
  return tm;
}

// {inc, band, when, overdue, due, rep} for one case at `now`.
export function keyOf(inc, now) {
  const tm = times(inc);
  // A case waiting to be accepted counts down to the SLA policy's accept time (step_due), but
  // that is only shown: by the rule it stays in band 1 (by report time) until it is accepted, as
  // on the server, and "overdue" (band 0) is for cases being worked.
  const accepting = inc.status === "reported" && Number.isFinite(tm.stepDue);
  const working = WORKING.has(inc.status);
  const due = accepting ? tm.stepDue : working ? tm.due : Infinity;
  const late = working && due !== Infinity && due < now;
  const overdue = late || (working && due !== Infinity && Number(inc.escalations) > 0);
  let band;
  let when;
  if (overdue) {
    band = 0;
    when = due;
  } else if (inc.status === "reported") {
    band = 1;
    when = tm.rep;
  } else if (working && due !== Infinity) {
    band = 2;
    when = due;
  } else {
    band = 3;
    when = tm.rep;
  }
  // What the row counts down to: the current step's due time by the SLA policy (step_due: to
  // accept, dispatch, acknowledge, resolve or make the return visit), else the dispatch's due.
  const step = Number.isFinite(tm.stepDue) && inc.step ? String(inc.step) : "";
  const countdown = step ? tm.stepDue : due;
  return { inc, band, when, overdue: late, due, rep: tm.rep, major: inc.severity === "major", accepting,
    step, countdown };
}

export function compareKeys(a, b) {
  if (a.major !== b.major) return a.major ? -1 : 1;
  if (a.band !== b.band) return a.band - b.band;
  if (a.when !== b.when) return a.when < b.when ? -1 : 1;
  const ia = String(a.inc.id), ib = String(b.inc.id);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}

export function ordered(list, now) {
  return list.map((inc) => keyOf(inc, now)).sort(compareKeys);
}

// ---------------------------------------------------------------- filters

export const filters = { status: "", grid: "", severity: "", assignee: "" };

export function matches(inc) {
  if (filters.status && inc.status !== filters.status) return false;
  if (filters.grid && String(inc.grid) !== filters.grid) return false;
  if (filters.severity && inc.severity !== filters.severity) return false;
  if (filters.assignee) {
    if (filters.assignee === "-") return !inc.assignee;
    if (String(inc.assignee || "") !== filters.assignee) return false;
  }
  return true;
}

export function anyFilter() {
  return Object.values(filters).some(Boolean);
}

// Fill a <select> with ["", all] + options [[value, label]], keeping its value when still there.
export function fillSelect(select, allLabel, options) {
  const keep = select.value;
  const sig = allLabel + "\u0000" + options.map((o) => o.join("\u0001")).join("\u0000");
  if (select.dataset.sig === sig) return;
  select.dataset.sig = sig;
  const frag = document.createDocumentFragment();
  const all = document.createElement("option");
  all.value = "";
  all.textContent = allLabel;
  frag.appendChild(all);
  for (const [value, label] of options) {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = label;
    frag.appendChild(opt);
  }
  select.replaceChildren(frag);
  select.value = options.some(([v]) => v === keep) ? keep : "";
}

// The queue's panel ends above the bottom of the window (whatever the banners above it take), so
// the list is on the first screen; it scrolls inside. Below a narrow width the page flows instead.
export function fitToViewport(panel, minHeight = 360) {
  if (!panel) return;
  if (window.innerWidth <= 1000) {
    panel.style.height = "";
    return;
  }
  const top = panel.getBoundingClientRect().top + window.scrollY;
  const height = Math.max(minHeight, Math.floor(window.innerHeight - top - 12));
  if (panel.style.height !== height + "px") panel.style.height = height + "px";
}
