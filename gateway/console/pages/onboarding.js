// A tenant's provisioning runs, newest first, with their steps, states, attempts and errors;
// the operator retries or rolls back a failed run from here. While a run is at work the page
// follows it.

import { ApiError, all, call } from "../api.js";
import { enumName, h, show, table } from "../dom.js";

/** How often the page looks again while a run is at work. */
const FOLLOW_MS = 1_000;
const AT_WORK = ["RUN_STATE_PENDING", "RUN_STATE_RUNNING", "RUN_STATE_ROLLING_BACK"];

export async function onboardingPage(root, tenantId, operator, signal) {
  const base = `/v1/tenants/${encodeURIComponent(tenantId)}/provisioning-runs`;
  const error = h("p", { class: "error", role: "alert", "data-testid": "run-error" });
  const draw = async () => {
    const runs = await all(base, "runs");
    show(
      root,
      h("h1", {}, "Onboarding"),
      error,
      runs.length === 0 ? h("p", { class: "hint" }, "No provisioning runs.") : runs.map(runView),
    );
    if (runs.some((r) => AT_WORK.includes(r.state)) && !signal.aborted) {
      setTimeout(() => signal.aborted || draw().catch(() => {}), FOLLOW_MS);
    }
  };
  const act = async (run, verb) => {
    error.textContent = "";
    try {
      await call(`${base}/${run.runId}:${verb}`, { method: "POST", body: {} });
      await draw();
    } catch (e) {
      error.textContent = e instanceof ApiError ? `Could not ${verb}: ${e.message}` : String(e);
    }
  };
  const steps = [
    { title: "Step", cell: (s) => s.name },
    {
      title: "State",
      cell: (s) => {
        const state = enumName(s.state, "STEP_STATE_");
        return h("span", { class: `status step-${state}` }, state);
      },
    },
    { title: "Attempts", cell: (s) => s.attempts ?? 0 },
    { title: "Error", cell: (s) => h("span", { "data-testid": "step-error" }, s.error || "") },
  ];
  const runView = (run) => {
    const state = enumName(run.state, "RUN_STATE_");
    const failed = run.state === "RUN_STATE_FAILED";
    return h(
      "section",
      { class: "run", "data-testid": "run", "data-state": state },
      h(
        "h2",
        {},
        `${enumName(run.kind, "RUN_KIND_") || "onboard"} run · `,
        h("span", { "data-testid": "run-state" }, state.replace("_", " ")),
        h("span", { class: "hint" }, ` · started ${new Date(run.createTime).toLocaleString()}`),
      ),
      table(steps, run.steps || []),
      operator && failed
        ? h(
            "p",
            { class: "actions" },
            h("button", { type: "button", onclick: () => act(run, "retry") }, "Retry"),
            " ",
            run.kind === "RUN_KIND_RECONCILE"
              ? null
              : h("button", { type: "button", class: "secondary", onclick: () => act(run, "rollback") }, "Roll back"),
          )
        : null,
    );
  };
  await draw();
}
