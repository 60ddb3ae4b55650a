// Sign-in: the operator token or a tenant's API key, checked with `GET /v1/caller` before it is
// kept, so a mistyped credential says so here.

import { ApiError, call, signIn } from "../api.js";
import { h, show } from "../dom.js";

export function signInPage(root, done) {
  const error = h("p", { class: "error", role: "alert", id: "signin-error" });
  const input = h("input", {
    id: "credential",
    name: "credential",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "credential-hint signin-error",
  });
  const form = h(
    "form",
    { class: "signin", "data-testid": "signin" },
    h("label", { for: "credential" }, "Operator token or API key"),
    input,
    h(
      "p",
      { class: "hint", id: "credential-hint" },
      "Kept in this tab only, and sent to the API in a header, never in a URL.",
    ),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const token = input.value.trim();
    try {
      const caller = await call("/v1/caller", { token });
      signIn(token);
      done(caller);
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.status === 401
          ? "This token or key is not valid."
          : `Sign-in failed: ${e.message}`;
    }
  });
  show(root, h("h1", {}, "Sign in"), form);
  input.focus();
}
