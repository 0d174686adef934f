package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/**
 * The limiter with its real in-memory Bucket4j store; {@link RedisKeyRateLimiterTest} runs the same
 * decisions on the Redis store.
 */
class KeyRateLimiterTest {

    protected final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    protected final KeyRateLimiter limiter = new KeyRateLimiter(store(), StoreFailure.FAIL_CLOSED,
            Duration.ofSeconds(5), meters);

    protected LimitStore store() {
        return new InMemoryLimitStore();
    }

    protected static ApiKey key(long id, int rpm, int tpm, int streams) {
        return new ApiKey(id, "k", "sk-relay-x", rpm, tpm, streams, true, Instant.now(), null);
    }

    @Test
    void settlingRefundsAnUnusedReservationAndChargesOverUse() {
        ApiKey key = key(1, 100, 1000, 10);
        RateLimitPermit first = limiter.admit(key, 800);
        assertThat(first.headers().get("X-RateLimit-Remaining-Tokens")).isEqualTo("200");
        first.settle(50);
        first.settle(999); // a second settle is ignored
        RateLimitPermit second = limiter.admit(key, 900);
        assertThat(second.headers().get("X-RateLimit-Remaining-Tokens")).isEqualTo("50");
        second.settle(950); // 50 more than reserved: the bucket goes to zero
        assertThatThrownBy(() -> limiter.admit(key, 1))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> {
                    assertThat(e.limit()).isEqualTo("tokens");
                    assertThat(e.retryAfterSeconds()).isBetween(1L, 60L);
                });
        assertThat(meters.counter("gateway.ratelimit.rejections", "limit", "tokens").count()).isEqualTo(1);
    }

    @Test
    void aReservationLargerThanTheBucketIsCappedSoItCanStillPass() {
        RateLimitPermit permit = limiter.admit(key(2, 100, 500, 10), 100_000);
        assertThat(permit.headers().get("X-RateLimit-Remaining-Tokens")).isEqualTo("0");
    }

    @Test
    void streamSlotsAreGivenBackOnceAndARefusedRequestCostsNothing() {
        ApiKey key = key(3, 5, 1_000_000, 1);
        RateLimitPermit held = limiter.admit(key, 10);
        assertThatThrownBy(() -> limiter.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class,
                        e -> assertThat(e.limit()).isEqualTo("streams"));
        held.release();
        held.release();
        RateLimitPermit next = limiter.admit(key, 10);
        // 5 per minute: held (1) + next (1); the refused one was refunded
        assertThat(next.headers().get("X-RateLimit-Remaining")).isEqualTo("3");
        assertThatThrownBy(() -> limiter.admit(key, 10)).isInstanceOf(RateLimitExceededException.class);
    }

    @Test
    void requestNPlusOneIsRefusedWithHeaders() {
        ApiKey key = key(4, 2, 1_000_000, 10);
        limiter.admit(key, 1).release();
        limiter.admit(key, 1).release();
        assertThatThrownBy(() -> limiter.admit(key, 1))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> {
                    assertThat(e.limit()).isEqualTo("requests");
                    assertThat(e.headers()).containsEntry("X-RateLimit-Limit", "2")
                            .containsEntry("X-RateLimit-Remaining", "0").containsKey("Retry-After")
                            .containsKey("X-RateLimit-Reset");
                    assertThat(e.status()).isEqualTo(429);
                });
    }
}
