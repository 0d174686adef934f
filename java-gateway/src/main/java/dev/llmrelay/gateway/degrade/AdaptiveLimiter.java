package dev.llmrelay.gateway.degrade;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.stereotype.Component;

import com.netflix.concurrency.limits.Limit;
import com.netflix.concurrency.limits.limit.Gradient2Limit;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * An adaptive concurrency limit per upstream pool: at most {@code limit} streams of a pool are in flight
 * from this gateway; one more is refused at once ({@link #tryAcquire} empty) instead of queueing in the
 * model server. The limit is Netflix's Gradient2 fed with each stream's time to first token (queueing in
 * the model shows there first; a whole stream's length says how long the answer was, not how loaded the
 * pool is), while the slot stays taken until the stream ends (decoding streams hold batch slots too).
 * So the library's {@code Limit} is used directly, not its {@code SimpleLimiter}, whose slot ends at the
 * sample.
 */
@Component
public class AdaptiveLimiter {

    private final GatewayProperties.Degrade settings;
    private final MeterRegistry meters;
    private final Map<String, PoolLimit> pools = new ConcurrentHashMap<>();

    AdaptiveLimiter(GatewayProperties properties, UpstreamPool upstreams, MeterRegistry meters) {
        this.settings = properties.degrade();
        this.meters = meters;
        if (settings.minLimit() < 1 || settings.maxLimit() < settings.minLimit()) {
            throw new IllegalStateException("gateway.degrade needs 1 <= min-limit <= max-limit, got "
                    + settings.minLimit() + " and " + settings.maxLimit());
        }
        for (String model : upstreams.pools()) {
            pool(upstreams.poolName(model));
        }
    }

    /** A slot in {@code pool}, or empty when the pool is at its limit (the request is to be shed). */
    public Optional<Slot> tryAcquire(String pool) {
        PoolLimit limit = pool(pool);
        if (!settings.adaptiveLimit()) {
            limit.inFlight.incrementAndGet();
            return Optional.of(new Slot(limit));
        }
        while (true) {
            int current = limit.inFlight.get();
            if (current >= limit.limit.getLimit()) {
                limit.shed.increment();
                return Optional.empty();
            }
            if (limit.inFlight.compareAndSet(current, current + 1)) {
                return Optional.of(new Slot(limit));
            }
        }
    }

    /** Per pool: the current limit, streams in flight, requests shed so far (health details). */
    public Map<String, Map<String, Object>> snapshot() {
        Map<String, Map<String, Object>> view = new LinkedHashMap<>();
        pools.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> view.put(e.getKey(),
                Map.of("limit", e.getValue().limit.getLimit(), "inFlight", e.getValue().inFlight.get(),
                        "shed", (long) e.getValue().shed.count())));
        return view;
    }

    private PoolLimit pool(String name) {
        return pools.computeIfAbsent(name, this::newPool);
    }

    private PoolLimit newPool(String name) {
        int initial = Math.max(settings.minLimit(), Math.min(settings.maxLimit(), settings.initialLimit()));
        Limit limit = Gradient2Limit.newBuilder().initialLimit(initial).minLimit(settings.minLimit())
                .maxConcurrency(settings.maxLimit()).rttTolerance(settings.rttTolerance())
                .queueSize(settings.queueSize()).build();
        PoolLimit pool = new PoolLimit(limit, new AtomicInteger(), Counter.builder("gateway.degrade.shed")
                .tag("pool", name).description("requests shed at the pool's concurrency limit").register(meters));
        Gauge.builder("gateway.degrade.limit", limit, Limit::getLimit).tag("pool", name)
                .description("adaptive concurrency limit of the pool (streams)").register(meters);
        Gauge.builder("gateway.degrade.in_flight", pool.inFlight, AtomicInteger::get).tag("pool", name)
                .description("streams holding a slot of the pool's limit").register(meters);
        return pool;
    }

    private record PoolLimit(Limit limit, AtomicInteger inFlight, Counter shed) {
    }

    /** One stream's slot: {@link #firstToken} gives the limit its sample, {@link #release} frees the slot (once). */
    public static final class Slot {
        private final PoolLimit pool;
        private final long startNanos = System.nanoTime();
        private final AtomicBoolean sampled = new AtomicBoolean();
        private final AtomicBoolean released = new AtomicBoolean();

        private Slot(PoolLimit pool) {
            this.pool = pool;
        }

        /** The stream's first upstream event arrived: time to first token is the limit's sample. */
        public void firstToken() {
            if (!released.get() && sampled.compareAndSet(false, true)) {
                long now = System.nanoTime();
                pool.limit.onSample(startNanos, now - startNanos, pool.inFlight.get(), false);
            }
        }

        public void release() {
            if (released.compareAndSet(false, true)) {
                pool.inFlight.decrementAndGet();
            }
        }
    }
}
