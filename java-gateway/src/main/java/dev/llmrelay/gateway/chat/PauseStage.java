package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.usage.EndReason;

/** The operator's pause of the served model or its pool: 503 {@code model_paused}, before any reservation. */
@Component
class PauseStage implements RequestStage {

    private final Degradation degradation;

    PauseStage(Degradation degradation) {
        this.degradation = degradation;
    }

    @Override
    public void apply(GenerationRequest request) {
        degradation.checkPaused(request.model);
    }

    @Override
    public EndReason refusal() {
        return EndReason.degraded;
    }
}
