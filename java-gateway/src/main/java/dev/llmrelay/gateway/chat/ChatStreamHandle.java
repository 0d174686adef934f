package dev.llmrelay.gateway.chat;

import java.util.Map;

/** A running stream started by {@link ChatStreamService#start}. */
public interface ChatStreamHandle {

    /**
     * Stops the stream now: the upstream call is cancelled (so the model stops generating), the usage
     * row says {@code client_cancelled} and bills what was relayed. No listener callback starts after
     * this returns (one already running on the OkHttp thread may finish). Idempotent; a no-op after the
     * stream ended. Safe to call from any thread, including from inside a listener callback.
     */
    void cancel();

    /** X-RateLimit-* headers of the admission, to set before the first byte of a response. */
    Map<String, String> rateLimitHeaders();

    /** True once the stream finished, failed or was cancelled. */
    boolean isDone();
}
