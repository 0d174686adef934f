// The gateway's browser API (/api/*, same origin; the session is an HttpOnly cookie).
// Errors come back as RFC 9457 problem details; ApiError (json-request.js) keeps what the page
// needs to explain them: status, code, detail and the Retry-After wait.

import { joinSentences, t } from "./i18n.js";
import { ApiError, requestJson } from "./json-request.js";

export { ApiError };

// One call of the browser API: JSON, or an ApiError (json-request.js).
const request = (method, path, body) => requestJson(method, path, body);

export const api = {
  session: () => request("GET", "/api/session"),
  login: (apiKey) => request("POST", "/api/session", { apiKey }),
  logout: () => request("DELETE", "/api/session"),
  models: () => request("GET", "/api/chat/models"),
  conversations: () => request("GET", "/api/chat/conversations"),
  conversation: (id) => request("GET", `/api/chat/conversations/${encodeURIComponent(id)}`),
  deleteConversation: (id) => request("DELETE", `/api/chat/conversations/${encodeURIComponent(id)}`),
  // model: null leaves the conversation's model (or, for a new one, the gateway's default)
  send: (conversationId, content, model = null) =>
    request("POST", "/api/chat/messages", model ? { conversationId, content, model } : { conversationId, content }),
  cancel: (messageId) => request("POST", `/api/chat/messages/${encodeURIComponent(messageId)}/cancel`),
  streamUrl: (messageId) => `/api/chat/messages/${encodeURIComponent(messageId)}/stream`,
};

// How long the gateway asked us to wait, in seconds (null: it did not say).
export function retryAfterOf(error) {
  return error instanceof ApiError && (error.status === 429 || error.status === 503)
    ? error.retryAfterSeconds
    : null;
}

function wait(seconds) {
  return seconds != null ? t("error.tryAgainIn", { seconds }) : t("error.tryAgainShortly");
}

// One sentence a person can act on, for each way a request can fail, in the page's language.
// secondsLeft: what is left of the Retry-After wait (the notice counts it down).
export function explainError(error, secondsLeft = error?.retryAfterSeconds) {
  if (!(error instanceof ApiError)) return String(error?.message || error);
  switch (error.status) {
    case 0:
      return t("error.network");
    case 401:
      return t("error.unauthorized");
    case 403:
      return t("error.forbidden");
    case 404:
      return t(error.code === "model_not_found" ? "error.modelNotFound" : "error.notFound");
    case 429:
      return joinSentences(t("error.rateLimited"), wait(secondsLeft));
    case 503:
      return joinSentences(t("error.unavailable"), wait(secondsLeft));
    default:
      return t("error.withStatus", { message: error.detail || error.title || t("error.requestFailed"), status: error.status });
  }
}

// The same for an `error` event that ended a reply's stream. A Retry-After wait is left out of
// this line (it would go stale): the notice counts it down (retryAfterOfStream).
export function explainStreamError(data) {
  const shortly = data?.retry_after ? "" : t("error.tryAgainShortly");
  switch (data?.code) {
    case "upstream_unavailable":
      return joinSentences(t("error.unavailable"), shortly);
    case "rate_limit_exceeded":
      return joinSentences(t("error.rateLimited"), shortly);
    default:
      return data?.message || t("error.modelFailed");
  }
}

export function retryAfterOfStream(data) {
  const seconds = Number(data?.retry_after);
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : null;
}
