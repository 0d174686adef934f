package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * The operator's {@code max_tokens} cap lowers the request's budget before the context check and the
 * reservation, so both see the capped one. Never refuses.
 */
@Component
class MaxTokensCapStage implements RequestStage {

    private final Degradation degradation;

    MaxTokensCapStage(Degradation degradation) {
        this.degradation = degradation;
    }

    @Override
    public void apply(GenerationRequest request) {
        degradation.capMaxTokens(request.body);
    }

    @Override
    public EndReason refusal() {
        return EndReason.bad_request;
    }
}
