package dev.llmrelay.gateway.chat;

import java.util.Map;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * The request's shape, as far as routing and limits need it (the model-service checks the rest), with
 * {@code n} at most {@code gateway.max-choices}: a request that can never be served gets 400 here, not a
 * reservation that fails as a 429 to retry forever.
 */
@Component
class ValidateStage implements RequestStage {

    private final int maxChoices;

    ValidateStage(GatewayProperties properties) {
        this.maxChoices = properties.maxChoices();
    }

    @Override
    public void apply(GenerationRequest request) {
        request.endpoint.validate(request.body);
        int choices = ChatRequests.choices(request.body);
        if (choices > maxChoices) {
            throw new OpenAiException(400, "invalid_request_error", "integer_above_max_value", "n", "n: at most "
                    + maxChoices + " choices per request (gateway.max-choices), got " + choices, Map.of());
        }
        request.choices = choices;
    }

    @Override
    public EndReason refusal() {
        return EndReason.bad_request;
    }
}
