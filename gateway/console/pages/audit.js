// The audit log: every administrative action (the operator's page), or a tenant's (its admins'),
// newest first, filtered by action and time, a page at a time.

import { call } from "../api.js";
import { h, show, table } from "../dom.js";

export async function auditPage(root, tenantId) {
  const path = tenantId ? `/v1/tenants/${encodeURIComponent(tenantId)}/audit-events` : "/v1/audit-events";
  const field = (id, label, type, hint) => [
    h("label", { for: id }, label),
    h("input", { id, name: id, type, "aria-describedby": hint ? `${id}-hint` : undefined }),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  ];
  const form = h(
    "form",
    { class: "filters", "data-testid": "audit-filter" },
    h("div", {}, field("action", "Action", "text", "e.g. tenant.create, or tenant for every action on tenants")),
    h("div", {}, field("from", "From", "datetime-local")),
    h("div", {}, field("to", "To", "datetime-local")),
    h("div", {}, h("button", { type: "submit" }, "Filter")),
  );
  const results = h("div", {});
  const error = h("p", { class: "error", role: "alert" });
  let latest = 0;
  const load = async (token, rows) => {
    const asked = ++latest;
    const query = new URLSearchParams({ pageSize: "50" });
    const value = (name) => form.elements[name].value;
    if (value("action")) query.set("filter.action", value("action").trim());
    if (value("from")) query.set("filter.startTime", new Date(value("from")).toISOString());
    if (value("to")) query.set("filter.endTime", new Date(value("to")).toISOString());
    if (token) query.set("pageToken", token);
    error.textContent = "";
    try {
      const page = await call(`${path}?${query}`);
      // An answer to a listing asked for before the last one is not shown.
      if (asked !== latest) return;
      const all = rows.concat(page.events || []);
      const more = page.nextPageToken
        ? h("button", { type: "button", class: "secondary", onclick: () => load(page.nextPageToken, all) }, "Older")
        : null;
      show(results, table(columns, all, { empty: "No events." }), more);
    } catch (e) {
      error.textContent = e.body?.details?.[0]?.fieldViolations?.[0]?.description
        ? `${e.body.details[0].fieldViolations[0].field}: ${e.body.details[0].fieldViolations[0].description}`
        : e.message;
    }
  };
  const columns = [
    { title: "Time", cell: (e) => new Date(e.time).toLocaleString() },
    { title: "Actor", cell: (e) => e.actor },
    { title: "Action", cell: (e) => h("span", { "data-testid": "audit-action" }, e.action) },
    { title: "Resource", cell: (e) => e.resource },
    { title: "Service", cell: (e) => e.service },
    { title: "Request", cell: (e) => e.requestId },
  ];
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load("", []);
  });
  show(root, h("h1", {}, "Audit log"), form, error, results);
  await load("", []);
}
