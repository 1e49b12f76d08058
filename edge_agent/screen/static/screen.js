// The officer's screen. Everything from the unit is written with textContent, never parsed as HTML: a
// hotlist entry or a note that carries markup is shown as the text it is.
"use strict";

const $ = (id) => document.getElementById(id);
const HIT_FRESH_MS = 60000;  // a hit replayed on reconnect pops up only if it is this recent
const MAX_CARDS = 50;
const TOUCH_EVERY_MS = 20000;
// measured in the page: how long after the read was stored each hit became visible (ms)
window.screenFigures = { hitVisibleMs: [], events: 0 };

let me = null;
let events = null;
let theme = null;        // the theme the agent calls for (sun), unless the officer chose one
let override = null;     // the officer's choice, for this browser
let current = null;      // the hit on screen: its alert id
const openHits = new Map();  // alert id -> the read event, for hits not yet disposed on this screen
const seenReads = new Set();
let pictureTimer = null;
let lastTouch = 0;
let caughtUp = false;    // the stream has sent what it kept: what follows happens now

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (me && me.csrf) headers["x-csrf-token"] = me.csrf;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   credentials: "same-origin" });
  } catch (err) {
    throw new Error("the unit does not answer: check the cable or the car's network");
  }
  let data = {};
  try { data = await response.json(); } catch (err) { data = {}; }
  if (response.status === 401) { showLogin(data.error || "log in again"); throw new Error(data.error || "log in again"); }
  if (!response.ok) throw new Error(data.error || `the unit answered ${response.status}`);
  return data;
}

function say(text, where) { (where || $("message")).textContent = text || ""; }

// --- login and lock --------------------------------------------------------

function showLogin(why) {
  if (events) { events.close(); events = null; }
  stopPictures();
  me = null;
  $("app").hidden = true;
  $("hit").hidden = true;
  $("read").hidden = true;
  $("login").hidden = false;
  say(why === "not logged in" ? "" : why, $("login-message"));
  $("login-password").value = "";
  $("login-user").focus();
}

async function logIn(event) {
  event.preventDefault();
  say("", $("login-message"));
  try {
    const data = await fetch("/api/login", {
      method: "POST", headers: { "content-type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ user: $("login-user").value, password: $("login-password").value,
                             purpose: $("login-purpose").value }),
    });
    const body = await data.json().catch(() => ({}));
    if (!data.ok) { say(body.error || `the unit answered ${data.status}`, $("login-message")); return; }
    start(body);
  } catch (err) {
    say("the unit does not answer: check the cable or the car's network", $("login-message"));
  }
}

function start(session) {
  me = session;
  $("login").hidden = true;
  $("app").hidden = false;
  $("login-password").value = "";
  $("strip-user").textContent = `${me.user} (${me.role}) · ${me.purpose}`;
  const tabs = $("tabs");
  tabs.replaceChildren();
  for (const view of me.views) {
    const b = el("button", { live: "Live", alerts: "Alerts", plates: "My plates", cameras: "Cameras" }[view]);
    b.type = "button"; b.dataset.view = view; b.id = `tab-${view}`;
    b.addEventListener("click", () => show(view));
    tabs.append(b);
  }
  const buttons = $("hit-buttons");
  buttons.replaceChildren();
  for (const d of me.dispositions) {
    const b = el("button", d.replace(/-/g, " "));
    b.type = "button"; b.dataset.disposition = d;
    b.addEventListener("click", () => dispose(d));
    buttons.append(b);
  }
  const lists = $("plate-list");
  lists.replaceChildren(...me.lists.map((l) => { const o = el("option", l.replace(/_/g, " ")); o.value = l; return o; }));
  theme = me.theme === "auto" ? theme : me.theme;
  applyTheme();
  show(me.views[0]);
  listen();  // the status strip for everyone; reads and hits for the roles that may see them
}

// --- live view -------------------------------------------------------------

function listen() {
  if (events) events.close();
  events = new EventSource("/api/events");
  caughtUp = false;
  events.addEventListener("read", (e) => { window.screenFigures.events += 1; onRead(JSON.parse(e.data)); });
  events.addEventListener("ready", () => { caughtUp = true; });
  events.addEventListener("status", (e) => onStatus(JSON.parse(e.data)));
  events.addEventListener("locked", (e) => showLogin(JSON.parse(e.data).why));
  events.onopen = () => link(true);
  events.onerror = async () => {
    link(false);
    caughtUp = false;
    if (events && events.readyState === EventSource.CLOSED) {  // refused: ask why (locked, logged out)
      try { await api("GET", "/api/me"); setTimeout(listen, 1000); } catch (err) { /* showLogin has run */ }
    }
  };
}

function link(up) {
  const s = $("strip-link");
  s.textContent = up ? "screen live" : "screen reconnecting";
  s.className = up ? "pill ok" : "pill bad";
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString();
}

function place(p) {
  return p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)} (${p.fix})` : "no GPS fix";
}

function onRead(ev) {
  if (seenReads.has(ev.read_id)) return;
  seenReads.add(ev.read_id);
  const listed = ev.alert ? ev.alert.list_words : ev.hits.length ? ev.hits[0].list_words : null;
  const card = el("li", null, "card" + (listed ? " is-hit" : ""));
  card.dataset.readId = ev.read_id;
  const img = el("img");
  img.alt = `plate ${ev.plate}`;
  if (ev.crop) img.src = ev.crop;
  const text = el("div");
  const plate = el("div", ev.plate, "plate");
  if (listed) plate.append(el("span", listed, "badge"));
  text.append(plate,
    el("div", `${ev.state || "state ?"} · ${Math.round(ev.confidence * 100)}% · camera ${ev.camera} · ${when(ev.at)}`, "meta"),
    el("div", place(ev.position), "meta"));
  card.append(img, text);
  card.addEventListener("click", () => (ev.alert ? openAlert(ev.alert.id) : openRead(ev.read_id)));
  const list = $("reads");
  list.prepend(card);
  while (list.children.length > MAX_CARDS) list.lastChild.remove();
  if (ev.alert && Date.now() - ev.stored_at < HIT_FRESH_MS) {
    openHits.set(ev.alert.id, ev);
    showHit(ev);
    // timed after the frame that draws the hit view has been painted: the next frame's callback
    if (caughtUp) requestAnimationFrame(() => requestAnimationFrame(() => window.screenFigures.hitVisibleMs.push(Date.now() - ev.stored_at)));
    loadAlert(ev.alert.id);
  }
}

function onStatus(s) {
  const cams = $("strip-cameras");
  const bad = s.cameras.filter((c) => c.state !== "ok" && c.state !== "ended");
  cams.textContent = "cameras " + (s.cameras.map((c) => `${c.id} ${c.state}`).join(", ") || "none");
  cams.className = bad.length ? "pill bad" : "pill ok";
  const gps = $("strip-gps");
  gps.textContent = `GPS ${s.gps}`;
  gps.className = /fix/.test(s.gps) && !/no fix/.test(s.gps) ? "pill ok" : "pill bad";
  const sync = $("strip-sync");
  sync.textContent = `sync ${s.sync}` + (s.waiting ? ` (${s.waiting} waiting)` : "");
  sync.className = s.sync === "connected" ? "pill ok" : "pill bad";
  const hot = $("strip-hotlist");
  const hours = s.hotlist_age_s == null ? null : s.hotlist_age_s / 3600;
  hot.textContent = hours == null ? "no hotlist" : `hotlist v${s.hotlist_version}, ${hours < 1 ? Math.round(hours * 60) + " min" : hours.toFixed(1) + " h"} old`;
  hot.className = hours != null && hours < 24 ? "pill ok" : "pill bad";
  if (s.theme !== theme) { theme = s.theme; applyTheme(); }
}

// --- the hit view ----------------------------------------------------------

function showHit(ev) {
  const a = ev.alert;
  current = a.id;
  $("hit-list").textContent = a.list_words;
  $("hit-plate").textContent = ev.plate;
  $("hit-match").textContent = `${a.match} match with ${a.lic} ${a.lis || ""} · ${ev.state || "state ?"} · camera ${ev.camera} · ${when(ev.at)}`;
  $("hit-crop").src = ev.crop || "";
  $("hit-scene").removeAttribute("src");
  entry(a.details, a);
  $("hit-words").textContent = a.message;
  $("hit-clets").textContent = a.clets;
  $("hit-note").value = "";
  say("", $("hit-message"));
  $("hit-history").replaceChildren();
  others();
  $("hit").hidden = false;
}

function entry(details, a) {
  const dl = $("hit-entry");
  dl.replaceChildren();
  const rows = [["list", a.list_words || a.list], ["plate listed", `${a.lic} ${a.lis || ""}`], ...Object.entries(details || {})];
  for (const [k, v] of rows) dl.append(el("dt", k.replace(/_/g, " ")), el("dd", v));
}

function others() {
  const box = $("hit-others");
  box.replaceChildren();
  for (const [id, ev] of openHits) {
    if (id === current) continue;
    const b = el("button", `${ev.plate} · ${ev.alert.list_words}`);
    b.type = "button";
    b.addEventListener("click", () => { showHit(ev); loadAlert(id); });
    box.append(b);
  }
}

async function loadAlert(id) {
  try {
    const a = await api("GET", `/api/alerts/${id}`);
    if (current !== id) return;
    if (a.scene) $("hit-scene").src = a.scene;
    if (a.crop && !$("hit-crop").getAttribute("src")) $("hit-crop").src = a.crop;
    entry(a.details, { ...a, list_words: a.list.replace(/_/g, " ") });
    history(a.history);
  } catch (err) { say(err.message, $("hit-message")); }
}

async function openAlert(id) {
  try {
    const a = await api("GET", `/api/alerts/${id}`);
    const ev = { plate: a.plate_read, state: a.state_read, camera: a.camera_id, at: a.raised_at, crop: a.crop,
                 alert: { id: a.id, list: a.list, list_words: a.list.replace(/_/g, " "), lic: a.lic, lis: a.lis,
                          match: a.match, details: a.details, message: a.message,
                          clets: "Confirm through CLETS before acting." } };
    showHit(ev);
    if (a.scene) $("hit-scene").src = a.scene;
    history(a.history);
  } catch (err) { say(err.message); }
}

async function openRead(id) {
  try {
    const r = await api("GET", `/api/reads/${encodeURIComponent(id)}`);
    $("read-plate").textContent = r.plate;
    $("read-meta").textContent = `${r.state || "state ?"} · ${Math.round(r.confidence * 100)}% · camera ${r.camera_id} · ${when(r.captured_at)}`;
    $("read-crop").src = r.crop || "";
    if (r.scene) $("read-scene").src = r.scene; else $("read-scene").removeAttribute("src");
    $("read-place").textContent = r.lat == null ? "no GPS fix" : `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)} (${r.fix})`;
    $("read").hidden = false;
  } catch (err) { say(err.message); }
}

function history(entries) {
  const ol = $("hit-history");
  ol.replaceChildren(...entries.map((h) =>
    el("li", `${h.disposition} by ${h.user} at ${when(h.at)}` + (h.note ? ` — ${h.note}` : ""))));
}

const requests = new Map();  // "alert disposition note" -> request id: a retry is the same request

async function dispose(disposition) {
  const id = current;
  const note = $("hit-note").value.trim();
  if (me.note_required.includes(disposition) && !note) {
    say(`${disposition.replace(/-/g, " ")} needs a note saying why`, $("hit-message"));
    $("hit-note").focus();
    return;
  }
  const key = `${id} ${disposition} ${note}`;
  if (!requests.has(key)) requests.set(key, uuid4());
  const buttons = [...$("hit-buttons").children];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const r = await api("POST", `/api/alerts/${id}/dispositions`, { disposition, note, request_id: requests.get(key) });
    requests.delete(key);
    say(r.repeated ? `already recorded: ${r.disposition} by ${r.user}` : `recorded: ${r.disposition} by ${r.user}`, $("hit-message"));
    $("hit-history").append(el("li", `${r.disposition} by ${r.user} at ${when(r.at)}` + (r.note ? ` — ${r.note}` : "")));
    openHits.delete(id);
    others();
  } catch (err) {
    say(err.message, $("hit-message"));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function closeHit() {
  $("hit").hidden = true;
  current = null;
}

// --- alerts, plates, cameras -----------------------------------------------

function show(view) {
  for (const v of ["live", "alerts", "plates", "cameras"]) {
    $(`view-${v}`).hidden = v !== view;
    const tab = $(`tab-${v}`);
    if (tab) tab.setAttribute("aria-selected", String(v === view));
  }
  if (view === "alerts") loadAlerts();
  if (view === "plates") loadPlates();
  if (view === "cameras") startPictures(); else stopPictures();
}

async function loadAlerts() {
  try {
    const { alerts } = await api("GET", "/api/alerts");
    $("alerts").replaceChildren(...alerts.map((a) => {
      const li = el("li");
      const open = el("button", "Open"); open.type = "button";
      open.addEventListener("click", () => openAlert(a.id));
      li.append(el("span", a.plate_read, "plate"), el("span", a.list.replace(/_/g, " ")),
        el("span", `${when(a.raised_at)} · ${a.disposition ? a.disposition + " by " + a.disposition_by : "open"}`, "meta"), open);
      return li;
    }));
  } catch (err) { say(err.message); }
}

async function loadPlates() {
  try {
    const { plates } = await api("GET", "/api/plates");
    $("plates").replaceChildren(...plates.map((p) => {
      const li = el("li");
      const remove = el("button", "Remove"); remove.type = "button";
      remove.addEventListener("click", async () => {
        try { await api("DELETE", `/api/plates/${p.id}`); say(`removed ${p.plate}`); loadPlates(); } catch (err) { say(err.message); }
      });
      li.append(el("span", p.plate, "plate"), el("span", `${p.state || "any state"} · ${p.list.replace(/_/g, " ")}`),
        el("span", `${p.reason} · by ${p.entered_by}` + (p.expires ? ` · until ${p.expires}` : ""), "meta"), remove);
      return li;
    }));
  } catch (err) { say(err.message); }
}

async function addPlate(event) {
  event.preventDefault();
  try {
    const p = await api("POST", "/api/plates", { plate: $("plate-text").value, state: $("plate-state").value,
      list: $("plate-list").value, reason: $("plate-reason").value, expires: $("plate-expires").value || null });
    say(`added ${p.plate}: it matches from now on`);
    $("plate-form").reset();
    loadPlates();
  } catch (err) { say(err.message); }
}

function startPictures() {
  const box = $("pictures");
  if (!box.children.length) {
    for (const id of me.cameras) {
      const fig = el("figure");
      const img = el("img"); img.alt = `camera ${id}: no picture yet`; img.dataset.camera = id;
      fig.append(img, el("figcaption", `camera ${id}`));
      box.append(fig);
    }
  }
  const refresh = () => {
    for (const img of box.querySelectorAll("img")) img.src = `/api/cameras/${encodeURIComponent(img.dataset.camera)}/picture.jpg?t=${Date.now()}`;
  };
  stopPictures();
  refresh();
  pictureTimer = setInterval(refresh, 1000);
}

function stopPictures() { if (pictureTimer) { clearInterval(pictureTimer); pictureTimer = null; } }

// --- theme and touch -------------------------------------------------------

function applyTheme() {
  const t = override || theme || "day";
  document.documentElement.dataset.theme = t;
  $("theme-button").textContent = t === "night" ? "Day" : "Night";
}

function touched() {
  const now = Date.now();
  if (!me || now - lastTouch < TOUCH_EVERY_MS) return;
  lastTouch = now;
  api("POST", "/api/touch").catch(() => {});
}

document.addEventListener("DOMContentLoaded", async () => {
  override = localStorage.getItem("alpr-theme");
  $("login-form").addEventListener("submit", logIn);
  $("plate-form").addEventListener("submit", addPlate);
  $("hit-close").addEventListener("click", closeHit);
  $("read-close").addEventListener("click", () => { $("read").hidden = true; });
  $("theme-button").addEventListener("click", () => {
    override = (override || theme || "day") === "night" ? "day" : "night";
    localStorage.setItem("alpr-theme", override);
    applyTheme();
  });
  $("lock-button").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
    showLogin("locked");
  });
  document.addEventListener("pointerdown", touched);
  document.addEventListener("keydown", touched);
  applyTheme();
  try {
    const r = await fetch("/api/me", { credentials: "same-origin" });
    const body = await r.json().catch(() => ({}));
    if (r.ok) start(body); else showLogin(body.error || "not logged in");
  } catch (err) { showLogin("the unit does not answer"); }
});
