package dev.llmrelay.gateway.chat;

import java.time.Clock;
import java.util.Optional;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.identity.SystemPrompt;
import dev.llmrelay.gateway.identity.SystemPrompts;
import dev.llmrelay.gateway.keys.ApiKey;

/**
 * The chat request as the upstream gets it, for /v1 and the browser API alike: always a stream with
 * usage (billing), and the operator's system prompt ({@link SystemPrompts}) before the client's messages
 * ({@code prepend}) or instead of the client's system messages ({@code replace}). The client's request
 * is left as it was.
 */
@Component
class RequestRewriter {

    private final SystemPrompts prompts;
    private final Clock clock = Clock.systemUTC();

    RequestRewriter(SystemPrompts prompts) {
        this.prompts = prompts;
    }

    ObjectNode upstreamRequest(ObjectNode clientRequest, ApiKey key, String model) {
        ObjectNode upstream = clientRequest.deepCopy();
        upstream.put("stream", true);
        // always ask for usage (billing); a client's "stream_options": null or junk is replaced
        ObjectNode options = upstream.get("stream_options") instanceof ObjectNode existing ? existing
                : upstream.putObject("stream_options");
        options.put("include_usage", true);
        Optional<SystemPrompt> prompt = prompts.forRequest(key, model);
        if (prompt.isPresent() && upstream.get("messages") instanceof ArrayNode messages) {
            if (prompt.get().replaces()) {
                for (int i = messages.size() - 1; i >= 0; i--) {
                    JsonNode role = messages.get(i).path("role");
                    if ("system".equals(role.asText()) || "developer".equals(role.asText())) {
                        messages.remove(i);
                    }
                }
            }
            ObjectNode system = messages.insertObject(0);
            system.put("role", "system");
            system.put("content", prompt.get().render(model, key.name(), clock.instant()));
        }
        return upstream;
    }
}
