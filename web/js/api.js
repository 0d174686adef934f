// The gateway's browser API (/api/*, same origin; the session is an HttpOnly cookie).
// Errors come back as RFC 9457 problem details; ApiError keeps what the page needs to
// explain them: status, detail and the Retry-After wait.

export class ApiError extends Error {
  constructor(status, title, detail, retryAfterSeconds) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (networkError) {
    throw new ApiError(0, "Network error", "The gateway cannot be reached. Check your connection.", null);
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
    // not JSON (a proxy's error page): fall back to the status alone
  }
  throw new ApiError(
    response.status,
    problem.title,
    problem.detail,
    parseRetryAfter(response.headers.get("Retry-After")),
  );
}

export const api = {
  session: () => request("GET", "/api/session"),
  login: (apiKey) => request("POST", "/api/session", { apiKey }),
  logout: () => request("DELETE", "/api/session"),
  conversations: () => request("GET", "/api/chat/conversations"),
  conversation: (id) => request("GET", `/api/chat/conversations/${encodeURIComponent(id)}`),
  deleteConversation: (id) => request("DELETE", `/api/chat/conversations/${encodeURIComponent(id)}`),
  send: (conversationId, content) => request("POST", "/api/chat/messages", { conversationId, content }),
  cancel: (messageId) => request("POST", `/api/chat/messages/${encodeURIComponent(messageId)}/cancel`),
  streamUrl: (messageId) => `/api/chat/messages/${encodeURIComponent(messageId)}/stream`,
};

// One sentence a person can act on, for each way a request can fail.
export function explainError(error) {
  if (!(error instanceof ApiError)) return String(error?.message || error);
  const wait = error.retryAfterSeconds != null ? ` Try again in ${error.retryAfterSeconds} s.` : "";
  switch (error.status) {
    case 0:
      return error.detail;
    case 401:
      return "Not signed in, or the API key is not valid. Log in with a valid key.";
    case 403:
      return "This API key may not do that.";
    case 404:
      return "That conversation or message no longer exists.";
    case 429:
      return `Rate limit reached for this API key.${wait || " Try again shortly."}`;
    case 503:
      return `The model service is unavailable right now.${wait || " Try again shortly."}`;
    default:
      return `${error.detail || error.title || "Request failed"} (HTTP ${error.status}).`;
  }
}

// The same for an `error` event that ended a reply's stream.
export function explainStreamError(data) {
  const wait = data?.retry_after ? ` Try again in ${data.retry_after} s.` : "";
  switch (data?.code) {
    case "upstream_unavailable":
      return `The model service is unavailable right now.${wait || " Try again shortly."}`;
    case "rate_limit_exceeded":
      return `Rate limit reached for this API key.${wait || " Try again shortly."}`;
    default:
      return `${data?.message || "The model failed to answer."}${wait}`;
  }
}
