// Linkage console — the alarm for a new major incident or an incident opened by an alert rule.
//
// A case that arrives in the queue while the console is open, not yet accepted, and either major
// or opened by an alert rule (its report's actor is "rule:<name>") raises the alarm: its row flashes
// (class "alarm"), the tab title gets a prefix, and the bundled sound (static/alarm.wav) plays,
// once the officer has enabled sound (browsers refuse to play before a user gesture; the choice
// is remembered). Opening the case, pressing "Acknowledge", or the case being accepted (here or
// on another console) stops it.

import { t } from "./i18n.js";

const SOUND_KEY = "linkage.sound";
const RULE_SOURCES = new Set(["camera", "sensor"]);

const alarm = {
  seen: null, // ids of cases already known (null: no view yet; the first view raises nothing)
  ringing: new Map(), // incident id -> "major" | "rule"
  audio: null,
  soundOn: false,
  baseTitle: null,
  plays: 0,
  onChange: () => {},
};

function readSound() {
  try {
    return localStorage.getItem(SOUND_KEY) === "on";
  } catch (_) {
    return false;
  }
}

export function initAlarm(onChange) {
  alarm.onChange = onChange || alarm.onChange;
  alarm.audio = document.getElementById("alarm-audio");
  alarm.soundOn = readSound();
  const button = document.getElementById("alarm-sound");
  if (button) {
    button.addEventListener("click", () => {
      alarm.soundOn = !alarm.soundOn;
      try {
        localStorage.setItem(SOUND_KEY, alarm.soundOn ? "on" : "off");
      } catch (_) {
        /* storage disabled */
      }
      // Playing (silently) inside the click unlocks audio for the alarms to come.
      if (alarm.soundOn && alarm.audio) {
        alarm.audio.muted = true;
        const p = alarm.audio.play();
        const unmute = () => {
          alarm.audio.pause();
          alarm.audio.currentTime = 0;
          alarm.audio.muted = false;
        };
        if (p && p.then) p.then(unmute, unmute);
        else unmute();
      }
      renderAlarm();
    });
  }
  document.getElementById("alarm-ack")?.addEventListener("click", () => acknowledgeAll());
  renderAlarm();
}

// A new view (snapshot): what it holds is known, nothing rings for it.
export function resetAlarm(view) {
  alarm.seen = new Set(Object.keys((view && view.queue) || {}));
  alarm.ringing.clear();
  renderAlarm();
}

// After a delta: cases new to this console that call for attention ring.
export function observe(view) {
  const queue = (view && view.queue) || {};
  if (alarm.seen === null) {
    resetAlarm(view);
    return;
  }
  // Cases an alert rule reported: their report in the feed names the rule as its actor.
  const byRule = new Set(((view && view.recent) || [])
    .filter((e) => e && e.type === "Reported" && String(e.actor || "").startsWith("rule:"))
    .map((e) => String(e.incident)));
  let rang = false;
  for (const [id, inc] of Object.entries(queue)) {
    if (alarm.seen.has(id)) continue;
    alarm.seen.add(id);
    if (!inc || inc.status !== "reported") continue;
    const ruled = byRule.has(id) && RULE_SOURCES.has(inc.source);
    const kind = inc.severity === "major" ? "major" : ruled ? "rule" : null;
    if (!kind) continue;
    alarm.ringing.set(id, kind);
    rang = true;
  }
  // A case that left the queue (closed, rejected) or that someone accepted stops ringing.
  for (const id of [...alarm.ringing.keys()]) {
    if (!(id in queue) || queue[id].status !== "reported") alarm.ringing.delete(id);
  }
  if (alarm.seen.size > 4 * Object.keys(queue).length + 1000) {
    alarm.seen = new Set(Object.keys(queue)); // bounded: forget the ones long gone
  }
  if (rang) play();
  renderAlarm();
}

function play() {
  if (!alarm.soundOn || !alarm.audio) return;
  alarm.audio.currentTime = 0;
  const p = alarm.audio.play();
  alarm.plays++;
  document.body.dataset.alarmPlays = String(alarm.plays);
  if (p && p.catch) p.catch(() => {});
}

export function isRinging(id) {
  return alarm.ringing.has(String(id));
}

export function acknowledge(id) {
  if (alarm.ringing.delete(String(id))) renderAlarm();
}

export function acknowledgeAll() {
  alarm.ringing.clear();
  if (alarm.audio) alarm.audio.pause();
  renderAlarm();
}

export function renderAlarm() {
  if (alarm.baseTitle === null) alarm.baseTitle = document.title;
  const count = alarm.ringing.size;
  const kinds = new Set(alarm.ringing.values());
  const prefix = kinds.has("major") ? t("alarm.title") : kinds.has("rule") ? t("alarm.titleRule") : "";
  const base = t("app.title");
  document.title = count ? `${prefix} (${count}) ${base}` : base;
  document.body.classList.toggle("alarm-on", count > 0);
  const bar = document.getElementById("alarm-bar");
  if (bar) {
    bar.hidden = count === 0;
    const text = document.getElementById("alarm-text");
    if (text && count) text.textContent = prefix + " × " + count;
  }
  const button = document.getElementById("alarm-sound");
  if (button) {
    button.textContent = alarm.soundOn ? t("alarm.enabled") : t("alarm.enable");
    button.setAttribute("aria-pressed", alarm.soundOn ? "true" : "false");
  }
  alarm.onChange();
}
