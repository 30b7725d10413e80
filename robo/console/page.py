# ruff: noqa: E501  (the pages are HTML/JS text: their lines are not Python's)
"""The console's two pages (HTML + JS + CSS in one string each; no external assets: the page works on
a robot's network without internet). LIVE_PAGE: a running session (robo.console.server's /ws protocol);
DATASET_PAGE: a recorded dataset (robo.console.dataset's routes)."""

from __future__ import annotations

_STYLE = """
:root { --bg:#0f172a; --panel:#1e293b; --text:#e2e8f0; --muted:#94a3b8; --autonomous:#3b82f6; --paused:#64748b;
  --recovery:#f59e0b; --correction:#10b981; --policy:#3b82f6; --residual:#8b5cf6; --human:#10b981; --hold:#64748b;
  --scripted:#14b8a6; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.4 system-ui,sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; gap:16px; align-items:center; padding:10px 16px; background:var(--panel); }
header h1 { font-size:16px; margin:0; }
.muted { color:var(--muted); }
main { display:grid; grid-template-columns: 1fr 340px; gap:12px; padding:12px; }
section { background:var(--panel); border-radius:8px; padding:10px; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 8px; }
#phase { font-size:26px; font-weight:700; padding:6px 14px; border-radius:8px; background:var(--autonomous); }
#phase[data-phase=paused] { background:var(--paused); } #phase[data-phase=recovery] { background:var(--recovery); }
#phase[data-phase=correction] { background:var(--correction); } #phase[data-phase=ended] { background:#475569; }
.counters { display:grid; grid-template-columns: repeat(4, 1fr); gap:8px; }
.counter b { display:block; font-size:22px; }
#cameras { display:flex; flex-wrap:wrap; gap:10px; }
figure { margin:0; } figure img { width:256px; height:256px; image-rendering:pixelated; background:#000;
  border-radius:6px; object-fit:contain; } figcaption { color:var(--muted); font-size:12px; }
canvas { width:100%; height:110px; background:#0b1220; border-radius:6px; }
#controls { display:grid; grid-template-columns: 1fr 1fr; gap:8px; }
#controls button { font-size:16px; padding:14px 8px; border:0; border-radius:8px; background:#334155; color:var(--text);
  cursor:pointer; } #controls button:hover { background:#475569; }
#controls button[data-event=quit], #controls button[data-event=stop] { background:#b91c1c; grid-column: span 2; }
#controls button kbd { float:right; color:var(--muted); }
table { width:100%; border-collapse:collapse; font-size:12px; } td { padding:2px 4px; } td:last-child { text-align:right; }
td.bad { color:#f87171; font-weight:700; }
#log { list-style:none; margin:0; padding:0; max-height:160px; overflow:auto; font-size:12px; color:var(--muted); }
#conn[data-ok=true] { color:#34d399; } #conn[data-ok=false] { color:#f87171; }
"""

LIVE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>robo console</title><style>""" + _STYLE + """</style></head>
<body>
<header><h1>robo console</h1><span id="mode" class="muted"></span><span id="phase" data-phase="">-</span>
<span id="source" class="muted"></span><span style="flex:1"></span><span id="conn" data-ok="false">connecting</span></header>
<main>
<div>
  <section><h2>cameras</h2><div id="cameras"></div></section>
  <section style="margin-top:12px"><h2>arm state</h2><canvas id="plot-state" width="900" height="110"></canvas>
  <h2 style="margin-top:8px">last actions</h2><canvas id="plot-action" width="900" height="110"></canvas></section>
</div>
<div>
  <section><h2>session</h2><div class="counters">
    <div class="counter"><span class="muted">episode</span><b id="episode">-</b></div>
    <div class="counter"><span class="muted">step</span><b id="step">-</b></div>
    <div class="counter"><span class="muted">interventions</span><b id="interventions">-</b></div>
    <div class="counter"><span class="muted">success</span><b id="success-rate">-</b></div></div>
    <div id="hint" class="muted" style="margin-top:6px"></div></section>
  <section style="margin-top:12px"><h2>controls</h2><div id="controls"></div></section>
  <section style="margin-top:12px"><h2>controller</h2><table id="health"></table></section>
  <section style="margin-top:12px"><h2>log</h2><ul id="log"></ul></section>
</div>
</main>
<script>
"use strict";
const stats = window.consoleStats = {frames: 0, ages: [], last_age_ms: null, rtt_ms: null, states: 0, connects: 0,
  acks: []};
let ws = null, history = [], controls = [], rtt = 0;
const $ = (id) => document.getElementById(id);
function pct(a, b) { return b ? Math.round(100 * a / b) + "%" : "-"; }

function plot(canvas, key) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const rows = history.map(s => s[key]).filter(v => Array.isArray(v));
  stats["plotted_" + key] = rows.length;
  if (!rows.length) return;
  const d = rows[0].length; let lo = Infinity, hi = -Infinity;
  for (const r of rows) for (const v of r) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (hi - lo < 1e-6) { hi += 1e-3; lo -= 1e-3; }
  for (let j = 0; j < d; j++) {
    ctx.strokeStyle = `hsl(${(j * 360 / d) | 0},70%,60%)`; ctx.lineWidth = 1.2; ctx.beginPath();
    rows.forEach((r, i) => { const x = i * w / Math.max(1, rows.length - 1), y = h - 4 - (r[j] - lo) / (hi - lo) * (h - 8);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  }
}

function showState(msg) {
  const s = msg.state || {};
  stats.states++;
  $("mode").textContent = `${msg.mode} ${msg.name && msg.name !== msg.mode ? "· " + msg.name : ""}`;
  const phase = s.phase || "-"; $("phase").textContent = phase; $("phase").dataset.phase = phase;
  $("source").textContent = s.source ? "acting: " + s.source : "";
  $("episode").textContent = s.episode !== undefined ? `${s.episode}/${s.episodes || "-"}` : "-";
  $("step").textContent = s.step !== undefined ? s.step : "-";
  $("interventions").textContent = s.interventions_total !== undefined ? `${s.interventions} / ${s.interventions_total}`
    : (s.interventions !== undefined ? s.interventions : "-");
  $("success-rate").textContent = s.finished ? `${pct(s.successes, s.finished)} (${s.successes}/${s.finished})` : "-";
  $("hint").textContent = s.hint || "";
  const hl = s.health || {}, rows = [];
  const flat = (k, v) => { if (v && typeof v === "object") { for (const [a, b] of Object.entries(v)) flat(k + " " + a, b); }
    else rows.push([k, v]); };
  for (const [k, v] of Object.entries(hl)) flat(k, v);
  $("health").innerHTML = rows.map(([k, v]) => {
    const bad = (k === "held" && v === true) || (k === "watchdog_trips" && v > 0) || (k === "limits_hit" && v > 0);
    const val = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : String(v);
    return `<tr><td>${k.replaceAll("_", " ")}</td><td class="${bad ? "bad" : ""}" data-key="${k}">${val}</td></tr>`; }).join("");
  if (Array.isArray(s.state) || Array.isArray(s.action)) {
    const last = history[history.length - 1];
    if (!last || last.t !== s.t) { history.push({t: s.t, state: s.state, action: s.action}); if (history.length > 150) history.shift(); }
    plot($("plot-state"), "state"); plot($("plot-action"), "action");
  }
  if (msg.controls && JSON.stringify(msg.controls) !== JSON.stringify(controls)) { controls = msg.controls; drawControls(); }
  $("log").innerHTML = (msg.notes || []).slice().reverse().map(n =>
    `<li>${new Date(n.t * 1000).toLocaleTimeString()} ${n.text.replace(/[<&]/g, c => c === "<" ? "&lt;" : "&amp;")}</li>`).join("");
}

function drawControls() {
  $("controls").innerHTML = "";
  for (const c of controls) {
    const b = document.createElement("button");
    b.dataset.key = c.key; b.dataset.event = c.event; b.id = "btn-" + c.event;
    b.innerHTML = `${c.label} <kbd>${c.shortcut === " " ? "space" : c.shortcut}</kbd>`;
    b.onclick = () => press(c.key);
    $("controls").appendChild(b);
  }
}

function press(key) { if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: "press", key})); }
document.addEventListener("keydown", (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
  const c = controls.find(c => c.shortcut === e.key);
  if (c) { e.preventDefault(); press(c.key); }
});

function showFrame(buf) {
  const view = new DataView(buf), n = view.getUint32(0);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const t_recv = performance.now();
  let fig = document.getElementById("fig-" + head.cam);
  if (!fig) {
    fig = document.createElement("figure"); fig.id = "fig-" + head.cam;
    fig.innerHTML = `<img id="cam-${head.cam}" alt="${head.cam}"><figcaption>${head.cam} · <span id="age-${head.cam}">-</span>
      · frame <span id="seq-${head.cam}">-</span></figcaption>`;
    $("cameras").appendChild(fig);
  }
  // Decode off-screen and swap the element in once loaded: the shown <img> always holds a whole frame (setting
  // src on the visible one blanks it while the next JPEG loads, and a reader sees naturalWidth 0).
  const next = new Image(), url = URL.createObjectURL(new Blob([new Uint8Array(buf, 4 + n)], {type: "image/jpeg"}));
  next.alt = head.cam;
  next.onload = () => {
    URL.revokeObjectURL(url);
    const shown = document.getElementById("cam-" + head.cam);
    next.id = "cam-" + head.cam; next.dataset.seq = head.seq; shown.replaceWith(next);
    const age = head.age_ms + rtt / 2 + (performance.now() - t_recv);
    stats.frames++; stats.last_age_ms = age; stats.ages.push(age); if (stats.ages.length > 500) stats.ages.shift();
    document.getElementById("age-" + head.cam).textContent = `age ${age.toFixed(0)} ms`;
    document.getElementById("seq-" + head.cam).textContent = head.seq;
  };
  next.onerror = () => URL.revokeObjectURL(url);
  next.src = url;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}/ws${location.search}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { stats.connects++; $("conn").textContent = "live"; $("conn").dataset.ok = "true"; };
  ws.onclose = () => { $("conn").textContent = "reconnecting"; $("conn").dataset.ok = "false"; setTimeout(connect, 500); };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") { showFrame(e.data); return; }
    const msg = JSON.parse(e.data);
    if (msg.type === "state") showState(msg);
    else if (msg.type === "history") { history = msg.samples.slice(-150); plot($("plot-state"), "state"); plot($("plot-action"), "action"); }
    else if (msg.type === "pong") { rtt = performance.now() - msg.t; stats.rtt_ms = rtt; }
    else if (msg.type === "ack") stats.acks.push(msg);
  };
}
setInterval(() => { if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: "ping", t: performance.now()})); }, 1000);
connect();
</script></body></html>
"""

DATASET_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>robo console: dataset</title><style>""" + _STYLE + """
main { grid-template-columns: 360px 1fr; }
#episodes { list-style:none; margin:0; padding:0; max-height:80vh; overflow:auto; }
#episodes li { padding:6px; border-radius:6px; cursor:pointer; } #episodes li:hover, #episodes li.on { background:#334155; }
.bar { display:flex; height:10px; border-radius:3px; overflow:hidden; margin-top:3px; }
.bar span, .row span { display:block; height:100%; }
.row { display:flex; height:22px; position:relative; } .row + .row { margin-top:4px; }
.timeline { position:relative; } #cursor { position:absolute; top:0; bottom:0; width:2px; background:#fff; }
.v-autonomous { background:var(--autonomous); } .v-paused { background:var(--paused); } .v-recovery { background:var(--recovery); }
.v-correction { background:var(--correction); } .v-policy { background:var(--policy); } .v-residual { background:var(--residual); }
.v-human { background:var(--human); } .v-hold { background:var(--hold); } .v-scripted { background:var(--scripted); }
.legend span { display:inline-block; padding:1px 6px; margin-right:6px; border-radius:3px; font-size:12px; }
#frames img { width:320px; height:320px; image-rendering:pixelated; background:#000; border-radius:6px; object-fit:contain; }
</style></head>
<body>
<header><h1>robo console · dataset</h1><span id="root" class="muted"></span></header>
<main>
<section><h2>episodes</h2><ul id="episodes"></ul></section>
<section><h2 id="title">episode</h2>
  <div id="frames" style="display:flex;gap:10px;flex-wrap:wrap"></div>
  <div style="margin:8px 0"><button id="play">play</button> <input id="scrub" type="range" min="0" max="0" value="0"
    style="width:60%"> <span id="frame-label" class="muted"></span></div>
  <div class="timeline"><div class="muted">segment</div><div class="row" id="row-segment" data-row="segment"></div>
    <div class="muted">action_source</div><div class="row" id="row-action_source" data-row="action_source"></div>
    <div id="cursor"></div></div>
  <div class="legend" style="margin-top:8px">
    <span class="v-autonomous">autonomous</span><span class="v-paused">paused</span><span class="v-recovery">recovery</span>
    <span class="v-correction">correction</span> | <span class="v-policy">policy</span><span class="v-residual">residual</span>
    <span class="v-human">human</span><span class="v-hold">hold</span><span class="v-scripted">scripted</span></div>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null, ep = null, k = 0, timer = null;
const q = location.search;
function runs(vals) { const out = []; for (const v of vals) { if (out.length && out[out.length - 1][0] === v) out[out.length - 1][1]++; else out.push([v, 1]); } return out; }
function bar(el, rs, n) { el.innerHTML = rs.map(([v, c]) => `<span class="v-${v}" data-value="${v}" data-frames="${c}" title="${v}: ${c} frames" style="width:${100 * c / n}%"></span>`).join(""); }
async function load() {
  info = await (await fetch("/api/episodes" + q)).json();
  $("root").textContent = `${info.root} · ${info.episodes.length} episodes · ${info.fps} fps`;
  $("episodes").innerHTML = info.episodes.map(e => `<li data-index="${e.index}"><b>#${e.episode_index}</b> ${e.length} frames ·
    ${e.success === null ? "unmarked" : e.success ? "success" : "failure"} · ${e.interventions} intervention(s)
    <div class="bar">${e.segments.map(([v, c]) => `<span class="v-${v}" style="width:${100 * c / e.length}%"></span>`).join("")}</div></li>`).join("");
  for (const li of document.querySelectorAll("#episodes li")) li.onclick = () => open(+li.dataset.index);
  if (info.episodes.length) open(0);
}
async function open(i) {
  stop();
  for (const li of document.querySelectorAll("#episodes li")) li.classList.toggle("on", +li.dataset.index === i);
  ep = await (await fetch(`/api/episode/${i}` + q)).json();
  $("title").textContent = `episode ${i} · ${ep.length} frames · ${ep.success === null ? "unmarked" : ep.success ? "success" : "failure"}`;
  $("frames").innerHTML = info.cameras.map(c => `<figure><img id="img-${c}" alt="${c}"><figcaption>${c}</figcaption></figure>`).join("");
  bar($("row-segment"), runs(ep.segment), ep.length); bar($("row-action_source"), runs(ep.action_source), ep.length);
  $("scrub").max = ep.length - 1; show(0);
}
function show(f) {
  k = Math.max(0, Math.min(ep.length - 1, f)); $("scrub").value = k;
  for (const c of info.cameras) $("img-" + c).src = `/api/episode/${ep.index}/frame/${c}/${k}` + q;
  $("frame-label").textContent = `frame ${k}: ${ep.action_source[k]} / ${ep.segment[k]}` + (ep.intervention_id[k] >= 0 ? ` (intervention ${ep.intervention_id[k]})` : "");
  $("frame-label").dataset.frame = k;
  $("cursor").style.left = `${100 * (k + 0.5) / ep.length}%`;
}
function stop() { if (timer) clearInterval(timer); timer = null; $("play").textContent = "play"; }
$("play").onclick = () => { if (timer) { stop(); return; } $("play").textContent = "pause";
  timer = setInterval(() => { if (k >= ep.length - 1) stop(); else show(k + 1); }, 1000 / info.fps); };
$("scrub").oninput = (e) => { stop(); show(+e.target.value); };
document.addEventListener("keydown", (e) => { if (!ep) return; if (e.key === " ") { e.preventDefault(); $("play").click(); }
  else if (e.key === "ArrowRight") show(k + 1); else if (e.key === "ArrowLeft") show(k - 1); });
load();
</script></body></html>
"""
