package dev.llmrelay.gateway.upstream;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import okhttp3.HttpUrl;

/**
 * The model-service replicas. {@link #acquire} picks, among the healthy upstreams whose breaker lets a
 * call through, the one with the fewest calls in flight (ties rotate).
 */
@Component
public class UpstreamPool {

    private final List<Upstream> upstreams;
    private final AtomicInteger rotation = new AtomicInteger();
    private final GatewayProperties properties;

    UpstreamPool(GatewayProperties properties, CircuitBreakerRegistry breakers, MeterRegistry meters) {
        this.properties = properties;
        List<Upstream> list = new ArrayList<>();
        for (String configured : properties.upstreams()) {
            String name = configured.strip();
            if (name.isEmpty()) {
                continue;
            }
            HttpUrl url = HttpUrl.parse(name);
            if (url == null) {
                throw new IllegalStateException("GATEWAY_UPSTREAMS entry is not an http(s) URL: " + name);
            }
            String trimmed = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
            Upstream upstream = new Upstream(trimmed, url, breakers.circuitBreaker(trimmed));
            list.add(upstream);
            Gauge.builder("gateway.upstream.healthy", upstream, u -> u.healthy() ? 1 : 0)
                    .tag("upstream", trimmed).description("1 when the last /health probe answered 200")
                    .register(meters);
            Gauge.builder("gateway.upstream.in_flight", upstream, Upstream::inFlight)
                    .tag("upstream", trimmed).description("calls in flight to this upstream").register(meters);
        }
        if (list.isEmpty()) {
            throw new IllegalStateException("GATEWAY_UPSTREAMS names no upstream");
        }
        this.upstreams = List.copyOf(list);
    }

    public List<Upstream> upstreams() {
        return upstreams;
    }

    /** A lease on the best upstream not in {@code exclude}, or empty when none can take a call now. */
    public Optional<UpstreamLease> acquire(Set<Upstream> exclude) {
        int start = Math.floorMod(rotation.getAndIncrement(), upstreams.size());
        List<Upstream> candidates = new ArrayList<>(upstreams.size());
        for (int i = 0; i < upstreams.size(); i++) {
            Upstream upstream = upstreams.get((start + i) % upstreams.size());
            if (!exclude.contains(upstream) && upstream.healthy()
                    && upstream.breaker().getState() != CircuitBreaker.State.FORCED_OPEN) {
                candidates.add(upstream);
            }
        }
        // stable sort keeps the rotated order among equals
        candidates.sort(Comparator.comparingInt(Upstream::inFlight));
        for (Upstream upstream : candidates) {
            if (upstream.breaker().tryAcquirePermission()) {
                upstream.inFlightCounter().incrementAndGet();
                return Optional.of(new UpstreamLease(upstream));
            }
        }
        return Optional.empty();
    }

    /** Seconds a client should wait when no upstream could serve. */
    public long retryAfterSeconds() {
        return Math.max(1, properties.timeouts().retryAfter().toSeconds());
    }
}
