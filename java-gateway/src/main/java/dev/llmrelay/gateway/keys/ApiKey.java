package dev.llmrelay.gateway.keys;

import java.time.Instant;

/** A stored API key (never its plaintext) with its per-key limits. */
public record ApiKey(
        long id,
        String name,
        String prefix,
        int requestsPerMinute,
        int tokensPerMinute,
        int maxConcurrentStreams,
        boolean enabled,
        Instant createdAt,
        Instant lastUsedAt) {
}
