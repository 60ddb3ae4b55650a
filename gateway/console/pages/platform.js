// The platform, as the operator sees it: every tenant with its plan and state, its machines
// online, stale and offline, its open alerts, its ingest rate and its month-to-date cost
// against its budget with the forecast band; and the platform's forecast against its target.

import { all, call } from "../api.js";
import { card, enumName, h, show, table } from "../dom.js";
import { usd } from "./cost.js";
import { machineStatus } from "./status.js";


/** A tenant's machines by status (from its machines' latest values, in one call) and its open
 * alerts. */
async function health(tenant) {
  const base = `/v1/tenants/${tenant.id}`;
  const [machines, latest, open] = await Promise.all([
    all(`${base}/machines`, "machines"),
    call(`${base}/latest`),
    call(`${base}/alerts?state=ALERT_STATE_OPEN&pageSize=100`),
  ]);
  const now = Date.now();
  const values = new Map((latest.machines || []).map((m) => [m.machineId, m.values]));
  const statuses = machines.map((m) => machineStatus(values.get(m.machineId), now));
  const count = (s) => statuses.filter((x) => x === s).length;
  return {
    machines: machines.length,
    online: count("online"),
    stale: count("stale"),
    offline: count("offline"),
    alerts: (open.alerts || []).length,
    more: Boolean(open.nextPageToken),
  };
}

/** The start of the current hour: the ledger keeps usage by the hour. */
function hourStart(now = Date.now()) {
  return now - (now % 3_600_000);
}

/** How often the ingest rate is read again while the page is open. */
const RATE_EVERY_MS = 10_000;

/** Each tenant's readings metered since `since` (the start of an hour). */
function readings(recent) {
  return new Map(
    (recent.reports || []).map((r) => {
      const line = (r.lines || []).find((l) => l.meter === "METER_INGESTED_READINGS");
      return [r.tenantId, (line?.quantity ?? 0) * 1e6];
    }),
  );
}

/** Each tenant's readings per second on average this hour. */
function hourlyRates(counts) {
  const seconds = Math.max(1, (Date.now() - hourStart()) / 1000);
  return new Map([...counts].map(([tenant, n]) => [tenant, n / seconds]));
}

/**
 * Reads the metered readings again every few seconds while the page is open, and shows the
 * rate between two readings (the meters flush every few seconds) on the ingest card.
 */
async function followRate(figure, first, signal) {
  let [before, at, hour] = [first, Date.now(), hourStart()];
  while (!signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, RATE_EVERY_MS));
    if (signal.aborted) return;
    try {
      const since = new Date(hourStart()).toISOString();
      const now = readings(await call(`/v1/cost?startTime=${encodeURIComponent(since)}`));
      const seconds = (Date.now() - at) / 1000;
      if (hourStart() === hour) {
        const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
        const rate = Math.max(0, total(now) - total(before)) / seconds;
        figure.querySelector(".value").textContent = `${rate.toFixed(1)}/s`;
        figure.querySelector(".note").textContent = `readings, over the last ${Math.round(seconds)} s (metered)`;
      }
      [before, at, hour] = [now, Date.now(), hourStart()];
    } catch (e) {
      console.warn(`the ingest rate could not be read: ${e.message}`);
    }
  }
}

/** The forecast against the target, in words. */
function vsTarget(ratio) {
  const percent = Math.abs(Math.round(ratio * 100));
  return ratio <= 0 ? `forecast ${percent}% under` : `forecast ${percent}% over`;
}

export async function platformPage(root, signal) {
  const since = new Date(hourStart()).toISOString();
  const [tenants, summary, recent] = await Promise.all([
    all("/v1/tenants", "tenants"),
    call("/v1/cost"),
    call(`/v1/cost?startTime=${encodeURIComponent(since)}`),
  ]);
  const healths = new Map(await Promise.all(tenants.map(async (t) => [t.id, await health(t)])));
  const costs = new Map((summary.reports || []).map((r) => [r.tenantId, r]));
  const counted = readings(recent);
  const rate = hourlyRates(counted);
  const sum = (f) => [...healths.values()].reduce((a, x) => a + f(x), 0);
  const ingest = card(
    "Ingest",
    `${[...rate.values()].reduce((a, b) => a + b, 0).toFixed(1)}/s`,
    "ingest-rate",
    "readings, on average this hour (metered)",
  );
  const forecast = summary.forecast || {};
  const target = summary.targetMonthlyUsd || 0;
  const columns = [
    {
      title: "Tenant",
      cell: (t) => h("a", { href: `#/tenants/${t.id}`, "data-testid": "tenant-link" }, t.displayName || t.name),
    },
    { title: "Plan", cell: (t) => enumName(t.plan, "PLAN_") },
    {
      title: "State",
      cell: (t) => {
        const state = enumName(t.state, "TENANT_STATE_");
        return h("span", { class: `status state-${state}` }, state.replace("_", " "));
      },
    },
    {
      title: "Machines",
      cell: (t) => {
        const x = healths.get(t.id);
        return h("span", { "data-testid": "tenant-machines" }, `${x.online} online · ${x.stale} stale · ${x.offline} offline of ${x.machines}`);
      },
    },
    { title: "Open alerts", cell: (t) => `${healths.get(t.id).alerts}${healths.get(t.id).more ? "+" : ""}` },
    { title: "Readings/s", cell: (t) => (rate.get(t.id) ?? 0).toFixed(1) },
    {
      title: "Cost to date / budget",
      cell: (t) => {
        const c = costs.get(t.id);
        if (!c) return "";
        const band = c.forecast ? ` · forecast ${usd(c.forecast.forecastLowUsd)}–${usd(c.forecast.forecastHighUsd)}` : "";
        return `${usd(c.totalUsd)} / ${c.budgetUsd ? usd(c.budgetUsd) : "no budget"}${band}`;
      },
    },
  ];
  show(
    root,
    h("h1", {}, "Platform"),
    h(
      "div",
      { class: "cards" },
      card("Tenants", tenants.length, "tenant-count"),
      card("Machines online", `${sum((x) => x.online)} of ${sum((x) => x.machines)}`, "machines-online"),
      card("Stale · offline", `${sum((x) => x.stale)} · ${sum((x) => x.offline)}`, "machines-away"),
      card("Open alerts", sum((x) => x.alerts), "open-alerts"),
      ingest,
      card("Cost to date", usd(summary.totalUsd), "platform-cost"),
      card(
        "Month's forecast",
        usd(forecast.forecastUsd),
        "platform-forecast",
        `band ${usd(forecast.forecastLowUsd)} – ${usd(forecast.forecastHighUsd)}`,
      ),
      card(
        "Target",
        target ? usd(target) : "none",
        "platform-target",
        target ? vsTarget(summary.forecastVsTarget ?? 0) : "set targetMonthlyUsd in the price book",
      ),
    ),
    h("h2", {}, "Tenants"),
    table(columns, tenants, { empty: "No tenants yet: create one with POST /v1/tenants." }),
  );
  followRate(ingest, counted, signal);
}
