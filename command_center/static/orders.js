// Linkage console — supervision orders (督办单): the open orders the selected center issued,
// received or had escalated to it (GET /api/orders?unit=<center>), with acknowledge / fulfil for
// the addressee. Issue #14. Mounted by console.js; refreshes on every view delta (throttled),
// on a center switch and on a language switch.

import { formatDuration, getLang, t } from "./i18n.js";

const REFRESH_MS = 3000;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function mountOrders({ center, apiFetch, names }) {
  const section = el("section", "panel panel-orders step4-wide");
  section.id = "orders-panel";
  section.setAttribute("aria-labelledby", "orders-title");
  const head = el("div", "panel-head");
  const title = el("h2", null, t("orders.title"));
  title.id = "orders-title";
  title.dataset.i18n = "orders.title";
  const count = el("span", "muted");
  count.id = "orders-count";
  head.append(title, count);
  const list = el("ol", "orders-list");
  list.id = "orders-list";
  const status = el("div", "muted orders-status");
  status.setAttribute("role", "status");
  section.append(head, list, status);
  document.querySelector("main.layout").append(section);

  let items = [];
  let unit = null;
  let timer = null;
  let last = 0;

  function render() {
    const now = Date.now();
    list.replaceChildren();
    count.textContent = t("orders.count", { n: items.length });
    for (const o of items) {
      const li = el("li", "order" + (o.overdue ? " overdue" : ""));
      li.dataset.id = o.id;
      li.dataset.role = o.role;
      const line = el("div", "order-line");
      line.append(el("span", "pill order-role", t("orders.role." + o.role)));
      line.append(el("span", "order-who", t("orders.route", { from: names(o.issuer), to: names(o.addressee) })));
      line.append(el("span", "pill st-" + o.status, t("orders.status." + o.status)));
      if (o.overdue) line.append(el("span", "pill badge-escalated", t("orders.overdue")));
      if (o.escalated_to) line.append(el("span", "pill badge-escalated", t("orders.escalatedTo", { to: names(o.escalated_to) })));
      const deadline = new Date(o.deadline).getTime();
      const left = deadline - now;
      const d = formatDuration(Math.abs(left));
      const due = el("span", "order-due", left < 0 ? t("orders.late", { d }) : t("orders.left", { d }));
      due.title = new Date(o.deadline).toLocaleString(getLang(), { hour12: false });
      line.append(due);
      li.append(line, el("div", "order-note", o.note));
      if (o.role === "addressee") {
        const actions = el("div", "order-actions");
        if (o.status === "issued") {
          const ack = el("button", "btn", t("orders.acknowledge"));
          ack.type = "button";
          ack.dataset.action = "acknowledge";
          actions.append(ack);
        }
        const what = el("input", "order-what");
        what.placeholder = t("orders.whatPlaceholder");
        what.setAttribute("aria-label", t("orders.whatPlaceholder"));
        const fulfil = el("button", "btn", t("orders.fulfil"));
        fulfil.type = "button";
        fulfil.dataset.action = "fulfil";
        actions.append(what, fulfil);
        li.append(actions);
      }
      list.append(li);
    }
    if (!items.length) status.textContent = t("orders.empty");
  }

  async function refresh() {
    unit = center();
    if (!unit) {
      setTimeout(refresh, 500); // the console has not chosen its center yet
      return;
    }
    last = Date.now();
    try {
      const data = await apiFetch("/api/orders?unit=" + encodeURIComponent(unit));
      if (data.unit !== center()) return;
      items = data.items || [];
      status.textContent = "";
      render();
    } catch (err) {
      items = [];
      render();
      status.textContent = t("orders.unavailable", { why: err.message || String(err) });
    }
  }

  function soon() {
    if (timer !== null) return;
    const wait = Math.max(0, REFRESH_MS - (Date.now() - last));
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, wait);
  }

  list.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li[data-id]");
    const action = button.dataset.action;
    const body = {};
    if (action === "fulfil") {
      const what = li.querySelector(".order-what").value.trim();
      if (!what) {
        status.textContent = t("orders.whatRequired");
        return;
      }
      body.what = what;
    }
    button.disabled = true;
    try {
      await apiFetch(`/api/orders/${li.dataset.id}/${action}`, {
        method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
      });
      status.textContent = t("orders.done." + action);
    } catch (err) {
      status.textContent = err.message || String(err);
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  document.addEventListener("linkage:delta", soon);
  document.getElementById("center-select").addEventListener("change", () => setTimeout(refresh, 0));
  document.getElementById("lang-toggle").addEventListener("click", () => setTimeout(render, 0));
  setInterval(render, 30000); // the countdowns move on
  refresh();
  return { refresh };
}
