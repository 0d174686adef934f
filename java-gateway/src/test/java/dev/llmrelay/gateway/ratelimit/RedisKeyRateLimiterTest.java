package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.ObjLongConsumer;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.support.RedisServer;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import dev.llmrelay.gateway.system.OpenAiException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/**
 * The limiter on {@link RedisLimitStore} with a real redis-server: the in-memory contract (inherited
 * tests), then two or three "gateways" (limiters with their own store and connection) sharing one Redis.
 */
class RedisKeyRateLimiterTest extends KeyRateLimiterTest {

    @RegisterExtension
    static final RedisServer REDIS = new RedisServer();

    private static final Duration TIMEOUT = Duration.ofMillis(500);

    // no initializer: store() fills it while the superclass's fields are set up
    private List<LimitStore> opened;

    @Override
    protected LimitStore store() {
        return open(Duration.ofSeconds(30));
    }

    private RedisLimitStore open(Duration lease) {
        if (opened == null) {
            opened = new CopyOnWriteArrayList<>();
        }
        RedisLimitStore store = new RedisLimitStore(REDIS.url(), TIMEOUT, lease);
        opened.add(store);
        return store;
    }

    private KeyRateLimiter gateway(StoreFailure onFailure) {
        return gateway(open(Duration.ofSeconds(30)), onFailure);
    }

    private KeyRateLimiter gateway(LimitStore store, StoreFailure onFailure) {
        return new KeyRateLimiter(store, onFailure, Duration.ofSeconds(5), meters);
    }

    @BeforeEach
    void freshRedis() throws Exception {
        REDIS.flushAll();
    }

    @AfterEach
    void closeStores() throws Exception {
        opened.forEach(LimitStore::close);
        REDIS.stop(); // restarted empty, whatever an outage test left behind
        REDIS.start();
    }

    /** Runs {@code attempts} admissions from {@code threads} threads, alternating between the gateways. */
    private static List<Object> admitConcurrently(List<KeyRateLimiter> gateways, ApiKey key, long estimate,
            int threads, int attempts, java.util.function.Function<RateLimitPermit, Object> onAdmitted)
            throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            AtomicInteger next = new AtomicInteger();
            List<Future<List<Object>>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(pool.submit(() -> {
                    List<Object> outcomes = new ArrayList<>();
                    int i;
                    while ((i = next.getAndIncrement()) < attempts) {
                        try {
                            RateLimitPermit permit = gateways.get(i % gateways.size()).admit(key, estimate);
                            outcomes.add(onAdmitted.apply(permit));
                        } catch (RateLimitExceededException e) {
                            outcomes.add(e.limit());
                        }
                    }
                    return outcomes;
                }));
            }
            List<Object> all = new ArrayList<>();
            for (Future<List<Object>> future : futures) {
                all.addAll(future.get(60, TimeUnit.SECONDS));
            }
            return all;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void twoGatewaysAdmitExactlyTheRequestsPerMinuteUnderConcurrentAdmissions() throws Exception {
        List<KeyRateLimiter> gateways = List.of(gateway(StoreFailure.FAIL_CLOSED), gateway(StoreFailure.FAIL_CLOSED));
        ApiKey key = key(10, 50, 1_000_000, 1000);

        List<Object> outcomes = admitConcurrently(gateways, key, 10, 16, 200, permit -> {
            permit.release();
            return "admitted";
        });

        assertThat(outcomes).hasSize(200);
        assertThat(outcomes.stream().filter("admitted"::equals).count()).isEqualTo(50);
        assertThat(outcomes.stream().filter("requests"::equals).count()).isEqualTo(150);
    }

    @Test
    void threeGatewaysNeverOvershootTokensPerMinuteAndAccountEveryRefundExactly() throws Exception {
        List<KeyRateLimiter> gateways = List.of(gateway(StoreFailure.FAIL_CLOSED), gateway(StoreFailure.FAIL_CLOSED),
                gateway(StoreFailure.FAIL_CLOSED));
        ApiKey key = key(11, 100_000, 10_000, 1000);
        AtomicLong used = new AtomicLong();
        AtomicInteger nth = new AtomicInteger();

        // each admitted request reserves 300 and really uses 50..300 (never more than it reserved)
        List<Object> outcomes = admitConcurrently(gateways, key, 300, 64, 400, permit -> {
            long actual = 50 + (nth.getAndIncrement() * 37L) % 251;
            used.addAndGet(actual);
            permit.settle(actual);
            permit.release();
            return "admitted";
        });
        // then one client drains what is left, 300 at a time
        while (true) {
            try {
                RateLimitPermit permit = gateways.get(0).admit(key, 300);
                used.addAndGet(300);
                permit.settle(300);
                permit.release();
            } catch (RateLimitExceededException e) {
                assertThat(e.limit()).isEqualTo("tokens");
                break;
            }
        }

        assertThat(outcomes).doesNotContain("requests", "streams");
        assertThat(used.get()).isLessThanOrEqualTo(10_000).isGreaterThan(10_000 - 300);
        RateLimitPermit probe = gateways.get(1).admit(key, 1);
        assertThat(probe.headers().get("X-RateLimit-Remaining-Tokens"))
                .isEqualTo(Long.toString(10_000 - used.get() - 1));
    }

    @Test
    void aSettlementOnOneGatewayIsSeenByTheOther() {
        settledOnOneGatewaySeenByTheOther(12, (permit, tokens) -> {
            permit.settle(tokens);
            permit.release();
        });
    }

    @Test
    void finishSettlesAndFreesTheSlotInOneCallSeenByTheOtherInstance() {
        settledOnOneGatewaySeenByTheOther(26, RateLimitPermit::finish);
    }

    /**
     * A refund on A, then a charge on B, each seen by the other; {@code end} ends a request with its usage
     * (settles and frees its slot: the key allows one stream at a time).
     */
    private void settledOnOneGatewaySeenByTheOther(long keyId, ObjLongConsumer<RateLimitPermit> end) {
        KeyRateLimiter a = gateway(StoreFailure.FAIL_CLOSED);
        KeyRateLimiter b = gateway(StoreFailure.FAIL_CLOSED);
        ApiKey key = key(keyId, 100, 1000, 1);

        RateLimitPermit first = a.admit(key, 800);
        end.accept(first, 50); // refund 750
        RateLimitPermit second = b.admit(key, 900);
        assertThat(second.headers().get("X-RateLimit-Remaining-Tokens")).isEqualTo("50");
        end.accept(second, 950); // charge 50 more than reserved
        end.accept(second, 950); // idempotent: charged once
        assertThatThrownBy(() -> a.admit(key, 1))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> {
                    assertThat(e.limit()).isEqualTo("tokens");
                    assertThat(e.headers()).containsEntry("X-RateLimit-Remaining-Tokens", "0");
                });
    }

    @Test
    void streamSlotsAreSharedAndFreedOnEveryEndPath() {
        KeyRateLimiter a = gateway(StoreFailure.FAIL_CLOSED);
        KeyRateLimiter b = gateway(StoreFailure.FAIL_CLOSED);
        ApiKey key = key(13, 100, 1000, 2);

        RateLimitPermit onA = a.admit(key, 10);
        RateLimitPermit onB = b.admit(key, 10);
        assertThatThrownBy(() -> a.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("streams"));
        // refused for tokens: takes no slot
        assertThatThrownBy(() -> b.admit(key, 5000)).isInstanceOf(RateLimitExceededException.class);

        onA.settle(10); // ended normally
        onA.release();
        onA.release(); // a second release frees nothing more
        RateLimitPermit again = b.admit(key, 10);
        assertThatThrownBy(() -> b.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("streams"));

        onB.release(); // failed or cancelled: released without a settlement
        again.release();
        a.admit(key, 10);
        b.admit(key, 10);
    }

    @Test
    void aDeadInstancesSlotExpiresAfterItsLeaseWhileALiveOneKeepsItsSlot() throws Exception {
        ApiKey key = key(14, 100, 1000, 1);
        Duration lease = Duration.ofSeconds(1);
        RedisLimitStore dying = open(lease);
        KeyRateLimiter a = gateway(dying, StoreFailure.FAIL_CLOSED);
        KeyRateLimiter b = gateway(open(lease), StoreFailure.FAIL_CLOSED);

        RateLimitPermit held = b.admit(key, 10);
        Thread.sleep(3 * lease.toMillis()); // three leases long: renewed, so still held
        assertThatThrownBy(() -> a.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("streams"));
        held.release();

        a.admit(key, 10); // held by a, which then dies without releasing
        dying.close();
        assertThatThrownBy(() -> b.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("streams"));
        long bound = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (true) {
            try {
                b.admit(key, 10);
                break;
            } catch (RateLimitExceededException e) {
                assertThat(e.limit()).isEqualTo("streams");
                assertThat(System.nanoTime()).as("slot still held long after its lease").isLessThan(bound);
                Thread.sleep(100);
            }
        }
    }

    @Test
    void redisStoppedMidRunFailClosedAnswers503WithRetryAfterAndRecovers() throws Exception {
        KeyRateLimiter gateway = gateway(StoreFailure.FAIL_CLOSED);
        ApiKey key = key(15, 100, 1000, 10);
        RateLimitPermit before = gateway.admit(key, 10);

        REDIS.stop();
        assertThatThrownBy(() -> gateway.admit(key, 10))
                .isInstanceOfSatisfying(OpenAiException.class, e -> {
                    assertThat(e).isNotInstanceOf(RateLimitExceededException.class);
                    assertThat(e.status()).isEqualTo(503);
                    assertThat(e.headers()).containsEntry("Retry-After", "5");
                });
        before.settle(5); // ending a stream during the outage must not throw
        before.release();
        assertThat(meters.counter("gateway.ratelimit.store.unavailable", "policy", "fail_closed").count())
                .isEqualTo(1);

        REDIS.start();
        awaitAdmitted(gateway, key);
    }

    @Test
    void redisStoppedMidRunFailOpenAdmitsOnLocalLimitsAndRecovers() throws Exception {
        KeyRateLimiter gateway = gateway(StoreFailure.FAIL_OPEN);
        ApiKey key = key(16, 2, 1000, 10);
        gateway.admit(key, 10).release();

        REDIS.stop();
        // the local counters start fresh: two requests this minute, then the local limit applies
        RateLimitPermit local = gateway.admit(key, 10);
        gateway.admit(key, 10).release();
        assertThatThrownBy(() -> gateway.admit(key, 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("requests"));
        local.settle(3);
        local.release();
        assertThat(meters.counter("gateway.ratelimit.store.unavailable", "policy", "fail_open").count())
                .isEqualTo(3);

        REDIS.start(); // empty again: the shared budget is fresh
        awaitAdmitted(gateway, key(17, 1, 1000, 10));
        assertThatThrownBy(() -> gateway.admit(key(17, 1, 1000, 10), 10))
                .isInstanceOfSatisfying(RateLimitExceededException.class, e -> assertThat(e.limit()).isEqualTo("requests"));
    }

    @Test
    void aFreshStoreConnectsWhenItStartsNotOnItsFirstAdmission() throws Exception {
        // A store that connected only on its first admission refused a cold instance's first burst
        // (Netty's start-up inside a 500 ms connect bound on a busy machine): connect at start instead.
        RedisLimitStore store = open(Duration.ofSeconds(30));
        long bound = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!store.connected()) {
            assertThat(System.nanoTime()).as("connected without any admission").isLessThan(bound);
            Thread.sleep(20);
        }
    }

    @Test
    void aGatewayStartedWhileRedisIsDownFollowsItsPolicyWithoutHanging() throws Exception {
        REDIS.stop();
        KeyRateLimiter open = gateway(StoreFailure.FAIL_OPEN);
        KeyRateLimiter closed = gateway(StoreFailure.FAIL_CLOSED);
        ApiKey key = key(18, 100, 1000, 10);

        open.admit(key, 10).release();
        assertThatThrownBy(() -> closed.admit(key, 10))
                .isInstanceOfSatisfying(OpenAiException.class, e -> assertThat(e.status()).isEqualTo(503));
    }

    /** Waits (bounded) for Lettuce to reconnect, then expects a shared admission. */
    private static void awaitAdmitted(KeyRateLimiter gateway, ApiKey key) throws InterruptedException {
        long bound = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                gateway.admit(key, 10).release();
                return;
            } catch (OpenAiException e) {
                if (e instanceof RateLimitExceededException || System.nanoTime() > bound) {
                    throw e;
                }
                Thread.sleep(100);
            }
        }
    }
}
