package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.ratelimit.KeyRateLimiter;
import dev.llmrelay.gateway.usage.EndReason;

/** The key's limits (requests and tokens a minute, concurrent streams): 429 with headers when one is spent. */
@Component
class KeyLimitStage implements RequestStage {

    private final KeyRateLimiter limiter;

    KeyLimitStage(KeyRateLimiter limiter) {
        this.limiter = limiter;
    }

    @Override
    public void apply(GenerationRequest request) {
        request.permit = limiter.admit(request.key, request.reservation);
    }

    @Override
    public EndReason refusal() {
        return EndReason.rate_limited;
    }
}
