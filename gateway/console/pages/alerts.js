// A tenant's unresolved alerts, kept live from its alert events (SSE), each acknowledged or
// resolved in place.

import { all, call } from "../api.js";
import { enumName, h, show, table } from "../dom.js";
import { listen } from "../sse.js";

/**
 * The panel of `tenantId`'s open and acknowledged alerts; live until `signal` aborts. Their
 * buttons show for a caller who `may` write.
 */
export function alertsPanel(tenantId, signal, may) {
  const panel = h("section", { "data-testid": "alerts", "aria-label": "Open alerts" });
  const error = h("p", { class: "error", role: "alert" });
  const alerts = new Map();
  const base = `/v1/tenants/${encodeURIComponent(tenantId)}`;

  const act = async (alert, verb) => {
    error.textContent = "";
    try {
      const changed = await call(`${base}/alerts/${alert.alertId}/${verb}`, { method: "POST", body: {} });
      keep(changed);
    } catch (e) {
      error.textContent =
        e.status === 403 ? `This key may not ${verb} alerts.` : `Could not ${verb}: ${e.message}`;
    }
  };
  const keep = (alert) => {
    if (alert.state === "ALERT_STATE_RESOLVED") alerts.delete(alert.alertId);
    else alerts.set(alert.alertId, alert);
    draw();
  };
  const columns = [
    { title: "Severity", cell: (a) => enumName(a.severity, "SEVERITY_") },
    { title: "Machine", cell: (a) => a.machineId || "budget" },
    { title: "Metric", cell: (a) => a.metric },
    { title: "Value", cell: (a) => (a.lastValue ?? a.triggerValue ?? "").toString() },
    {
      title: "State",
      cell: (a) => h("span", { "data-testid": "alert-state" }, enumName(a.state, "ALERT_STATE_")),
    },
    may.write && {
      title: "Action",
      cell: (a) => [
        a.state === "ALERT_STATE_OPEN"
          ? h("button", { type: "button", onclick: () => act(a, "acknowledge") }, "Acknowledge")
          : null,
        " ",
        h("button", { type: "button", onclick: () => act(a, "resolve") }, "Resolve"),
      ],
    },
  ].filter(Boolean);
  const draw = () => {
    const rows = [...alerts.values()].sort((a, b) => (a.alertId < b.alertId ? 1 : -1));
    show(
      panel,
      h("h2", {}, "Open alerts"),
      table(columns, rows, { empty: "No open alerts." }),
      error,
    );
    panel.dataset.count = String(rows.length);
  };

  draw();
  listen(`${base}/alert-events`, (event) => event.data?.alert && keep(event.data.alert), signal);
  all(`${base}/alerts`, "alerts").then(
    (listed) => {
      for (const alert of listed) {
        if (!alerts.has(alert.alertId) && alert.state !== "ALERT_STATE_RESOLVED") {
          alerts.set(alert.alertId, alert);
        }
      }
      draw();
    },
    (e) => {
      error.textContent = `Could not list the alerts: ${e.message}`;
    },
  );
  return panel;
}
