// The gateway's admin API (/admin/*, same origin). After POST /admin/session the console is signed in
// by an HttpOnly cookie it never sees; every request also carries X-Relay-Console: 1, which the gateway
// requires on cookie-authenticated changes (a cross-site form cannot set it: CSRF guard).
// Errors are RFC 9457 problem details, thrown as ApiError (web/js/json-request.js, shared with the chat page).

import { ApiError, requestJson } from "../../js/json-request.js";
import { t } from "./i18n.js";

export { ApiError };

let onUnauthorized = () => {};

// Called when a request other than the sign-in itself answers 401 (the session ended).
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

async function request(method, path, body, { signIn = false } = {}) {
  try {
    return await requestJson(method, path, body, { headers: { "X-Relay-Console": "1" }, cache: "no-store" });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !signIn) onUnauthorized(error);
    throw error;
  }
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
  if (!(error instanceof ApiError)) return String(error?.message || error);
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
