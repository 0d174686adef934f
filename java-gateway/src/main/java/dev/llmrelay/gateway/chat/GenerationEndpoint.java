package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The OpenAI generation endpoints the gateway relays through one path (admission, failover, relay,
 * usage): what each request looks like, where the model-service serves it, and where a chunk's text is.
 */
enum GenerationEndpoint {

    /** {@code POST /v1/chat/completions}: messages in, {@code choices[].delta.content} out. */
    CHAT("chat.completions", "/v1/chat/completions", "chat.completion", "chatcmpl-relay") {
        @Override
        void validate(ObjectNode request) {
            ChatRequests.validate(request);
        }

        @Override
        int estimatePromptTokens(ObjectNode request) {
            return ChatRequests.estimatePromptTokens(request);
        }

        @Override
        String maxTokensField(ObjectNode request) {
            return ChatRequests.maxTokensField(request);
        }

        @Override
        String text(JsonNode choice) {
            return choice.path("delta").path("content").asText("");
        }
    },

    /** {@code POST /v1/completions}, the legacy text completion: a prompt in, {@code choices[].text} out. */
    COMPLETIONS("completions", "/v1/completions", "text_completion", "cmpl-relay") {
        @Override
        void validate(ObjectNode request) {
            CompletionRequests.validate(request);
        }

        @Override
        int estimatePromptTokens(ObjectNode request) {
            return CompletionRequests.estimatePromptTokens(request);
        }

        @Override
        String maxTokensField(ObjectNode request) {
            return CompletionRequests.maxTokensField(request);
        }

        @Override
        String text(JsonNode choice) {
            return choice.path("text").asText("");
        }
    };

    /** The endpoint's name in usage rows. */
    final String usageName;
    /** Where the model-service serves it. */
    final String upstreamPath;
    /** The {@code object} of a non-streamed answer. */
    final String completionObject;
    /** The answer's id when the upstream sent none. */
    final String fallbackId;

    GenerationEndpoint(String usageName, String upstreamPath, String completionObject, String fallbackId) {
        this.usageName = usageName;
        this.upstreamPath = upstreamPath;
        this.completionObject = completionObject;
        this.fallbackId = fallbackId;
    }

    /** Checks what routing and limits need; 400 ({@link dev.llmrelay.gateway.system.OpenAiException}) if not. */
    abstract void validate(ObjectNode request);

    /** Prompt tokens, estimated before the upstream counts them (settled with the real count afterwards). */
    abstract int estimatePromptTokens(ObjectNode request);

    /** The field that sets the completion budget, or null when none is set (call after {@link #validate}). */
    abstract String maxTokensField(ObjectNode request);

    /** The text a streamed choice carries ("" when none). */
    abstract String text(JsonNode choice);

    /** The completion budget the request sets, or null (call after {@link #validate}). */
    Integer maxTokens(ObjectNode request) {
        String field = maxTokensField(request);
        return field == null ? null : request.get(field).asInt();
    }
}
