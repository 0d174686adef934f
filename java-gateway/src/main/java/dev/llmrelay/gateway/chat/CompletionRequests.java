package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.system.OpenAiException;

/**
 * Checks a legacy text completion request ({@code POST /v1/completions}) enough to route and limit it;
 * the model-service validates the rest. One prompt per request: a string or token ids, alone or as a list
 * of one (as the model-service serves it).
 */
final class CompletionRequests {

    private CompletionRequests() {
    }

    static void validate(ObjectNode request) {
        prompt(request);
        JsonNode stream = request.get("stream");
        if (stream != null && !stream.isBoolean() && !stream.isNull()) {
            throw OpenAiException.badRequest("stream", "'stream' must be a boolean");
        }
        ChatRequests.checkMaxTokens(request, "max_tokens");
    }

    static String maxTokensField(ObjectNode request) {
        JsonNode value = request.get("max_tokens");
        return value != null && !value.isNull() ? "max_tokens" : null;
    }

    /**
     * Token ids count exactly; a string about four characters a token (no chat template is added).
     */
    static int estimatePromptTokens(ObjectNode request) {
        JsonNode prompt = prompt(request);
        return prompt.isTextual() ? (int) Math.min(Integer.MAX_VALUE, (prompt.asText().length() + 3L) / 4)
                : prompt.size();
    }

    /** The one prompt: a string or an array of token ids. */
    private static JsonNode prompt(ObjectNode request) {
        JsonNode prompt = request.get("prompt");
        if (prompt != null && prompt.isArray() && prompt.size() >= 1
                && (prompt.get(0).isTextual() || prompt.get(0).isArray())) {
            if (prompt.size() > 1) {
                throw OpenAiException.badRequest("prompt", "'prompt' is a list of " + prompt.size()
                        + " prompts: only one prompt per request is served");
            }
            prompt = prompt.get(0);
        }
        if (prompt != null && prompt.isTextual()) {
            return prompt;
        }
        if (prompt != null && prompt.isArray() && !prompt.isEmpty()) {
            for (JsonNode token : prompt) {
                if (!token.isIntegralNumber() || !token.canConvertToInt() || token.asInt() < 0) {
                    throw OpenAiException.badRequest("prompt", "token ids in 'prompt' must be non-negative integers");
                }
            }
            return prompt;
        }
        throw OpenAiException.badRequest("prompt",
                "'prompt' must be a string or a non-empty array of token ids (or a list of one of those)");
    }
}
