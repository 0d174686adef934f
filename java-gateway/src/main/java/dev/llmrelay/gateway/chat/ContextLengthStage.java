package dev.llmrelay.gateway.chat;

import java.util.Map;
import java.util.OptionalInt;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * Estimates the prompt and sizes the reservation: the prompt plus, for each of the request's {@code n}
 * choices (each a sequence of its own; the prompt counts once), {@code min(max_tokens or the default
 * estimate, context length - prompt)}. A budget the served model's context can never hold gets 400
 * {@code context_length_exceeded} naming the field.
 */
@Component
class ContextLengthStage implements RequestStage {

    private final UpstreamModels models;
    private final long defaultCompletionEstimate;

    ContextLengthStage(UpstreamModels models, GatewayProperties properties) {
        this.models = models;
        this.defaultCompletionEstimate = properties.defaultMaxTokensEstimate();
    }

    @Override
    public void apply(GenerationRequest request) {
        int promptEstimate = request.endpoint.estimatePromptTokens(request.body);
        Integer maxTokens = request.endpoint.maxTokens(request.body);
        long completion = maxTokens != null ? maxTokens : defaultCompletionEstimate;
        OptionalInt contextLength = models.contextLength(request.model);
        if (contextLength.isPresent()) {
            long room = contextLength.getAsInt() - (long) promptEstimate;
            if (maxTokens != null && maxTokens > room) {
                String field = request.endpoint.maxTokensField(request.body);
                throw new OpenAiException(400, "invalid_request_error", "context_length_exceeded", field,
                        "The model '" + request.model + "' has a context of " + contextLength.getAsInt()
                                + " tokens; the prompt (about " + promptEstimate + " tokens) plus " + field + " ("
                                + maxTokens + ") exceeds it. Ask for at most " + Math.max(0, room) + ".",
                        Map.of());
            }
            completion = Math.min(completion, Math.max(0, room));
        }
        request.promptEstimate = promptEstimate;
        request.reservation = promptEstimate + (long) request.choices * completion;
    }

    @Override
    public EndReason refusal() {
        return EndReason.bad_request;
    }
}
