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
import dev.llmrelay.gateway.upstream.RouteResolver;
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
    private final RouteResolver routes;
    private final ContentFilter contentFilter;

    ChatAdmission(KeyRateLimiter limiter, UsageRecorder usage, UpstreamModels models, GatewayProperties properties,
            RouteResolver routes, ContentFilter contentFilter) {
        this.routes = routes;
        this.contentFilter = contentFilter;
        this.limiter = limiter;
        this.usage = usage;
        this.models = models;
        this.properties = properties;
    }

    /** An admitted request: the model that serves it ({@link RouteResolver}), prompt estimate and rate-limit permit. */
    record Admitted(String model, int promptEstimate, RateLimitPermit permit) {
    }

    /**
     * Checks run in this order, every refusal before any reservation: the request's shape (with {@code n}
     * at most {@code gateway.max-choices}), its route
     * (requested model, or the default pool, -> pool -> served model; 404 for a model no pool serves), the
     * prompt filter and the served model's context length, then the key's limits.
     *
     * @throws OpenAiException 400 for a malformed request, one over the model's context length or one the
     *                         content filter refuses ({@code content_filter}), 404 for a model no upstream pool
     *                         serves
     * @throws RateLimitExceededException 429 when a limit of the key is spent
     */
    Admitted admit(GenerationEndpoint endpoint, ApiKey key, ObjectNode request, String requestId, boolean stream) {
        endpoint.validate(request);
        int choices = ChatRequests.choices(request);
        if (choices > properties.maxChoices()) {
            // a request that can never be served: 400, not a reservation that fails as a 429 to retry forever
            throw new OpenAiException(400, "invalid_request_error", "integer_above_max_value", "n", "n: at most "
                    + properties.maxChoices() + " choices per request (gateway.max-choices), got " + choices, Map.of());
        }
        int promptEstimate = endpoint.estimatePromptTokens(request);
        Integer maxTokens = endpoint.maxTokens(request);
        long completion = maxTokens != null ? maxTokens : properties.defaultMaxTokensEstimate();
        String model;
        try {
            model = routes.resolve(ChatRequests.model(request)).model();
        } catch (OpenAiException e) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, ChatRequests.model(request), stream,
                    EndReason.bad_request, e.status());
            throw e;
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
            return new Admitted(model, promptEstimate, limiter.admit(key, promptEstimate + (long) choices * completion));
        } catch (RateLimitExceededException e) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, model, stream,
                    EndReason.rate_limited, 429);
            throw e;
        }
    }
}
