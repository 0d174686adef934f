package dev.llmrelay.gateway.ratelimit;

import java.util.Map;

/**
 * An admitted request: its rate-limit headers, a token reservation to settle with the real usage, and
 * a concurrent-stream slot to release. Both operations are idempotent.
 */
public interface RateLimitPermit {

    /** X-RateLimit-* headers describing the key's budget after this request was admitted. */
    Map<String, String> headers();

    /** Replaces the reserved token estimate with what the request really used. */
    void settle(long actualTokens);

    /** Frees the concurrent-stream slot. */
    void release();

    /** Settles and frees the slot of a finished request, in one store round trip where it can. */
    default void finish(long actualTokens) {
        settle(actualTokens);
        release();
    }
}
