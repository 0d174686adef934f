// The gateway's admin API (/admin/*, same origin). After POST /admin/session the console is signed in
// by an HttpOnly cookie it never sees; every request also carries X-Relay-Console: 1, which the gateway
// requires on cookie-authenticated changes (a cross-site form cannot set it: CSRF guard).
// Errors are RFC 9457 problem details; AdminApiError keeps status, title and detail.

import { t } from "./i18n.js";

export class AdminApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || null;
    this.detail = detail || null;
  }
}

let onUnauthorized = () => {};

// Called when a request other than the sign-in itself answers 401 (the session ended).
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

async function request(method, path, body, { signIn = false } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json, application/problem+json", "X-Relay-Console": "1" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new AdminApiError(0, "Network error", null);
  }
  if (response.ok) {
    if (response.status === 204) return null;
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : null;
  }
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not JSON (a proxy's error page): the status alone
  }
  const error = new AdminApiError(response.status, problem?.title, problem?.detail);
  if (response.status === 401 && !signIn) onUnauthorized(error);
  throw error;
}

const id = (value) => encodeURIComponent(String(value));

export const api = {
  session: () => request("GET", "/admin/session", undefined, { signIn: true }),
  login: (token) => request("POST", "/admin/session", { token }, { signIn: true }),
  logout: () => request("DELETE", "/admin/session", undefined, { signIn: true }),
  keys: () => request("GET", "/admin/keys"),
  createKey: (body) => request("POST", "/admin/keys", body),
  updateKey: (keyId, body) => request("PATCH", `/admin/keys/${id(keyId)}`, body),
  deleteKey: (keyId) => request("DELETE", `/admin/keys/${id(keyId)}`),
  usage: (params) => request("GET", `/admin/usage?${new URLSearchParams(params)}`),
  upstreams: () => request("GET", "/admin/upstreams"),
  degradation: () => request("GET", "/admin/degradation"),
  patchDegradation: (patch) => request("PATCH", "/admin/degradation", patch),
  systemPrompts: () => request("GET", "/admin/system-prompts"),
  filterLists: () => request("GET", "/admin/content-filter/lists"),
  policy: () => request("GET", "/admin/policy"),
};

// One sentence an operator can act on, in the console's language.
export function explainError(error) {
  if (!(error instanceof AdminApiError)) return String(error?.message || error);
  const detail = error.detail || error.title || t("error.requestFailed");
  switch (error.status) {
    case 0:
      return t("error.network");
    case 401:
      return t("error.unauthorized");
    case 403:
      return t("error.forbidden", { detail });
    case 404:
      return t("error.notFound", { detail });
    case 400:
    case 409:
    case 422:
      return t("error.badRequest", { detail });
    default:
      return t("error.withStatus", { detail, status: error.status });
  }
}
