// Linkage console — keyboard: j/k move in the queue, Enter opens, a accepts, d dispatches,
// Esc closes (the open form first, then the drawer), / focuses the filter, ? lists the keys.
// Keys are ignored while typing in a field or with Ctrl/Alt/Meta held.

import { addStrings, t } from "./i18n.js";

addStrings({
  "zh-CN": {
    "keys.title": "键盘快捷键",
    "keys.j": "队列中下移一行", "keys.k": "队列中上移一行", "keys.enter": "打开所选事件",
    "keys.a": "受理当前事件", "keys.d": "派遣当前事件", "keys.esc": "关闭表单或详情",
    "keys.slash": "聚焦筛选框", "keys.help": "显示本列表", "keys.close": "关闭",
    "keys.hint": "按 ? 查看快捷键",
  },
  en: {
    "keys.title": "Keyboard shortcuts",
    "keys.j": "Next row in the queue", "keys.k": "Previous row in the queue", "keys.enter": "Open the selected case",
    "keys.a": "Accept the current case", "keys.d": "Dispatch the current case", "keys.esc": "Close the form or the drawer",
    "keys.slash": "Focus the filter", "keys.help": "Show this list", "keys.close": "Close",
    "keys.hint": "Press ? for shortcuts",
  },
});

const KEYS = [["j", "keys.j"], ["k", "keys.k"], ["Enter", "keys.enter"], ["a", "keys.a"],
  ["d", "keys.d"], ["Esc", "keys.esc"], ["/", "keys.slash"], ["?", "keys.help"]];

const rows = () => [...document.querySelectorAll("#open-list tr[data-id]")];

function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

function currentRow() {
  const active = document.activeElement;
  if (active && active.matches && active.matches("#open-list tr[data-id]")) return active;
  return document.querySelector("#open-list tr.selected") || null;
}

function move(step) {
  const list = rows();
  if (!list.length) return;
  const cur = currentRow();
  const i = cur ? list.indexOf(cur) : -1;
  const next = list[Math.max(0, Math.min(list.length - 1, i < 0 ? 0 : i + step))];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
}

function helpDialog() {
  let dialog = document.getElementById("keys-dialog");
  if (!dialog) {
    dialog = document.createElement("dialog");
    dialog.id = "keys-dialog";
    dialog.className = "keys-dialog";
    dialog.setAttribute("aria-labelledby", "keys-title");
    document.body.appendChild(dialog);
  }
  const title = document.createElement("h2");
  title.id = "keys-title";
  title.textContent = t("keys.title");
  const dl = document.createElement("dl");
  for (const [key, label] of KEYS) {
    const dt = document.createElement("dt");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    dt.appendChild(kbd);
    const dd = document.createElement("dd");
    dd.textContent = t(label);
    dl.append(dt, dd);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "btn";
  close.textContent = t("keys.close");
  close.addEventListener("click", () => dialog.close());
  dialog.replaceChildren(title, dl, close);
  if (!dialog.open) dialog.showModal();
  close.focus();
}

// Act on the drawer's case; with no drawer open, open the focused row first.
function act(action) {
  const drawer = window.LinkageDrawer;
  const detail = document.getElementById("detail");
  if (detail && !detail.hidden) {
    drawer.request(action);
    return;
  }
  const row = currentRow();
  if (!row) return;
  row.click();
  drawer.request(action); // remembered until the drawer's actions are shown
}

function filterControl() {
  return document.querySelector("[data-key-filter]") || document.getElementById("center-select");
}

export function wireKeys() {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.altKey || e.metaKey || e.defaultPrevented) return;
    if (e.key === "Escape") {
      if (document.getElementById("keys-dialog")?.open) return; // the dialog closes itself
      if (window.LinkageDrawer.formOpen()) {
        e.preventDefault();
        window.LinkageDrawer.cancelForm();
        return;
      }
      const detail = document.getElementById("detail");
      if (detail && !detail.hidden) {
        e.preventDefault();
        document.getElementById("detail-close").click();
      }
      return;
    }
    if (typing(e.target) || document.querySelector("dialog[open]")) return;
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": act("accept"); break;
      case "d": act("dispatch"); break;
      case "/": {
        const f = filterControl();
        if (f) f.focus();
        break;
      }
      case "?": helpDialog(); break;
      default: return;
    }
    e.preventDefault();
  });
}
