// The console: a page per route of the location's hash (`#/`, `#/tenants/<id>`), drawn from the
// public REST API with the credential the user signed in with. What it shows follows the
// caller: the operator starts at the platform, a tenant's key at its tenant.

import { ApiError, abilities, call, credential, signOut } from "./api.js";
import { h, show } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { costPage } from "./pages/cost.js";
import { machinePage } from "./pages/machine.js";
import { onboardingPage } from "./pages/onboarding.js";
import { rulesPage } from "./pages/rules.js";
import { platformPage } from "./pages/platform.js";
import { signInPage } from "./pages/signin.js";
import { tenantPage } from "./pages/tenant.js";

/**
 * A fresh view for the page being drawn, in place of the last one: a page still loading when
 * the user moved on draws into its own view, which is no longer on the page.
 */
function freshView() {
  const view = h("div", { class: "view" });
  document.getElementById("app").replaceChildren(view);
  return view;
}
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
  // Only the pages the key may read: onboarding and the audit log are its admins'.
  const admin = abilities(caller).admin;
  show(
    nav,
    caller.operator
      ? [h("a", { href: "#/" }, "Platform"), h("a", { href: "#/audit" }, "Audit")]
      : [
          h("a", { href: tenant }, "Machines"),
          h("a", { href: `${tenant}/rules` }, "Rules"),
          h("a", { href: `${tenant}/cost` }, "Cost"),
          admin ? h("a", { href: `${tenant}/onboarding` }, "Onboarding") : null,
          admin ? h("a", { href: `${tenant}/audit` }, "Audit") : null,
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
  const view = freshView();
  if (!credential()) {
    caller = null;
    header();
    signInPage(view, (who) => {
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
      if (section[2] === "onboarding") await onboardingPage(view, tenantId, caller.operator, page.signal);
      else if (section[2] === "cost") await costPage(view, tenantId);
      else if (section[2] === "rules") await rulesPage(view, tenantId, abilities(caller));
      else await auditPage(view, tenantId);
    } else if (path === "/audit" && caller.operator) {
      await auditPage(view, null);
    } else if (machine) {
      const [, tenantId, machineId] = machine.map(decodeURIComponent);
      await machinePage(view, tenantId, machineId, page.signal);
    } else if (tenant) {
      await tenantPage(view, decodeURIComponent(tenant[1]), page.signal, abilities(caller));
    } else if (caller.operator) {
      await platformPage(view, page.signal);
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
    show(view, h("p", { class: "error", role: "alert", "data-testid": "page-error" }, message));
  }
}

window.addEventListener("hashchange", route);
route();
