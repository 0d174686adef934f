package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.KeyRateLimiter;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecorder;

/**
 * Lets a chat request in, streamed or not: checks it and reserves the key's tokens (the prompt estimate
 * plus max_tokens or the default estimate).
 */
@Component
class ChatAdmission {

    private final KeyRateLimiter limiter;
    private final UsageRecorder usage;
    private final GatewayProperties properties;

    ChatAdmission(KeyRateLimiter limiter, UsageRecorder usage, GatewayProperties properties) {
        this.limiter = limiter;
        this.usage = usage;
        this.properties = properties;
    }

    /** An admitted request: its model as asked, prompt estimate and rate-limit permit. */
    record Admitted(String model, int promptEstimate, RateLimitPermit permit) {
    }

    /**
     * @throws OpenAiException 400 for a malformed request
     * @throws RateLimitExceededException 429 when a limit of the key is spent
     */
    Admitted admit(ApiKey key, ObjectNode request, String requestId, boolean stream) {
        ChatRequests.validate(request);
        String model = ChatRequests.model(request);
        int promptEstimate = ChatRequests.estimatePromptTokens(request);
        Integer maxTokens = ChatRequests.maxTokens(request);
        long completion = maxTokens != null ? maxTokens : properties.defaultMaxTokensEstimate();
        try {
            return new Admitted(model, promptEstimate, limiter.admit(key, promptEstimate + completion));
        } catch (RateLimitExceededException e) {
            usage.recordRefused(requestId, key.id(), ChatStreamService.ENDPOINT, model, stream,
                    EndReason.rate_limited, 429);
            throw e;
        }
    }
}
