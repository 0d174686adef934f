package dev.llmrelay.gateway.ratelimit;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.StoreFailure;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/**
 * Limiter cost and exactness, memory vs Redis (bench/limits.sh starts a redis-server and runs this):
 * {@code streams} threads each admit, settle and release in a loop across {@code instances} limiters
 * (one store and connection each); prints admission latency p50/p99 and the tokens/min overshoot of a
 * contended key. Each admitted request holds its slot for {@code holdMs} (a stream running) before it
 * settles and releases. Args: redis URL, streams, requests per stream, instances, holdMs.
 */
public final class LimitStoreBench {

    public static void main(String[] args) throws Exception {
        String url = args[0];
        int streams = Integer.parseInt(args[1]);
        int perStream = Integer.parseInt(args[2]);
        int instances = Integer.parseInt(args[3]);
        long holdMs = Long.parseLong(args[4]);
        System.out.println("| store | instances | streams | admissions | admit p50 ms | admit p99 ms | admit + settle + release p99 ms | tokens overshoot |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (String kind : List.of("memory", "redis", "memory", "redis")) { // first round warms the JIT
            int n = kind.equals("memory") ? 1 : instances;
            List<LimitStore> stores = new ArrayList<>();
            List<KeyRateLimiter> limiters = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                LimitStore store = kind.equals("memory") ? new InMemoryLimitStore()
                        : new RedisLimitStore(url, Duration.ofSeconds(2), Duration.ofSeconds(30));
                stores.add(store);
                limiters.add(new KeyRateLimiter(store, StoreFailure.FAIL_CLOSED, Duration.ofSeconds(5),
                        new SimpleMeterRegistry()));
            }
            String row = run(kind, limiters, streams, perStream, holdMs);
            stores.forEach(LimitStore::close);
            System.out.println(row);
        }
    }

    private static String run(String kind, List<KeyRateLimiter> limiters, int streams, int perStream,
            long holdMs) throws Exception {
        long run = System.nanoTime(); // fresh key ids each round
        // roomy keys for latency (never refused), one contended key for exactness
        ApiKey roomy = new ApiKey(run, "bench", "x", 1_000_000, 1_000_000_000, 10_000, true, Instant.now(), null);
        ApiKey tight = new ApiKey(run + 1, "tight", "x", 1_000_000, 10_000, 10_000, true, Instant.now(), null);
        long[] admit = new long[streams * perStream];
        long[] total = new long[streams * perStream];
        AtomicLong used = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(streams);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int s = 0; s < streams; s++) {
                int stream = s;
                futures.add(pool.submit(() -> {
                    KeyRateLimiter limiter = limiters.get(stream % limiters.size());
                    for (int i = 0; i < perStream; i++) {
                        long start = System.nanoTime();
                        RateLimitPermit permit = limiter.admit(roomy, 300);
                        long admitted = System.nanoTime();
                        Thread.sleep(holdMs);
                        long ending = System.nanoTime();
                        permit.settle(120);
                        permit.release();
                        admit[stream * perStream + i] = admitted - start;
                        total[stream * perStream + i] = (admitted - start) + (System.nanoTime() - ending);
                        try {
                            RateLimitPermit tokens = limiter.admit(tight, 300);
                            long actual = 100 + (stream * 31L + i) % 201; // never above the reservation
                            used.addAndGet(actual);
                            tokens.settle(actual);
                            tokens.release();
                        } catch (RateLimitExceededException refused) {
                            // the contended key is spent: that is the point
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> future : futures) {
                future.get(10, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
        Arrays.sort(admit);
        Arrays.sort(total);
        return String.format("| %s | %d | %d | %d | %.3f | %.3f | %.3f | %d |", kind, limiters.size(), streams,
                admit.length, percentile(admit, 50), percentile(admit, 99), percentile(total, 99),
                Math.max(0, used.get() - 10_000));
    }

    private static double percentile(long[] sorted, int p) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)] / 1e6;
    }
}
