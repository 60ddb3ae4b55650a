// The console's only way to the platform: the public REST API, with the credential the user
// signed in with in an `Authorization` header. It is kept in this tab's session storage, never
// in a URL.

const KEY = "mfg.credential";

/** The credential of this tab, if signed in. */
export function credential() {
  return sessionStorage.getItem(KEY);
}

/** Keeps `token` for this tab. */
export function signIn(token) {
  sessionStorage.setItem(KEY, token);
}

/** Forgets the credential. */
export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** An error of the API, with its HTTP status and its JSON body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Calls the API: GET unless `method` says otherwise; answers the JSON body. */
export async function call(path, { method = "GET", body, token = credential() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** Every page of a listing, following `nextPageToken`. */
export async function all(path, field) {
  const items = [];
  let token = "";
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await call(`${path}${separator}pageSize=100${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`);
    items.push(...(page[field] || []));
    token = page.nextPageToken || "";
  } while (token);
  return items;
}

const RANK = { SCOPE_READ: 1, SCOPE_WRITE: 2, SCOPE_ADMIN: 3 };

/** What a caller (`GET /v1/caller`) may do: scopes nest, and the operator may do everything. */
export function abilities(caller) {
  const rank = caller?.operator ? 3 : Math.max(0, ...(caller?.scopes || []).map((s) => RANK[s] ?? 0));
  return { read: rank >= 1, write: rank >= 2, admin: rank >= 3 };
}
