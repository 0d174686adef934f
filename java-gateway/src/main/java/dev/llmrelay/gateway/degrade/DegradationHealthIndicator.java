package dev.llmrelay.gateway.degrade;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * Degradation in {@code /actuator/health} (component {@code degradation}): the switches and routes in
 * force and each pool's limit. Always UP: degrading is the gateway working as told.
 */
@Component("degradation")
class DegradationHealthIndicator implements HealthIndicator {

    private final DegradeAdmin admin;

    DegradationHealthIndicator(DegradeAdmin admin) {
        this.admin = admin;
    }

    @Override
    public Health health() {
        DegradeAdmin.View view = admin.view();
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("maxTokensCap", view.maxTokensCap() == null ? "none" : view.maxTokensCap());
        details.put("pausedModels", view.pausedModels());
        details.put("refuseNewConversations", view.refuseNewConversations() != null);
        details.put("fallbacks", view.fallbacks());
        details.put("pools", view.pools());
        return Health.up().withDetails(details).build();
    }
}
