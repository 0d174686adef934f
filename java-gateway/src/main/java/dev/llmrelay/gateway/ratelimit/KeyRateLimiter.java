package dev.llmrelay.gateway.ratelimit;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.LimitStore.Decision;
import dev.llmrelay.gateway.ratelimit.LimitStore.Limits;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import dev.llmrelay.gateway.system.OpenAiException;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Per-key limits: requests per minute, tokens per minute (reserve the prompt estimate plus max_tokens up
 * front, settle with the real usage afterwards) and concurrent streams. Budgets refill once a minute, all
 * at once, so "N requests per minute" means exactly that and X-RateLimit-Reset is the time to the next
 * refill. The {@link LimitStore} decides; when a shared store is unreachable, {@link StoreFailure} says
 * whether this instance admits on its own counters or refuses with 503.
 */
public class KeyRateLimiter {

    private static final Logger log = LoggerFactory.getLogger(KeyRateLimiter.class);

    private final LimitStore store;
    private final LimitStore local;
    private final StoreFailure onFailure;
    private final Duration retryAfter;
    private final MeterRegistry meters;
    // log an outage once when it starts and once when it ends, not on every request (the metric counts)
    private final AtomicBoolean storeDown = new AtomicBoolean();

    KeyRateLimiter(LimitStore store, StoreFailure onFailure, Duration retryAfter, MeterRegistry meters) {
        this.store = store;
        this.local = store instanceof InMemoryLimitStore ? store : new InMemoryLimitStore();
        this.onFailure = onFailure;
        this.retryAfter = retryAfter;
        this.meters = meters;
        // exported at 0 from the start, so an alert on it (and the gateway dashboard) sees the series before any outage
        meters.counter("gateway.ratelimit.store.unavailable", "policy", onFailure.name().toLowerCase());
    }

    /**
     * Admits one request for {@code key} that may use up to {@code tokenEstimate} tokens.
     *
     * @throws RateLimitExceededException (429 with Retry-After and X-RateLimit-*) when a limit is spent
     * @throws OpenAiException 503 with Retry-After when the shared store is unreachable and the policy is
     *         fail-closed
     */
    public RateLimitPermit admit(ApiKey key, long tokenEstimate) {
        Limits limits = new Limits(key.requestsPerMinute(), key.tokensPerMinute(), key.maxConcurrentStreams());
        // a reservation never exceeds the budget, or a large max_tokens could never pass
        long reserved = Math.max(1, Math.min(tokenEstimate, key.tokensPerMinute()));
        String keyId = Long.toString(key.id());
        LimitStore decidedBy = store;
        Decision decision;
        try {
            decision = store.admit(keyId, limits, reserved);
            if (storeDown.compareAndSet(true, false)) {
                log.info("limit store reachable again");
            }
        } catch (LimitStoreUnavailableException e) {
            meters.counter("gateway.ratelimit.store.unavailable", "policy", onFailure.name().toLowerCase())
                    .increment();
            if (storeDown.compareAndSet(false, true)) {
                log.warn("limit store unreachable, {} until it answers: {}", onFailure, e.getMessage());
            }
            if (onFailure == StoreFailure.FAIL_CLOSED) {
                throw new OpenAiException(503, "server_error", "limits_unavailable", null,
                        "Rate limits cannot be checked right now; retry later",
                        Map.of("Retry-After", Long.toString(Math.max(1, retryAfter.toSeconds()))));
            }
            decidedBy = local;
            decision = local.admit(keyId, limits, reserved);
        }
        if (!decision.admitted()) {
            throw reject(decision, key, reserved);
        }
        return new Permit(decidedBy, keyId, limits, reserved, decision.lease(), headers(key, decision));
    }

    private RateLimitExceededException reject(Decision decision, ApiKey key, long reserved) {
        String message = switch (decision.rejected()) {
            case "requests" -> "Rate limit reached: " + key.requestsPerMinute() + " requests per minute";
            case "tokens" -> "Token limit reached: " + key.tokensPerMinute() + " tokens per minute (this "
                    + "request reserves " + reserved + ")";
            default -> "Too many concurrent streams for this key (max " + key.maxConcurrentStreams() + ")";
        };
        meters.counter("gateway.ratelimit.rejections", "limit", decision.rejected()).increment();
        long retryAfterSeconds = Math.max(1, ceilSeconds(decision.nanosToWait()));
        Map<String, String> headers = headers(key, decision);
        headers.put("Retry-After", Long.toString(retryAfterSeconds));
        return new RateLimitExceededException(decision.rejected(), message, retryAfterSeconds, headers);
    }

    private static Map<String, String> headers(ApiKey key, Decision decision) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("X-RateLimit-Limit", Integer.toString(key.requestsPerMinute()));
        headers.put("X-RateLimit-Remaining", Long.toString(Math.max(0, decision.requestsRemaining())));
        headers.put("X-RateLimit-Reset", Long.toString(ceilSeconds(decision.nanosToReset())));
        headers.put("X-RateLimit-Limit-Tokens", Integer.toString(key.tokensPerMinute()));
        headers.put("X-RateLimit-Remaining-Tokens", Long.toString(Math.max(0, decision.tokensRemaining())));
        return headers;
    }

    private static long ceilSeconds(long nanos) {
        return (Math.max(0, nanos) + 999_999_999L) / 1_000_000_000L;
    }

    private final class Permit implements RateLimitPermit {
        private final LimitStore store;
        private final String keyId;
        private final Limits limits;
        private final long reserved;
        private final String lease;
        private final Map<String, String> headers;
        private final AtomicBoolean settled = new AtomicBoolean();
        private final AtomicBoolean released = new AtomicBoolean();

        Permit(LimitStore store, String keyId, Limits limits, long reserved, String lease,
                Map<String, String> headers) {
            this.store = store;
            this.keyId = keyId;
            this.limits = limits;
            this.reserved = reserved;
            this.lease = lease;
            this.headers = Map.copyOf(headers);
        }

        @Override
        public Map<String, String> headers() {
            return headers;
        }

        @Override
        public void settle(long actualTokens) {
            if (settled.compareAndSet(false, true)) {
                settleDifference(Math.max(0, actualTokens) - reserved);
            }
        }

        @Override
        public void finish(long actualTokens) {
            long difference = settled.compareAndSet(false, true) ? Math.max(0, actualTokens) - reserved : 0;
            if (!released.compareAndSet(false, true)) {
                settleDifference(difference);
                return;
            }
            try {
                store.finish(keyId, limits, difference, lease);
            } catch (LimitStoreUnavailableException e) {
                // as settle and release: the reservation stands as the charge, the slot's lease expires
                meters.counter("gateway.ratelimit.store.unavailable", "policy", "finish").increment();
                log.debug("limit store unreachable, finish ({} tokens) lost: {}", difference, e.getMessage());
            }
        }

        private void settleDifference(long difference) {
            if (difference == 0) {
                return;
            }
            try {
                store.settle(keyId, limits, difference);
            } catch (LimitStoreUnavailableException e) {
                // the reservation stands as the charge: a refund is lost, an overrun goes uncharged
                meters.counter("gateway.ratelimit.store.unavailable", "policy", "settle").increment();
                log.debug("limit store unreachable, settle of {} tokens lost: {}", difference, e.getMessage());
            }
        }

        @Override
        public void release() {
            if (!released.compareAndSet(false, true)) {
                return;
            }
            try {
                store.release(keyId, lease);
            } catch (LimitStoreUnavailableException e) {
                // the slot's lease expires on its own
                meters.counter("gateway.ratelimit.store.unavailable", "policy", "release").increment();
                log.debug("limit store unreachable, slot left to expire: {}", e.getMessage());
            }
        }
    }
}
