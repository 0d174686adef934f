package dev.llmrelay.gateway.chat;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.safety.ContentFilterRepository;

/**
 * The output chain of one stream, chunk by chunk: what a chunk tells the books ({@link #observe}: the
 * model, the upstream's usage, the first text, each choice's finish_reason) and what the client gets of it
 * ({@link #observe} drops the usage the client never asked for; {@link #filter}: the content filter). Called
 * on the OkHttp thread of the attempt that serves; read by the end's accounting on any thread.
 */
final class StreamOutput {

    private final GenerationRequest request;
    private final ContentFilter.Output filterOutput;
    private final FilteredChunks filtered;
    private final Set<Integer> finishedChoices = ConcurrentHashMap.newKeySet();

    private volatile String model;
    private volatile ChatUsage reportedUsage;
    private volatile int contentChunks;
    private volatile long firstTokenNanos;
    private volatile String finishReason;

    StreamOutput(GenerationRequest request, ContentFilter.Output filterOutput, String model) {
        this.request = request;
        this.filterOutput = filterOutput;
        this.filtered = new FilteredChunks(filterOutput, request.endpoint);
        this.model = model;
    }

    /**
     * Takes what the chunk tells and returns the event data to relay ({@code data}, or the chunk without the
     * usage the client did not ask for), or null for a usage-only chunk the client never asked for.
     */
    String observe(String data, JsonNode chunk) {
        if (model == null && chunk.path("model").isTextual()) {
            model = chunk.path("model").asText();
        }
        JsonNode usageNode = chunk.get("usage");
        JsonNode choices = chunk.path("choices");
        String relayed = data;
        if (usageNode != null && usageNode.isObject()) {
            reportedUsage = ChatUsage.fromOpenAi(usageNode);
            if (!request.clientWantsUsage) {
                if (choices.isEmpty()) {
                    return null;
                }
                ((ObjectNode) chunk).remove("usage");
                relayed = chunk.toString();
            }
        }
        JsonNode choice = choices.path(0);
        if (!request.endpoint.text(choice).isEmpty() && contentChunks++ == 0) {
            firstTokenNanos = System.nanoTime(); // TTFT: the first text, not a role-only chunk
        }
        if (choice.path("finish_reason").isTextual()) {
            finishReason = choice.path("finish_reason").asText();
            finishedChoices.add(choice.path("index").asInt(0));
        }
        return relayed;
    }

    /** The chunk as the content filter lets it out ({@link FilteredChunks}). */
    FilteredChunks.Result filter(String data, JsonNode chunk) {
        return chunk instanceof ObjectNode object ? filtered.apply(data, object)
                : new FilteredChunks.Result(data, chunk, request.endpoint.text(chunk.path("choices").path(0)), false,
                        null);
    }

    /** Text the filter still holds for choices that never finished: a last chunk carrying it, or null. */
    ObjectNode tail() {
        return "content_filter".equals(finishReason) ? null : filtered.tail();
    }

    /** Every choice of the request sent its finish_reason: the answer is whole. */
    boolean complete() {
        return finishReason != null && finishedChoices.size() >= request.choices;
    }

    void blocked() {
        finishReason = "content_filter";
    }

    String finishReason() {
        return finishReason;
    }

    String model() {
        return model;
    }

    /** The upstream's usage, or (a cut stream) what was relayed: the prompt estimate and one token a chunk. */
    ChatUsage billed(boolean relayedAny) {
        ChatUsage reported = reportedUsage;
        return reported != null ? reported
                : new ChatUsage(relayedAny ? request.promptEstimate : 0, contentChunks, false);
    }

    /** Nanosecond time of the first text, 0 when none came. */
    long firstTokenNanos() {
        return firstTokenNanos;
    }

    /** Records what the content filter did (its rows); returns them. */
    List<ContentFilterRepository.HitRow> recordFilter() {
        return filterOutput.record();
    }

    /** Gives the model the fallback route serves, before any chunk arrived. */
    void servedBy(String fallbackModel) {
        model = fallbackModel;
    }
}
