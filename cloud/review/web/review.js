// The review page: polls /api/events every POLL_MS (a new event shows within a second of the
// cloud recording it), opens an event from the URL hash (#event/DEVICE/CAMERA/ID), draws its
// score curve (uPlot) and its patch grid. Every text from the server goes in as textContent.
"use strict";

const POLL_MS = 1000;
const CELL_PX = 4; // one patch in the per-frame grids
const state = {
  filters: { device: "", camera: "", since: "", until: "" },
  cameras: new Set(), // "device/camera" seen in any answer
  listText: null, // the last /api/events answer, to redraw only on change
  rows: new Map(), // key -> signature of the row (updated + title)
  seen: null, // keys already shown once (null before the first answer)
  selected: null, // key of the open event
  detailSig: null,
  plot: null,
};

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const keyOf = (e) => `${e.device}/${e.camera}/${e.event_id}`;
const when = (unix) => { // the time alone for today's events
  const d = new Date(unix * 1000);
  const today = d.toDateString() === new Date().toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
};
const secs = (t) => (t === null || t === undefined ? "…" : `${t.toFixed(1)}s`);

// ----- filters ------------------------------------------------------------------------------

function toInput(unix) {
  if (!unix) return "";
  const d = new Date(Number(unix) * 1000);
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}

function fromInput(value) {
  return value ? String(new Date(value).getTime() / 1000) : "";
}

function readFilters() {
  const q = new URLSearchParams(location.search);
  for (const k of Object.keys(state.filters)) state.filters[k] = q.get(k) || "";
  if (state.filters.camera) addCamera(`${state.filters.device}/${state.filters.camera}`);
  $("f-camera").value = state.filters.camera ? `${state.filters.device}/${state.filters.camera}` : "";
  $("f-since").value = toInput(state.filters.since);
  $("f-until").value = toInput(state.filters.until);
}

function writeFilters() {
  const [device, camera] = $("f-camera").value ? $("f-camera").value.split("/") : ["", ""];
  Object.assign(state.filters, {
    device, camera, since: fromInput($("f-since").value), until: fromInput($("f-until").value),
  });
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  history.replaceState(null, "", `${location.pathname}${q.size ? "?" + q : ""}${location.hash}`);
  state.listText = null;
  state.seen = null;
  poll(true);
}

function addCamera(name) {
  if (state.cameras.has(name)) return;
  state.cameras.add(name);
  const select = $("f-camera");
  const options = [...state.cameras].sort();
  const at = options.indexOf(name);
  const opt = el("option", "", name);
  opt.value = name;
  select.insertBefore(opt, select.options[at + 1] || null);
}

// ----- the list -----------------------------------------------------------------------------

let timer = null;

async function poll(now) {
  clearTimeout(timer);
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  try {
    const res = await fetch(`/api/events?${q}`, { cache: "no-store" });
    const text = await res.text();
    if (!res.ok) throw new Error(JSON.parse(text).error || res.statusText);
    if (text !== state.listText) {
      state.listText = text;
      renderList(JSON.parse(text).events);
    }
    setStatus(`live · ${new Date().toLocaleTimeString()}`, false);
  } catch (err) {
    setStatus(`offline: ${err.message}; retrying`, true);
  }
  timer = setTimeout(poll, POLL_MS);
}

function setStatus(text, offline) {
  $("status").textContent = text;
  $("status").classList.toggle("offline", offline);
}

function renderList(events) {
  const body = el("tbody");
  const first = state.seen === null;
  state.seen = state.seen || new Set();
  state.rows.clear();
  for (const e of events) {
    const key = keyOf(e);
    addCamera(`${e.device}/${e.camera}`);
    state.rows.set(key, `${e.updated}|${e.title}`);
    const tr = el("tr", `${key === state.selected ? "selected" : ""}`);
    if (!first && !state.seen.has(key)) tr.classList.add("fresh");
    state.seen.add(key);
    tr.dataset.key = key;
    tr.append(el("td", "", when(e.updated)), el("td", "", `${e.device}/${e.camera}`));
    const score = el("td", "", "");
    const bar = el("span", "score");
    const fill = el("span");
    fill.style.width = `${Math.round(100 * Math.min(1, Math.max(0, e.peak)))}%`;
    bar.append(fill);
    score.append(bar, document.createTextNode(e.peak.toFixed(2)));
    tr.append(score, el("td", "title", e.title || "—"), el("td", `state-${e.state}`, e.state));
    tr.addEventListener("click", () => { location.hash = hashOf(e); });
    body.append(tr);
  }
  $("events").replaceChild(body, $("events").tBodies[0]);
  $("empty").hidden = events.length > 0;
  if (state.selected && state.rows.get(state.selected) !== state.detailSig) openDetail();
}

// ----- one event ----------------------------------------------------------------------------

const hashOf = (e) =>
  `#event/${[e.device, e.camera, e.event_id].map(encodeURIComponent).join("/")}`;

function route() {
  const m = location.hash.match(/^#event\/([^/]+)\/([^/]+)\/(.+)$/);
  state.selected = m ? m.slice(1).map(decodeURIComponent).join("/") : null;
  for (const tr of $("events").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.key === state.selected);
  }
  if (!state.selected) {
    $("detail").hidden = true;
    return;
  }
  state.detailSig = null;
  openDetail();
}

async function openDetail() {
  const key = state.selected;
  state.detailSig = state.rows.get(key);
  const path = location.hash.slice("#event/".length);
  try {
    const res = await fetch(`/api/events/${path}`, { cache: "no-store" });
    const data = await res.json();
    if (key !== state.selected) return;
    if (!res.ok) throw new Error(data.error || res.statusText);
    renderDetail(data);
  } catch (err) {
    $("detail").hidden = false;
    $("d-title").textContent = `Cannot show ${key}`;
    $("d-meta").textContent = err.message;
  }
}

function renderDetail(d) {
  const e = d.event;
  const x = e.explanation;
  $("detail").hidden = false;
  $("detail").dataset.key = keyOf(e);
  $("d-title").textContent = x ? x.title : `Event ${e.event_id}`;
  const span = `${secs(e.start)}–${secs(e.end)} of the stream`;
  const facts = [`${e.device}/${e.camera}`, e.event_id, span, `peak ${e.peak.toFixed(2)} at ${secs(e.peak_t)}`, e.state];
  if (x) facts.push(`${x.category}`, `threat ${x.threat_level}`, `confidence ${Math.round(100 * x.confidence)}%`);
  $("d-meta").textContent = facts.join(" · ");
  $("d-summary").textContent = x
    ? x.summary + (x.fallback ? " (written from the evidence; the model's reply was not usable)" : "")
    : e.state === "end" ? "No explanation (yet): the explainer writes one after the event ends."
    : "The event is still open; it is explained when it ends.";
  $("d-prior").textContent = e.prior;
  drawChart(d);
  drawGrids(d);
}

function drawChart(d) {
  const box = $("chart");
  if (state.plot) { state.plot.destroy(); state.plot = null; }
  box.replaceChildren();
  box.dataset.points = String(d.frames.length);
  if (typeof uPlot === "undefined") {
    box.append(el("p", "banner", "The chart library is missing on the server: run `make install`."));
    return;
  }
  if (!d.frames.length) {
    box.append(el("p", "muted", "No frames of this event have reached the cloud."));
    return;
  }
  const t = d.frames.map((f) => f.t);
  const series = [{ label: "t (s)" },
    { label: "smoothed", stroke: "#d7301f", width: 2 },
    { label: "score", stroke: "#7aa6d8", width: 1 }];
  const data = [t, d.frames.map((f) => f.smoothed), d.frames.map((f) => f.score)];
  if (d.frames.some((f) => f.normality !== null)) {
    series.push({ label: "normality", stroke: "#8a6d3b", width: 1, dash: [4, 3] });
    data.push(d.frames.map((f) => f.normality));
  }
  const e = d.event;
  const band = (u) => { // the event's span, shaded
    const x0 = u.valToPos(e.start, "x", true);
    const x1 = u.valToPos(e.end ?? t[t.length - 1], "x", true);
    u.ctx.save();
    u.ctx.fillStyle = "rgba(215, 48, 31, 0.08)";
    u.ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    u.ctx.restore();
  };
  const opts = {
    width: Math.max(320, box.clientWidth - 8), height: 170, series,
    scales: { x: { time: false }, y: { range: [0, 1] } },
    axes: [{ label: "seconds since the stream started" }, {}],
    hooks: { drawClear: [band] },
  };
  state.plot = new uPlot(opts, data, box);
}

function drawGrids(d) {
  const summary = $("grid-summary");
  const strip = $("frames");
  summary.replaceChildren();
  strip.replaceChildren();
  if (!d.grid) return;
  const [rows, cols] = d.grid;
  const n = rows * cols;
  const kept = new Array(n).fill(0);
  const hot = new Array(n).fill(0);
  for (const f of d.frames) {
    for (const i of f.kept) kept[i] += 1;
    for (const i of f.hot) hot[i] += 1;
  }
  const frames = d.frames.length;
  summary.style.gridTemplateColumns = `repeat(${cols}, 1fr)`;
  for (let i = 0; i < n; i++) {
    const cell = el("div", "cell");
    if (hot[i]) {
      cell.classList.add("hot");
      cell.style.background = `rgba(215, 48, 31, ${0.35 + 0.65 * hot[i] / frames})`;
    } else if (kept[i]) {
      cell.classList.add("kept");
      cell.style.background = `rgba(122, 166, 216, ${0.2 + 0.8 * kept[i] / frames})`;
    }
    cell.title = `row ${Math.floor(i / cols)}, column ${i % cols}: kept in ${kept[i]}, ` +
      `hot in ${hot[i]} of ${frames} frames`;
    summary.append(cell);
  }
  for (const f of d.frames) strip.append(frameGrid(f, rows, cols));
}

function frameGrid(f, rows, cols) {
  const fig = el("figure");
  const canvas = el("canvas", "frame-grid");
  canvas.width = cols * CELL_PX;
  canvas.height = rows * CELL_PX;
  canvas.dataset.kept = String(f.kept.length);
  canvas.dataset.hot = String(f.hot.length);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const paint = (indices, color) => {
    ctx.fillStyle = color;
    for (const i of indices) {
      ctx.fillRect((i % cols) * CELL_PX, Math.floor(i / cols) * CELL_PX, CELL_PX, CELL_PX);
    }
  };
  paint(f.kept, "#7aa6d8");
  paint(f.hot, "#d7301f");
  fig.append(canvas, el("figcaption", "", `${f.t.toFixed(1)}s · ${f.smoothed.toFixed(2)}`));
  return fig;
}

// ----- start --------------------------------------------------------------------------------

function start() {
  if (typeof uPlot === "undefined") {
    $("banner").hidden = false;
    $("banner").textContent = "The chart library did not load: the server says to run " +
      "`make install` (npm ci in cloud/review/web). Events still list; curves cannot be drawn.";
  }
  readFilters();
  for (const id of ["f-camera", "f-since", "f-until"]) $(id).addEventListener("change", writeFilters);
  $("f-clear").addEventListener("click", () => {
    for (const id of ["f-camera", "f-since", "f-until"]) $(id).value = "";
    writeFilters();
  });
  $("d-close").addEventListener("click", (ev) => { ev.preventDefault(); location.hash = ""; });
  window.addEventListener("hashchange", route);
  route();
  poll(true);
}

start();
