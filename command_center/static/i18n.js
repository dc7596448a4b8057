// Linkage console — translations (zh-CN / English).

const STORAGE_KEY = "linkage.lang";
export const LANGS = ["zh-CN", "en"];

const STRINGS = {
  "zh-CN": {
    "app.title": "联动指挥中心",
    "app.subtitle": "社会治理大联动",
    "center.label": "指挥中心",
    "center.loading": "加载中…",
    "lang.toggle": "English",
    "lang.toggle.title": "Switch to English",
    "conn.open": "已连接",
    "conn.connecting": "重新连接中…",
    "conn.closed": "离线",
    "auth.required": "登录凭证缺失或已失效，请重新登录后使用控制台。",
    "error.server": "服务器错误",
    "error.centers": "无法加载中心列表",
    "error.incident": "无法加载事件详情",
    "counts.title": "实时统计",
    "open.title": "未结事件",
    "open.empty": "暂无未结事件",
    "open.count": "共 {n} 件",
    "open.shown": "显示最紧急的 {n} 件",
    "col.severity": "等级",
    "col.category": "类别",
    "col.grid": "网格",
    "col.status": "状态",
    "col.assignee": "承办方",
    "col.due": "时限",
    "col.source": "来源",
    "col.summary": "摘要",
    "col.count": "数量",
    "feed.title": "事件动态",
    "feed.empty": "暂无动态",
    "grids.title": "网格未结事件 Top 20",
    "grids.empty": "暂无数据",
    "detail.title": "事件详情",
    "detail.close": "关闭",
    "detail.loading": "加载中…",
    "detail.timeline": "处置过程",
    "detail.noTimeline": "暂无记录",
    "field.id": "编号",
    "field.status": "状态",
    "field.category": "类别",
    "field.severity": "等级",
    "field.grid": "网格",
    "field.source": "来源",
    "field.summary": "摘要",
    "field.description": "描述",
    "field.reported_at": "上报时间",
    "field.updated_at": "更新时间",
    "field.due": "处置时限",
    "field.assignee": "承办方",
    "field.version": "版本",
    "field.actor": "操作人",
    "field.created_at": "创建时间",
    "field.centers": "所属中心",
    "field.location": "位置",
    "field.reporter": "上报人",
    "field.external_id": "外部编号",
    "field.duplicate_of": "重复于",
    "field.outcome": "处置结果",
    "field.satisfaction": "满意度",
    "field.reopen_count": "重办次数",
    "field.allowed_actions": "可执行操作",
    "field.note": "备注",
    "field.reason": "原因",
    "field.comment": "意见",
    "field.rating": "评分",
    "field.lat": "纬度",
    "field.lon": "经度",
    "field.address": "地址",
    "severity.major": "重大",
    "severity.routine": "一般",
    "due.none": "—",
    "due.in": "剩余 {d}",
    "due.overdue": "超期 {d}",
    "unit.d": "天",
    "unit.h": "小时",
    "unit.m": "分",
    "unit.s": "秒",
    "unassigned": "未指派",
    "escalated.township": "已升级至乡镇",
    "escalated.district": "已升级至区县",
    "escalated.city": "已升级至市",
    "supervised": "督办",
    "footer.seq": "序号",
    "footer.epoch": "纪元",
    "footer.position": "位置",
    "alerts.title": "摄像头告警",
    "alerts.unack": "未确认 {n} 条",
    "alerts.empty": "暂无未确认告警",
    "alerts.storm": "告警风暴",
    "alerts.stormCount": "{w} 秒内 {n} 条",
    "alerts.camera": "摄像头",
    "alerts.grid": "网格",
    "alerts.ended": "已结束",
    "alerts.rule": "规则",
    "alerts.prio.high": "高",
    "alerts.prio.critical": "紧急",
    "alerts.action.acknowledge": "确认",
    "alerts.action.dismiss": "误报",
    "alerts.action.create-incident": "转事件",
    "alerts.action.acknowledgeStorm": "全部确认",
    "alerts.confirmStorm": "确认此风暴中的全部告警？",
    "alerts.dismissReason": "排除原因：",
    "alerts.falsePositive": "误报",
    "alerts.confirmIncident": "将此告警转为新事件？",
    "alerts.action.link": "关联事件",
    "alerts.linked": "已关联 {n} 条",
    "alerts.link.title": "关联到已有事件",
    "alerts.link.alert": "告警：{what}",
    "alerts.link.alertGone": "该告警已不在未确认列表中",
    "alerts.link.choose": "选择未结事件",
    "alerts.link.placeholder": "— 请选择 —",
    "alerts.link.noOpen": "本中心暂无未结事件",
    "alerts.link.more": "仅列出最近上报的 {n} 件；其他事件请粘贴编号",
    "alerts.link.paste": "或粘贴事件编号",
    "alerts.link.pastePlaceholder": "事件编号（UUID）",
    "alerts.link.submit": "关联",
    "alerts.link.cancel": "取消",
    "alerts.link.done": "告警已关联到事件 {id}",
    "alerts.link.err.none": "请选择一个未结事件，或粘贴事件编号。",
    "alerts.link.err.notFound": "事件 {id} 不存在，请核对编号。",
    "alerts.link.err.alertNotFound": "该告警已不存在。",
    "alerts.link.err.conflict": "该告警已被处理（或正被他人同时处理），无法关联。",
    "alerts.link.err.forbidden": "您无权关联此告警。",
    "alerts.link.err.invalid": "事件编号无效。",
    "alerts.link.err.failed": "关联失败。",
  },
  en: {
    "app.title": "Linkage Command Center",
    "app.subtitle": "Community governance linkage",
    "center.label": "Center",
    "center.loading": "Loading…",
    "lang.toggle": "中文",
    "lang.toggle.title": "切换到中文",
    "conn.open": "Connected",
    "conn.connecting": "Reconnecting…",
    "conn.closed": "Offline",
    "auth.required": "Your credentials are missing or expired; log in again to use the console.",
    "error.server": "Server error",
    "error.centers": "Could not load the centers",
    "error.incident": "Could not load the incident",
    "counts.title": "Live counts",
    "open.title": "Open incidents",
    "open.empty": "No open incidents",
    "open.count": "{n} open",
    "open.shown": "showing the {n} most urgent",
    "col.severity": "Severity",
    "col.category": "Category",
    "col.grid": "Grid",
    "col.status": "Status",
    "col.assignee": "Assignee",
    "col.due": "Due",
    "col.source": "Source",
    "col.summary": "Summary",
    "col.count": "Count",
    "feed.title": "Event feed",
    "feed.empty": "No events yet",
    "grids.title": "Open incidents per grid (top 20)",
    "grids.empty": "No data",
    "detail.title": "Incident",
    "detail.close": "Close",
    "detail.loading": "Loading…",
    "detail.timeline": "Timeline",
    "detail.noTimeline": "No events",
    "field.id": "ID",
    "field.status": "Status",
    "field.category": "Category",
    "field.severity": "Severity",
    "field.grid": "Grid",
    "field.source": "Source",
    "field.summary": "Summary",
    "field.description": "Description",
    "field.reported_at": "Reported",
    "field.updated_at": "Updated",
    "field.due": "Due",
    "field.assignee": "Assignee",
    "field.version": "Version",
    "field.actor": "Actor",
    "field.created_at": "Created",
    "field.centers": "Centers",
    "field.location": "Location",
    "field.reporter": "Reporter",
    "field.external_id": "External ID",
    "field.duplicate_of": "Duplicate of",
    "field.outcome": "Outcome",
    "field.satisfaction": "Satisfaction",
    "field.reopen_count": "Reopened",
    "field.allowed_actions": "Allowed actions",
    "field.note": "Note",
    "field.reason": "Reason",
    "field.comment": "Comment",
    "field.rating": "Rating",
    "field.lat": "Latitude",
    "field.lon": "Longitude",
    "field.address": "Address",
    "severity.major": "Major",
    "severity.routine": "Routine",
    "due.none": "—",
    "due.in": "in {d}",
    "due.overdue": "overdue {d}",
    "unit.d": "d",
    "unit.h": "h",
    "unit.m": "m",
    "unit.s": "s",
    "unassigned": "Unassigned",
    "escalated.township": "escalated to township",
    "escalated.district": "escalated to district",
    "escalated.city": "escalated to city",
    "supervised": "supervised",
    "footer.seq": "seq",
    "footer.epoch": "epoch",
    "footer.position": "position",
    "alerts.title": "Camera alerts",
    "alerts.unack": "{n} unacknowledged",
    "alerts.empty": "No unacknowledged alerts",
    "alerts.storm": "Alert storm",
    "alerts.stormCount": "{n} in {w}s",
    "alerts.camera": "camera",
    "alerts.grid": "grid",
    "alerts.ended": "ended",
    "alerts.rule": "rule",
    "alerts.prio.high": "high",
    "alerts.prio.critical": "critical",
    "alerts.action.acknowledge": "Acknowledge",
    "alerts.action.dismiss": "Dismiss",
    "alerts.action.create-incident": "Create incident",
    "alerts.action.acknowledgeStorm": "Acknowledge all",
    "alerts.confirmStorm": "Acknowledge every alert in this storm?",
    "alerts.dismissReason": "Reason for dismissing:",
    "alerts.falsePositive": "false positive",
    "alerts.confirmIncident": "Turn this alert into a new incident?",
    "alerts.action.link": "Link to incident",
    "alerts.linked": "{n} linked",
    "alerts.link.title": "Link the alert to an existing incident",
    "alerts.link.alert": "Alert: {what}",
    "alerts.link.alertGone": "This alert is no longer in the unacknowledged list",
    "alerts.link.choose": "Choose an open incident",
    "alerts.link.placeholder": "— choose —",
    "alerts.link.noOpen": "No open incidents in this center",
    "alerts.link.more": "Only the {n} most recently reported are listed; paste the id of any other.",
    "alerts.link.paste": "or paste an incident id",
    "alerts.link.pastePlaceholder": "incident id (UUID)",
    "alerts.link.submit": "Link",
    "alerts.link.cancel": "Cancel",
    "alerts.link.done": "Alert linked to incident {id}",
    "alerts.link.err.none": "Choose an open incident or paste an incident id.",
    "alerts.link.err.notFound": "There is no incident {id}; check the id.",
    "alerts.link.err.alertNotFound": "This alert no longer exists.",
    "alerts.link.err.conflict": "This alert was already handled (or is being handled by someone else) and cannot be linked.",
    "alerts.link.err.forbidden": "You are not allowed to link this alert.",
    "alerts.link.err.invalid": "That is not a valid incident id.",
    "alerts.link.err.failed": "Linking failed.",
  },
};


const STATUS = {
  reported: ["已上报", "Reported"],
  accepted: ["已受理", "Accepted"],
  rejected: ["不予受理", "Rejected"],
  duplicate: ["重复件", "Duplicate"],
  dispatched: ["已派遣", "Dispatched"],
  returned: ["已退回", "Returned"],
  acknowledged: ["已签收", "Acknowledged"],
  resolved: ["已办结", "Resolved"],
  visited: ["已回访", "Visited"],
  reopened: ["重办", "Reopened"],
  closed: ["已结案", "Closed"],
};

// Camera alert labels, alert rules (by their description), roles and alert priorities.
const ALERT_LABEL = {
  person: ["人员", "Person"],
  car: ["车辆", "Car"],
  bicycle: ["非机动车", "Bicycle"],
  dog: ["犬只", "Dog"],
  fire: ["火情", "Fire"],
  smoke: ["烟雾", "Smoke"],
  truck: ["货车", "Truck"],
  motorcycle: ["摩托车", "Motorcycle"],
  face: ["人脸", "Face"],
  license_plate: ["车牌", "Licence plate"],
  cap: ["预警信息", "CAP warning"],
};

const RULE = {
  fire_or_smoke_in_zone: ["烟火告警：重点区域检测到烟火", "Fire or smoke detected in a watched zone"],
  watch_listed_plate: ["布控车牌出现", "A watch-listed plate was seen"],
  loitering: ["人员长时间逗留", "A person loitering"],
  cap_extreme: ["极端级别预警", "An extreme-level warning"],
};

const ROLE = {
  city_officer: ["市级值班员", "City duty officer"],
  district_officer: ["区县值班员", "District duty officer"],
  township_officer: ["乡镇（街道）值班员", "Township duty officer"],
  department: ["职能部门", "Department"],
  grid_worker: ["网格员", "Grid worker"],
  auditor: ["审计员", "Auditor"],
  admin: ["管理员", "Administrator"],
  feed: ["数据接入", "Feed"],
};

const STORM_KIND = {
  camera: ["摄像头", "Camera"],
  grid: ["网格", "Grid"],
};


const CATEGORY = {
  road_damage: ["道路损坏", "Road damage"],
  garbage: ["垃圾堆放", "Garbage"],
  noise: ["噪音扰民", "Noise"],
  illegal_parking: ["违章停车", "Illegal parking"],
  water_leak: ["漏水", "Water leak"],
  fire_hazard: ["消防隐患", "Fire hazard"],
  dispute: ["矛盾纠纷", "Dispute"],
  public_security: ["治安", "Public security"],
  early_warning: ["预警", "Early warning"],
  other: ["其他", "Other"],
};

const SOURCE = {
  hotline: ["12345热线", "12345 hotline"],
  grid_worker: ["网格员", "Grid worker"],
  camera: ["视频监控", "Camera"],
  sensor: ["传感器", "Sensor"],
  wechat: ["微信", "WeChat"],
  resident: ["居民", "Resident"],
  department: ["职能部门", "Department"],
  open311: ["市民诉求", "Resident request"],
};

const EVENT_TYPE = {
  Reported: ["上报", "Reported"],
  Accepted: ["受理", "Accepted"],
  Rejected: ["不予受理", "Rejected"],
  MarkedDuplicate: ["重复件", "Marked duplicate"],
  Dispatched: ["派遣", "Dispatched"],
  Returned: ["退回", "Returned"],
  Transferred: ["转办", "Transferred"],
  Acknowledged: ["签收", "Acknowledged"],
  ProgressReported: ["处置进展", "Progress reported"],
  Resolved: ["办结", "Resolved"],
  ReturnVisited: ["回访", "Return visit"],
  Reopened: ["重办", "Reopened"],
  Closed: ["结案", "Closed"],
  Supervised: ["督办", "Supervised"],
  Escalated: ["升级", "Escalated"],
};

const ASSIGNEE_KIND = {
  department: ["部门", "Dept"],
  grid_worker: ["网格员", "Grid worker"],
  party: ["共治方", "Party"],
  user: ["人员", "User"],
};

const LEVEL = {
  city: ["市", "City"],
  district: ["区县", "District"],
  township: ["乡镇街道", "Township"],
  community: ["社区", "Community"],
  grid: ["网格", "Grid"],
};

// --- Issue #14 (SLA steps, supervision orders, assessment): one block, merged into the tables
// above so that the other panels' strings stay where they are.
const SLA_STRINGS = {
  "zh-CN": {
    "due.accept.in": "待受理，剩余 {d}",
    "due.accept.overdue": "受理超期 {d}",
    "due.dispatch.in": "待派遣，剩余 {d}",
    "due.dispatch.overdue": "派遣超期 {d}",
    "due.acknowledge.in": "待签收，剩余 {d}",
    "due.acknowledge.overdue": "签收超期 {d}",
    "due.visit.in": "待回访，剩余 {d}",
    "due.visit.overdue": "回访超期 {d}",
    "escalated.community": "已升级至社区",
    "orders.title": "督办单",
    "orders.count": "{n} 件未办结",
    "orders.empty": "暂无未办结督办单",
    "orders.unavailable": "督办单暂不可用：{why}",
    "orders.role.issuer": "本中心发出",
    "orders.role.addressee": "督办本中心",
    "orders.role.escalated": "逾期升级至本中心",
    "orders.route": "{from} → {to}",
    "orders.status.issued": "已下发",
    "orders.status.acknowledged": "已签收",
    "orders.overdue": "已逾期",
    "orders.escalatedTo": "已升级至 {to}",
    "orders.left": "剩余 {d}",
    "orders.late": "逾期 {d}",
    "orders.acknowledge": "签收",
    "orders.fulfil": "办结反馈",
    "orders.whatPlaceholder": "办理情况",
    "orders.whatRequired": "请填写办理情况。",
    "orders.done.acknowledge": "已签收督办单。",
    "orders.done.fulfil": "已反馈办理情况。",
    "assessment.title": "考核排名",
    "assessment.period.day": "按日",
    "assessment.period.week": "按周",
    "assessment.period.month": "按月",
    "assessment.col.rank": "名次",
    "assessment.col.unit": "单位",
    "assessment.col.score": "综合得分",
    "assessment.col.intake": "受理量",
    "assessment.col.resolve": "按时办结率",
    "assessment.col.satisfaction": "满意度",
    "assessment.col.escalations": "升级次数",
    "assessment.trend": "{unit} 综合得分走势",
    "assessment.empty": "暂无考核数据",
    "assessment.unavailable": "考核数据暂不可用：{why}",
  },
  en: {
    "due.accept.in": "to accept in {d}",
    "due.accept.overdue": "acceptance overdue {d}",
    "due.dispatch.in": "to dispatch in {d}",
    "due.dispatch.overdue": "dispatch overdue {d}",
    "due.acknowledge.in": "to acknowledge in {d}",
    "due.acknowledge.overdue": "acknowledgement overdue {d}",
    "due.visit.in": "return visit in {d}",
    "due.visit.overdue": "return visit overdue {d}",
    "escalated.community": "escalated to community",
    "orders.title": "Supervision orders",
    "orders.count": "{n} open",
    "orders.empty": "No open supervision orders",
    "orders.unavailable": "Supervision orders unavailable: {why}",
    "orders.role.issuer": "issued by this center",
    "orders.role.addressee": "to this center",
    "orders.role.escalated": "escalated here, overdue",
    "orders.route": "{from} → {to}",
    "orders.status.issued": "issued",
    "orders.status.acknowledged": "acknowledged",
    "orders.overdue": "overdue",
    "orders.escalatedTo": "escalated to {to}",
    "orders.left": "{d} left",
    "orders.late": "{d} late",
    "orders.acknowledge": "Acknowledge",
    "orders.fulfil": "Report done",
    "orders.whatPlaceholder": "what was done",
    "orders.whatRequired": "Say what was done.",
    "orders.done.acknowledge": "Order acknowledged.",
    "orders.done.fulfil": "Fulfilment reported.",
    "assessment.title": "Assessment ranking",
    "assessment.period.day": "by day",
    "assessment.period.week": "by week",
    "assessment.period.month": "by month",
    "assessment.col.rank": "#",
    "assessment.col.unit": "Unit",
    "assessment.col.score": "Score",
    "assessment.col.intake": "Intake",
    "assessment.col.resolve": "Resolved on time",
    "assessment.col.satisfaction": "Satisfaction",
    "assessment.col.escalations": "Escalations",
    "assessment.trend": "{unit}: composite score trend",
    "assessment.empty": "No assessment figures yet",
    "assessment.unavailable": "Assessment unavailable: {why}",
  },
};
for (const lang of LANGS) Object.assign(STRINGS[lang], SLA_STRINGS[lang]);
Object.assign(EVENT_TYPE, {
  ReopenedAutomatically: ["不满意自动重办", "Reopened (dissatisfied)"],
  VisitAttempted: ["回访未接通", "Visit attempt (unreachable)"],
});
// --- end of issue #14 block

export const STATUSES = Object.keys(STATUS);
export const CATEGORIES = Object.keys(CATEGORY);

function detectLang() {
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch (_) {
    /* storage disabled */
  }
  if (LANGS.includes(saved)) return saved;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "";
  return nav.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

let current = detectLang();

export function getLang() {
  return current;
}

export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch (_) {
    /* storage disabled */
  }
  document.documentElement.lang = lang;
}

const idx = () => (current === "zh-CN" ? 0 : 1);

// More strings from another module (names.js, drawer.js, keys.js): {"zh-CN": {...}, en: {...}}.
export function addStrings(tables) {
  for (const lang of LANGS) Object.assign(STRINGS[lang], tables[lang] || {});
}

export function t(key, params) {
  let s = STRINGS[current][key];
  if (s === undefined) s = STRINGS.en[key];
  if (s === undefined) return key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

function lookup(table, value) {
  if (value === null || value === undefined || value === "") return "";
  const row = table[value];
  return row ? row[idx()] : String(value);
}

export const tStatus = (s) => lookup(STATUS, s);
export const tCategory = (c) => lookup(CATEGORY, c);
export const tSource = (s) => lookup(SOURCE, s);
export const tEventType = (e) => lookup(EVENT_TYPE, e);
export const tLevel = (l) => lookup(LEVEL, l);
export const tStormKind = (k) => lookup(STORM_KIND, k);
// Unknown values are shown as a readable word, never as a snake_case id.
const humane = (v) => String(v).replace(/[_:-]+/g, " ");
const lookupHumane = (table, v) => (v && !table[v] ? humane(v) : lookup(table, v));
export const tAlertLabel = (l) => lookupHumane(ALERT_LABEL, l);
export const tRule = (r) => lookupHumane(RULE, r);
export const tRole = (r) => lookupHumane(ROLE, r);
export function tSeverity(s) {
  if (s === "major" || s === "routine") return t("severity." + s);
  return s ? String(s) : "";
}

// "department:urban_management" -> "部门: urban_management"
export function tAssignee(a) {
  if (!a) return "";
  const i = String(a).indexOf(":");
  if (i < 0) return String(a);
  const kind = a.slice(0, i);
  const rest = a.slice(i + 1);
  const row = ASSIGNEE_KIND[kind];
  return (row ? row[idx()] : kind) + ": " + rest;
}

// Unit name from a centers-tree node.
export function unitName(node) {
  if (!node) return "";
  if (current === "en") return node.name_en || node.name || node.id;
  return node.name || node.name_en || node.id;
}

// Duration in ms -> "2h 10m" / "2小时10分".
export function formatDuration(ms) {
  let m = Math.max(0, Math.floor(Math.abs(ms) / 60000));
  const d = Math.floor(m / 1440);
  m -= d * 1440;
  const h = Math.floor(m / 60);
  m -= h * 60;
  const sep = current === "en" ? " " : "";
  const parts = [];
  if (d) parts.push(d + t("unit.d"));
  if (h) parts.push(h + t("unit.h"));
  if (!d && (m || !h)) parts.push(m + t("unit.m"));
  return parts.join(sep);
}

// Apply translations to static markup: data-i18n (text), data-i18n-title, data-i18n-aria,
// data-i18n-placeholder.
export function translateDom(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.title = t("app.title");
}

document.documentElement.lang = current;
