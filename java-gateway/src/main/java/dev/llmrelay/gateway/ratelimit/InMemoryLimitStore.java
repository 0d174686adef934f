package dev.llmrelay.gateway.ratelimit;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.stereotype.Component;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.local.LocalBucketBuilder;

/** Limit state in this JVM (one gateway instance). */
@Component
class InMemoryLimitStore implements LimitStore {

    private final ConcurrentMap<String, Bucket> buckets = new ConcurrentHashMap<>();
    private final ConcurrentMap<String, AtomicInteger> slots = new ConcurrentHashMap<>();

    @Override
    public Bucket bucket(String id, BucketConfiguration configuration) {
        return buckets.computeIfAbsent(id, ignored -> {
            LocalBucketBuilder builder = Bucket.builder();
            for (Bandwidth bandwidth : configuration.getBandwidths()) {
                builder.addLimit(bandwidth);
            }
            return builder.build();
        });
    }

    @Override
    public boolean tryAcquireSlot(String id, int max) {
        AtomicInteger used = slots.computeIfAbsent(id, ignored -> new AtomicInteger());
        while (true) {
            int current = used.get();
            if (current >= max) {
                return false;
            }
            if (used.compareAndSet(current, current + 1)) {
                return true;
            }
        }
    }

    @Override
    public void releaseSlot(String id) {
        AtomicInteger used = slots.get(id);
        if (used != null) {
            used.updateAndGet(n -> Math.max(0, n - 1));
        }
    }
}
