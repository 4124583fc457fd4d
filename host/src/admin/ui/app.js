// weir's web UI: polls the job's API (GET /query, /progress, /plugins) every 2 s with the
// session cookie and redraws in place. Plain JS, no build step; charts by uPlot (vendored).
"use strict";

const POLL_MS = 2000;
const PALETTE = ["#2f6fde", "#e8743b", "#19a979", "#945ecf", "#d64f6b", "#13a4b4", "#bf9b00", "#6c757d"];
const PHASES = ["latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets"];

const $ = (id) => document.getElementById(id);
const charts = new Map();
let startTime = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return "–";
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  const s = Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toLocaleString("en") : v.toFixed(v < 1 ? 3 : 1);
  return unit ? `${s} ${unit}` : s;
}

function shortDigest(d) {
  return d ? String(d).replace(/^sha256:/, "").slice(0, 12) : "–";
}

function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts = [];
  for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "m"]]) {
    if (s >= n) { parts.push(`${Math.floor(s / n)}${u}`); s %= n; }
  }
  parts.push(`${s}s`);
  return parts.join(" ");
}

// The charts, from the records themselves: one series per state operator and per plugin operator.
function specs(records) {
  const stateOps = new Map();
  const pluginOps = new Set();
  for (const p of records) {
    (p.stateOperators || []).forEach((s, i) => stateOps.set(i, `${i}: ${s.operatorName || "state"}`));
    for (const m of p.plugins || []) pluginOps.add(m.operator);
  }
  const perState = (field) => [...stateOps].map(([i, label]) => ({
    label, value: (p) => num(((p.stateOperators || [])[i] || {})[field]),
  }));
  const phases = [...PHASES];
  for (const p of records) {
    for (const k of Object.keys(p.durationMs || {})) {
      if (k !== "triggerExecution" && !phases.includes(k)) phases.push(k);
    }
  }
  return [
    { key: "rates", title: "Input rate vs process rate", unit: "rows/s", series: [
      { label: "input", value: (p) => num(p.inputRowsPerSecond) },
      { label: "processed", value: (p) => num(p.processedRowsPerSecond) },
    ] },
    { key: "input-rows", title: "Input rows", unit: "rows", series: [{ label: "rows", value: (p) => num(p.numInputRows) }] },
    { key: "batch-duration", title: "Batch duration", unit: "ms", series: [
      { label: "triggerExecution", value: (p) => num((p.durationMs || {}).triggerExecution) },
    ] },
    { key: "phases", title: "Duration by phase (stacked)", unit: "ms", stacked: true,
      series: phases.map((k) => ({ label: k, value: (p) => num((p.durationMs || {})[k]) ?? 0 })) },
    { key: "watermark-gap", title: "Watermark gap (batch time − watermark)", unit: "s", series: [{ label: "gap", value: (p) => {
      // No watermark yet reads as the epoch (as in Spark): no point.
      const w = Date.parse((p.eventTime || {}).watermark);
      return w > 0 ? (Date.parse(p.timestamp) - w) / 1000 : null;
    } }] },
    { key: "state-rows", title: "State rows", unit: "rows", series: perState("numRowsTotal") },
    { key: "state-updated", title: "Updated state rows", unit: "rows", series: perState("numRowsUpdated") },
    { key: "state-memory", title: "State memory", unit: "bytes", series: perState("memoryUsedBytes") },
    { key: "state-dropped", title: "Rows dropped by watermark", unit: "rows", series: perState("numRowsDroppedByWatermark") },
    { key: "plugin-time", title: "Plugin time", unit: "ms", series: [...pluginOps].sort((a, b) => a - b).map((op) => ({
      label: `operator ${op}`,
      value: (p) => (p.plugins || []).filter((m) => m.operator === op).reduce((t, m) => t + (num(m.timeMs) || 0), 0),
    })) },
    { key: "dead-letters", title: "Dead-letter rows", unit: "rows", series: [{ label: "rows", value: (p) => num(p.numDeadLetterRows) ?? 0 }] },
  ];
}

function chartCard(spec) {
  const card = el("section", { class: "card chart", "data-chart": spec.key, "data-points": "0" },
    el("div", { class: "card-head" }, el("h2", {}, spec.title), el("span", { class: "latest" })),
    el("div", { class: "chart-body" }, el("div", { class: "plot" }), el("div", { class: "hist", title: "distribution of the recent values" })));
  $("charts").append(card);
  return card;
}

function plotWidth(card) {
  return Math.max(200, card.querySelector(".chart-body").clientWidth - card.querySelector(".hist").offsetWidth - 12);
}

// `c.raw` holds the values as they are (a stacked chart draws sums); the legend shows them.
function makePlot(card, spec, c) {
  const unit = spec.unit;
  const series = [{ label: "time", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleTimeString()) }];
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    series.push({
      label: s.label,
      stroke: color,
      width: 1.5,
      fill: spec.stacked ? color + "88" : undefined,
      points: { show: false },
      value: (u, v, si, idx) => fmt(idx === null || idx === undefined ? null : c.raw[si - 1][idx], unit),
    });
  });
  const opts = {
    width: plotWidth(card),
    height: 180,
    series,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [{}, { size: 64, values: (u, vals) => vals.map((v) => fmt(v, unit === "bytes" ? "bytes" : "")) }],
  };
  return new uPlot(opts, [[], ...spec.series.map(() => [])], card.querySelector(".plot"));
}

function histogram(div, values, unit) {
  const vs = values.filter((v) => v !== null);
  div.replaceChildren();
  if (!vs.length) return;
  const bins = 8;
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  const counts = new Array(bins).fill(0);
  for (const v of vs) counts[hi === lo ? 0 : Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
  const most = Math.max(...counts);
  const bars = el("div", { class: "bars" });
  counts.forEach((c, i) => {
    const from = lo + ((hi - lo) * i) / bins;
    const bar = el("div", { class: "bar", title: `${c} batches from ${fmt(from, unit)}` });
    bar.style.height = `${most ? (100 * c) / most : 0}%`;
    bars.append(bar);
  });
  div.append(bars, el("div", { class: "hist-axis" }, el("span", {}, fmt(lo, unit)), el("span", {}, fmt(hi, unit))));
}

function drawCharts(records) {
  const xs = records.map((p) => Date.parse(p.timestamp) / 1000);
  for (const spec of specs(records)) {
    let c = charts.get(spec.key);
    const signature = spec.series.map((s) => s.label).join("|");
    if (!c) {
      c = { card: chartCard(spec), plot: null, signature: null };
      charts.set(spec.key, c);
    }
    c.card.classList.toggle("hidden", spec.series.length === 0);
    if (!spec.series.length) continue;
    const raw = spec.series.map((s) => records.map((p) => s.value(p)));
    let drawn = raw;
    if (spec.stacked) {
      // Each series is drawn as the sum of itself and those after it, so the first drawn is the
      // tallest and each later one paints its band over it.
      const sums = new Array(raw.length);
      for (let i = raw.length - 1; i >= 0; i--) sums[i] = raw[i].map((v, j) => (v || 0) + (i < raw.length - 1 ? sums[i + 1][j] : 0));
      drawn = sums;
    }
    c.raw = raw;
    if (c.signature !== signature) {
      if (c.plot) c.plot.destroy();
      c.plot = makePlot(c.card, spec, c);
      c.signature = signature;
    }
    c.plot.setData([xs, ...drawn]);
    const points = xs.filter((_, j) => raw.some((r) => r[j] !== null)).length;
    c.card.dataset.points = String(points);
    const total = spec.stacked ? drawn[0] : raw[0];
    c.card.querySelector(".latest").textContent = total.length ? fmt(total[total.length - 1], spec.unit) : "";
    histogram(c.card.querySelector(".hist"), total, spec.unit);
  }
}

function showQuery(q) {
  document.title = `weir · ${q.name || q.id}`;
  $("q-name").textContent = q.name || "(unnamed query)";
  $("q-state").textContent = q.isActive ? "active" : "stopped";
  $("q-state").className = `pill ${q.isActive ? "ok" : q.exception ? "bad" : "idle"}`;
  const st = q.status || {};
  $("q-status").textContent = st.message || "";
  $("q-id").textContent = q.id || "";
  $("q-runid").textContent = q.runId || "";
  startTime = q.startTime ? Date.parse(q.startTime) : null;
  $("q-start").textContent = q.startTime ? new Date(q.startTime).toLocaleString() : "–";
  const info = q.info || {};
  $("q-trigger").textContent = info.trigger || "–";
  const box = (cls, title, detail) => el("div", { class: `node ${cls}` }, el("strong", {}, title), detail ? el("small", {}, detail) : "");
  const nodes = [];
  for (const s of info.sources || []) nodes.push(box("source", "source", String(s)));
  for (const o of info.operators || []) {
    const plugin = o.plugin ? `${String(o.plugin.path || "").split("/").pop()} ${shortDigest(o.plugin.digest)}` : "";
    nodes.push(box("operator", `operator ${o.index}${o.kind ? ` · ${o.kind}` : ""}`, plugin));
  }
  if (info.sink) nodes.push(box("sink", "sink", String(info.sink)));
  const graph = $("q-graph");
  graph.replaceChildren();
  nodes.forEach((n, i) => {
    if (i) graph.append(el("span", { class: "arrow" }, "→"));
    graph.append(n);
  });
  const ex = q.exception;
  $("exception").classList.toggle("hidden", !ex);
  $("exception-text").textContent = !ex ? "" : typeof ex === "string" ? ex : JSON.stringify(ex, null, 2);
}

function showLast(records) {
  const last = records[records.length - 1];
  $("last-batch-id").textContent = last ? String(last.batchId) : "–";
  $("last-input-rows").textContent = last ? String(last.numInputRows) : "–";
  $("last-duration").textContent = last ? String((last.durationMs || {}).triggerExecution ?? "–") : "–";
  $("last-progress-json").textContent = last ? JSON.stringify(last, null, 2) : "no batch yet";
}

// Swap and rollback controls per plugin operator, made once and kept across redraws (a file
// being chosen must survive the table being drawn again).
const controls = new Map();

async function post(path, body) {
  const r = await fetch(path, { method: "POST", credentials: "same-origin", cache: "no-store", body });
  const text = await r.text();
  let message = text;
  try {
    const v = JSON.parse(text);
    message = v.error || v.message || (v.event === "swap" ? `swapped in ${shortDigest(v.digest)} from batch ${v.first_batch}`
      : v.event === "rollback" ? `rolled back to ${shortDigest(v.digest)} from batch ${v.first_batch}` : text);
  } catch (_) { /* not JSON: show it as it is */ }
  if (!r.ok) throw new Error(message);
  return message;
}

function say(op, text, ok) {
  const m = $("plugin-message");
  m.textContent = `operator ${op}: ${text}`;
  m.className = ok ? "ok" : "bad";
  m.dataset.operator = String(op);
  m.dataset.ok = String(ok);
}

function controlsFor(op) {
  if (!controls.has(op)) {
    const file = el("input", { type: "file", accept: ".wasm", "data-swap": String(op), title: "upload a new version (hot swap)" });
    file.addEventListener("change", async () => {
      if (!file.files.length) return;
      try { say(op, await post(`/operators/${op}/plugin`, file.files[0]), true); } catch (e) { say(op, e.message, false); }
      file.value = "";
    });
    const back = el("button", { type: "button", "data-rollback": String(op), title: "put back the version the current one replaced" }, "roll back");
    back.addEventListener("click", async () => {
      try { say(op, await post(`/operators/${op}/rollback`, null), true); } catch (e) { say(op, e.message, false); }
    });
    controls.set(op, el("td", { class: "actions" }, file, back));
  }
  return controls.get(op);
}

function showPlugins(q, history, records) {
  // Every swap and rollback, from GET /plugins and the progress records' pluginEvents, once each.
  const seen = new Set();
  const events = [];
  for (const e of [...history, ...records.flatMap((p) => p.pluginEvents || [])]) {
    const key = `${e.event}|${e.operator}|${e.digest}|${e.first_batch}`;
    if (!seen.has(key)) { seen.add(key); events.push(e); }
  }
  events.sort((a, b) => (a.first_batch ?? 0) - (b.first_batch ?? 0));
  const current = new Map();
  for (const o of (q.info || {}).operators || []) {
    if (o.plugin) current.set(o.index, { digest: o.plugin.digest, since: "start", swaps: 0, rollbacks: 0 });
  }
  for (const e of events) {
    const c = current.get(e.operator) || { swaps: 0, rollbacks: 0 };
    c.digest = e.digest;
    c.since = `batch ${e.first_batch}`;
    if (e.event === "swap") c.swaps++;
    if (e.event === "rollback") c.rollbacks++;
    current.set(e.operator, c);
  }
  const table = el("table", {}, el("tr", {}, ...["operator", "version", "since", "swaps", "rollbacks", "swap / roll back"].map((h) => el("th", {}, h))));
  for (const [op, c] of [...current].sort((a, b) => a[0] - b[0])) {
    table.append(el("tr", { "data-operator": String(op) }, el("td", {}, String(op)),
      el("td", { class: "mono", title: c.digest || "" }, shortDigest(c.digest)), el("td", {}, c.since),
      el("td", {}, String(c.swaps)), el("td", {}, String(c.rollbacks)), controlsFor(op)));
  }
  $("plugin-versions").replaceChildren(current.size ? table : el("p", { class: "muted" }, "no plugin operators"));
  const items = events.filter((e) => e.event !== "ran").map((e) => {
    const what = e.event === "rollback" ? "rolled back to" : e.event === "swap" ? "swapped in" : e.event;
    const was = e.replaced ? ` (was ${shortDigest(e.replaced)})` : "";
    return el("li", { class: `event ${e.event}`, "data-event": e.event, "data-digest": e.digest || "", "data-batch": String(e.first_batch ?? "") },
      el("span", { class: "when" }, `batch ${e.first_batch ?? "?"}`),
      el("span", {}, `operator ${e.operator}: ${what} `),
      el("span", { class: "mono", title: e.digest || "" }, shortDigest(e.digest)), el("span", { class: "muted" }, was));
  });
  $("timeline").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no swaps or rollbacks yet")]));
}

async function getJson(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) {
    // The session ended (the job restarted): back to the login page.
    location.assign("/");
    throw new Error("logged out");
  }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function poll() {
  try {
    const [q, records, history] = await Promise.all([getJson("/query"), getJson("/progress"), getJson("/plugins")]);
    showQuery(q);
    showLast(records);
    drawCharts(records);
    showPlugins(q, history, records);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    $("q-state").textContent = "unreachable";
    $("q-state").className = "pill bad";
    $("updated").textContent = String(e.message || e);
  }
  setTimeout(poll, POLL_MS);
}

setInterval(() => {
  if (startTime !== null) $("q-uptime").textContent = duration(Date.now() - startTime);
}, 1000);

window.addEventListener("resize", () => {
  for (const c of charts.values()) if (c.plot) c.plot.setSize({ width: plotWidth(c.card), height: 180 });
});

poll();
