// The platform, as the operator sees it: every tenant with its plan and state, and how many
// machines it has.

import { all } from "../api.js";
import { card, enumName, h, show, table } from "../dom.js";

export async function platformPage(root) {
  const tenants = await all("/v1/tenants", "tenants");
  const active = tenants.filter((t) => t.state === "TENANT_STATE_ACTIVE").length;
  const machines = new Map(
    await Promise.all(
      tenants.map(async (t) => [t.id, (await all(`/v1/tenants/${t.id}/machines`, "machines")).length]),
    ),
  );
  const columns = [
    {
      title: "Tenant",
      cell: (t) => h("a", { href: `#/tenants/${t.id}`, "data-testid": "tenant-link" }, t.displayName || t.name),
    },
    { title: "Name", cell: (t) => t.name },
    { title: "Plan", cell: (t) => enumName(t.plan, "PLAN_") },
    {
      title: "State",
      cell: (t) => {
        const state = enumName(t.state, "TENANT_STATE_");
        return h("span", { class: `status state-${state}` }, state.replace("_", " "));
      },
    },
    { title: "Machines", cell: (t) => machines.get(t.id) ?? 0 },
  ];
  show(
    root,
    h("h1", {}, "Platform"),
    h(
      "div",
      { class: "cards" },
      card("Tenants", tenants.length, "tenant-count"),
      card("Active", active, "active-count"),
      card("Machines", [...machines.values()].reduce((a, b) => a + b, 0), "machine-count"),
    ),
    h("h2", {}, "Tenants"),
    table(columns, tenants, { empty: "No tenants yet: create one with POST /v1/tenants." }),
  );
}
