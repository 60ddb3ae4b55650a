// The console: a page per route of the location's hash (`#/`, `#/tenants/<id>`), drawn from the
// public REST API with the credential the user signed in with. What it shows follows the
// caller: the operator starts at the platform, a tenant's key at its tenant.

import { ApiError, call, credential, signOut } from "./api.js";
import { h, show } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { costPage } from "./pages/cost.js";
import { machinePage } from "./pages/machine.js";
import { onboardingPage } from "./pages/onboarding.js";
import { rulesPage } from "./pages/rules.js";
import { platformPage } from "./pages/platform.js";
import { signInPage } from "./pages/signin.js";
import { tenantPage } from "./pages/tenant.js";

const root = () => document.getElementById("app");
let caller = null;
/** Aborted when the page changes: its live streams stop. */
let page = new AbortController();

function home() {
  return caller?.operator ? "#/" : `#/tenants/${caller?.tenantId}`;
}

function header() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  if (!caller) {
    show(nav);
    show(who);
    return;
  }
  const tenant = caller.operator ? null : `#/tenants/${caller.tenantId}`;
  show(
    nav,
    caller.operator
      ? [h("a", { href: "#/" }, "Platform"), h("a", { href: "#/audit" }, "Audit")]
      : [
          h("a", { href: tenant }, "Machines"),
          h("a", { href: `${tenant}/rules` }, "Rules"),
          h("a", { href: `${tenant}/cost` }, "Cost"),
          h("a", { href: `${tenant}/onboarding` }, "Onboarding"),
          h("a", { href: `${tenant}/audit` }, "Audit"),
        ],
  );
  show(
    who,
    caller.operator ? "operator" : `${caller.tenantName} · key ${caller.keyId.slice(0, 8)}`,
    " · ",
    h("button", { class: "quiet", type: "button", onclick: () => leave() }, "Sign out"),
  );
}

function leave() {
  signOut();
  caller = null;
  location.hash = "#/";
  route();
}

async function route() {
  page.abort();
  page = new AbortController();
  if (!credential()) {
    caller = null;
    header();
    signInPage(root(), (who) => {
      caller = who;
      location.hash = home();
      route();
    });
    return;
  }
  try {
    caller ??= await call("/v1/caller");
    header();
    const path = location.hash.replace(/^#/, "") || "/";
    const tenant = path.match(/^\/tenants\/([^/]+)$/);
    const machine = path.match(/^\/tenants\/([^/]+)\/machines\/([^/]+)$/);
    const section = path.match(/^\/tenants\/([^/]+)\/(onboarding|audit|cost|rules)$/);
    if (section) {
      const tenantId = decodeURIComponent(section[1]);
      if (section[2] === "onboarding") await onboardingPage(root(), tenantId, caller.operator, page.signal);
      else if (section[2] === "cost") await costPage(root(), tenantId);
      else if (section[2] === "rules") await rulesPage(root(), tenantId);
      else await auditPage(root(), tenantId);
    } else if (path === "/audit" && caller.operator) {
      await auditPage(root(), null);
    } else if (machine) {
      const [, tenantId, machineId] = machine.map(decodeURIComponent);
      await machinePage(root(), tenantId, machineId, page.signal);
    } else if (tenant) {
      await tenantPage(root(), decodeURIComponent(tenant[1]), page.signal);
    } else if (caller.operator) {
      await platformPage(root());
    } else {
      location.hash = home();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      leave();
      return;
    }
    const message =
      e instanceof ApiError && (e.status === 403 || e.status === 404)
        ? "This credential cannot see that page."
        : `Something failed: ${e.message}`;
    show(root(), h("p", { class: "error", role: "alert", "data-testid": "page-error" }, message));
  }
}

window.addEventListener("hashchange", route);
route();
