// The public disclosure page (no login): GET /api/public/figures and /api/public/cases.
import { addStrings, getLang, setLang, t, tCategory } from "./i18n.js";

addStrings({
  "zh-CN": {
    "public.title": "办理结果公开",
    "public.figures": "各乡镇街道月度办理情况",
    "public.cases": "已办结事项",
    "public.more": "更多",
    "public.note": "案件办结{hours}小时后公开；不含姓名、电话、身份证号和详细地址。",
    "public.month": "月份",
    "public.township": "乡镇街道",
    "public.closed": "办结数",
    "public.rated": "回访数",
    "public.mean": "平均满意度",
    "public.category": "类别",
    "public.community": "社区",
    "public.reported": "受理日期",
    "public.resolved": "办结日期",
    "public.outcome": "办理结果",
    "public.satisfaction": "满意度",
    "public.none": "暂无公开数据",
  },
  en: {
    "public.title": "Case results",
    "public.figures": "Monthly figures per township",
    "public.cases": "Handled cases",
    "public.more": "More",
    "public.note": "Cases are published {hours} hours after they are closed, without names, phones, ID numbers or exact addresses.",
    "public.month": "Month",
    "public.township": "Township",
    "public.closed": "Closed",
    "public.rated": "Rated",
    "public.mean": "Mean satisfaction",
    "public.category": "Category",
    "public.community": "Community",
    "public.reported": "Reported",
    "public.resolved": "Resolved",
    "public.outcome": "Outcome",
    "public.satisfaction": "Satisfaction",
    "public.none": "Nothing published yet",
  },
});

let after = null;
let cases = [];
let figures = { months: [] };
let hours = 0;

const nameOf = (unit) => (unit && unit.name ? (getLang() === "en" ? unit.name.en : unit.name.zh) : "");

function row(cells, tag = "td") {
  const tr = document.createElement("tr");
  for (const value of cells) {
    const cell = document.createElement(tag);
    cell.textContent = value === null || value === undefined ? "–" : String(value);
    tr.append(cell);
  }
  return tr;
}

function render() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang-toggle").textContent = getLang() === "en" ? "中文" : "English";
  document.getElementById("public-note").textContent = t("public.note", { hours });
  const ft = document.getElementById("figures");
  ft.replaceChildren(row(["public.month", "public.township", "public.closed", "public.rated", "public.mean"].map((k) => t(k)), "th"));
  for (const month of figures.months) {
    for (const twp of month.townships) ft.append(row([month.month, nameOf(twp), twp.closed, twp.rated, twp.mean_satisfaction]));
  }
  const ct = document.getElementById("cases");
  ct.replaceChildren(row(["public.category", "public.community", "public.reported", "public.resolved", "public.outcome", "public.satisfaction"].map((k) => t(k)), "th"));
  for (const c of cases) ct.append(row([tCategory(c.category), nameOf(c.community), c.reported, c.resolved, c.outcome, c.satisfaction]));
  if (!cases.length) ct.append(row([t("public.none")]));
}

async function load() {
  const query = after === null ? "" : `&after=${after}`;
  const [page, figs] = await Promise.all([
    fetch(`/api/public/cases?limit=50${query}`).then((r) => (r.ok ? r.json() : { items: [] })),
    after === null ? fetch("/api/public/figures").then((r) => (r.ok ? r.json() : { months: [] })) : Promise.resolve(figures),
  ]);
  cases = cases.concat(page.items || []);
  figures = figs;
  hours = page.delay_hours || hours;
  after = page.next_after ?? null;
  document.getElementById("more").hidden = after === null;
  render();
}

document.getElementById("lang-toggle").addEventListener("click", () => {
  setLang(getLang() === "en" ? "zh-CN" : "en");
  render();
});
document.getElementById("more").addEventListener("click", load);
load();
