package dev.llmrelay.gateway.keys;

import java.time.Instant;

/** A stored API key (never its plaintext) with its per-key limits and budget. */
public record ApiKey(
        long id,
        String name,
        String prefix,
        int requestsPerMinute,
        int tokensPerMinute,
        int maxConcurrentStreams,
        boolean enabled,
        Instant createdAt,
        Instant lastUsedAt,
        /* may be served by a model's fallback route when its pool cannot serve (degradation) */
        boolean allowFallback,
        /* tokens per day, month or in all (null: none) */
        Budget budget) {

    public ApiKey(long id, String name, String prefix, int requestsPerMinute, int tokensPerMinute,
            int maxConcurrentStreams, boolean enabled, Instant createdAt, Instant lastUsedAt) {
        this(id, name, prefix, requestsPerMinute, tokensPerMinute, maxConcurrentStreams, enabled, createdAt,
                lastUsedAt, false, null);
    }
}
