package dev.llmrelay.gateway.ratelimit;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;

/**
 * Where limit state lives. The in-memory store serves one gateway; a Redis store (Bucket4j's
 * {@code LettuceBasedProxyManager} for buckets, INCR/DECR for slots) lets several instances share limits
 * without touching {@link KeyRateLimiter}.
 */
public interface LimitStore {

    /** The bucket named {@code id}, created with {@code configuration} on first use. */
    Bucket bucket(String id, BucketConfiguration configuration);

    /** Takes one of {@code max} slots named {@code id}; false when all are taken. */
    boolean tryAcquireSlot(String id, int max);

    /** Gives back a slot taken by {@link #tryAcquireSlot}. */
    void releaseSlot(String id);
}
