package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;

/** Token counts of one completion; {@code reported} is false when the gateway counted them itself. */
public record ChatUsage(int promptTokens, int completionTokens, boolean reported) {

    public int totalTokens() {
        return promptTokens + completionTokens;
    }

    static ChatUsage fromOpenAi(JsonNode usage) {
        return new ChatUsage(usage.path("prompt_tokens").asInt(0), usage.path("completion_tokens").asInt(0), true);
    }
}
