// Linkage console — apply view deltas.
//
// applyChanges(view, changes) applies the ops of one delta, in order, to `view`
// (mutating it) and returns it. No I/O, no globals: a pure function apart from
// the mutation of `view`.
//
//   {"op":"set",  "path":[...], "value":v}            set at path, creating intermediate objects
//   {"op":"del",  "path":[...]}                        delete the key (no error if missing)
//   {"op":"push", "path":[...], "value":{n,...}, "max":50}
//        insert keeping the array sorted by `n` descending, skip a duplicate `n`,
//        then truncate to `max` items.

function isObject(x) {
  return x !== null && typeof x === "object";
}

function checkPath(path) {
  if (!Array.isArray(path) || path.length === 0) {
    throw new TypeError("change path must be a non-empty array, got " + JSON.stringify(path));
  }
}

// Walk to the container holding the last key of `path`, creating objects if `create`.
// Returns null when the container does not exist and `create` is false.
function parentOf(view, path, create) {
  let node = view;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i];
    let next = node[key];
    if (!isObject(next)) {
      if (!create) return null;
      next = {};
      node[key] = next;
    }
    node = next;
  }
  return node;
}

function opSet(view, path, value) {
  checkPath(path);
  const parent = parentOf(view, path, true);
  parent[path[path.length - 1]] = value;
}

function opDel(view, path) {
  checkPath(path);
  const parent = parentOf(view, path, false);
  if (parent === null) return;
  const key = path[path.length - 1];
  if (Array.isArray(parent) && typeof key === "number") {
    if (key >= 0 && key < parent.length) parent.splice(key, 1);
  } else {
    delete parent[key];
  }
}

function opPush(view, path, value, max) {
  checkPath(path);
  const parent = parentOf(view, path, true);
  const key = path[path.length - 1];
  let arr = parent[key];
  if (!Array.isArray(arr)) {
    arr = [];
    parent[key] = arr;
  }
  const n = isObject(value) ? value.n : undefined;
  if (typeof n !== "number") {
    // No ordering key: newest goes first.
    arr.unshift(value);
  } else {
    // Find the insertion point (array sorted by n descending); the usual case is index 0.
    let i = 0;
    while (i < arr.length && isObject(arr[i]) && typeof arr[i].n === "number" && arr[i].n > n) i++;
    if (i < arr.length && isObject(arr[i]) && arr[i].n === n) return; // already there
    arr.splice(i, 0, value);
  }
  if (typeof max === "number" && max >= 0 && arr.length > max) arr.length = max;
}

export function applyChanges(view, changes) {
  if (!Array.isArray(changes)) return view;
  for (const ch of changes) {
    if (!isObject(ch)) continue;
    switch (ch.op) {
      case "set":
        opSet(view, ch.path, ch.value);
        break;
      case "del":
        opDel(view, ch.path);
        break;
      case "push":
        opPush(view, ch.path, ch.value, ch.max);
        break;
      default:
        throw new Error("unknown change op: " + JSON.stringify(ch.op));
    }
  }
  return view;
}

export default applyChanges;
