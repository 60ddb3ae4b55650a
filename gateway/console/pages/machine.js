// A machine: a chart per metric over 15 minutes (raw readings, live), 24 hours or 30 days
// (rollups), saying which tiers served it, with the thresholds of the tenant's rules on it.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { all, call } from "../api.js";
import { h, show } from "../dom.js";

/** The ranges a chart shows: how far back, and the bucket of an aggregated query. */
const RANGES = [
  { name: "15 min", ms: 15 * 60_000, live: true },
  { name: "24 h", ms: 24 * 3_600_000, step: "300s" },
  { name: "30 days", ms: 30 * 24 * 3_600_000, step: "3600s" },
];
/** How often a live chart asks for the machine's newest readings. */
const POLL_MS = 2_000;

export async function machinePage(root, tenantId, machineId, signal) {
  const base = `/v1/tenants/${encodeURIComponent(tenantId)}`;
  const machinePath = `${base}/machines/${encodeURIComponent(machineId)}`;
  const [machine, latest, rules] = await Promise.all([
    call(machinePath),
    call(`${machinePath}/latest`),
    all(`${base}/alert-rules`, "rules"),
  ]);
  const metrics = (latest.values || []).map((v) => v.metric);
  let range = RANGES[0];
  let charts = [];
  const figures = h("div", { class: "charts" });
  const buttons = RANGES.map((r) =>
    h("button", { type: "button", class: "range", "aria-pressed": String(r === range), onclick: () => choose(r) }, r.name),
  );

  async function choose(next) {
    range = next;
    buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(RANGES[i] === range)));
    charts = await Promise.all(
      metrics.map((metric) => chart(machinePath, metric, range, thresholds(rules, machine, metric))),
    );
    show(figures, charts.map((c) => c.figure));
    charts.forEach((c) => c.draw());
  }

  show(
    root,
    h("p", {}, h("a", { href: `#/tenants/${encodeURIComponent(tenantId)}` }, "← Machines")),
    h("h1", { "data-testid": "machine-name" }, machine.displayName || machine.machineId),
    metrics.length === 0
      ? h("p", { class: "hint" }, "No readings yet.")
      : [h("div", { class: "ranges", role: "group", "aria-label": "Range" }, buttons), figures],
  );
  if (metrics.length > 0) await choose(range);
  poll(machinePath, () => charts, () => range, signal);
}

/** A metric's chart over `range`: its figure, and `draw` once the figure is on the page. */
async function chart(machinePath, metric, range, lines) {
  const end = new Date();
  const start = new Date(end.getTime() - range.ms);
  const query = new URLSearchParams({ metric, start: start.toISOString(), end: end.toISOString() });
  if (range.step) {
    query.set("step", range.step);
    query.set("aggregation", "AGGREGATION_AVG");
  }
  const answer = await call(`${machinePath}/telemetry?${query}`);
  const points = range.step
    ? (answer.buckets || []).map((b) => [Date.parse(b.start) / 1000, b.value])
    : (answer.points || []).map((p) => [Date.parse(p.ts) / 1000, p.value]);
  const tiers = (answer.tiers || []).map((t) => t.replace("TIER_", "").toLowerCase());
  const data = [points.map((p) => p[0]), points.map((p) => p[1])];
  const holder = h("div", { class: "chart" });
  const figure = h(
    "figure",
    {
      class: "metric",
      "data-testid": "chart",
      "data-metric": metric,
      "data-points": data[0].length,
      "data-thresholds": lines.join(","),
    },
    h("figcaption", {}, h("strong", {}, metric), " ", h("span", { class: "hint", "data-testid": "tiers" }, `served by ${tiers.join(" + ") || "no tier"}`)),
    holder,
  );
  let plot = null;
  return {
    figure,
    metric,
    range,
    data,
    draw() {
      const span = range.ms / 1000;
      plot = new uPlot(options(metric, lines, span, holder.clientWidth || 600), data, holder);
    },
    /** Appends readings newer than the last, dropping those older than the range. */
    append(values) {
      const last = data[0].at(-1) ?? 0;
      const fresh = values.filter((v) => v[0] > last);
      if (fresh.length === 0) return;
      for (const [x, y] of fresh) {
        data[0].push(x);
        data[1].push(y);
      }
      const from = Date.now() / 1000 - range.ms / 1000;
      while (data[0].length && data[0][0] < from) {
        data[0].shift();
        data[1].shift();
      }
      figure.dataset.points = String(data[0].length);
      plot?.setData(data);
    },
  };
}

/** A chart of `metric` over the last `span` seconds, whatever readings it has. */
function options(metric, lines, span, width) {
  return {
    width,
    height: 220,
    series: [{}, { label: metric, stroke: "#1f6feb", width: 1.5 }],
    axes: [{}, { size: 70 }],
    scales: {
      x: {
        time: true,
        range: () => {
          const now = Date.now() / 1000;
          return [now - span, now];
        },
      },
      y: {
        range: (u, min, max) => {
          const low = Math.min(min ?? 0, ...lines);
          const high = Math.max(max ?? 1, ...lines);
          const pad = (high - low) * 0.08 || 1;
          return [low - pad, high + pad];
        },
      },
    },
    legend: { show: false },
    hooks: { draw: [(u) => drawLines(u, lines)] },
  };
}

/** Dashed lines at the thresholds. */
function drawLines(u, lines) {
  const ctx = u.ctx;
  for (const value of lines) {
    const y = Math.round(u.valToPos(value, "y", true));
    ctx.save();
    ctx.strokeStyle = "#cf222e";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }
}

/** The threshold values of the enabled rules that watch `metric` of `machine`. */
function thresholds(rules, machine, metric) {
  const values = [];
  const visit = (condition) => {
    if (!condition || typeof condition !== "object") return;
    if (condition.threshold && typeof condition.threshold.value === "number") values.push(condition.threshold.value);
    Object.values(condition).forEach((v) => (Array.isArray(v) ? v.forEach(visit) : visit(v)));
  };
  for (const rule of rules) {
    if (rule.disabled || rule.metric !== metric) continue;
    const selector = rule.selector || {};
    const ids = selector.machineIds || [];
    if (ids.length && !ids.includes(machine.machineId)) continue;
    const labels = Object.entries(selector.labels || {});
    if (labels.some(([k, v]) => (machine.labels || {})[k] !== v)) continue;
    visit(rule.condition);
  }
  return [...new Set(values)];
}

/** While the 15-minute range shows, appends the machine's newest readings to their charts. */
async function poll(machinePath, charts, range, signal) {
  while (!signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (signal.aborted || !range().live) continue;
    try {
      const latest = await call(`${machinePath}/latest`);
      for (const value of latest.values || []) {
        const chart = charts().find((c) => c.metric === value.metric);
        chart?.append([[Date.parse(value.ts) / 1000, value.value]]);
      }
    } catch (e) {
      console.warn(`the newest readings could not be read: ${e.message}`);
    }
  }
}
