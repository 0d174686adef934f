package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * A slot of the served model's pool ({@link dev.llmrelay.gateway.degrade.AdaptiveLimiter}), or of its
 * fallback route's pool when the key allows it; 503 {@code overloaded} with Retry-After when neither has room.
 */
@Component
class SheddingStage implements RequestStage {

    private final Degradation degradation;

    SheddingStage(Degradation degradation) {
        this.degradation = degradation;
    }

    @Override
    public void apply(GenerationRequest request) {
        request.route = degradation.route(request.key, request.model);
    }

    @Override
    public EndReason refusal() {
        return EndReason.degraded;
    }
}
