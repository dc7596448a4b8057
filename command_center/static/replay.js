// Audit replay: an auditor scrubs through a center's history. Each slider position is an event
// time; the view shown is rebuilt by the server from events up to that time
// (GET /api/audit/centers/{id}/view?at=...). The token comes from #token=... like the console.
const TOKEN_KEY = "linkage.token";
const $ = (id) => document.getElementById(id);
const state = { token: null, center: null, events: [], pending: null };

function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const tok = params.get("token");
  if (tok) {
    try { localStorage.setItem(TOKEN_KEY, tok); } catch (_) { /* storage disabled */ }
    history.replaceState(null, "", location.pathname + location.search);
    return tok;
  }
  try { return localStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = !text;
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, { headers });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`${resp.status}: ${detail}`);
  }
  return resp.json();
}

function addCenters(node, select, depth) {
  if (["city", "district", "township"].includes(node.level)) {
    const opt = document.createElement("option");
    opt.value = node.id;
    opt.textContent = "\u00a0".repeat(depth * 2) + `${node.name} ${node.name_en || ""}`;
    select.appendChild(opt);
  }
  for (const child of node.children || []) addCenters(child, select, depth + 1);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function render(view) {
  const counts = $("counts-at");
  counts.replaceChildren(...Object.entries(view.counts).map(([k, v]) => {
    const span = document.createElement("span");
    span.textContent = `${k}: ${v}`;
    return span;
  }));
  const rows = Object.values((view.queue || {})).map((item) => {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    tr.append(cell(item.id.slice(0, 8)), cell(item.status), cell(item.category), cell(item.grid),
      cell(item.assignee), cell(item.updated_at));
    tr.addEventListener("click", () => showHistory(item.id));
    return tr;
  });
  $("open-at").replaceChildren(...rows);
}

async function showHistory(id) {
  try {
    const data = await api(`/api/audit/incidents/${encodeURIComponent(id)}/history`);
    $("history").replaceChildren(...data.events.map((e) => {
      const li = document.createElement("li");
      const who = e.actor ? `${e.actor.user} (${e.actor.role}${e.actor.center ? " @ " + e.actor.center : ""})` : "?";
      li.textContent = `${e.at} · v${e.version} ${e.type} · ${who}`;
      return li;
    }));
  } catch (err) {
    showError(String(err.message || err));
  }
}

async function showAt(index) {
  const event = state.events[index];
  if (!event) return;
  $("at-label").textContent = event.at;
  $("event-label").textContent = `#${event.n} ${event.type} ${event.incident.slice(0, 8)} (${index + 1}/${state.events.length})`;
  const ticket = {};
  state.pending = ticket;
  try {
    const view = await api(`/api/audit/centers/${encodeURIComponent(state.center)}/view?at=${encodeURIComponent(event.at)}`);
    if (state.pending === ticket) render(view);
    showError("");
  } catch (err) {
    showError(String(err.message || err));
  }
}

async function selectCenter(center) {
  state.center = center;
  try {
    state.events = await api(`/api/audit/centers/${encodeURIComponent(center)}/events`);
  } catch (err) {
    showError(String(err.message || err));
    return;
  }
  const slider = $("scrubber");
  slider.max = String(Math.max(0, state.events.length - 1));
  slider.value = slider.max;
  if (state.events.length) await showAt(state.events.length - 1);
  else render({ counts: {}, queue: {} });
}

async function main() {
  state.token = readToken();
  let timer = null;
  $("scrubber").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => showAt(Number(ev.target.value)), 80);
  });
  $("center-select").addEventListener("change", (ev) => selectCenter(ev.target.value));
  try {
    const tree = await api("/api/centers");
    addCenters(tree, $("center-select"), 0);
  } catch (err) {
    showError(`${err.message || err} — open this page with #token=<auditor token>`);
    return;
  }
  const wanted = new URLSearchParams(location.search).get("center");
  const select = $("center-select");
  if (wanted) select.value = wanted;
  if (select.value) await selectCenter(select.value);
}

main();
