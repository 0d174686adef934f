package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.usage.EndReason;

/**
 * The body the upstream gets, once the route is known: the client's request rewritten
 * ({@link RequestRewriter}: a stream with usage, the system prompt of the model that serves), naming the
 * fallback model when a fallback route serves. Never refuses; a fallback after the first attempts asks it
 * again ({@link #body}).
 */
@Component
class UpstreamRequestStage implements RequestStage {

    private final RequestRewriter rewriter;
    private final ObjectMapper mapper;

    UpstreamRequestStage(RequestRewriter rewriter, ObjectMapper mapper) {
        this.rewriter = rewriter;
        this.mapper = mapper;
    }

    @Override
    public void apply(GenerationRequest request) {
        request.upstreamBody = body(request, request.route);
    }

    byte[] body(GenerationRequest request, Degradation.Route route) {
        ObjectNode upstreamRequest = rewriter.upstreamRequest(request.body, request.key, route.model());
        if (route.fallbackFrom() != null) {
            upstreamRequest.put("model", route.model());
        }
        try {
            return mapper.writeValueAsBytes(upstreamRequest);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public EndReason refusal() {
        return EndReason.bad_request;
    }
}
