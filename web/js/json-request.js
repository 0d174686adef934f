// A same-origin JSON request to the gateway, shared by the chat page (/api) and the console (/admin):
// the answer's JSON (null for 204 or a body that is not JSON), else an ApiError with what the
// gateway's RFC 9457 problem details say (status, title, detail, code) and its Retry-After wait.
// Status 0 is a network failure.

export class ApiError extends Error {
  constructor(status, title, detail, retryAfterSeconds = null, code = null) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || null;
    this.detail = detail || null;
    this.retryAfterSeconds = retryAfterSeconds;
    this.code = code;
  }
}

// Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (null: none or unreadable).
export function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

// headers: added to Accept (and Content-Type with a body); cache: fetch's cache mode.
export async function requestJson(method, path, body, { headers = {}, cache = "default" } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    cache,
    headers: { Accept: "application/json, application/problem+json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "Network error", null, null, "network");
  }
  if (response.ok) {
    if (response.status === 204) return null;
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : null;
  }
  let problem = {};
  try {
    problem = (await response.json()) || {};
  } catch {
    // not JSON (a proxy's error page): the status alone
  }
  throw new ApiError(response.status, problem.title, problem.detail,
    parseRetryAfter(response.headers.get("Retry-After")), typeof problem.code === "string" ? problem.code : null);
}
