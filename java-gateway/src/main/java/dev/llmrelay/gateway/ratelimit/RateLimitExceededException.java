package dev.llmrelay.gateway.ratelimit;

import java.util.Map;

import dev.llmrelay.gateway.system.OpenAiException;

/** 429: a per-key limit is spent. Carries Retry-After and X-RateLimit-* headers. */
public class RateLimitExceededException extends OpenAiException {

    private final String limit;
    private final long retryAfterSeconds;

    RateLimitExceededException(String limit, String message, long retryAfterSeconds, Map<String, String> headers) {
        super(429, "rate_limit_error", "rate_limit_exceeded", null, message, headers);
        this.limit = limit;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** Which limit: {@code requests}, {@code tokens} or {@code streams}. */
    public String limit() {
        return limit;
    }

    public long retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
