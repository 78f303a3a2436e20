// The envgate status page: fetches /api/status (the JSON model of gateway/status) every
// 1.5 s and renders it. Read-only. Every text goes in with textContent, never as HTML:
// device names and error messages can come from outside (MQTT topics).
"use strict";

const POLL_MS = 1500;

// el builds an element: el("td", {class: "num"}, "52.1", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function num(v, digits) {
  if (v === null || v === undefined) return "—";
  return Number(v).toFixed(digits === undefined ? 1 : digits);
}

// value prints a reading's value with up to 3 decimals and no trailing zeros.
function value(v) {
  if (v === null || v === undefined) return "—";
  return String(Number(Number(v).toFixed(3)));
}

function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
  return (s / 86400).toFixed(1) + " d ago";
}

function duration(s) {
  if (s === null || s === undefined) return "unknown";
  if (s < 1) return "now";
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function since(iso, now) {
  if (!iso) return null;
  return Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000);
}

// upBadge: UP, DOWN, or NOT POLLED for a device whose health is unknown.
function upBadge(up) {
  if (up === true) return el("span", {class: "badge up", "data-role": "up"}, "UP");
  if (up === false) return el("span", {class: "badge down", "data-role": "up"}, "DOWN");
  return el("span", {class: "badge unknown", "data-role": "up"}, "NOT POLLED");
}

// maintBadge: IN MAINTENANCE or CALIBRATING for a device in a window, else null.
function maintBadge(m) {
  if (!m) return null;
  return el("span", {class: "badge maint", "data-role": "maint"}, m.kind === "calibration" ? "CALIBRATING" : "IN MAINTENANCE");
}

function renderMaintenance(st) {
  if (st.maintenance.length === 0) return [el("p", {class: "muted"}, "no device in maintenance or calibration")];
  return st.maintenance.map(m => el("article", {class: "card", "data-maint": m.device, "data-kind": m.kind},
    el("div", {class: "card-head"}, el("span", {class: "name"}, m.device), maintBadge(m)),
    el("p", {}, (m.reason ? m.reason + " · " : "") + "since " + age(m.age)),
    el("p", {class: "muted"}, "Readings are stored, flagged " + (m.kind === "calibration" ? "C" : "M") +
      " and left out of the noise, air and water figures (" + m.excluded + " so far).")));
}

function renderDevices(st) {
  const maint = new Map((st.maintenance || []).map(m => [m.device, m]));
  const out = [];
  for (const g of st.groups) {
    const head = el("h3", {}, g.name + " ", el("span", {class: "muted"}, "(" + g.kind + ")"));
    if (g.connected === true) head.append(" ", el("span", {class: "badge up"}, "CONNECTED"));
    if (g.connected === false) head.append(" ", el("span", {class: "badge down"}, "DISCONNECTED"));
    out.push(head);
    if (g.devices.length === 0) out.push(el("p", {class: "muted"}, "no devices seen yet"));
    for (const d of g.devices) {
      const state = d.up === true ? "up" : d.up === false ? "down" : "unknown";
      const card = el("article", {class: "card" + (state === "down" ? " is-down" : ""), "data-device": d.name, "data-up": state},
        el("div", {class: "card-head"},
          el("span", {class: "name"}, d.name),
          el("span", {}, maintBadge(maint.get(d.name)), " ", upBadge(d.up))),
        el("p", {class: "muted"}, "last reading " + age(d.age) +
          (d.last_poll ? " · polled " + age(since(d.last_poll, st.now)) : "")));
      if (d.last_error) {
        card.append(el("p", {class: "error", "data-role": "error"},
          "Last error (" + age(since(d.last_error_at, st.now)) + "): " + d.last_error));
      }
      if (d.readings.length > 0) {
        const rows = d.readings.map(r => el("tr", {"data-quantity": r.quantity, "data-site": r.site},
          el("td", {}, r.quantity),
          el("td", {class: "num", "data-role": "value"}, value(r.value) + " " + r.unit),
          el("td", {class: "age"}, age(r.age))));
        card.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "quantity"), el("th", {}, "value"), el("th", {}, "age"))),
          el("tbody", {}, ...rows)));
      }
      out.push(card);
    }
  }
  return out;
}

function renderNoise(st) {
  if (st.noise.length === 0) return [el("p", {class: "muted"}, "no noise monitor configured")];
  return st.noise.map(n => {
    const level = (label, v) => {
      const over = v !== null && n.limit !== null && v > n.limit;
      return el("tr", {},
        el("td", {}, label),
        el("td", {class: "num" + (over ? " over" : "")}, num(v) + " dB(A)"),
        el("td", {class: "num"}, v === null || n.limit === null ? "—" : (v - n.limit >= 0 ? "+" : "") + num(v - n.limit) + " dB"));
    };
    return el("article", {class: "card", "data-noise": n.device},
      el("div", {class: "card-head"},
        el("span", {class: "name"}, n.site + " · " + n.device),
        el("span", {class: "badge " + (n.over ? "down" : "up")}, n.over ? "OVER LIMIT" : "WITHIN LIMIT")),
      el("p", {}, "Zone " + n.zone + (n.quiet_district ? ", quiet district" : "") + " · " + n.period +
        " limit " + num(n.limit, 0) + " dB(A)"),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "running LAeq"), el("th", {}, "level"), el("th", {}, "vs limit"))),
        el("tbody", {}, level("this minute", n.laeq_1m), level("this hour", n.laeq_1h), level("this " + n.period, n.laeq_period))));
  });
}

// textOn returns black or white, whichever reads better on the background colour hex.
function textOn(hex) {
  const c = parseInt(hex.slice(1), 16);
  const r = c >> 16, g = (c >> 8) & 255, b = c & 255;
  return (0.299 * r + 0.587 * g + 0.114 * b) > 140 ? "#000" : "#fff";
}

function renderAir(st) {
  if (st.air.length === 0) return [el("p", {class: "muted"}, "no air monitor configured")];
  return st.air.map(a => {
    const box = el("span", {class: "aqi big", "data-role": "aqi", "data-level": a.level}, a.aqi === null ? "—" : num(a.aqi, 0));
    if (a.colour) {
      // The AQI level's official colour (docs/standards.md §2.5); the category is written out too.
      box.style.background = a.colour;
      box.style.color = textOn(a.colour);
    }
    return el("article", {class: "card", "data-air": a.device},
      el("div", {class: "card-head"}, el("span", {class: "name"}, a.site + " · " + a.device), box),
      el("p", {}, a.aqi === null ? "No AQI yet: the first hour has not closed." :
        "AQI " + a.edition + ", level " + a.level + ": " + a.category),
      a.primary.length > 0 ? el("p", {}, "Primary pollutant: " + a.primary.join(", ")) : null,
      el("p", {class: "muted"}, (a.hour ? "hour from " + a.hour.replace("T", " ").replace(":00Z", " UTC") : "") +
        (a.daily_aqi !== null ? " · yesterday's AQI " + num(a.daily_aqi, 0) : "")));
  });
}

function renderWater(st) {
  if (st.water.length === 0) return [el("p", {class: "muted"}, "no water section configured")];
  return st.water.map(w => el("article", {class: "card", "data-water": w.site},
    el("div", {class: "card-head"},
      el("span", {class: "name"}, w.site + " · " + w.waterbody),
      el("span", {class: "big", "data-role": "class"}, w.class ? "Class " + w.class_name : "—")),
    el("p", {}, w.met === null ? "No class yet: no window with data." :
      (w.met ? "Meets" : "Misses") + " its target, class " + w.target_name +
      (w.missed > 0 ? " · " + w.missed + " parameter(s) worse than the target" : "")),
    w.missing > 0 ? el("p", {class: "error"}, w.missing + " required parameter(s) without data") : null,
    w.met === false ? el("p", {}, el("span", {class: "badge down"}, "TARGET MISSED")) : null));
}

function renderQuality(st) {
  if (st.quality.length === 0) return [el("p", {class: "muted"}, "no reading flagged by the screening since the gateway started")];
  const rows = st.quality.map(q => el("tr", {"data-quality": q.device + "/" + q.quantity},
    el("td", {}, q.site + " · " + q.device + " · " + q.quantity),
    el("td", {}, q.flagged ? el("span", {class: "badge down"}, "FLAGGED: " + q.flagged.toUpperCase()) : el("span", {class: "badge up"}, "VALID NOW")),
    el("td", {}, Object.keys(q.counts).sort().map(r => r + " " + q.counts[r]).join(" · "))));
  return [el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "channel"), el("th", {}, "latest reading"), el("th", {}, "flagged since start"))),
    el("tbody", {}, ...rows))];
}

function renderBuffer(st) {
  const out = [];
  const b = st.buffer;
  if (b) {
    out.push(el("p", {"data-role": "buffer"}, "On disk " + bytes(b.bytes) + " of " + bytes(b.max_bytes) +
      " · " + b.unsent + " readings not yet delivered everywhere" + (b.dropped > 0 ? " · " + b.dropped + " dropped by the bounds" : "")));
    if (b.degraded) out.push(el("p", {class: "error"}, "DISK FAILING: " + b.memory_readings + " readings held in memory only"));
  }
  if (st.sinks.length === 0) {
    out.push(el("p", {class: "muted"}, "no sink configured: readings stay in the buffer"));
    return out;
  }
  const rows = st.sinks.map(s => el("tr", {"data-sink": s.name},
    el("td", {}, s.name, " ", s.failing ? el("span", {class: "badge down"}, s.persistent ? "NEEDS OPERATOR" : "FAILING") :
      el("span", {class: "badge up"}, "OK")),
    el("td", {class: "num"}, String(s.unsent)),
    el("td", {class: "num"}, duration(s.oldest_unsent_age)),
    el("td", {class: "num"}, s.delivery_rate === null ? "—" : num(s.delivery_rate) + "/s"),
    el("td", {class: "num"}, s.eta === null ? (s.unsent > 0 ? "not draining" : "—") : s.eta === 0 ? "caught up" : duration(s.eta))));
  out.push(el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "sink"), el("th", {}, "unsent"), el("th", {}, "oldest"), el("th", {}, "rate"), el("th", {}, "ETA"))),
    el("tbody", {}, ...rows)));
  return out;
}

function renderErrors(st) {
  if (st.errors.length === 0) return [el("p", {class: "muted"}, "none since the gateway started")];
  return st.errors.map(e => el("p", {class: "error"},
    el("strong", {}, e.level + " "), age(since(e.time, st.now)) + ": " + e.message + (e.attrs ? " " + e.attrs : "")));
}

function fill(id, nodes) {
  document.querySelector("#" + id + " .body").replaceChildren(...nodes);
}

let lastOK = 0;

function render(st) {
  document.getElementById("title").textContent = st.gateway + " · " + st.site;
  document.title = st.gateway + " · envgate";
  const h = document.getElementById("health");
  h.className = "badge " + (st.health === "ok" ? "up" : "down");
  h.textContent = st.health === "ok" ? "GATEWAY HEALTHY" : "UNHEALTHY: " + st.health;
  fill("maintenance", renderMaintenance(st));
  fill("devices", renderDevices(st));
  fill("noise", renderNoise(st));
  fill("air", renderAir(st));
  fill("water", renderWater(st));
  fill("quality", renderQuality(st));
  fill("buffer", renderBuffer(st));
  fill("errors", renderErrors(st));
  document.body.dataset.updated = st.now;
}

async function poll() {
  const u = document.getElementById("updated");
  try {
    const resp = await fetch("/api/status", {cache: "no-store"});
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    render(await resp.json());
    lastOK = Date.now();
    u.className = "muted";
    u.textContent = "live · updated " + new Date().toLocaleTimeString() + " · envgate";
  } catch (err) {
    u.className = "stale";
    u.textContent = "NO ANSWER from the gateway (" + err.message + ")" +
      (lastOK ? "; data shown is from " + new Date(lastOK).toLocaleTimeString() : "");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
