package dev.llmrelay.gateway.upstream;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToIntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import okhttp3.HttpUrl;

/**
 * The model-service replicas. {@link #acquire} picks, among the healthy upstreams whose breaker lets a
 * call through, the least loaded (ties rotate); a replica that answered 503 with Retry-After comes after the
 * others until that wait has passed. Load is the replica's own gauges from its last scrape
 * ({@link UpstreamLoad}: twice the waiting requests, since a queue means no free batch slot, plus the
 * running ones) plus the calls sent to it since that scrape; without a fresh scrape it is the calls
 * this gateway has in flight there. Overloaded replicas (more waiting than
 * {@code gateway.routing.affinity-max-waiting}, or a full KV cache) come last. A request with an affinity
 * key goes to the key's home replica while its fresh load shows it is not overloaded, so a conversation's
 * turns reuse that replica's prompt cache. The home is chosen by rendezvous (highest random weight)
 * hashing of the key and the replicas' names, so every gateway instance picks the same one without
 * sharing any state; while it is overloaded, the key moves to the next replica in its own order (again
 * the same on every instance), and it comes back once the home has recovered.
 */
@Component
public class UpstreamPool {

    /** {@code model=http(s)://...}: a replica in that model's pool (model ids may hold '/' and ':') */
    private static final Pattern MODEL_ENTRY = Pattern.compile("(?i)^([^=]+)=(https?://.+)$");

    /** The name of the pool of the upstreams named without a model (degradation routes and limits). */
    public static final String DEFAULT_POOL = "default";

    private final List<Upstream> upstreams;
    private final AtomicInteger rotation = new AtomicInteger();
    private final GatewayProperties properties;
    private final long metricsMaxAgeNanos;
    /** models with a pool of their own; the upstreams named without a model serve every other model */
    private final Set<String> groupedModels;
    private final boolean anyModelPool;

    UpstreamPool(GatewayProperties properties, CircuitBreakerRegistry breakers, MeterRegistry meters) {
        this.properties = properties;
        GatewayProperties.Routing routing = properties.routing();
        this.metricsMaxAgeNanos = routing.metricsMaxAge().toNanos();
        List<Upstream> list = new ArrayList<>();
        for (String configured : properties.upstreams()) {
            String name = configured.strip();
            if (name.isEmpty()) {
                continue;
            }
            String model = null;
            Matcher grouped = MODEL_ENTRY.matcher(name);
            if (grouped.matches()) {
                model = grouped.group(1).strip();
                name = grouped.group(2).strip();
            }
            HttpUrl url = HttpUrl.parse(name);
            if (url == null) {
                throw new IllegalStateException("GATEWAY_UPSTREAMS entry is not an http(s) URL: " + configured.strip());
            }
            String trimmed = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
            Upstream upstream = new Upstream(trimmed, model, url, breakers.circuitBreaker(trimmed));
            list.add(upstream);
            Gauge.builder("gateway.upstream.healthy", upstream, u -> u.healthy() ? 1 : 0)
                    .tag("upstream", trimmed).description("1 when the last /health probe answered 200")
                    .register(meters);
            Gauge.builder("gateway.upstream.in_flight", upstream, Upstream::inFlight)
                    .tag("upstream", trimmed).description("calls in flight to this upstream").register(meters);
            Gauge.builder("gateway.upstream.waiting", upstream, u -> scraped(u, UpstreamLoad::waiting))
                    .tag("upstream", trimmed).description("requests queued on this upstream at the last scrape")
                    .register(meters);
            Gauge.builder("gateway.upstream.running", upstream, u -> scraped(u, UpstreamLoad::running))
                    .tag("upstream", trimmed).description("requests decoding on this upstream at the last scrape")
                    .register(meters);
        }
        if (list.isEmpty()) {
            throw new IllegalStateException("GATEWAY_UPSTREAMS names no upstream");
        }
        this.upstreams = List.copyOf(list);
        this.groupedModels = list.stream().map(Upstream::model).filter(Objects::nonNull).collect(Collectors.toSet());
        this.anyModelPool = list.stream().anyMatch(u -> u.model() == null);
    }

    public List<Upstream> upstreams() {
        return upstreams;
    }

    /**
     * Whether some pool serves {@code model}: its own ({@code model=url}), or the upstreams named without a
     * model. A request naming no model (the browser API) goes to those, or to every upstream without them.
     */
    public boolean serves(String model) {
        return model == null || anyModelPool || groupedModels.contains(model);
    }

    /** The upstreams outside {@code model}'s pool: {@link #acquire} is given them to exclude. */
    public Set<Upstream> outsidePool(String model) {
        if (groupedModels.isEmpty() || (model == null && !anyModelPool)) {
            return Set.of();
        }
        String pool = model != null && groupedModels.contains(model) ? model : null;
        return upstreams.stream().filter(u -> !Objects.equals(u.model(), pool)).collect(Collectors.toSet());
    }

    /** The name of the pool a request for {@code model} goes to: the model when it has a pool of its own, else {@value #DEFAULT_POOL}. */
    public String poolName(String model) {
        return model != null && groupedModels.contains(model) ? model : DEFAULT_POOL;
    }

    /** Whether {@code name} is a pool ({@link #poolName}): a grouped model, or the default pool when it exists. */
    public boolean isPool(String name) {
        return groupedModels.contains(name) || (DEFAULT_POOL.equals(name) && anyModelPool);
    }

    /** Whether some replica of {@code model}'s pool is healthy and its breaker lets calls through. */
    public boolean usable(String model) {
        Set<Upstream> outside = outsidePool(model);
        return upstreams.stream().anyMatch(u -> !outside.contains(u) && u.healthy()
                && u.breaker().getState() != CircuitBreaker.State.OPEN
                && u.breaker().getState() != CircuitBreaker.State.FORCED_OPEN);
    }

    /**
     * One model per pool, for a list of every pool's models: the grouped models, and null for the
     * upstreams named without one (when there are any). Just {@code [null]} when nothing is grouped.
     */
    public List<String> pools() {
        List<String> pools = new ArrayList<>();
        if (anyModelPool) {
            pools.add(null);
        }
        upstreams.stream().map(Upstream::model).filter(Objects::nonNull).distinct().forEach(pools::add);
        return pools;
    }

    /** A lease on the best upstream not in {@code exclude}, or empty when none can take a call now. */
    public Optional<UpstreamLease> acquire(Set<Upstream> exclude) {
        return acquire(exclude, null);
    }

    /**
     * As {@link #acquire(Set)}, preferring the replica that served {@code affinityKey}'s last request
     * (null: no preference) while it is not overloaded.
     */
    public Optional<UpstreamLease> acquire(Set<Upstream> exclude, String affinityKey) {
        long now = System.nanoTime();
        int start = Math.floorMod(rotation.getAndIncrement(), upstreams.size());
        List<Candidate> candidates = new ArrayList<>(upstreams.size());
        for (int i = 0; i < upstreams.size(); i++) {
            Upstream upstream = upstreams.get((start + i) % upstreams.size());
            if (!exclude.contains(upstream) && upstream.healthy()
                    && upstream.breaker().getState() != CircuitBreaker.State.FORCED_OPEN) {
                candidates.add(candidate(upstream, now));
            }
        }
        // scores are taken once above, so the sort sees stable values; stable sort keeps the rotated order among equals
        candidates.sort(Comparator.comparing(Candidate::busy).thenComparing(Candidate::overloaded)
                .thenComparingLong(Candidate::score));
        if (affinityKey != null) {
            preferHome(candidates, affinityKey);
        }
        for (Candidate candidate : candidates) {
            Upstream upstream = candidate.upstream();
            if (upstream.breaker().tryAcquirePermission()) {
                upstream.inFlightCounter().incrementAndGet();
                upstream.sent();
                return Optional.of(new UpstreamLease(upstream));
            }
        }
        return Optional.empty();
    }

    /**
     * Moves the key's home to the front: the first candidate in the key's rendezvous order that is not
     * overloaded. Without a fresh load there, "not overloaded" is unknown: no preference, the plain balance.
     */
    private static void preferHome(List<Candidate> candidates, String affinityKey) {
        List<Candidate> byWeight = new ArrayList<>(candidates);
        byWeight.sort(Comparator.comparingLong((Candidate c) -> weight(affinityKey, c.upstream().name())).reversed());
        for (Candidate candidate : byWeight) {
            if (candidate.busy() || (candidate.loadKnown() && candidate.overloaded())) {
                continue;
            }
            if (candidate.loadKnown()) {
                candidates.remove(candidate);
                candidates.add(0, candidate);
            }
            return;
        }
    }

    /**
     * The rendezvous weight of a replica for a key: a hash of both that every instance computes alike
     * (FNV-1a over the UTF-8 bytes, then a 64-bit finaliser so near-equal names spread).
     */
    static long weight(String key, String replica) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : (key + '\n' + replica).getBytes(StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        hash = (hash ^ (hash >>> 33)) * 0xff51afd7ed558ccdL;
        hash = (hash ^ (hash >>> 33)) * 0xc4ceb9fe1a85ec53L;
        return hash ^ (hash >>> 33);
    }

    private Candidate candidate(Upstream upstream, long now) {
        UpstreamLoad load = upstream.load(now, metricsMaxAgeNanos);
        boolean busy = upstream.busy(now);
        if (load == null) {
            return new Candidate(upstream, busy, false, false, upstream.inFlight());
        }
        GatewayProperties.Routing routing = properties.routing();
        boolean overloaded = load.waiting() > routing.affinityMaxWaiting()
                || load.kvCacheUsage() >= routing.affinityMaxKvCache(); // NaN (not exported) compares false
        return new Candidate(upstream, busy, true, overloaded,
                2L * load.waiting() + load.running() + upstream.sentSinceScrape());
    }

    /** A gauge's value from the upstream's fresh load; NaN (no sample) without one. */
    /** {@code upstream}'s load at its last scrape when that is fresh (routing.metrics-max-age), else null. */
    public UpstreamLoad freshLoad(Upstream upstream) {
        return upstream.load(System.nanoTime(), metricsMaxAgeNanos);
    }

    private double scraped(Upstream upstream, ToIntFunction<UpstreamLoad> value) {
        UpstreamLoad load = upstream.load(System.nanoTime(), metricsMaxAgeNanos);
        return load == null ? Double.NaN : value.applyAsInt(load);
    }

    /** {@code busy}: it answered 503 + Retry-After and the wait has not passed; busy ones come last. */
    private record Candidate(Upstream upstream, boolean busy, boolean loadKnown, boolean overloaded, long score) {
    }

    /** Seconds a client should wait when no upstream could serve. */
    public long retryAfterSeconds() {
        return Math.max(1, properties.timeouts().retryAfter().toSeconds());
    }
}
