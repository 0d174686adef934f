package dev.llmrelay.gateway.ratelimit;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.llmrelay.gateway.system.RedisClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.resource.ClientResources;

/**
 * Limit state in Redis, shared by every gateway instance. Each decision is one Lua script, so it is atomic
 * without compare-and-swap retries (Bucket4j's Lettuce proxy retries under contention, which is exactly
 * when many instances admit the same key). Budgets mirror {@link InMemoryLimitStore}'s buckets: full at
 * first use, refilled once a minute by the whole limit, debt carried into the next minute. The clock is
 * Redis's own (TIME), so instances' clocks need not agree. A stream slot is a lease in a sorted set scored
 * by its expiry; this instance renews its live leases, so the slots of a dead instance free themselves.
 * Every command is bounded by {@code timeout}; any Redis failure becomes {@link LimitStoreUnavailableException}.
 * An admission whose reply times out may still have run: its reservation stays charged for the minute and
 * its slot, never renewed, expires after one lease.
 */
final class RedisLimitStore implements LimitStore {

    private static final Logger log = LoggerFactory.getLogger(RedisLimitStore.class);
    private static final long WINDOW_MS = Duration.ofMinutes(1).toMillis();
    private static final Duration RECONNECT_PAUSE = Duration.ofSeconds(1);
    private static final int RENEW_BATCH = 1000; // leases per renewal script: Lua's unpack takes a few thousand

    // Both budgets of a key live in one hash (fields r, k and their common refill time "next"): one read and
    // one write per decision. Every redis.call in a script costs ~1-2 us on top of the command, and a burst
    // of admissions queues behind each other's scripts, so the scripts make as few calls as they can.
    // load refills whole minutes since "next"; save expires the hash once it would be full again anyway.
    private static final String BUDGET = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local function load(key, rpm, tpm, window)
              local v = redis.call('HMGET', key, 'r', 'k', 'next')
              local r, k, nxt = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
              if not r then return rpm, tpm, now + window end
              if now >= nxt then
                local periods = math.floor((now - nxt) / window) + 1
                r = math.min(rpm, r + periods * rpm)
                k = math.min(tpm, k + periods * tpm)
                nxt = nxt + periods * window
              end
              return r, k, nxt
            end
            local function save(key, tpm, window, r, k, nxt)
              local debt = 0
              if k < 0 then debt = math.ceil(-k / tpm) end
              redis.call('HSET', key, 'r', r, 'k', k, 'next', nxt)
              redis.call('PEXPIRE', key, nxt - now + debt * window + 1000)
            end
            """;

    // KEYS: budget, slots. ARGV: rpm, tpm, max streams, reserve, window ms, lease, lease ms.
    // Returns {outcome (0 admitted, 1 requests, 2 tokens, 3 streams), requests left, tokens left,
    // ms to requests reset, ms to wait}. Expired leases are pruned only when the slots look full.
    private static final String ADMIT = BUDGET + """
            local rpm, tpm, streams, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
            local window = tonumber(ARGV[5])
            local r, k, nxt = load(KEYS[1], rpm, tpm, window)
            if r < 1 then return {1, r, k, nxt - now, nxt - now} end
            if k < reserve then
              local minutes = math.ceil((reserve - k) / tpm)
              return {2, r, k, nxt - now, nxt - now + (minutes - 1) * window}
            end
            local held = redis.call('ZCARD', KEYS[2])
            if held >= streams then
              held = held - redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
              if held >= streams then return {3, r, k, nxt - now, 1000} end
            end
            save(KEYS[1], tpm, window, r - 1, k - reserve, nxt)
            local lease = tonumber(ARGV[7])
            redis.call('ZADD', KEYS[2], now + lease, ARGV[6])
            redis.call('PEXPIRE', KEYS[2], lease)
            return {0, r - 1, k - reserve, nxt - now, 0}
            """;

    // KEYS: budget, slots (or none). ARGV: rpm, tpm, window ms, difference (charge > 0, refund < 0; a refund
    // fills at most the limit), lease to release (or none). Settle and release of a finished request in one
    // round trip.
    private static final String FINISH = BUDGET + """
            local rpm, tpm, window, difference = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
            if difference ~= 0 then
              local r, k, nxt = load(KEYS[1], rpm, tpm, window)
              save(KEYS[1], tpm, window, r, math.min(tpm, k - difference), nxt)
            end
            if ARGV[5] then redis.call('ZREM', KEYS[2], ARGV[5]) end
            return 0
            """;

    // KEYS: a budget counter. ARGV: limit, want, at least. Returns {granted, used after}, or {-1, 0} when the
    // counter does not exist (the caller seeds it from the usage rows and asks again).
    private static final String BUDGET_RESERVE = """
            local used = redis.call('GET', KEYS[1])
            if not used then return {-1, 0} end
            used = tonumber(used)
            local left = tonumber(ARGV[1]) - used
            if left < tonumber(ARGV[3]) then return {0, used} end
            local grant = math.min(tonumber(ARGV[2]), left)
            redis.call('INCRBY', KEYS[1], grant)
            return {grant, used + grant}
            """;

    // KEYS: a budget counter. ARGV: difference. A counter that expired (or a restarted Redis lost) is not
    // brought back by a settle: the next reservation seeds it from the usage rows, which hold this request.
    private static final String BUDGET_SETTLE = """
            if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
            return 0
            """;

    // KEYS: slots. ARGV: lease ms, then this instance's live leases on that key. Lapsed leases are pruned
    // first, so a lease that already expired is not brought back.
    private static final String RENEW = """
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local lease = tonumber(ARGV[1])
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
            local args = {}
            for i = 2, #ARGV do
              args[#args + 1] = now + lease
              args[#args + 1] = ARGV[i]
            end
            local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args))
            if renewed > 0 then redis.call('PEXPIRE', KEYS[1], lease) end
            return renewed
            """;

    private final ClientResources resources;
    private final RedisClient client;
    private final Duration lease;
    private final Map<String, String> digests = new ConcurrentHashMap<>(); // script -> SHA-1 for EVALSHA
    private final Map<String, String> liveLeases = new ConcurrentHashMap<>(); // lease -> slots key
    private final ScheduledExecutorService renewer;
    private volatile StatefulRedisConnection<String, String> connection;
    private volatile long nextConnectNanos;

    RedisLimitStore(String url, Duration timeout, Duration lease) {
        RedisURI uri = RedisURI.create(url);
        uri.setTimeout(timeout);
        this.resources = RedisClientOptions.resources();
        this.client = RedisClient.create(resources, uri);
        client.setOptions(RedisClientOptions.bounded(timeout));
        this.lease = lease;
        this.nextConnectNanos = System.nanoTime();
        this.renewer = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "redis-lease-renewer");
            thread.setDaemon(true);
            return thread;
        });
        long every = Math.max(1, lease.toMillis() / 3);
        renewer.scheduleWithFixedDelay(this::renewLeases, every, every, TimeUnit.MILLISECONDS);
        // Connect now, off the request path: connecting on the first admission put Netty's start-up inside
        // the command timeout, and a cold instance refused its first burst (tests/test_scale_out.py saw it).
        renewer.execute(this::connectAtStart);
    }

    private void connectAtStart() {
        try {
            commands();
        } catch (LimitStoreUnavailableException e) {
            log.info("Redis not reachable at start ({}); admissions follow the failure policy until it is",
                    e.getMessage());
        }
    }

    /** True once a connection to Redis is open. */
    boolean connected() {
        StatefulRedisConnection<String, String> current = connection;
        return current != null && current.isOpen();
    }

    @Override
    public Decision admit(String keyId, Limits limits, long reserve) {
        String lease = UUID.randomUUID().toString();
        String slots = slotsKey(keyId);
        List<Long> result = run(ADMIT, new String[] {budgetKey(keyId, limits), slots},
                Integer.toString(limits.requestsPerMinute()), Integer.toString(limits.tokensPerMinute()),
                Integer.toString(limits.maxConcurrentStreams()), Long.toString(reserve), Long.toString(WINDOW_MS),
                lease, Long.toString(this.lease.toMillis()));
        String rejected = switch (result.get(0).intValue()) {
            case 0 -> null;
            case 1 -> "requests";
            case 2 -> "tokens";
            default -> "streams";
        };
        if (rejected == null) {
            liveLeases.put(lease, slots);
        }
        return new Decision(rejected, result.get(1), result.get(2), TimeUnit.MILLISECONDS.toNanos(result.get(3)),
                TimeUnit.MILLISECONDS.toNanos(result.get(4)), rejected == null ? lease : null);
    }

    @Override
    public void settle(String keyId, Limits limits, long difference) {
        eval(FINISH, ScriptOutputType.INTEGER, new String[] {budgetKey(keyId, limits)},
                Integer.toString(limits.requestsPerMinute()), Integer.toString(limits.tokensPerMinute()),
                Long.toString(WINDOW_MS), Long.toString(difference));
    }

    @Override
    public void release(String keyId, String lease) {
        liveLeases.remove(lease);
        try {
            commands().zrem(slotsKey(keyId), lease);
        } catch (RedisException e) {
            throw new LimitStoreUnavailableException(e.getMessage(), e);
        }
    }

    /**
     * One script, one round trip. It stays synchronous: once a request's end is visible to its client, its
     * slot and refund are visible to every instance (a client that ends a stream and at once opens another
     * elsewhere is not refused for the slot it just gave back).
     */
    @Override
    public void finish(String keyId, Limits limits, long difference, String lease) {
        liveLeases.remove(lease);
        eval(FINISH, ScriptOutputType.INTEGER, new String[] {budgetKey(keyId, limits), slotsKey(keyId)},
                Integer.toString(limits.requestsPerMinute()), Integer.toString(limits.tokensPerMinute()),
                Long.toString(WINDOW_MS), Long.toString(difference), lease);
    }

    @Override
    public BudgetGrant reserveBudget(String keyId, String period, long limit, long want, long atLeast) {
        List<Long> result = run(BUDGET_RESERVE, new String[] {budgetCounterKey(keyId, period)},
                Long.toString(limit), Long.toString(want), Long.toString(atLeast));
        return result.get(0) < 0 ? new BudgetGrant(0, 0, true) : new BudgetGrant(result.get(0), result.get(1), false);
    }

    @Override
    public void settleBudget(String keyId, String period, long difference) {
        eval(BUDGET_SETTLE, ScriptOutputType.INTEGER, new String[] {budgetCounterKey(keyId, period)},
                Long.toString(difference));
    }

    @Override
    public void seedBudget(String keyId, String period, long used, long ttlMillis) {
        try {
            io.lettuce.core.SetArgs args = io.lettuce.core.SetArgs.Builder.nx();
            commands().set(budgetCounterKey(keyId, period), Long.toString(used), ttlMillis > 0 ? args.px(ttlMillis) : args);
        } catch (RedisException e) {
            throw new LimitStoreUnavailableException(e.getMessage(), e);
        }
    }

    @Override
    public long budgetUsed(String keyId, String period) {
        try {
            String used = commands().get(budgetCounterKey(keyId, period));
            return used == null ? -1 : Long.parseLong(used);
        } catch (RedisException e) {
            throw new LimitStoreUnavailableException(e.getMessage(), e);
        }
    }

    /** Stops renewing and disconnects, releasing nothing: this instance's leases expire as a dead one's would. */
    @Override
    public void close() {
        renewer.shutdownNow();
        client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        resources.shutdown(0, 2, TimeUnit.SECONDS);
    }

    // one script per key holding live leases, all sent before waiting (Lettuce pipelines them on the
    // connection), instead of one blocking round trip per lease
    private void renewLeases() {
        Map<String, List<String>> byKey = new HashMap<>();
        liveLeases.forEach((id, slots) -> byKey.computeIfAbsent(slots, ignored -> new ArrayList<>()).add(id));
        if (byKey.isEmpty()) {
            return;
        }
        try {
            RedisAsyncCommands<String, String> async = commands().getStatefulConnection().async();
            String sha = digest(RENEW);
            List<RedisFuture<Object>> sent = new ArrayList<>();
            byKey.forEach((slots, leases) -> {
                for (int from = 0; from < leases.size(); from += RENEW_BATCH) {
                    List<String> args = new ArrayList<>(RENEW_BATCH + 1);
                    args.add(Long.toString(lease.toMillis()));
                    args.addAll(leases.subList(from, Math.min(leases.size(), from + RENEW_BATCH)));
                    sent.add(async.evalsha(sha, ScriptOutputType.INTEGER, new String[] {slots},
                            args.toArray(String[]::new)));
                }
            });
            for (RedisFuture<Object> future : sent) {
                try {
                    future.get(lease.toMillis(), TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof RedisNoScriptException) { // Redis restarted: load it for next time
                        commands().scriptLoad(RENEW);
                    }
                    throw e;
                }
            }
        } catch (LimitStoreUnavailableException | RedisException | ExecutionException | TimeoutException e) {
            log.debug("lease renewal failed: {}", e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            log.warn("lease renewal failed", e);
        }
    }

    // one hash slot per key ({id}), so the scripts also run on Redis Cluster
    private static String prefix(String keyId) {
        return "llmrelay:limits:{" + keyId + "}:";
    }

    // the limits are part of the key: changing one starts fresh counters
    private static String budgetKey(String keyId, Limits limits) {
        return prefix(keyId) + "budget:" + limits.requestsPerMinute() + ":" + limits.tokensPerMinute();
    }

    private static String budgetCounterKey(String keyId, String period) {
        return prefix(keyId) + "budget-used:" + period;
    }

    private static String slotsKey(String keyId) {
        return prefix(keyId) + "streams";
    }

    @SuppressWarnings("unchecked")
    private List<Long> run(String script, String[] keys, String... args) {
        return (List<Long>) eval(script, ScriptOutputType.MULTI, keys, args);
    }

    private Object eval(String script, ScriptOutputType type, String[] keys, String... args) {
        try {
            RedisCommands<String, String> commands = commands();
            String sha = digest(script);
            try {
                return commands.evalsha(sha, type, keys, args);
            } catch (RedisNoScriptException e) {
                return commands.eval(script, type, keys, args); // also caches it for evalsha
            }
        } catch (RedisException e) {
            throw new LimitStoreUnavailableException(e.getMessage(), e);
        }
    }

    private String digest(String script) {
        return digests.computeIfAbsent(script, text -> commands().digest(text));
    }

    private RedisCommands<String, String> commands() {
        StatefulRedisConnection<String, String> current = connection;
        if (current != null) {
            return current.sync();
        }
        synchronized (this) {
            if (connection == null) {
                // after a failed connect, refuse at once for a moment instead of every request waiting
                if (System.nanoTime() - nextConnectNanos < 0) {
                    throw new LimitStoreUnavailableException("not connected to Redis", null);
                }
                try {
                    connection = client.connect();
                } catch (RedisException e) {
                    nextConnectNanos = System.nanoTime() + RECONNECT_PAUSE.toNanos();
                    throw new LimitStoreUnavailableException(e.getMessage(), e);
                }
            }
            return connection.sync();
        }
    }
}
