package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.system.OpenAiException;

/** Checks an OpenAI chat request enough to route and limit it; the model-service validates the rest. */
final class ChatRequests {

    private ChatRequests() {
    }

    static void validate(ObjectNode request) {
        JsonNode messages = request.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw OpenAiException.badRequest("messages", "'messages' must be a non-empty array");
        }
        for (JsonNode message : messages) {
            if (!message.isObject() || !message.path("role").isTextual()) {
                throw OpenAiException.badRequest("messages", "each message needs a string 'role'");
            }
        }
        JsonNode stream = request.get("stream");
        if (stream != null && !stream.isBoolean() && !stream.isNull()) {
            throw OpenAiException.badRequest("stream", "'stream' must be a boolean");
        }
        maxTokens(request);
        choices(request);
    }

    static boolean wantsStream(ObjectNode request) {
        return request.path("stream").asBoolean(false);
    }

    static String model(ObjectNode request) {
        JsonNode model = request.get("model");
        return model != null && model.isTextual() ? model.asText() : null;
    }

    /**
     * max_completion_tokens or max_tokens (the first wins, as OpenAI does), or null when neither is given.
     * Both are checked: a positive integer, as the model-service requires.
     */
    static Integer maxTokens(ObjectNode request) {
        checkMaxTokens(request, "max_completion_tokens", "max_tokens");
        String field = maxTokensField(request);
        return field == null ? null : request.get(field).asInt();
    }

    /** Each of {@code fields} that is set must be a positive integer, as the model-service requires. */
    static void checkMaxTokens(ObjectNode request, String... fields) {
        for (String field : fields) {
            JsonNode value = request.get(field);
            if (value != null && !value.isNull()
                    && (!value.isIntegralNumber() || !value.canConvertToInt() || value.asInt() < 1)) {
                throw OpenAiException.badRequest(field, "'" + field + "' must be a positive integer");
            }
        }
    }

    /** {@code n}, the number of choices (1 when absent): a positive integer, as the model-service requires. */
    static int choices(ObjectNode request) {
        JsonNode value = request.get("n");
        if (value == null || value.isNull()) {
            return 1;
        }
        if (!value.isIntegralNumber() || !value.canConvertToInt() || value.asInt() < 1) {
            throw OpenAiException.badRequest("n", "'n' must be a positive integer");
        }
        return value.asInt();
    }

    /** The field that sets the completion budget (max_completion_tokens wins), or null when neither is set. */
    static String maxTokensField(ObjectNode request) {
        for (String field : new String[] {"max_completion_tokens", "max_tokens"}) {
            JsonNode value = request.get(field);
            if (value != null && !value.isNull()) {
                return field;
            }
        }
        return null;
    }

    /**
     * Prompt tokens, estimated before the upstream counts them: about four characters a token plus a few
     * tokens of chat template per message. Settled with the real count afterwards.
     */
    static int estimatePromptTokens(ObjectNode request) {
        long chars = 0;
        int messages = 0;
        for (JsonNode message : request.path("messages")) {
            messages++;
            JsonNode content = message.path("content");
            chars += content.isTextual() ? content.asText().length() : content.toString().length();
        }
        return (int) Math.min(Integer.MAX_VALUE, (chars + 3) / 4 + 4L * messages);
    }
}
