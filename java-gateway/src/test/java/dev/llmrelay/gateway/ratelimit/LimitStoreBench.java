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
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/**
 * Limiter cost and exactness, memory vs Redis (bench/limits.sh starts a redis-server and runs this):
 * {@code streams} threads each admit, settle and release in a loop across {@code instances} limiters
 * (one store and connection each); prints admission latency p50/p99 and the tokens/min overshoot of a
 * contended key. Each admitted request holds its slot for {@code holdMs} (a stream running) before it
 * settles and releases. Args: redis URL, streams, requests per stream, instances, holdMs, measured rounds
 * (default 3; memory, a bare PING per decision (the floor of any round trip) and Redis alternate within
 * each, after one warm-up round), and "burst" (default: all
 * streams start together, so each round of admissions reaches the store at once) or "spread" (starts spread
 * evenly over one hold time: 200 streams held 100 ms are 2,000 steady admissions per second).
 */
public final class LimitStoreBench {

    public static void main(String[] args) throws Exception {
        String url = args[0];
        int streams = Integer.parseInt(args[1]);
        int perStream = Integer.parseInt(args[2]);
        int instances = Integer.parseInt(args[3]);
        long holdMs = Long.parseLong(args[4]);
        int rounds = args.length > 5 ? Integer.parseInt(args[5]) : 3;
        boolean spread = args.length > 6 && args[6].equals("spread");
        System.out.println("Streams start " + (spread ? "evenly over one hold time (steady arrivals)"
                : "together (each round of admissions arrives as one burst)"));
        List<Double> added = new ArrayList<>();
        List<Double> pingAdded = new ArrayList<>();
        System.out.println("| round | store | instances | streams | admissions | admit p50 ms | admit p99 ms | admit + finish p99 ms | tokens overshoot | Redis CPU us per request | Redis us per script |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
        RedisClient statsClient = RedisClient.create(url);
        try (StatefulRedisConnection<String, String> stats = statsClient.connect()) {
            // round 0 warms the JIT; then memory and Redis alternate, so both see the same machine
            for (int round = 0; round <= rounds; round++) {
                double[] p99 = new double[3];
                for (String kind : List.of("memory", "ping", "redis")) {
                    int n = kind.equals("memory") ? 1 : instances;
                    List<LimitStore> stores = new ArrayList<>();
                    List<KeyRateLimiter> limiters = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        LimitStore store = switch (kind) {
                            case "memory" -> new InMemoryLimitStore();
                            case "ping" -> new PingStore(url);
                            default -> new RedisLimitStore(url, Duration.ofSeconds(2), Duration.ofSeconds(30));
                        };
                        stores.add(store);
                        limiters.add(new KeyRateLimiter(store, StoreFailure.FAIL_CLOSED, Duration.ofSeconds(5),
                                new SimpleMeterRegistry()));
                    }
                    // connected before the clock starts: otherwise the first admission of every stream waits
                    // for the connection, and those waits (one per stream, 5% of the samples) are the p99
                    for (LimitStore store : stores) {
                        while (store instanceof RedisLimitStore redis && !redis.connected()) {
                            Thread.sleep(5);
                        }
                    }
                    stats.sync().configResetstat();
                    double cpuBefore = redisCpuSeconds(stats.sync().info("cpu"));
                    double[] row = run(limiters, streams, perStream, holdMs, spread);
                    // each stream asks twice per request (the roomy key, the contended key)
                    String cpu = !kind.equals("redis") ? "–" : String.format("%.1f",
                            (redisCpuSeconds(stats.sync().info("cpu")) - cpuBefore) * 1e6 / (2.0 * streams * perStream));
                    String perCall = !kind.equals("redis") ? "–" : scriptCost(stats.sync().info("commandstats"));
                    stores.forEach(LimitStore::close);
                    p99[kind.equals("memory") ? 0 : kind.equals("ping") ? 1 : 2] = row[1];
                    // the control admits everything: an overshoot there means nothing
                    String overshoot = kind.equals("ping") ? "–" : Long.toString((long) row[3]);
                    System.out.printf("| %s | %s | %d | %d | %d | %.3f | %.3f | %.3f | %s | %s | %s |%n",
                            round == 0 ? "warm-up" : Integer.toString(round), kind, n, streams, streams * perStream,
                            row[0], row[1], row[2], overshoot, cpu, perCall);
                }
                if (round > 0) {
                    added.add(p99[2] - p99[0]);
                    pingAdded.add(p99[1] - p99[0]);
                }
            }
        } finally {
            statsClient.shutdown();
        }
        System.out.println();
        System.out.println("p99 admit added by Redis, per measured round (ms): "
                + added.stream().map(d -> String.format("%+.2f", d)).toList());
        System.out.println("p99 added by a bare PING round trip instead (the floor), per round (ms): "
                + pingAdded.stream().map(d -> String.format("%+.2f", d)).toList());
    }

    /**
     * The control: every decision is a bare PING on the instance's connection (admit, and finish at the
     * end), so the row shows what any Redis round trip from these threads costs on this machine.
     */
    private static final class PingStore implements LimitStore {
        private final RedisClient client;
        private final StatefulRedisConnection<String, String> connection;

        PingStore(String url) {
            client = RedisClient.create(url);
            connection = client.connect();
        }

        @Override
        public Decision admit(String keyId, Limits limits, long reserve) {
            connection.sync().ping();
            return new Decision(null, limits.requestsPerMinute(), limits.tokensPerMinute(), 0, 0, "lease");
        }

        @Override
        public void settle(String keyId, Limits limits, long difference) {
            connection.sync().ping();
        }

        @Override
        public void release(String keyId, String lease) {
            connection.sync().ping();
        }

        @Override
        public void finish(String keyId, Limits limits, long difference, String lease) {
            connection.sync().ping();
        }

        @Override
        public BudgetGrant reserveBudget(String keyId, String period, long limit, long want, long atLeast) {
            connection.sync().ping();
            return new BudgetGrant(want, want, false);
        }

        @Override
        public void settleBudget(String keyId, String period, long difference) {
            connection.sync().ping();
        }

        @Override
        public void seedBudget(String keyId, String period, long used, long ttlMillis) {
            connection.sync().ping();
        }

        @Override
        public long budgetUsed(String keyId, String period) {
            connection.sync().ping();
            return 0;
        }

        @Override
        public void close() {
            client.shutdown();
        }
    }

    // redis-server's own CPU time so far (INFO cpu: user + system)
    private static double redisCpuSeconds(String info) {
        double total = 0;
        for (String line : info.split("\\r?\\n")) {
            if (line.startsWith("used_cpu_user:") || line.startsWith("used_cpu_sys:")) {
                total += Double.parseDouble(line.substring(line.indexOf(':') + 1).trim());
            }
        }
        return total;
    }

    // the mean execution time of EVALSHA inside Redis over the round (INFO commandstats)
    private static String scriptCost(String info) {
        for (String line : info.split("\\r?\\n")) {
            if (line.startsWith("cmdstat_evalsha:")) {
                for (String field : line.substring(line.indexOf(':') + 1).split(",")) {
                    if (field.startsWith("usec_per_call=")) {
                        return field.substring("usec_per_call=".length());
                    }
                }
            }
        }
        return "?";
    }

    /** Returns admit p50, admit p99, admit + finish p99 (ms) and the tokens overshoot. */
    private static double[] run(List<KeyRateLimiter> limiters, int streams, int perStream, long holdMs,
            boolean spread) throws Exception {
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
                    if (spread) {
                        Thread.sleep(holdMs * stream / streams);
                    }
                    for (int i = 0; i < perStream; i++) {
                        long start = System.nanoTime();
                        RateLimitPermit permit = limiter.admit(roomy, 300);
                        long admitted = System.nanoTime();
                        Thread.sleep(holdMs);
                        long ending = System.nanoTime();
                        permit.finish(120);
                        admit[stream * perStream + i] = admitted - start;
                        total[stream * perStream + i] = (admitted - start) + (System.nanoTime() - ending);
                        try {
                            RateLimitPermit tokens = limiter.admit(tight, 300);
                            long actual = 100 + (stream * 31L + i) % 201; // never above the reservation
                            used.addAndGet(actual);
                            tokens.finish(actual);
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
        return new double[] {percentile(admit, 50), percentile(admit, 99), percentile(total, 99),
                Math.max(0, used.get() - 10_000)};
    }

    private static double percentile(long[] sorted, int p) {
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)] / 1e6;
    }
}
