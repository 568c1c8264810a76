// The dashboard's page: signs in, polls /dashboard/api/overview, draws every figure it answers.
// Text is set with textContent only (no figure is ever parsed as HTML); charts are drawn as SVG.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const API = "/dashboard/api/overview";
let timer = null;
let pollSeconds = 5;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function empty(text) { return el("p", { class: "empty" }, text || "no data yet"); }

function fill(id, ...nodes) {
  const target = document.getElementById(id);
  target.replaceChildren(...nodes.filter((n) => n));
}

function unavailable(value) {
  return value && typeof value === "object" && !Array.isArray(value) && "unavailable" in value;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && digits === undefined) return String(value);
  const d = digits === undefined ? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 1 : 3) : digits;
  return value.toFixed(d);
}

function time(seconds, withDay) {
  const d = new Date(seconds * 1000);
  const hours = d.toTimeString().slice(0, 5);
  return withDay ? `${d.getMonth() + 1}/${d.getDate()} ${hours}` : hours;
}

function table(head, rows) {
  if (!rows.length) return empty();
  return el("table", {},
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) =>
      c instanceof Node ? el("td", {}, c) : el("td", { class: typeof c === "number" ? "num" : "" }, typeof c === "number" ? fmt(c) : (c === null || c === undefined ? "–" : c)))))));
}

// A line chart of the lines [{label, points: [[t, v], ...]}], with an optional band [[t, lo, hi]].
function lineChart(key, title, unit, lines, band) {
  const box = el("div", { class: "card chart", "data-chart": key });
  box.append(el("h3", {}, `${title} (${unit})`));
  const all = lines.flatMap((l) => l.points);
  const reasons = lines.filter((l) => l.unavailable).map((l) => `${l.label}: ${l.unavailable}`);
  if (!all.length) {
    box.append(empty(reasons.length ? `unavailable (${reasons.join("; ")})` : "no data yet"));
    return box;
  }
  box.setAttribute("data-points", String(all.length));
  const W = 360, H = 170, L = 40, B = 16, T = 6;
  const bandPts = band || [];
  const ts = all.map((p) => p[0]).concat(bandPts.map((p) => p[0]));
  const vs = all.map((p) => p[1]).concat(bandPts.map((p) => p[2]));
  const t0 = Math.min(...ts), t1 = Math.max(...ts) || t0 + 1;
  const peak = Math.max(...vs, 0) || 1;  // all zero: a 0-1 scale
  const top = peak * 1.1;
  const x = (t) => L + (W - L - 4) * (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  chart.append(svg("line", { class: "axis", x1: L, x2: W, y1: H - B, y2: H - B }));
  for (const frac of [0, 0.5, 1]) {
    const label = svg("text", { x: 2, y: y(peak * frac) + 3 });
    label.textContent = fmt(peak * frac);
    chart.append(label);
  }
  for (const t of [t0, t1]) {
    const label = svg("text", { x: Math.min(x(t), W - (t1 - t0 > 86400 ? 56 : 30)), y: H - 4 });
    label.textContent = time(t, t1 - t0 > 86400);
    chart.append(label);
  }
  if (bandPts.length) {
    const upper = bandPts.map((p) => `${x(p[0])},${y(p[2])}`);
    const lower = bandPts.slice().reverse().map((p) => `${x(p[0])},${y(p[1])}`);
    chart.append(svg("polygon", { class: "band", points: upper.concat(lower).join(" ") }));
  }
  const legend = el("div", { class: "legend" });
  lines.forEach((line, i) => {
    if (!line.points.length) return;
    const pts = line.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const cls = `line l${i % 4}`;
    if (line.points.length === 1) {
      const [px, py] = pts.split(",");
      chart.append(svg("circle", { class: cls, cx: px, cy: py, r: 2.5 }));
    } else {
      chart.append(svg("polyline", { class: cls, points: pts }));
    }
    const last = line.points[line.points.length - 1][1];
    legend.append(el("span", {}, el("i", { class: `l${i % 4}` }), `${line.label} ${fmt(last)}`));
  });
  box.append(chart, legend);
  return box;
}

function renderPerformance(p) {
  document.getElementById("charts").replaceChildren(
    ...p.charts.map((c) => lineChart(c.key, c.title, c.unit, c.lines)));
  const f = p.forecast;
  if (unavailable(f)) fill("forecast", empty(`unavailable: ${f.unavailable}`));
  else if (!f || (!f.history.length && !f.forecast.length)) fill("forecast", empty());
  else {
    const chart = lineChart("forecast", `model: ${f.model}`, "req/s", [
      { label: "history", points: f.history },
      { label: "forecast", points: f.forecast.map((r) => [r[0], r[1]]) },
    ], f.forecast);
    chart.className = "chart";
    fill("forecast", chart);
  }
  const s = p.scaling;
  if (unavailable(s)) fill("scaling", empty(`unavailable: ${s.unavailable}`));
  else if (s && s.advice) {
    fill("scaling", table(["replicas", "peak load", "per pod", "why"],
      [[s.advice.replicas, s.advice.peak_load, s.advice.target_per_pod, s.advice.reason]]));
  } else if (s && s.autoscaler) {
    const a = s.autoscaler;
    fill("scaling", table(["replicas", "advised", "last", "why"],
      [[a.replicas, a.advised, a.last_action, a.last_reason]]));
  } else fill("scaling", empty());
  if (p.signals === null) fill("signals", empty("the process's signals are the platform's"));
  else if (unavailable(p.signals)) fill("signals", empty(`unavailable: ${p.signals.unavailable}`));
  else {
    const rows = Object.entries(p.signals).map(([k, v]) => [k, v]);
    const found = (p.bottlenecks || []).map((b) => [b.kind, b.subject, b.severity, b.evidence]);
    fill("signals", table(["signal", "now"], rows),
      found.length ? table(["bottleneck", "subject", "severity", "evidence"], found) : el("p", { class: "muted" }, "no bottleneck"));
  }
}

function level(text, prefix) { return el("span", { class: `${prefix}-${String(text).toLowerCase()}` }, text); }

function renderSecurity(s) {
  fill("threats", table(["tenant", "level", "anomaly score"], s.tenants.map((t) =>
    unavailable(t) ? [t.tenant_id, `unavailable: ${t.unavailable}`, null] : [t.tenant_id, level(t.level, "level"), t.anomaly_score])));
  fill("checkpoints", table(["tenant", "entries", "checkpointed", "status"], s.checkpoints.map((c) => {
    if (unavailable(c)) return [c.tenant_id, null, null, `unavailable: ${c.unavailable}`];
    const status = c.checkpointed === null ? "no checkpoint yet"
      : c.checkpointed === c.entries ? "up to date" : `${c.entries - c.checkpointed} entries after the last`;
    return [c.tenant_id, c.entries, c.checkpointed, status];
  })));
  if (unavailable(s.events)) fill("events", empty(`unavailable: ${s.events.unavailable}`));
  else fill("events", table(["when", "tenant", "kind", "severity", "principal"], s.events.map((e) =>
    [new Date(e.at).toLocaleString(), e.tenant_id, e.kind, level(e.severity, "sev"), e.principal])));
}

function renderBusiness(b) {
  fill("tenants", table(["tenant", "status", "tier", "active users", "live sessions"], b.tenants.map((t) =>
    unavailable(t) ? [t.tenant_id, t.status, t.tier, `unavailable: ${t.unavailable}`, null]
      : [t.tenant_id, t.status, t.tier, t.users, t.sessions])),
    b.more ? el("p", { class: "muted" }, `the first ${b.listed} tenants`) : null);
}

function renderOperations(o) {
  const backends = o.backends;
  if (unavailable(backends)) fill("backends", empty(backends.unavailable));
  else {
    fill("backends", el("p", {}, "status: ", level(backends.status, "level")),
      table(["backend", "kind", "health", "breaker", "failures", "in flight", "limit"],
        backends.backends.map((m) => [m.name, m.kind, m.health, level(m.breaker.state, "state"),
          m.breaker.failure_rate, m.pool && m.pool.gate ? m.pool.gate.in_use : null,
          m.pool && m.pool.gate ? m.pool.gate.limit : null])));
  }
  fill("workflows", table(["tenant", "pending", "running", "compensating", "parked"], o.workflows.map((w) =>
    unavailable(w) ? [w.tenant_id, `unavailable: ${w.unavailable}`, null, null, null]
      : [w.tenant_id, w.counts.pending, w.counts.running, w.counts.compensating, w.counts.parked])));
  fill("alerts", o.alerts.length ? table(["tenant", "rule", "severity", "status", "since"], o.alerts.map((a) =>
    [a.tenant_id, a.rule, level(a.severity, "sev"), a.status, a.since ? new Date(a.since).toLocaleString() : null]))
    : el("p", { class: "muted" }, "no alert firing"));
}

function render(data) {
  document.getElementById("scope").textContent =
    data.scope.platform ? "every tenant (platform)" : `tenant ${data.scope.tenant}`;
  document.getElementById("updated").textContent =
    `${data.who} · updated ${new Date(data.generated_at).toLocaleTimeString()}`;
  renderPerformance(data.performance);
  renderSecurity(data.security);
  renderBusiness(data.business);
  renderOperations(data.operations);
}

function show(signedIn) {
  document.getElementById("sign-in-panel").hidden = signedIn;
  document.getElementById("board").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  if (!signedIn) {
    document.getElementById("scope").textContent = "";
    document.getElementById("updated").textContent = "";
  }
}

async function problemOf(response) {
  try { const p = await response.json(); return p.detail || p.title || response.statusText; }
  catch (e) { return response.statusText; }
}

async function poll() {
  clearTimeout(timer);
  let wait = pollSeconds;
  try {
    const response = await fetch(API, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      show(false);
      document.getElementById("sign-in-error").textContent = await problemOf(response);
      return;  // signed out: no more polling until the next sign-in
    }
    if (!response.ok) {
      document.getElementById("problem").textContent = `${response.status}: ${await problemOf(response)}`;
      wait = Math.min(60, pollSeconds * 3);  // 429 and 503: back off
    } else {
      const data = await response.json();
      pollSeconds = Math.max(2, data.poll_seconds || 5);
      document.getElementById("problem").textContent = "";
      show(true);
      render(data);
      document.body.setAttribute("data-loaded", data.generated_at);
    }
  } catch (e) {
    document.getElementById("problem").textContent = "the service cannot be reached; retrying";
    wait = Math.min(60, pollSeconds * 3);
  }
  timer = setTimeout(poll, wait * 1000);
}

async function signIn(event) {
  event.preventDefault();
  const token = document.getElementById("token");
  const device = document.getElementById("device").value.trim();
  const response = await fetch("/dashboard/sign-in", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: token.value.trim(), device_id: device || null }),
  });
  token.value = "";  // the token is not kept on the page
  if (!response.ok) {
    document.getElementById("sign-in-error").textContent = await problemOf(response);
    return;
  }
  document.getElementById("sign-in-error").textContent = "";
  poll();
}

async function signOut() {
  clearTimeout(timer);
  await fetch("/dashboard/sign-out", { method: "POST", credentials: "same-origin" });
  show(false);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-in").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", signOut);
  poll();
});
