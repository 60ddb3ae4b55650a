// A tenant's cost this month: the breakdown by meter and tier, the cost day by day with the
// month's forecast band and the budget, the budget's alert thresholds, and recommendations with
// their savings. Every figure is the cost service's, as the REST API answers it.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { call } from "../api.js";
import { card, enumName, h, show, table } from "../dom.js";

/** Dollars to the cent. */
export function usd(value) {
  return `$${(value ?? 0).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** A figure on a card, its exact value kept beside the text. */
function money(label, value, testId) {
  const figure = card(label, usd(value), testId);
  figure.dataset.value = String(value ?? 0);
  return figure;
}

export async function costPage(root, tenantId) {
  const base = `/v1/tenants/${encodeURIComponent(tenantId)}`;
  const [cost, budget, advice] = await Promise.all([
    call(`${base}/cost`),
    call(`${base}/budget`),
    call(`${base}/recommendations`),
  ]);
  const report = cost.report || {};
  const forecast = report.forecast || {};
  const lines = [
    { title: "Meter", cell: (l) => enumName(l.meter, "METER_").replaceAll("_", " ") },
    { title: "Tier", cell: (l) => enumName(l.tier, "TIER_").replace("unspecified", "") },
    { title: "Quantity", cell: (l) => `${(l.quantity ?? 0).toPrecision(4)} ${l.unit}` },
    { title: "Unit price", cell: (l) => usd(l.unitPriceUsd) },
    {
      title: "Amount",
      cell: (l) => h("span", { "data-testid": "line-amount", "data-value": String(l.amountUsd ?? 0) }, usd(l.amountUsd)),
    },
  ];
  const limit = budget.monthlyLimitUsd || 0;
  const chartHolder = h("div", { class: "chart", "data-testid": "daily-chart" });
  show(
    root,
    h("h1", {}, "Cost this month"),
    h(
      "div",
      { class: "cards" },
      money("Month to date", forecast.monthToDateUsd ?? report.totalUsd, "month-to-date"),
      money("Forecast", forecast.forecastUsd, "forecast"),
      card(
        `Band (${Math.round((forecast.confidence ?? 0) * 100)}% likely)`,
        `${usd(forecast.forecastLowUsd)} – ${usd(forecast.forecastHighUsd)}`,
        "band",
      ),
      money("Budget", limit, "budget"),
    ),
    h("h2", {}, "Day by day"),
    h("figure", { class: "metric" }, chartHolder),
    h("h2", {}, "By meter and tier"),
    table(lines, report.lines || [], { empty: "No usage this month yet." }),
    h(
      "p",
      { class: "hint" },
      `Direct ${usd(report.directUsd)} + shared ${usd(report.sharedUsd)} + dedicated ${usd(report.dedicatedUsd)} = `,
      h("strong", { "data-testid": "total", "data-value": String(report.totalUsd ?? 0) }, usd(report.totalUsd)),
    ),
    h("h2", {}, "Budget alerts"),
    limit > 0
      ? h(
          "p",
          { "data-testid": "thresholds" },
          `An alert when the actual or forecast cost crosses ${(budget.alertThresholds || [])
            .map((t) => `${Math.round(t * 100)}% (${usd(t * limit)})`)
            .join(", ")} of ${usd(limit)}.`,
        )
      : h("p", { class: "hint" }, "No budget: set one with PATCH …/budget."),
    h("h2", {}, "Recommendations"),
    table(
      [
        { title: "Recommendation", cell: (r) => h("strong", {}, r.title) },
        { title: "Why", cell: (r) => r.detail },
        { title: "Saves a month", cell: (r) => usd(r.estimatedMonthlySavingsUsd) },
      ],
      advice.recommendations || [],
      { empty: "Nothing to recommend." },
    ),
  );
  daily(chartHolder, report, forecast, limit);
}

/** The cumulative cost by day, then the forecast to the month's end with its band. */
function daily(holder, report, forecast, limit) {
  const days = report.days || [];
  if (days.length === 0) return;
  const xs = [];
  const actual = [];
  let sum = 0;
  for (const day of days) {
    sum += day.totalUsd ?? 0;
    xs.push(Date.parse(day.startTime) / 1000);
    actual.push(sum);
  }
  const start = new Date(forecast.monthStart || report.periodStart);
  const end = Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1) / 1000;
  const todayX = xs.at(-1);
  const mid = [...actual.map(() => null)];
  const low = [...mid];
  const high = [...mid];
  mid[mid.length - 1] = low[low.length - 1] = high[high.length - 1] = sum;
  xs.push(end);
  actual.push(null);
  mid.push(forecast.forecastUsd ?? sum);
  low.push(forecast.forecastLowUsd ?? sum);
  high.push(forecast.forecastHighUsd ?? sum);
  const budgetLine = limit > 0 ? xs.map(() => limit) : xs.map(() => null);
  const dashed = { dash: [6, 4], width: 1.5 };
  new uPlot(
    {
      width: holder.clientWidth || 600,
      height: 240,
      series: [
        {},
        { label: "cost to date", stroke: "#1f6feb", width: 2 },
        { label: "forecast", stroke: "#1f6feb", ...dashed },
        { label: "low", stroke: "#9fb8e6", width: 1 },
        { label: "high", stroke: "#9fb8e6", width: 1 },
        { label: "budget", stroke: "#cf222e", ...dashed, points: { show: false } },
      ],
      bands: [{ series: [4, 3], fill: "rgba(31, 111, 235, 0.12)" }],
      scales: { x: { time: true, range: () => [xs[0], end] } },
      axes: [{}, { size: 70, values: (u, ticks) => ticks.map((t) => usd(t)) }],
    },
    [xs, actual, mid, low, high, budgetLine],
    holder,
  );
  holder.dataset.today = String(todayX);
}
