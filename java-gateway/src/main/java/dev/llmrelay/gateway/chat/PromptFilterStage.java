package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.usage.EndReason;

/** The content filter's prompt lists: 400 {@code content_filter} for a prompt they refuse. */
@Component
class PromptFilterStage implements RequestStage {

    private final ContentFilter contentFilter;

    PromptFilterStage(ContentFilter contentFilter) {
        this.contentFilter = contentFilter;
    }

    @Override
    public void apply(GenerationRequest request) {
        contentFilter.checkPrompt(request.body, request.key.id(), request.requestId);
    }

    @Override
    public EndReason refusal() {
        return EndReason.content_filter;
    }
}
