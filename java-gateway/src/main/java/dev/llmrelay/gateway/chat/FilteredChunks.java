package dev.llmrelay.gateway.chat;

import java.util.Iterator;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.safety.StreamFilter;

/**
 * Puts upstream chunks through one request's content filter: each choice's text ({@code delta.content}, or a
 * text completion's {@code text}: {@link GenerationEndpoint#text}) is
 * replaced by what its {@link StreamFilter} lets out (masked, or held back until the next chunk shows
 * whether a word continues), a choice's held text goes out with its {@code finish_reason}, and a
 * {@code block} match turns the chunk into the last one ({@code finish_reason: "content_filter"}).
 * While any list is in force, {@code logprobs} are dropped: their tokens would repeat the text.
 */
final class FilteredChunks {

    /** A chunk after filtering: {@code skip} when nothing is left to send, {@code blockedBy} the list that ended it. */
    record Result(String data, JsonNode chunk, String text, boolean skip, String blockedBy) {
    }

    private final ContentFilter.Output output;
    private final GenerationEndpoint endpoint;
    private ObjectNode template;

    FilteredChunks(ContentFilter.Output output, GenerationEndpoint endpoint) {
        this.output = output;
        this.endpoint = endpoint;
    }

    Result apply(String data, ObjectNode chunk) {
        template = chunk;
        boolean changed = false;
        String blockedBy = null;
        for (JsonNode node : chunk.path("choices")) {
            if (!(node instanceof ObjectNode choice)) {
                continue;
            }
            if (choice.hasNonNull("logprobs") && output.active()) {
                // token logprobs carry the text (held back or masked here) a second time
                choice.putNull("logprobs");
                changed = true;
            }
            String in = endpoint.text(choice);
            boolean ends = choice.path("finish_reason").isTextual();
            if (in.isEmpty() && !ends) {
                continue;
            }
            StreamFilter filter = output.choice(choice.path("index").asInt(0));
            StreamFilter.Step step = filter.feed(in);
            String out = step.released();
            if (step.blocked()) {
                blockedBy = step.blockedBy();
                choice.put("finish_reason", "content_filter");
                changed = true;
            } else if (ends) {
                out += filter.flush();
            }
            if (!out.equals(in)) {
                endpoint.setText(choice, out);
                changed = true;
            }
            if (blockedBy != null) {
                break;
            }
        }
        String text = endpoint.text(chunk.path("choices").path(0));
        if (!changed) {
            return new Result(data, chunk, text, false, null);
        }
        return new Result(chunk.toString(), chunk, text, blockedBy == null && nothingLeft(chunk), blockedBy);
    }

    /** Text still held for choices that never sent a finish_reason: a last chunk carrying it, or null. */
    ObjectNode tail() {
        Map<Integer, String> tails = output.flush();
        if (template == null || tails.values().stream().allMatch(String::isEmpty)) {
            return null;
        }
        ObjectNode chunk = template.deepCopy();
        chunk.remove("usage");
        ArrayNode choices = chunk.putArray("choices");
        tails.forEach((index, text) -> {
            if (!text.isEmpty()) {
                ObjectNode choice = choices.addObject();
                choice.put("index", index);
                endpoint.setText(choice, text);
                choice.putNull("finish_reason");
            }
        });
        return chunk;
    }

    /** A chunk whose only content was held back entirely: sending it would say nothing. */
    private static boolean nothingLeft(ObjectNode chunk) {
        if (chunk.has("usage") && !chunk.get("usage").isNull()) {
            return false;
        }
        for (JsonNode choice : chunk.path("choices")) {
            if (choice.path("finish_reason").isTextual() || choice.path("logprobs").isObject()) {
                return false;
            }
            if (choice.has("text")) { // a text completion's choice: nothing but its text
                if (!choice.path("text").asText("").isEmpty()) {
                    return false;
                }
                continue;
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = choice.path("delta").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> field = it.next();
                if (!field.getKey().equals("content") || !field.getValue().asText("").isEmpty()) {
                    return false;
                }
            }
        }
        return true;
    }
}
