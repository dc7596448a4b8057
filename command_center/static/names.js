// Linkage console — names, not ids: parties, grid workers, cameras and roles from GET /api/directory.
//
// window.LinkageNames.load() fetches the directory once (again only after reset()); party(x),
// worker(id), camera(id) and role(id) answer the name in the current language, or a translated
// generic label ("Department (not in the directory)"), never the raw id. party(x) takes an
// assignee {kind, id}, its "kind:id" text, or a bare party id.

import { addStrings, getLang, t } from "./i18n.js";

addStrings({
  "zh-CN": {
    "names.unknown.department": "部门（未登记）",
    "names.unknown.party": "共治方（未登记）",
    "names.unknown.grid_worker": "网格员（未登记）",
    "names.unknown.assignee": "承办方（未登记）",
    "names.unknown.camera": "摄像头（未登记）",
    "names.unknown.role": "用户",
    "names.kind.department": "职能部门",
    "names.kind.property_company": "物业公司",
    "names.kind.owners_committee": "业主委员会",
    "names.kind.volunteer_group": "志愿服务队",
    "names.kind.grid_worker": "网格员",
  },
  en: {
    "names.unknown.department": "Department (not in the directory)",
    "names.unknown.party": "Party (not in the directory)",
    "names.unknown.grid_worker": "Grid worker (not in the directory)",
    "names.unknown.assignee": "Assignee (not in the directory)",
    "names.unknown.camera": "Camera (not in the directory)",
    "names.unknown.role": "User",
    "names.kind.department": "Department",
    "names.kind.property_company": "Property company",
    "names.kind.owners_committee": "Owners' committee",
    "names.kind.volunteer_group": "Volunteer group",
    "names.kind.grid_worker": "Grid worker",
  },
});

const data = {
  loaded: null, // the load() promise
  directory: null,
  parties: new Map(), // "kind:id" (assignee kind) and bare id -> party
  workers: new Map(),
  cameras: new Map(),
};

function pick(name) {
  if (!name || typeof name !== "object") return "";
  return getLang() === "en" ? name.en || name.zh || "" : name.zh || name.en || "";
}

function index(directory) {
  data.directory = directory;
  data.parties.clear();
  data.workers.clear();
  data.cameras.clear();
  for (const p of directory.parties || []) {
    data.parties.set(`${p.assignee_kind || (p.kind === "department" ? "department" : "party")}:${p.id}`, p);
    if (!data.parties.has(p.id)) data.parties.set(p.id, p);
  }
  for (const w of directory.grid_workers || []) data.workers.set(w.id, w);
  for (const c of directory.cameras || []) data.cameras.set(c.id, c);
}

// Fetch the directory once. `fetchJson(path)` is the console's authenticated fetch (JSON).
function load(fetchJson) {
  if (data.loaded) return data.loaded;
  const get = fetchJson || ((path) => fetch(path, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)))));
  data.loaded = get("/api/directory").then((directory) => {
    index(directory);
    return directory;
  }).catch((err) => {
    data.loaded = null; // a later load() tries again
    throw err;
  });
  return data.loaded;
}

function reset() {
  data.loaded = null;
}

function splitAssignee(x) {
  if (x && typeof x === "object") return [String(x.kind || ""), String(x.id ?? "")];
  const text = String(x ?? "");
  const i = text.indexOf(":");
  return i < 0 ? ["", text] : [text.slice(0, i), text.slice(i + 1)];
}

function party(x) {
  const [kind, id] = splitAssignee(x);
  if (kind === "grid_worker") return worker(id);
  const found = data.parties.get(kind ? `${kind}:${id}` : id);
  if (found) return pick(found.name);
  if (kind === "department" || kind === "party") return t("names.unknown." + kind);
  return t("names.unknown.assignee");
}

function worker(id) {
  const found = data.workers.get(String(id ?? ""));
  return found ? pick(found.name) : t("names.unknown.grid_worker");
}

function camera(id) {
  const found = data.cameras.get(String(id ?? ""));
  return found ? pick(found.name) : t("names.unknown.camera");
}

function cameraPlace(id) {
  const found = data.cameras.get(String(id ?? ""));
  return found ? pick(found.place) : "";
}

function role(id) {
  const roles = (data.directory && data.directory.roles) || {};
  return roles[id] ? pick(roles[id]) : t("names.unknown.role");
}

function kind(k) {
  const key = "names.kind." + k;
  const s = t(key);
  return s === key ? t("names.unknown.assignee") : s;
}

// The parties a case can go to: serving one of `centers`, handling `category` first (then the
// others serving those centers), and the grid workers of `grid`.
function assignees(centers, category, grid) {
  const d = data.directory || { parties: [], grid_workers: [] };
  const serving = (d.parties || []).filter((p) => (p.serves || []).some((c) => centers.includes(c)));
  const handles = (p) => (p.categories || []).includes(category);
  return {
    matching: serving.filter(handles),
    others: serving.filter((p) => !handles(p)),
    workers: (d.grid_workers || []).filter((w) => w.grid === grid),
  };
}

const LinkageNames = {
  load, reset, party, worker, camera, cameraPlace, role, kind, assignees, pick,
  get loadedDirectory() {
    return data.directory;
  },
};
window.LinkageNames = LinkageNames;
export default LinkageNames;
