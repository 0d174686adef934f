package dev.llmrelay.gateway.ratelimit;

import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;

/**
 * Limit state in this JVM (one gateway instance), with Bucket4j buckets that refill once a minute, all
 * at once, and budget counters. Also the local fallback of the Redis store under the fail-open policy.
 */
class InMemoryLimitStore implements LimitStore {

    private static final Duration WINDOW = Duration.ofMinutes(1);

    private final ConcurrentMap<String, Bucket> buckets = new ConcurrentHashMap<>();
    private final ConcurrentMap<String, AtomicInteger> slots = new ConcurrentHashMap<>();
    /** budget counters by key and period (a few per key; old periods are never read again) */
    private final ConcurrentMap<String, AtomicLong> budgets = new ConcurrentHashMap<>();

    @Override
    public Decision admit(String keyId, Limits limits, long reserve) {
        Bucket requests = bucket("rpm:" + keyId + ":" + limits.requestsPerMinute(), limits.requestsPerMinute());
        Bucket tokens = tokens(keyId, limits);
        ConsumptionProbe requestProbe = requests.tryConsumeAndReturnRemaining(1);
        if (!requestProbe.isConsumed()) {
            return new Decision("requests", requestProbe.getRemainingTokens(), tokens.getAvailableTokens(),
                    requestProbe.getNanosToWaitForReset(), requestProbe.getNanosToWaitForRefill(), null);
        }
        ConsumptionProbe tokenProbe = tokens.tryConsumeAndReturnRemaining(reserve);
        if (!tokenProbe.isConsumed()) {
            requests.addTokens(1);
            return new Decision("tokens", requestProbe.getRemainingTokens() + 1, tokenProbe.getRemainingTokens(),
                    requestProbe.getNanosToWaitForReset(), tokenProbe.getNanosToWaitForRefill(), null);
        }
        if (!tryAcquireSlot(keyId, limits.maxConcurrentStreams())) {
            requests.addTokens(1);
            tokens.addTokens(reserve);
            return new Decision("streams", requestProbe.getRemainingTokens() + 1,
                    tokenProbe.getRemainingTokens() + reserve, requestProbe.getNanosToWaitForReset(),
                    1_000_000_000L, null);
        }
        return new Decision(null, requestProbe.getRemainingTokens(), tokenProbe.getRemainingTokens(),
                requestProbe.getNanosToWaitForReset(), 0, UUID.randomUUID().toString());
    }

    @Override
    public void settle(String keyId, Limits limits, long difference) {
        Bucket tokens = tokens(keyId, limits);
        if (difference > 0) {
            tokens.consumeIgnoringRateLimits(difference); // may go into debt: the next minute pays
        } else if (difference < 0) {
            tokens.addTokens(-difference);
        }
    }

    @Override
    public void release(String keyId, String lease) {
        AtomicInteger used = slots.get(keyId);
        if (used != null) {
            used.updateAndGet(n -> Math.max(0, n - 1));
        }
    }

    @Override
    public BudgetGrant reserveBudget(String keyId, String period, long limit, long want, long atLeast) {
        AtomicLong used = budgets.get(keyId + "|" + period);
        if (used == null) {
            return new BudgetGrant(0, 0, true);
        }
        while (true) {
            long current = used.get();
            long left = limit - current;
            if (left < atLeast) {
                return new BudgetGrant(0, current, false);
            }
            long grant = Math.min(want, left);
            if (used.compareAndSet(current, current + grant)) {
                return new BudgetGrant(grant, current + grant, false);
            }
        }
    }

    @Override
    public void settleBudget(String keyId, String period, long difference) {
        AtomicLong used = budgets.get(keyId + "|" + period);
        if (used != null) {
            used.addAndGet(difference);
        }
    }

    @Override
    public void seedBudget(String keyId, String period, long used, long ttlMillis) {
        budgets.putIfAbsent(keyId + "|" + period, new AtomicLong(used));
    }

    @Override
    public long budgetUsed(String keyId, String period) {
        AtomicLong used = budgets.get(keyId + "|" + period);
        return used == null ? -1 : used.get();
    }

    private Bucket tokens(String keyId, Limits limits) {
        return bucket("tpm:" + keyId + ":" + limits.tokensPerMinute(), limits.tokensPerMinute());
    }

    private Bucket bucket(String id, int perMinute) {
        return buckets.computeIfAbsent(id, ignored -> Bucket.builder()
                .addLimit(Bandwidth.builder().capacity(perMinute).refillIntervally(perMinute, WINDOW).build())
                .build());
    }

    private boolean tryAcquireSlot(String keyId, int max) {
        AtomicInteger used = slots.computeIfAbsent(keyId, ignored -> new AtomicInteger());
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
}
