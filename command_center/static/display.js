// Linkage console — names, not ids, on the main screen.
//
// Parties, workers and cameras are named by the directory (window.LinkageNames, static/names.js,
// fed by GET /api/directory); when it does not know an id (or is not loaded yet) the screen shows
// the kind of party in the user's language, never the raw id: ids go to the "details" fold only.

import { getLang, t, tAssignee, tRole } from "./i18n.js";
import LinkageNames from "./names.js";
import "./screen_strings.js";

const KIND_KEY = { department: "department", party: "party", grid_worker: "grid_worker", user: "user" };

function names() {
  return typeof window !== "undefined" && window.LinkageNames ? window.LinkageNames : LinkageNames;
}

// Fetch the directory (once) and tell the screen, which re-renders its names.
export function loadNames(apiFetch) {
  return names().load(apiFetch).then(
    () => window.dispatchEvent(new Event("linkage:names")),
    (err) => console.warn("linkage console: directory not loaded:", err && err.message),
  );
}

// A directory answer may be a string, or {name, name_en}: the name in the user's language.
function pick(value) {
  if (!value) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") {
    const zh = value.name || value.name_zh || "";
    const en = value.name_en || "";
    return getLang() === "en" ? en || zh : zh || en;
  }
  return "";
}

function ask(method, id) {
  const dir = names();
  if (!dir || typeof dir[method] !== "function" || id === null || id === undefined || id === "") return "";
  try {
    return pick(dir[method](String(id)));
  } catch (_) {
    return "";
  }
}

// "kind:id" (or {kind, id}) -> the party's name; else the kind in words ("部门" / "Dept").
export function partyName(assignee) {
  if (!assignee) return "";
  let kind;
  let id;
  if (typeof assignee === "object") {
    kind = assignee.kind;
    id = assignee.id;
  } else {
    const text = String(assignee);
    const i = text.indexOf(":");
    kind = i < 0 ? "" : text.slice(0, i);
    id = i < 0 ? text : text.slice(i + 1);
  }
  const name = kind ? ask("party", `${kind}:${id}`) : ask("party", id);
  if (name) return name;
  const label = tAssignee(`${KIND_KEY[kind] || kind}:`);
  return label.replace(/:\s*$/, "") || t("unassigned");
}

// A camera id -> its name and place from the registry; else the word "camera".
export function cameraName(id) {
  return ask("camera", id) || t("alerts.camera");
}

// The grid a camera watches (from the directory), or "" when it does not know the camera.
export function cameraGrid(id) {
  const directory = names().loadedDirectory;
  const camera = directory && (directory.cameras || []).find((c) => String(c.id) === String(id));
  return camera && camera.grid ? String(camera.grid) : "";
}

// A role id -> its name (directory first, then i18n.js).
export function roleName(role) {
  return ask("role", role) || tRole(role);
}

// A grid worker's name for the map's hover; "" when the directory does not know them.
export function workerName(id) {
  return ask("worker", id);
}

// The grid workers of a grid, by name, from the directory.
export function gridWorkers(grid) {
  const directory = names().loadedDirectory;
  if (!directory) return [];
  return (directory.grid_workers || []).filter((w) => String(w.grid) === String(grid))
    .map((w) => pick(w.name && typeof w.name === "object" && "zh" in w.name
      ? { name: w.name.zh, name_en: w.name.en } : w.name)).filter(Boolean);
}

// Called when the directory arrives so the screen can re-render names.
export function onNames(callback) {
  if (typeof window === "undefined") return;
  window.addEventListener("linkage:names", callback);
}
