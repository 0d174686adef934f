package dev.llmrelay.gateway.ratelimit;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.springframework.stereotype.Service;

import dev.llmrelay.gateway.keys.ApiKey;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Per-key limits with Bucket4j: requests per minute, tokens per minute (reserve the prompt estimate plus
 * max_tokens up front, settle with the real usage afterwards) and concurrent streams. Buckets refill
 * once a minute, all at once, so "N requests per minute" means exactly that and X-RateLimit-Reset is the
 * time to the next refill.
 */
@Service
public class KeyRateLimiter {

    private static final Duration WINDOW = Duration.ofMinutes(1);

    private final LimitStore store;
    private final MeterRegistry meters;

    KeyRateLimiter(LimitStore store, MeterRegistry meters) {
        this.store = store;
        this.meters = meters;
    }

    /**
     * Admits one request for {@code key} that may use up to {@code tokenEstimate} tokens.
     *
     * @throws RateLimitExceededException (429 with Retry-After and X-RateLimit-*) when a limit is spent
     */
    public RateLimitPermit admit(ApiKey key, long tokenEstimate) {
        Bucket requests = store.bucket("rpm:" + key.id() + ":" + key.requestsPerMinute(),
                perMinute(key.requestsPerMinute()));
        Bucket tokens = store.bucket("tpm:" + key.id() + ":" + key.tokensPerMinute(),
                perMinute(key.tokensPerMinute()));

        ConsumptionProbe requestProbe = requests.tryConsumeAndReturnRemaining(1);
        if (!requestProbe.isConsumed()) {
            throw reject("requests", "Rate limit reached: " + key.requestsPerMinute() + " requests per minute",
                    requestProbe.getNanosToWaitForRefill(), key, requestProbe.getRemainingTokens(),
                    requestProbe.getNanosToWaitForReset(), tokens.getAvailableTokens());
        }
        // a reservation never exceeds the bucket, or a large max_tokens could never pass
        long reserved = Math.max(1, Math.min(tokenEstimate, key.tokensPerMinute()));
        ConsumptionProbe tokenProbe = tokens.tryConsumeAndReturnRemaining(reserved);
        if (!tokenProbe.isConsumed()) {
            requests.addTokens(1);
            throw reject("tokens", "Token limit reached: " + key.tokensPerMinute() + " tokens per minute (this "
                            + "request reserves " + reserved + ")",
                    tokenProbe.getNanosToWaitForRefill(), key, requestProbe.getRemainingTokens() + 1,
                    requestProbe.getNanosToWaitForReset(), tokenProbe.getRemainingTokens());
        }
        String slot = "streams:" + key.id();
        if (!store.tryAcquireSlot(slot, key.maxConcurrentStreams())) {
            requests.addTokens(1);
            tokens.addTokens(reserved);
            throw reject("streams", "Too many concurrent streams for this key (max " + key.maxConcurrentStreams()
                            + ")", 1_000_000_000L, key, requestProbe.getRemainingTokens() + 1,
                    requestProbe.getNanosToWaitForReset(), tokenProbe.getRemainingTokens() + reserved);
        }
        Map<String, String> headers = headers(key, requestProbe.getRemainingTokens(),
                requestProbe.getNanosToWaitForReset(), tokenProbe.getRemainingTokens());
        return new Permit(tokens, slot, reserved, headers);
    }

    private RateLimitExceededException reject(String limit, String message, long nanosToWait, ApiKey key,
            long requestsRemaining, long nanosToReset, long tokensRemaining) {
        meters.counter("gateway.ratelimit.rejections", "limit", limit).increment();
        long retryAfter = Math.max(1, ceilSeconds(nanosToWait));
        Map<String, String> headers = headers(key, requestsRemaining, nanosToReset, tokensRemaining);
        headers.put("Retry-After", Long.toString(retryAfter));
        return new RateLimitExceededException(limit, message, retryAfter, headers);
    }

    private static Map<String, String> headers(ApiKey key, long requestsRemaining, long nanosToReset,
            long tokensRemaining) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("X-RateLimit-Limit", Integer.toString(key.requestsPerMinute()));
        headers.put("X-RateLimit-Remaining", Long.toString(Math.max(0, requestsRemaining)));
        headers.put("X-RateLimit-Reset", Long.toString(ceilSeconds(nanosToReset)));
        headers.put("X-RateLimit-Limit-Tokens", Integer.toString(key.tokensPerMinute()));
        headers.put("X-RateLimit-Remaining-Tokens", Long.toString(Math.max(0, tokensRemaining)));
        return headers;
    }

    private static long ceilSeconds(long nanos) {
        return (Math.max(0, nanos) + 999_999_999L) / 1_000_000_000L;
    }

    private static BucketConfiguration perMinute(int limit) {
        return BucketConfiguration.builder()
                .addLimit(Bandwidth.builder().capacity(limit).refillIntervally(limit, WINDOW).build())
                .build();
    }

    private final class Permit implements RateLimitPermit {
        private final Bucket tokens;
        private final String slot;
        private final long reserved;
        private final Map<String, String> headers;
        private final AtomicBoolean settled = new AtomicBoolean();
        private final AtomicBoolean released = new AtomicBoolean();

        Permit(Bucket tokens, String slot, long reserved, Map<String, String> headers) {
            this.tokens = tokens;
            this.slot = slot;
            this.reserved = reserved;
            this.headers = Map.copyOf(headers);
        }

        @Override
        public Map<String, String> headers() {
            return headers;
        }

        @Override
        public void settle(long actualTokens) {
            if (!settled.compareAndSet(false, true)) {
                return;
            }
            long difference = Math.max(0, actualTokens) - reserved;
            if (difference > 0) {
                tokens.consumeIgnoringRateLimits(difference); // may go into debt: the next minute pays
            } else if (difference < 0) {
                tokens.addTokens(-difference);
            }
        }

        @Override
        public void release() {
            if (released.compareAndSet(false, true)) {
                store.releaseSlot(slot);
            }
        }
    }
}
