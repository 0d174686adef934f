package dev.llmrelay.gateway.chat;

import java.util.Map;
import java.util.OptionalInt;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.KeyRateLimiter;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecorder;

/**
 * Lets a chat request in, streamed or not: checks it, refuses one the model can never serve (400
 * {@code context_length_exceeded}), and reserves the key's tokens: the prompt estimate plus what the
 * model can produce, {@code min(max_tokens or the default estimate, context length - prompt)} for each of the
 * request's {@code n} choices (each is a sequence of its own; the prompt counts once).
 */
@Component
class ChatAdmission { // a text completion too: GenerationEndpoint says how its prompt is checked and estimated

    private final KeyRateLimiter limiter;
    private final UsageRecorder usage;
    private final UpstreamModels models;
    private final GatewayProperties properties;
    private final UpstreamPool pool;
    private final ContentFilter contentFilter;

    ChatAdmission(KeyRateLimiter limiter, UsageRecorder usage, UpstreamModels models, GatewayProperties properties,
            UpstreamPool pool, ContentFilter contentFilter) {
        this.pool = pool;
        this.contentFilter = contentFilter;
        this.limiter = limiter;
        this.usage = usage;
        this.models = models;
        this.properties = properties;
    }

    /** An admitted request: its model as asked, prompt estimate and rate-limit permit. */
    record Admitted(String model, int promptEstimate, RateLimitPermit permit) {
    }

    /**
     * @throws OpenAiException 400 for a malformed request, one over the model's context length or one the
     *                         content filter refuses ({@code content_filter}), 404 for a model no upstream pool
     *                         serves
     * @throws RateLimitExceededException 429 when a limit of the key is spent
     */
    Admitted admit(GenerationEndpoint endpoint, ApiKey key, ObjectNode request, String requestId, boolean stream) {
        endpoint.validate(request);
        String model = ChatRequests.model(request);
        int promptEstimate = endpoint.estimatePromptTokens(request);
        Integer maxTokens = endpoint.maxTokens(request);
        long completion = maxTokens != null ? maxTokens : properties.defaultMaxTokensEstimate();
        if (!pool.serves(model)) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, model, stream,
                    EndReason.bad_request, 404);
            throw new OpenAiException(404, "invalid_request_error", "model_not_found", "model",
                    "The model '" + model + "' does not exist: no upstream pool serves it (see GET /v1/models).",
                    Map.of());
        }
        try {
            contentFilter.checkPrompt(request, key.id(), requestId);
        } catch (OpenAiException e) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, model, stream,
                    EndReason.content_filter, e.status());
            throw e;
        }
        OptionalInt contextLength = models.contextLength(model);
        if (contextLength.isPresent()) {
            long room = contextLength.getAsInt() - (long) promptEstimate;
            if (maxTokens != null && maxTokens > room) {
                String field = endpoint.maxTokensField(request);
                usage.recordRefused(requestId, key.id(), endpoint.usageName, model, stream,
                        EndReason.bad_request, 400);
                throw new OpenAiException(400, "invalid_request_error", "context_length_exceeded", field,
                        "The model '" + model + "' has a context of " + contextLength.getAsInt()
                                + " tokens; the prompt (about " + promptEstimate + " tokens) plus " + field + " ("
                                + maxTokens + ") exceeds it. Ask for at most " + Math.max(0, room) + ".",
                        Map.of());
            }
            completion = Math.min(completion, Math.max(0, room));
        }
        try {
            long choices = ChatRequests.choices(request);
            return new Admitted(model, promptEstimate, limiter.admit(key, promptEstimate + choices * completion));
        } catch (RateLimitExceededException e) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, model, stream,
                    EndReason.rate_limited, 429);
            throw e;
        }
    }
}
