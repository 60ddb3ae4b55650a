// A tenant: its machines, each with its status (from its newest reading) and latest values.

import { all, call } from "../api.js";
import { card, h, show, table } from "../dom.js";
import { alertsPanel } from "./alerts.js";
import { machineStatus } from "./status.js";

function format(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

export async function tenantPage(root, tenantId, signal, may) {
  const tenant = await call(`/v1/tenants/${encodeURIComponent(tenantId)}`);
  const [machines, listed] = await Promise.all([
    all(`/v1/tenants/${tenant.id}/machines`, "machines"),
    call(`/v1/tenants/${tenant.id}/latest`),
  ]);
  const byMachine = new Map((listed.machines || []).map((m) => [m.machineId, m.values || []]));
  const latest = machines.map((m) => byMachine.get(m.machineId) || []);
  const now = Date.now();
  const rows = machines.map((machine, i) => ({
    machine,
    values: latest[i],
    status: machineStatus(latest[i], now),
  }));
  const count = (s) => rows.filter((r) => r.status === s).length;
  const columns = [
    {
      title: "Machine",
      cell: (r) =>
        h(
          "a",
          {
            "data-testid": "machine",
            href: `#/tenants/${encodeURIComponent(tenant.id)}/machines/${encodeURIComponent(r.machine.machineId)}`,
          },
          r.machine.displayName || r.machine.machineId,
        ),
    },
    {
      title: "Status",
      cell: (r) => h("span", { class: `status status-${r.status.replace(" ", "-")}` }, r.status),
    },
    {
      title: "Latest values",
      cell: (r) =>
        h(
          "span",
          { class: "values", "data-testid": "latest" },
          r.values.map((v) => h("span", {}, `${v.metric} ${format(v.value)}`)),
        ),
    },
  ];
  show(
    root,
    h("h1", { "data-testid": "tenant-name" }, tenant.displayName || tenant.name),
    h(
      "p",
      { class: "links" },
      h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/rules` }, "Alert rules"),
      " · ",
      h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/cost` }, "Cost"),
      may.admin ? [" · ", h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/onboarding` }, "Onboarding")] : null,
      may.admin ? [" · ", h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/audit` }, "Audit log")] : null,
    ),
    h(
      "div",
      { class: "cards" },
      card("Machines", rows.length, "machine-count"),
      card("Online", count("online"), "online-count"),
      card("Stale", count("stale"), "stale-count"),
      card("Offline", count("offline"), "offline-count"),
    ),
    alertsPanel(tenant.id, signal, may),
    h("h2", {}, "Machines"),
    table(columns, rows, { empty: "No machines yet." }),
  );
}
