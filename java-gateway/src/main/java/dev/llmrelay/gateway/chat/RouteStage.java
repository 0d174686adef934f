package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.upstream.RouteResolver;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * The model that serves the request ({@link RouteResolver}: requested model, or the default pool, -> pool
 * -> the model that pool serves); 404 for a model no pool serves. Every later stage keys on it.
 */
@Component
class RouteStage implements RequestStage {

    private final RouteResolver routes;

    RouteStage(RouteResolver routes) {
        this.routes = routes;
    }

    @Override
    public void apply(GenerationRequest request) {
        request.model = routes.resolve(request.requestedModel).model();
    }

    @Override
    public EndReason refusal() {
        return EndReason.bad_request;
    }
}
