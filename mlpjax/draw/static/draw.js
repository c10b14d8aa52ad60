// mlpjax draw in a browser: draw on the canvas (Pointer Events: mouse, touch, pen), send its grey levels to the
// server (POST /api/predict, 280*280 bytes, 255 white) while drawing, show what comes back. Nothing is loaded
// from anywhere but this server.
"use strict";

const state = {
  info: null,
  strokes: [],          // [[{x, y}, ...], ...] in canvas pixels
  current: null,        // the stroke being drawn
  version: 0,           // bumped at every change of the drawing
  shown: -1,            // the version the page shows
  inflight: false,
  lastSent: -Infinity,
  timer: null,
  strokeEnd: null,      // {version, time} of the last pen-up, for the latency line
  serverMs: null,       // the server's time for the last answer (its Server-Timing header)
};

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = ctx.fillStyle = "#000";
  ctx.lineWidth = state.info ? state.info.brush : 20;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const stroke of state.strokes.concat(state.current ? [state.current] : [])) {
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0].x, stroke[0].y, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0].x, stroke[0].y);
    for (const p of stroke.slice(1)) ctx.lineTo(p.x, p.y);
    ctx.stroke();
  }
}

function point(event) {
  const r = canvas.getBoundingClientRect();
  return { x: (event.clientX - r.left) * canvas.width / r.width, y: (event.clientY - r.top) * canvas.height / r.height };
}

function changed() {
  state.version += 1;
  redraw();
  schedule();
  setIdle();
}

canvas.addEventListener("pointerdown", (e) => {
  if (!state.info || !state.info.drawable || e.button !== 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  state.current = [point(e)];
  changed();
});
canvas.addEventListener("pointermove", (e) => {
  if (!state.current) return;
  e.preventDefault();
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const c of (events.length ? events : [e])) state.current.push(point(c));
  changed();
});
function penUp(e) {
  if (!state.current) return;
  state.strokes.push(state.current);
  state.current = null;
  changed();
  state.strokeEnd = { version: state.version, time: performance.now() };
  schedule(true);
}
canvas.addEventListener("pointerup", penUp);
canvas.addEventListener("pointercancel", penUp);

function clearAll() {
  state.strokes = [];
  state.current = null;
  changed();
}
function undo() {
  state.strokes.pop();
  changed();
}
$("clear").addEventListener("click", clearAll);
$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") clearAll();
  if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
});

// ---- asking the server: at most every live_ms while drawing, one request at a time, the last change always --
function schedule(now = false) {
  if (state.inflight || state.shown === state.version) return;
  if (state.timer !== null) {
    if (!now) return;
    clearTimeout(state.timer);
  }
  const wait = now ? 0 : Math.max(0, state.info.live_ms - (performance.now() - state.lastSent));
  state.timer = setTimeout(() => { state.timer = null; send(); }, wait);
}

function greyLevels() {
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];
  return grey;
}

async function send() {
  const version = state.version;
  if (state.strokes.length === 0 && !state.current) {  // nothing drawn: nothing to ask
    show({ empty: true, text: "draw a digit first" }, version);
    setIdle();
    return;
  }
  state.inflight = true;
  state.lastSent = performance.now();
  let retry = 0;
  try {
    const response = await fetch("api/predict", {
      method: "POST", body: greyLevels(), headers: { "Content-Type": "application/octet-stream" },
    });
    if (response.ok) {
      const timing = /dur=([0-9.]+)/.exec(response.headers.get("Server-Timing") || "");
      state.serverMs = timing ? Number(timing[1]) : null;
      show(await response.json(), version);
    }
    else if (response.status === 429) retry = 250;
    else $("result").textContent = "error: " + (await response.text()).trim();
  } catch (err) {
    $("result").textContent = "the server does not answer (stopped?)";
    retry = 1000;
  } finally {
    state.inflight = false;
  }
  if (retry) setTimeout(schedule, retry); else schedule(state.strokeEnd !== null);  // after a pen-up: at once
  setIdle();
}

function setIdle() {
  const idle = !state.inflight && !state.current && state.timer === null && state.shown === state.version;
  document.body.dataset.state = idle ? "idle" : "busy";
  document.body.dataset.version = String(state.shown);
}

// ---- showing ------------------------------------------------------------------------------------------------
function paint(target, side, values, colour) {  // values: side*side numbers; colour(v) -> [r, g, b]
  const c = target.getContext("2d");
  const img = c.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const [r, g, b] = colour(i < values.length ? values[i] : NaN);
    img.data.set([r, g, b, 255], 4 * i);
  }
  c.putImageData(img, 0, 0);
}
const grey = (v) => { const g = Math.round(255 * Math.min(1, Math.max(0, v))); return [g, g, g]; };
function diverging(scale) {  // negative blue, zero white, positive red
  return (v) => {
    if (Number.isNaN(v)) return [40, 40, 40];
    const t = Math.max(-1, Math.min(1, v / scale));
    return t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
                  : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
  };
}
const maxAbs = (a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
const flat = (rows) => [].concat(...rows);

function show(answer, version) {
  state.shown = Math.max(state.shown, version);
  $("result").textContent = answer.text;
  document.querySelectorAll("#bars .bar").forEach((bar, i) => {
    const p = answer.empty ? 0 : answer.probabilities[i];
    bar.firstChild.style.width = (100 * p).toFixed(1) + "%";
    bar.classList.toggle("best", !answer.empty && i === answer.class);
  });
  document.querySelectorAll("#bars .pct").forEach((pct, i) => {
    pct.textContent = answer.empty ? "" : (100 * answer.probabilities[i]).toFixed(1) + "%";
  });
  const side = state.info.side;
  const blank = new Array(side * side).fill(0);
  const input = answer.empty ? blank : flat(answer.input);
  paint($("input"), side, input, grey);
  if (answer.empty) {
    paint($("saliency"), side, blank, grey);
    $("saliency-class").textContent = "the predicted class";
    showActivations([], []);
    $("units").replaceChildren();
  } else {
    const saliency = flat(answer.saliency), scale = maxAbs(saliency);
    // red: more ink there raises the predicted class's logit; blue: lowers it
    paint($("saliency"), side, saliency, diverging(scale));
    $("saliency-class").textContent = answer.name;
    showActivations(answer.activations, answer.units);
    showUnits(answer);
  }
  if (state.strokeEnd && version >= state.strokeEnd.version) {
    const ms = performance.now() - state.strokeEnd.time;
    const server = state.serverMs === null ? "" : ` (the server's part: ${state.serverMs.toFixed(0)} ms)`;
    $("latency").textContent = `stroke to prediction: ${ms.toFixed(0)} ms${server}`;
    document.body.dataset.latencyMs = ms.toFixed(1);
    state.strokeEnd = null;
  }
}

function showActivations(values, units) {
  const target = $("activations");
  const h = state.info.hidden;
  const cols = Math.max(1, Math.ceil(Math.sqrt(2 * h))), rows = Math.max(1, Math.ceil(h / cols));
  const cell = 10;
  target.width = cols * cell;
  target.height = rows * cell;
  const c = target.getContext("2d");
  c.fillStyle = "#000";
  c.fillRect(0, 0, target.width, target.height);
  const top = values.length ? Math.max(...values) : 0;
  const colour = (v) => {  // black, red, yellow, white: a heat map
    const t = top > 0 ? Math.max(0, Math.min(1, v / top)) : 0;
    return `rgb(${Math.round(255 * Math.min(1, 3 * t))},${Math.round(255 * Math.min(1, Math.max(0, 3 * t - 1)))},` +
           `${Math.round(255 * Math.max(0, 3 * t - 2))})`;
  };
  values.forEach((v, i) => {
    c.fillStyle = colour(v);
    c.fillRect((i % cols) * cell, Math.floor(i / cols) * cell, cell, cell);
  });
  c.strokeStyle = "#3bf";
  c.lineWidth = 2;
  for (const u of units) c.strokeRect((u % cols) * cell + 1, Math.floor(u / cols) * cell + 1, cell - 2, cell - 2);
  target.style.width = Math.min(320, target.width) + "px";
}

function showUnits(answer) {
  const side = state.info.side;
  const figures = answer.units.map((unit, k) => {
    const figure = document.createElement("figure");
    const c = document.createElement("canvas");
    c.width = c.height = side;
    c.className = "pixels";
    const w = flat(answer.weights[k]);
    paint(c, side, w, diverging(maxAbs(w)));
    const caption = document.createElement("figcaption");
    caption.textContent = `unit ${unit}: ${answer.activations[unit].toFixed(2)}`;
    figure.append(c, caption);
    return figure;
  });
  $("units").replaceChildren(...figures);
}

function buildBars(classes) {
  const bars = $("bars");
  bars.replaceChildren();
  classes.forEach((name) => {
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.append(document.createElement("span"));
    const pct = document.createElement("span");
    pct.className = "pct";
    bars.append(label, bar, pct);
  });
}

async function start() {
  try {
    state.info = await (await fetch("api/info")).json();
  } catch (err) {
    $("about").textContent = "the server does not answer";
    return;
  }
  $("about").textContent = state.info.about;
  if (!state.info.drawable) {
    $("refusal").textContent = state.info.reason;
    $("refusal").hidden = false;
    $("page").hidden = true;
    document.body.dataset.state = "refused";
    return;
  }
  $("hidden-count").textContent = String(state.info.hidden);
  buildBars(state.info.classes);
  redraw();
  show({ empty: true, text: "draw a digit first" }, 0);
  setIdle();
}

start();
