package dev.llmrelay.gateway.upstream;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * Upstream state in {@code /actuator/health} (component {@code upstreams}). It never reports DOWN: the
 * gateway itself stays up and answers 503 while the model tier is away, so an orchestrator must not
 * restart it for that; UNKNOWN (the lowest status) says no upstream can take calls now.
 */
@Component("upstreams")
class UpstreamsHealthIndicator implements HealthIndicator {

    private final UpstreamPool pool;

    UpstreamsHealthIndicator(UpstreamPool pool) {
        this.pool = pool;
    }

    @Override
    public Health health() {
        boolean anyUsable = false;
        Map<String, Object> details = new LinkedHashMap<>();
        for (Upstream upstream : pool.upstreams()) {
            String breaker = upstream.breaker().getState().name();
            boolean usable = upstream.healthy() && !"OPEN".equals(breaker) && !"FORCED_OPEN".equals(breaker);
            anyUsable |= usable;
            details.put(upstream.name(), Map.of("healthy", upstream.healthy(), "breaker", breaker,
                    "inFlight", upstream.inFlight()));
        }
        return (anyUsable ? Health.up() : Health.unknown()).withDetails(details).build();
    }
}
