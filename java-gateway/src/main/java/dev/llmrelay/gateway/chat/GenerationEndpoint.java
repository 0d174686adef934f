package dev.llmrelay.gateway.chat;

import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.ToIntFunction;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The OpenAI generation endpoints the gateway relays through one path (admission, failover, relay,
 * usage): what each request looks like, where the model-service serves it, and where a chunk's text is.
 */
enum GenerationEndpoint {

    /** {@code POST /v1/chat/completions}: messages in, {@code choices[].delta.content} out. */
    CHAT("chat.completions", "/v1/chat/completions", "chat.completion", "chatcmpl-relay", ChatRequests::validate,
            ChatRequests::estimatePromptTokens, ChatRequests::maxTokensField,
            choice -> choice.path("delta").path("content").asText(""),
            (choice, text) -> (choice.get("delta") instanceof ObjectNode delta ? delta : choice.putObject("delta"))
                    .put("content", text)),

    /** {@code POST /v1/completions}, the legacy text completion: a prompt in, {@code choices[].text} out. */
    COMPLETIONS("completions", "/v1/completions", "text_completion", "cmpl-relay", CompletionRequests::validate,
            CompletionRequests::estimatePromptTokens, CompletionRequests::maxTokensField,
            choice -> choice.path("text").asText(""), (choice, text) -> choice.put("text", text));

    /** The endpoint's name in usage rows. */
    final String usageName;
    /** Where the model-service serves it. */
    final String upstreamPath;
    /** The {@code object} of a non-streamed answer. */
    final String completionObject;
    /** The answer's id when the upstream sent none. */
    final String fallbackId;
    private final Consumer<ObjectNode> validator;
    private final ToIntFunction<ObjectNode> promptEstimator;
    private final Function<ObjectNode, String> maxTokensField;
    private final Function<JsonNode, String> text;
    private final BiConsumer<ObjectNode, String> textWriter;

    GenerationEndpoint(String usageName, String upstreamPath, String completionObject, String fallbackId,
            Consumer<ObjectNode> validator, ToIntFunction<ObjectNode> promptEstimator,
            Function<ObjectNode, String> maxTokensField, Function<JsonNode, String> text,
            BiConsumer<ObjectNode, String> textWriter) {
        this.usageName = usageName;
        this.upstreamPath = upstreamPath;
        this.completionObject = completionObject;
        this.fallbackId = fallbackId;
        this.validator = validator;
        this.promptEstimator = promptEstimator;
        this.maxTokensField = maxTokensField;
        this.text = text;
        this.textWriter = textWriter;
    }

    /** Checks what routing and limits need; 400 ({@link dev.llmrelay.gateway.system.OpenAiException}) if not. */
    void validate(ObjectNode request) {
        validator.accept(request);
    }

    /** Prompt tokens, estimated before the upstream counts them (settled with the real count afterwards). */
    int estimatePromptTokens(ObjectNode request) {
        return promptEstimator.applyAsInt(request);
    }

    /** The field that sets the completion budget, or null when none is set (call after {@link #validate}). */
    String maxTokensField(ObjectNode request) {
        return maxTokensField.apply(request);
    }

    /** The completion budget the request sets, or null (call after {@link #validate}). */
    Integer maxTokens(ObjectNode request) {
        String field = maxTokensField(request);
        return field == null ? null : request.get(field).asInt();
    }

    /** The text a streamed choice carries ("" when none). */
    String text(JsonNode choice) {
        return text.apply(choice);
    }

    /** Replaces the text a streamed choice carries (the content filter's output). */
    void setText(ObjectNode choice, String value) {
        textWriter.accept(choice, value);
    }
}
