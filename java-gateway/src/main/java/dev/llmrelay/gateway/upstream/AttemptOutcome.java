package dev.llmrelay.gateway.upstream;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.util.Locale;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What one call to an upstream came to, decided in one place for streams, non-stream completions and
 * model lists, so "busy", "the request's fault", "timeout" and "upstream fault" mean the same everywhere.
 *
 * @param kind        the verdict
 * @param status      the upstream's HTTP status, 0 when none came
 * @param retryAfter  the upstream's Retry-After in seconds (busy only), else 0
 * @param body        the upstream's error body or error event (JSON text), or null
 * @param error       the parsed {@code error} object of an OpenAI-shaped body, or null
 * @param description for logs and messages ("HTTP 500 from ...", "SocketTimeoutException at ...")
 * @param cause       the exception, if one ended the call
 */
public record AttemptOutcome(Kind kind, int status, long retryAfter, String body, JsonNode error,
        String description, Throwable cause) {

    /** Longest Retry-After passed on, so a confused upstream cannot park clients for hours. */
    static final long MAX_RETRY_AFTER_SECONDS = 600;
    private static final ObjectMapper JSON = new ObjectMapper();

    public enum Kind {
        /** A 2xx answer. */
        OK,
        /** A 4xx: the client's fault, passed on unchanged; the upstream worked. */
        CLIENT_ERROR,
        /** 503 with Retry-After: a healthy upstream shedding load. Try another; never a breaker failure. */
        BUSY,
        /**
         * A 5xx in OpenAI's error shape (or an error event before any content): the model-service handled
         * the request and reported an error. Whether the request or the replica is at fault is told by
         * asking a second replica ({@link #sameErrorAs}).
         */
        ERROR_REPORTED,
        /** No byte within gateway.timeouts.read: not a fault (the work may just be long), not retried. */
        TIMEOUT,
        /** Connect failure, a 5xx without an OpenAI error, a broken stream: counts against the breaker. */
        UPSTREAM_FAULT
    }

    /** An HTTP answer; {@code body} is read only for errors (may be null). */
    public static AttemptOutcome ofResponse(Upstream upstream, int status, String retryAfterHeader, String body) {
        String description = "HTTP " + status + " from " + upstream.name();
        if (status >= 200 && status < 300) {
            return new AttemptOutcome(Kind.OK, status, 0, null, null, description, null);
        }
        if (status >= 400 && status < 500) {
            return new AttemptOutcome(Kind.CLIENT_ERROR, status, 0, body, openAiError(body), description, null);
        }
        long retryAfter = retryAfterSeconds(retryAfterHeader);
        if (status == 503 && retryAfter > 0) {
            return new AttemptOutcome(Kind.BUSY, status, retryAfter, body, openAiError(body), description, null);
        }
        JsonNode error = status >= 500 ? openAiError(body) : null;
        return new AttemptOutcome(error != null ? Kind.ERROR_REPORTED : Kind.UPSTREAM_FAULT, status, 0, body, error,
                description, null);
    }

    /**
     * The model-service's code for a generation failure that one request caused alone (its other requests
     * went on): answered 422, or as an error event with this code inside a stream. The request's fault.
     */
    public static final String REQUEST_GENERATION_FAILED = "request_generation_failed";

    /** An error event ({@code data: {"error": ...}}) that came before any content of a stream. */
    public static AttemptOutcome ofErrorEvent(Upstream upstream, String data) {
        JsonNode error = openAiError(data);
        if (causedByRequest(error)) {
            return new AttemptOutcome(Kind.CLIENT_ERROR, 422, 0, data, error, "error event from " + upstream.name()
                    + ": " + error.path("message").asText(""), null);
        }
        return new AttemptOutcome(error != null ? Kind.ERROR_REPORTED : Kind.UPSTREAM_FAULT, 500, 0, data, error,
                "error event from " + upstream.name() + (error != null ? ": " + error.path("message").asText("")
                        : ""), null);
    }

    /** The call failed without an HTTP answer to judge (or a stream broke before its first event). */
    public static AttemptOutcome ofFailure(Upstream upstream, Throwable failure) {
        String description = (failure != null ? failure.getClass().getSimpleName() + ": " + failure.getMessage()
                : "stream failed") + " at " + upstream.name();
        return new AttemptOutcome(isReadTimeout(failure) ? Kind.TIMEOUT : Kind.UPSTREAM_FAULT, 0, 0, null, null,
                description, failure);
    }

    /**
     * True when both are the same reported error (status, type, code, message): a second replica saying
     * exactly what the first said about this request means the request, not a replica, is the cause.
     */
    public boolean sameErrorAs(AttemptOutcome other) {
        return kind == Kind.ERROR_REPORTED && other.kind == Kind.ERROR_REPORTED && status == other.status
                && error.path("type").equals(other.error.path("type"))
                && error.path("code").equals(other.error.path("code"))
                && error.path("message").equals(other.error.path("message"));
    }

    /** True for an error the model-service says the request alone caused ({@link #REQUEST_GENERATION_FAILED}). */
    public static boolean causedByRequest(JsonNode error) {
        return error != null && REQUEST_GENERATION_FAILED.equals(error.path("code").asText(null));
    }

    /** The exception to record against the breaker. */
    public Throwable failure() {
        return cause != null ? cause : new UpstreamLease.UpstreamFailure(description);
    }

    /** A read timeout (no byte within the limit); a connect timeout is an upstream fault. */
    static boolean isReadTimeout(Throwable failure) {
        if (!(failure instanceof SocketTimeoutException)) {
            return false;
        }
        String message = failure.getMessage();
        return message == null || !message.toLowerCase(Locale.ROOT).contains("connect");
    }

    /** The {@code error} object of an OpenAI-shaped error body with a message, or null. */
    static JsonNode openAiError(String body) {
        if (body == null || body.isBlank()) {
            return null;
        }
        try {
            JsonNode error = JSON.readTree(body).path("error");
            return error.isObject() && error.path("message").isTextual() ? error : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Delta-seconds (what model-service sends), capped; 0 when absent or an HTTP date. */
    static long retryAfterSeconds(String header) {
        if (header == null) {
            return 0;
        }
        try {
            long seconds = Long.parseLong(header.strip());
            return seconds > 0 ? Math.min(seconds, MAX_RETRY_AFTER_SECONDS) : 0;
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
