// A tenant's alert rules and its alert history: the rules listed, a form that creates or edits
// a threshold, rate-of-change or no-data rule (each validation error beside the field that
// caused it), and the alerts, newest first, filtered by state.

import { ApiError, all, call } from "../api.js";
import { enumName, h, show, table } from "../dom.js";

const SEVERITIES = ["CRITICAL", "MAJOR", "MINOR", "WARNING"];
const COMPARISONS = [
  ["GREATER", ">"],
  ["GREATER_OR_EQUAL", "≥"],
  ["LESS", "<"],
  ["LESS_OR_EQUAL", "≤"],
];
const KINDS = [
  ["threshold", "Threshold"],
  ["rateOfChange", "Rate of change"],
  ["noData", "No data"],
];

/** A condition in words. */
function describe(condition = {}) {
  const sign = (c) => COMPARISONS.find(([n]) => `COMPARISON_${n}` === c)?.[1] ?? "?";
  if (condition.threshold) {
    const t = condition.threshold;
    return `value ${sign(t.comparison)} ${t.value}${t.forDuration ? ` for ${t.forDuration}` : ""}`;
  }
  if (condition.rateOfChange) {
    const r = condition.rateOfChange;
    return `change ${sign(r.comparison)} ${r.perSecond}/s over ${r.window}`;
  }
  if (condition.noData) return `no data for ${condition.noData.duration}`;
  if (condition.anyOf) return (condition.anyOf.conditions || []).map(describe).join(" or ");
  return "";
}

/** A labelled field, its error shown beside it; `field` is the API's name for it. */
function field(id, label, control, field, hint) {
  control.id = id;
  control.name = id;
  control.dataset.field = field;
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return h(
    "div",
    { class: "field", "data-for": field },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("p", { class: "field-error", id: `${id}-error`, "data-testid": `error-${id}` }),
  );
}

const select = (options) => h("select", {}, options.map(([value, text]) => h("option", { value }, text)));
const input = (type, extra = {}) => h("input", { type, ...extra });

/** The rules page; its form and buttons show for a caller who `may` administer the tenant. */
export async function rulesPage(root, tenantId, may) {
  const base = `/v1/tenants/${encodeURIComponent(tenantId)}`;
  const listing = h("div", {});
  const history = h("div", {});
  const form = h("form", { class: "rule-form", "data-testid": "rule-form", novalidate: true });
  const general = h("p", { class: "error", role: "alert", "data-testid": "form-error" });
  let editing = null;

  const controls = {
    name: input("text"),
    metric: input("text", { required: true }),
    severity: select(SEVERITIES.map((s) => [`SEVERITY_${s}`, s.toLowerCase()])),
    kind: select(KINDS),
    comparison: select(COMPARISONS.map(([n, s]) => [`COMPARISON_${n}`, s])),
    value: input("number", { step: "any" }),
    forSeconds: input("number", { min: "0", step: "1" }),
    clearValue: input("number", { step: "any" }),
    perSecond: input("number", { step: "any" }),
    windowSeconds: input("number", { min: "1", step: "1", value: "60" }),
    silenceSeconds: input("number", { min: "1", step: "1", value: "300" }),
    machines: input("text"),
    disabled: input("checkbox"),
  };
  const groups = {
    threshold: h(
      "fieldset",
      {},
      h("legend", {}, "Threshold"),
      field("comparison", "Comparison", controls.comparison, "rule.condition.threshold.comparison"),
      field("value", "Value", controls.value, "rule.condition.threshold.value"),
      field("for", "For (seconds)", controls.forSeconds, "rule.condition.threshold.for_duration", "How long the value must hold; 0 alerts at once."),
      field("clear", "Clears at (optional)", controls.clearValue, "rule.condition.threshold.clear_value"),
    ),
    rateOfChange: h(
      "fieldset",
      {},
      h("legend", {}, "Rate of change"),
      field("roc-comparison", "Comparison", select(COMPARISONS.map(([n, s]) => [`COMPARISON_${n}`, s])), "rule.condition.rate_of_change.comparison"),
      field("per-second", "Per second", controls.perSecond, "rule.condition.rate_of_change.per_second"),
      field("window", "Window (seconds)", controls.windowSeconds, "rule.condition.rate_of_change.window"),
    ),
    noData: h(
      "fieldset",
      {},
      h("legend", {}, "No data"),
      field("silence", "Silent for (seconds)", controls.silenceSeconds, "rule.condition.no_data.duration"),
    ),
  };
  const rocComparison = groups.rateOfChange.querySelector("select");
  const showKind = () => {
    for (const [kind, group] of Object.entries(groups)) group.hidden = kind !== controls.kind.value;
  };
  controls.kind.addEventListener("change", showKind);
  const submit = h("button", { type: "submit" }, "Create rule");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => reset() }, "Cancel");
  show(
    form,
    h("h2", { id: "form-title" }, "New rule"),
    field("name", "Name", controls.name, "rule.display_name"),
    field("metric", "Metric", controls.metric, "rule.metric"),
    field("severity", "Severity", controls.severity, "rule.severity"),
    field("kind", "Condition", controls.kind, "rule.condition"),
    Object.values(groups),
    field("machines", "Machines (optional)", controls.machines, "rule.selector.machine_ids", "Comma-separated ids; every machine when empty."),
    h("div", { class: "field inline" }, controls.disabled, h("label", { for: "disabled" }, "Disabled")),
    general,
    h("div", {}, submit, " ", cancel),
  );
  controls.disabled.id = "disabled";
  showKind();

  const clearErrors = () => {
    general.textContent = "";
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  };
  const rule = () => {
    const seconds = (control) => (control.value === "" ? undefined : `${Number(control.value)}s`);
    const number = (control) => (control.value === "" ? undefined : Number(control.value));
    const kind = controls.kind.value;
    const condition =
      kind === "threshold"
        ? {
            threshold: {
              comparison: controls.comparison.value,
              value: number(controls.value),
              forDuration: seconds(controls.forSeconds),
              clearValue: number(controls.clearValue),
            },
          }
        : kind === "rateOfChange"
          ? { rateOfChange: { comparison: rocComparison.value, perSecond: number(controls.perSecond), window: seconds(controls.windowSeconds) } }
          : { noData: { duration: seconds(controls.silenceSeconds) } };
    const machineIds = controls.machines.value.split(",").map((s) => s.trim()).filter(Boolean);
    return {
      displayName: controls.name.value.trim(),
      metric: controls.metric.value.trim(),
      severity: controls.severity.value,
      condition,
      selector: { machineIds },
      disabled: controls.disabled.checked,
    };
  };
  const showViolations = (error) => {
    const violations = (error.body?.details || []).flatMap((d) => d.fieldViolations || []);
    if (violations.length === 0) {
      general.textContent = error.message;
      return;
    }
    for (const v of violations) {
      const name = v.field.replace(/\[\d+\]/g, "");
      const control = [...form.querySelectorAll("[data-field]")]
        .filter((c) => !c.closest("fieldset")?.hidden)
        .find((c) => c.dataset.field === name);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        document.getElementById(`${control.id}-error`).textContent = v.description;
      } else {
        general.textContent += `${v.field}: ${v.description} `;
      }
    }
    form.querySelector("[aria-invalid]")?.focus();
  };
  const reset = () => {
    editing = null;
    form.reset();
    clearErrors();
    form.querySelector("#form-title").textContent = "New rule";
    submit.textContent = "Create rule";
    cancel.hidden = true;
    showKind();
  };
  const edit = (r) => {
    reset();
    editing = r;
    form.querySelector("#form-title").textContent = `Edit ${r.displayName || r.metric}`;
    submit.textContent = "Save rule";
    cancel.hidden = false;
    controls.name.value = r.displayName || "";
    controls.metric.value = r.metric;
    controls.severity.value = r.severity;
    controls.machines.value = (r.selector?.machineIds || []).join(", ");
    controls.disabled.checked = Boolean(r.disabled);
    const c = r.condition || {};
    const secs = (d) => (d ? String(parseFloat(d)) : "");
    if (c.threshold) {
      controls.kind.value = "threshold";
      controls.comparison.value = c.threshold.comparison;
      controls.value.value = c.threshold.value;
      controls.forSeconds.value = secs(c.threshold.forDuration);
      controls.clearValue.value = c.threshold.clearValue ?? "";
    } else if (c.rateOfChange) {
      controls.kind.value = "rateOfChange";
      rocComparison.value = c.rateOfChange.comparison;
      controls.perSecond.value = c.rateOfChange.perSecond;
      controls.windowSeconds.value = secs(c.rateOfChange.window);
    } else if (c.noData) {
      controls.kind.value = "noData";
      controls.silenceSeconds.value = secs(c.noData.duration);
    }
    showKind();
    controls.name.focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    try {
      if (editing) {
        const mask = "displayName,metric,severity,condition,selector,disabled";
        await call(`${base}/alert-rules/${editing.ruleId}?updateMask=${mask}`, { method: "PATCH", body: rule() });
      } else {
        await call(`${base}/alert-rules`, { method: "POST", body: rule() });
      }
      reset();
      await list();
    } catch (e) {
      if (e instanceof ApiError) showViolations(e);
      else general.textContent = String(e);
    }
  });

  const list = async () => {
    const rules = await all(`${base}/alert-rules`, "rules");
    show(
      listing,
      h("h2", {}, "Rules"),
      table(
        [
          { title: "Rule", cell: (r) => h("span", { "data-testid": "rule-name" }, r.displayName || r.metric) },
          { title: "Metric", cell: (r) => r.metric },
          { title: "Condition", cell: (r) => h("span", { "data-testid": "rule-condition" }, describe(r.condition)) },
          { title: "Severity", cell: (r) => enumName(r.severity, "SEVERITY_") },
          { title: "Machines", cell: (r) => (r.selector?.machineIds || []).join(", ") || "all" },
          { title: "State", cell: (r) => (r.disabled ? "disabled" : "enabled") },
          may.admin && {
            title: "",
            cell: (r) => [
              h("button", { type: "button", class: "secondary", onclick: () => edit(r) }, "Edit"),
              " ",
              h(
                "button",
                {
                  type: "button",
                  class: "secondary",
                  onclick: async () => {
                    await call(`${base}/alert-rules/${r.ruleId}`, { method: "DELETE" }).catch((e) => {
                      general.textContent = e.message;
                    });
                    await list();
                  },
                },
                "Delete",
              ),
            ],
          },
        ].filter(Boolean),
        rules,
        { empty: "No rules yet." },
      ),
    );
  };

  const stateFilter = select([
    ["", "all"],
    ["ALERT_STATE_OPEN", "open"],
    ["ALERT_STATE_ACKNOWLEDGED", "acknowledged"],
    ["ALERT_STATE_RESOLVED", "resolved"],
  ]);
  const severityFilter = select([["", "any"], ...SEVERITIES.map((s) => [`SEVERITY_${s}`, s.toLowerCase()])]);
  const machineFilter = input("text", { placeholder: "any" });
  const alerts = async () => {
    const state = stateFilter.value ? `?state=${stateFilter.value}` : "";
    const page = await call(`${base}/alerts${state}${state ? "&" : "?"}pageSize=100`);
    const machine = machineFilter.value.trim();
    const shown = (page.alerts || []).filter(
      (a) =>
        (!severityFilter.value || a.severity === severityFilter.value) &&
        (!machine || a.machineId === machine),
    );
    show(
      history,
      h("h2", {}, "Alert history"),
      h(
        "div",
        { class: "filters" },
        h("div", { class: "field inline" }, h("label", { for: "state-filter" }, "State"), stateFilter),
        h("div", { class: "field inline" }, h("label", { for: "severity-filter" }, "Severity"), severityFilter),
        h("div", { class: "field inline" }, h("label", { for: "machine-filter" }, "Machine"), machineFilter),
      ),
      table(
        [
          { title: "First seen", cell: (a) => new Date(a.firstSeenTime).toLocaleString() },
          { title: "Machine", cell: (a) => a.machineId || "budget" },
          { title: "Metric", cell: (a) => a.metric },
          { title: "Severity", cell: (a) => enumName(a.severity, "SEVERITY_") },
          { title: "State", cell: (a) => h("span", { "data-testid": "history-state" }, enumName(a.state, "ALERT_STATE_")) },
          { title: "By", cell: (a) => a.resolvedBy || a.acknowledgedBy || "" },
        ],
        shown,
        { empty: "No alerts." },
      ),
    );
  };
  stateFilter.id = "state-filter";
  severityFilter.id = "severity-filter";
  machineFilter.id = "machine-filter";
  stateFilter.addEventListener("change", () => alerts());
  severityFilter.addEventListener("change", () => alerts());
  machineFilter.addEventListener("change", () => alerts());

  show(root, h("h1", {}, "Alert rules"), listing, may.admin ? form : null, history);
  await Promise.all([list(), alerts()]);
}
