package dev.llmrelay.gateway.chat;

import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Builds one non-streamed {@code chat.completion} (or {@code text_completion}) from the chunks of an upstream
 * stream. The gateway always streams from the model-service, even for a client that asked for one JSON
 * answer: so a client that leaves can be cancelled at once and billed for what was generated, the read timeout bounds
 * silences rather than whole answers, and failover, busy replicas and billing follow one code path.
 * Merges what OpenAI streams per choice: content, refusal, tool-call fragments (by index) and logprobs.
 */
final class ChatCompletionAggregator implements ChatStreamListener {

    /** How the request ended: exactly one of completion or error is set, or neither when the client left. */
    record Outcome(ObjectNode completion, ChatStreamError error) {
    }

    private final ObjectMapper mapper;
    private final GenerationEndpoint endpoint;
    private final CompletableFuture<Outcome> outcome = new CompletableFuture<>();
    private final Map<Integer, Choice> choices = new TreeMap<>();
    private String id;
    private Long created;
    private String model;
    private String systemFingerprint;

    ChatCompletionAggregator(ObjectMapper mapper) {
        this(mapper, GenerationEndpoint.CHAT);
    }

    ChatCompletionAggregator(ObjectMapper mapper, GenerationEndpoint endpoint) {
        this.mapper = mapper;
        this.endpoint = endpoint;
    }

    /** Completes at the end of the stream (or when the client left, {@link #clientGone}). */
    CompletableFuture<Outcome> outcome() {
        return outcome;
    }

    /** The client left (its stream was cancelled, so no callback follows): stop waiting. */
    void clientGone() {
        outcome.complete(new Outcome(null, null));
    }

    @Override
    public synchronized void onChunk(String data, JsonNode chunk) {
        if (id == null && chunk.path("id").isTextual()) {
            id = chunk.path("id").asText();
        }
        if (created == null && chunk.path("created").canConvertToLong()) {
            created = chunk.path("created").asLong();
        }
        if (model == null && chunk.path("model").isTextual()) {
            model = chunk.path("model").asText();
        }
        if (systemFingerprint == null && chunk.path("system_fingerprint").isTextual()) {
            systemFingerprint = chunk.path("system_fingerprint").asText();
        }
        for (JsonNode streamed : chunk.path("choices")) {
            choices.computeIfAbsent(streamed.path("index").asInt(0), Choice::new).add(streamed);
        }
    }

    @Override
    public synchronized void onFinish(String finishReason, ChatUsage usage) {
        ObjectNode completion = mapper.createObjectNode();
        completion.put("id", id != null ? id : endpoint.fallbackId);
        completion.put("object", endpoint.completionObject);
        completion.put("created", created != null ? created : System.currentTimeMillis() / 1000);
        completion.put("model", model);
        ArrayNode list = completion.putArray("choices");
        if (choices.isEmpty()) {
            choices.put(0, new Choice(0));
        }
        for (Choice choice : choices.values()) {
            list.add(choice.toJson(finishReason));
        }
        ObjectNode usageNode = completion.putObject("usage");
        usageNode.put("prompt_tokens", usage.promptTokens());
        usageNode.put("completion_tokens", usage.completionTokens());
        usageNode.put("total_tokens", usage.totalTokens());
        if (systemFingerprint != null) {
            completion.put("system_fingerprint", systemFingerprint);
        }
        outcome.complete(new Outcome(completion, null));
    }

    @Override
    public void onError(ChatStreamError error) {
        outcome.complete(new Outcome(null, error));
    }

    /** One choice being assembled. */
    private final class Choice {
        private final int index;
        private final StringBuilder content = new StringBuilder();
        private StringBuilder refusal;
        private final Map<Integer, ObjectNode> toolCalls = new TreeMap<>();
        private ArrayNode logprobs;
        private String finishReason;

        Choice(int index) {
            this.index = index;
        }

        void add(JsonNode streamed) {
            content.append(endpoint.text(streamed));
            JsonNode delta = streamed.path("delta");
            if (delta.path("refusal").isTextual()) {
                if (refusal == null) {
                    refusal = new StringBuilder();
                }
                refusal.append(delta.path("refusal").asText());
            }
            for (JsonNode fragment : delta.path("tool_calls")) {
                mergeToolCall(fragment);
            }
            JsonNode tokens = streamed.path("logprobs").path("content");
            if (tokens.isArray()) {
                if (logprobs == null) {
                    logprobs = mapper.createArrayNode();
                }
                logprobs.addAll((ArrayNode) tokens);
            }
            if (streamed.path("finish_reason").isTextual()) {
                finishReason = streamed.path("finish_reason").asText();
            }
        }

        /** Tool calls stream as fragments keyed by index: id, type and name once, arguments in pieces. */
        private void mergeToolCall(JsonNode fragment) {
            ObjectNode call = toolCalls.computeIfAbsent(fragment.path("index").asInt(toolCalls.size()), i -> {
                ObjectNode created = mapper.createObjectNode();
                created.put("id", "");
                created.put("type", "function");
                ObjectNode function = created.putObject("function");
                function.put("name", "");
                function.put("arguments", "");
                return created;
            });
            if (fragment.path("id").isTextual()) {
                call.put("id", fragment.path("id").asText());
            }
            if (fragment.path("type").isTextual()) {
                call.put("type", fragment.path("type").asText());
            }
            ObjectNode function = (ObjectNode) call.get("function");
            JsonNode streamedFunction = fragment.path("function");
            if (streamedFunction.path("name").isTextual()) {
                function.put("name", function.path("name").asText() + streamedFunction.path("name").asText());
            }
            if (streamedFunction.path("arguments").isTextual()) {
                function.put("arguments",
                        function.path("arguments").asText() + streamedFunction.path("arguments").asText());
            }
        }

        ObjectNode toJson(String streamFinishReason) {
            ObjectNode choice = mapper.createObjectNode();
            choice.put("index", index);
            if (endpoint == GenerationEndpoint.COMPLETIONS) {
                // a text completion's choice; the model-service serves no logprobs for it
                choice.put("text", content.toString());
                choice.putNull("logprobs");
                choice.put("finish_reason", finishReason != null ? finishReason : streamFinishReason);
                return choice;
            }
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            if (content.length() > 0 || toolCalls.isEmpty()) {
                message.put("content", content.toString());
            } else {
                message.putNull("content");
            }
            if (refusal != null) {
                message.put("refusal", refusal.toString());
            }
            if (!toolCalls.isEmpty()) {
                ArrayNode calls = message.putArray("tool_calls");
                for (Iterator<ObjectNode> it = toolCalls.values().iterator(); it.hasNext();) {
                    calls.add(it.next());
                }
            }
            if (logprobs != null) {
                choice.putObject("logprobs").set("content", logprobs);
            } else {
                choice.putNull("logprobs");
            }
            choice.put("finish_reason", finishReason != null ? finishReason : streamFinishReason);
            return choice;
        }
    }
}
